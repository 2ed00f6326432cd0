package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatbot-dev/chatbot/store"
)

// SchemaVersion is the schema this code reads and writes: the number of its
// migrations.
const SchemaVersion = 3

// migrationFiles are the schema's steps: migrations/NNNN_what.sql brings the
// schema from version NNNN−1 to NNNN. A released file never changes; a change
// of schema is a new file (and SchemaVersion one more).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one step of the schema.
type migration struct {
	version int
	name    string // the file's name
	sql     string
}

// migrations are the steps in order: migrations[i] has version i+1.
var migrations = mustLoadMigrations(migrationFiles)

// mustLoadMigrations reads the embedded steps and checks that they are numbered
// 1, 2, 3… without a gap; a build with a bad file must not start.
func mustLoadMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic(err)
	}
	return ms
}

func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for i, name := range names { // fs.Glob sorts
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != i+1 {
			return nil, fmt.Errorf("migration %s: want a name that starts with %04d_", base, i+1)
		}
		sql, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(sql)})
	}
	return ms, nil
}

// versionTable records the migrations applied, one row each. Its name is the
// project's own, so that it does not meet another tool's schema_migrations in
// a shared schema.
const versionTable = `CREATE TABLE IF NOT EXISTS chatbot_schema (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// migrate brings the schema of the connection's first search_path schema to
// version upTo, in one transaction that holds an advisory lock for that
// schema: replicas that start together wait for each other, and the second
// finds the work done. It returns the schema's name. A schema newer than this
// build is an error wrapping store.ErrNewerVersion, with nothing changed.
func migrate(ctx context.Context, pool *pgxpool.Pool, upTo int) (schema string, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var name *string
		if err := tx.QueryRow(ctx, "SELECT current_schema()").Scan(&name); err != nil {
			return err
		}
		if name == nil {
			return errors.New("no schema to keep the tables in: the connection's search_path names no schema that exists (create it, or fix search_path)")
		}
		schema = *name
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("migrate", schema)); err != nil {
			return fmt.Errorf("wait for the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, versionTable); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM chatbot_schema").Scan(&current); err != nil {
			return fmt.Errorf("read the schema version: %w", err)
		}
		if current > SchemaVersion {
			return fmt.Errorf("%w (schema %d, this build reads %d): upgrade chatbot", store.ErrNewerVersion, current, SchemaVersion)
		}
		for _, m := range migrations[current:upTo] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migrate to schema %d (%s): %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO chatbot_schema (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return err
			}
		}
		return nil
	})
	return schema, err
}

// lockKey is the advisory lock key for what in schema: a hash, so that two
// bots in two schemas of one database do not wait for each other.
func lockKey(what, schema string) int64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "chatbot %s %s", what, schema)
	return int64(h.Sum64())
}

// channelName is the LISTEN/NOTIFY channel of schema: notifications reach
// every session of a database, so each schema has its own. A long name is
// hashed, since PostgreSQL cuts identifiers at 63 bytes.
func channelName(schema string) string {
	ch := "chatbot_" + schema
	if len(ch) > 63 {
		ch = fmt.Sprintf("chatbot_%016x", uint64(lockKey("channel", schema)))
	}
	return ch
}
