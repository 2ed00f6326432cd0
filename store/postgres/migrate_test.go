package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/store"
)

// TestMigrationFiles checks the embedded steps are numbered 1…SchemaVersion,
// and that a gap or a stray name is refused.
func TestMigrationFiles(t *testing.T) {
	if len(migrations) != SchemaVersion {
		t.Errorf("%d migration files, SchemaVersion %d: a new file needs SchemaVersion raised", len(migrations), SchemaVersion)
	}
	for i, m := range migrations {
		if m.version != i+1 || strings.TrimSpace(m.sql) == "" {
			t.Errorf("migration %d: version %d, %d bytes of SQL", i, m.version, len(m.sql))
		}
	}
	for name, files := range map[string]fstest.MapFS{
		"gap":      {"migrations/0001_a.sql": {Data: []byte("x")}, "migrations/0003_c.sql": {Data: []byte("x")}},
		"no digit": {"migrations/0001_a.sql": {Data: []byte("x")}, "migrations/two.sql": {Data: []byte("x")}},
	} {
		if _, err := loadMigrations(files); err == nil {
			t.Errorf("%s: loaded, want an error", name)
		}
	}
}

// versions lists the schema versions recorded in url's database.
func versions(t *testing.T, url string) []int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, "SELECT version FROM chatbot_schema ORDER BY version")
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func allVersions() []int {
	var vs []int
	for v := 1; v <= SchemaVersion; v++ {
		vs = append(vs, v)
	}
	return vs
}

// TestMigrateFromEmpty checks that Open on an empty database creates the
// schema and records every step once, and that a second Open changes nothing.
func TestMigrateFromEmpty(t *testing.T) {
	url := pg.Database(t)
	openT(t, url, quiet()).Close()
	if got := versions(t, url); !slices.Equal(got, allVersions()) {
		t.Errorf("versions after Open = %v, want %v", got, allVersions())
	}
	openT(t, url, quiet())
	if got := versions(t, url); !slices.Equal(got, allVersions()) {
		t.Errorf("versions after a second Open = %v, want %v", got, allVersions())
	}
}

// TestMigrateFromPreviousSchema fills a database at schema 1 (one process,
// pending marks without an owner) and checks that Open brings it to the
// current schema with the data intact, and that the old marks count as a
// dead replica's.
func TestMigrateFromPreviousSchema(t *testing.T) {
	url := pg.Database(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrate(ctx, pool, 1); err != nil {
		t.Fatalf("migrate to 1: %v", err)
	}
	pool.Close()
	if got := versions(t, url); !slices.Equal(got, []int{1}) {
		t.Fatalf("versions = %v, want [1]", got)
	}
	sql(t, url,
		`INSERT INTO chats VALUES ('telegram:1', 2)`,
		`INSERT INTO messages VALUES ('telegram:1', 1, '{"role":"user","content":"telegram:1 #0","time":"0001-01-01T00:00:00Z"}'),
			('telegram:1', 2, '{"role":"assistant","content":"telegram:1 #1","time":"0001-01-01T00:00:00Z"}')`,
		`INSERT INTO pending (chat) VALUES ('telegram:1'), ('slack:T:C:1.2')`,
		`INSERT INTO cursors VALUES ('telegram:offset', 42)`)

	s := openT(t, url, quiet())
	if got := versions(t, url); !slices.Equal(got, allVersions()) {
		t.Errorf("versions after Open = %v, want %v", got, allVersions())
	}
	got, err := s.Recent(ctx, "telegram:1", 10)
	if want := []conversation.Message{msg("telegram:1", 0), msg("telegram:1", 1)}; err != nil || !slices.EqualFunc(got, want, func(a, b conversation.Message) bool { return a.Role == b.Role && a.Content == b.Content }) {
		t.Errorf("Recent = %v, %v; want %v", got, err, want)
	}
	if err := s.AppendTurn(ctx, "telegram:1", msg("telegram:1", 2)); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, url, "SELECT max(seq) FROM messages"); n != 3 {
		t.Errorf("the next message has seq %d, want 3", n)
	}
	if v, err := s.Cursor(ctx, "telegram:offset"); v != 42 || err != nil {
		t.Errorf("cursor = %d, %v; want 42", v, err)
	}
	if chats, err := s.TakePending(ctx); !slices.Equal(chats, []conversation.ChatID{"slack:T:C:1.2", "telegram:1"}) || err != nil {
		t.Errorf("TakePending = %v, %v; want both marks of the process before", chats, err)
	}
}

// TestConcurrentOpens opens six stores on one empty database at once, as
// replicas starting together do: each must open, and each step be applied
// once (without the migration lock, the second CREATE TABLE fails).
func TestConcurrentOpens(t *testing.T) {
	url := pg.Database(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			s, err := Open(context.Background(), url, quiet())
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Open: %v", err)
	}
	if got := versions(t, url); !slices.Equal(got, allVersions()) {
		t.Errorf("versions = %v, want %v", got, allVersions())
	}
}

// TestNewerSchema checks that a database migrated by a newer chatbot is
// refused with a clear error, and left as it was.
func TestNewerSchema(t *testing.T) {
	url := pg.Database(t)
	openT(t, url, quiet()).Close()
	newer := SchemaVersion + 1
	sql(t, url, fmt.Sprintf(`INSERT INTO chatbot_schema (version, name) VALUES (%d, '%04d_future.sql')`, newer, newer))
	_, err := Open(context.Background(), url, quiet())
	if !errors.Is(err, store.ErrNewerVersion) {
		t.Fatalf("Open = %v, want an error wrapping store.ErrNewerVersion", err)
	}
	for _, want := range []string{"newer version of chatbot", fmt.Sprintf("schema %d", newer), fmt.Sprintf("reads %d", SchemaVersion), "upgrade chatbot"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := queryInt(t, url, "SELECT count(*) FROM replicas"); n != 0 {
		t.Errorf("the refused Open left %d replica leases", n)
	}
}

// TestSchemas checks that search_path picks the schema, that two bots in two
// schemas of one database are apart (data, chat locks, migrations), and that
// a search_path naming no schema is a clear error.
func TestSchemas(t *testing.T) {
	url := pg.Database(t)
	sql(t, url, "CREATE SCHEMA bot_a", "CREATE SCHEMA bot_b")
	a := openT(t, url+"&search_path=bot_a", quiet())
	b := openT(t, url+"&search_path=bot_b", quiet())
	ctx := context.Background()
	a.AppendTurn(ctx, "c", msg("c", 0))
	if got, _ := b.Recent(ctx, "c", 10); len(got) != 0 {
		t.Errorf("schema b reads schema a's history: %v", got)
	}
	if n := queryInt(t, url, "SELECT count(*) FROM bot_a.messages"); n != 1 {
		t.Errorf("bot_a.messages holds %d rows, want 1", n)
	}
	unlock, err := a.LockChat(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	lockCtx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	u, err := b.LockChat(lockCtx, "c")
	if err != nil {
		t.Fatalf("schema b waits for schema a's chat lock: %v", err)
	}
	u()
	_, err = Open(ctx, url+"&search_path=nowhere", quiet())
	if err == nil || !strings.Contains(err.Error(), "search_path") {
		t.Errorf("Open with a search_path naming no schema = %v, want an error about search_path", err)
	}
}

// TestRedact checks that passwords never reach logs.
func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://bot:s3cret@db:5432/chatbot?sslmode=disable", "postgres://bot:xxxxx@db:5432/chatbot?sslmode=disable"},
		{"postgresql://bot@db/chatbot", "postgresql://bot@db/chatbot"},
		{"postgres://db/chatbot?password=s3cret&user=bot", "postgres://db/chatbot?password=xxxxx&user=bot"},
		{"host=db user=bot password=s3cret dbname=chatbot", "host=db user=bot password=xxxxx dbname=chatbot"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	_, err := Open(context.Background(), "postgres://bot:s3cret@127.0.0.1:1/chatbot?connect_timeout=5", quiet())
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open of an unreachable server = %v; want an error without the password", err)
	}
}
