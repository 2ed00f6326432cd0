// Package postgres keeps the bot's state in PostgreSQL, so that several
// `chatbot serve` processes (replicas) can share it. It implements the same
// engine interfaces as the bbolt store (package store), method for method,
// and adds what replicas need to cooperate:
//
//   - a per-chat turn lock over all replicas (LockChat),
//   - leader election, for work that one replica must do alone such as
//     Telegram polling (Lead),
//   - pending-reply marks owned by a replica, so that a survivor announces a
//     dead replica's cut replies once (TakePending).
//
// Each replica holds a lease: a row in the replicas table that it renews every
// Options.RenewEvery and that expires Options.LeaseTTL after the last renewal.
// Everything a replica holds (its chat locks, its leaderships) lasts as long as
// its lease: when a lease has expired, the next replica that looks deletes the
// row, and the database deletes what it held with it (foreign keys). Times are
// the database server's, so replicas' clocks need not agree. See
// docs/replicas.md.
//
// The schema is created and migrated by Open, from SQL files embedded in the
// binary, in one transaction under an advisory lock.
package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/store"
)

var (
	_ conversation.History    = (*Store)(nil)
	_ conversation.BlobStore  = (*Store)(nil)
	_ conversation.Settings   = (*Store)(nil)
	_ conversation.UsageLog   = (*Store)(nil)
	_ conversation.PendingLog = (*Store)(nil)
)

// Defaults for Options.
const (
	DefaultLeaseTTL   = 10 * time.Second
	DefaultRenewEvery = 3 * time.Second
	DefaultPollEvery  = time.Second
)

// ErrClosed is returned by calls on a closed Store.
var ErrClosed = errors.New("store is closed")

// Options tune Open. The zero value is the production setting.
type Options struct {
	// MaxMessagesPerChat caps each chat's history; older messages are pruned on
	// write. Zero means store.DefaultMaxMessagesPerChat; negative means no cap.
	MaxMessagesPerChat int
	// MaxFileBytesPerChat caps the attachments kept for each chat; the oldest go
	// first. Zero means store.DefaultMaxFileBytesPerChat.
	MaxFileBytesPerChat int

	// Name labels this replica in the replicas table and in logs (default: the
	// host name). Its id is the name plus a random suffix, new at every Open.
	Name string
	// LeaseTTL is how long the replica's lease lasts after a renewal: how long
	// the others wait before taking over from a replica that died. Default 10 s.
	LeaseTTL time.Duration
	// RenewEvery is how often the lease is renewed; at most LeaseTTL/3.
	// Default 3 s.
	RenewEvery time.Duration
	// PollEvery is how often a replica waiting for a chat lock or for
	// leadership looks again when no notification woke it. Default 1 s.
	PollEvery time.Duration

	// Logger gets lease and listener events (default: slog.Default()).
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	switch {
	case o.MaxMessagesPerChat == 0:
		o.MaxMessagesPerChat = store.DefaultMaxMessagesPerChat
	case o.MaxMessagesPerChat < 0:
		o.MaxMessagesPerChat = 0
	}
	if o.MaxFileBytesPerChat <= 0 {
		o.MaxFileBytesPerChat = store.DefaultMaxFileBytesPerChat
	}
	if o.Name == "" {
		o.Name, _ = os.Hostname()
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.RenewEvery <= 0 {
		o.RenewEvery = min(DefaultRenewEvery, o.LeaseTTL/3)
	}
	if o.PollEvery <= 0 {
		o.PollEvery = DefaultPollEvery
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RenewEvery > o.LeaseTTL/3 {
		return fmt.Errorf("lease renewal every %v is too rare for a lease of %v: renew at least three times a lease", o.RenewEvery, o.LeaseTTL)
	}
	return nil
}

// trustFor is how long after sending a successful renewal this replica may
// trust its lease: a little less than the lease itself, because the database
// started the lease when it received the renewal (later than it was sent), and
// clocks run at slightly different rates. The others cannot take over before
// the database's lease ends, so a replica that stops trusting its lease in
// time never overlaps with its successor.
func (o *Options) trustFor() time.Duration {
	return o.LeaseTTL - max(o.LeaseTTL/5, 2*o.RenewEvery/3)
}

// Store is the bot's state in PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	connCfg *pgx.ConnConfig // for the lease's and the listener's own connections
	opt     Options
	desc    string // the URL without its password
	channel string // the LISTEN/NOTIFY channel of this schema
	log     *slog.Logger

	lease  *lease
	events *broker
	chats  store.KeyedMutex[conversation.ChatID]
	guard  guard // guard.go

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the lease keeper and the listener
	closed sync.Once
}

// Open connects to the database at rawURL (postgres://user:password@host:port/db?…,
// or a key=value connection string), creates or migrates its tables, takes a
// lease for this replica and returns the Store. Tables go in the first schema of
// the connection's search_path (add ?search_path=NAME to the URL to use another
// schema than public). ctx bounds the connection and the migration.
//
// A database whose schema is newer than this build's is an error that wraps
// store.ErrNewerVersion.
func Open(ctx context.Context, rawURL string, opt Options) (*Store, error) {
	if err := opt.setDefaults(); err != nil {
		return nil, err
	}
	desc := Redact(rawURL)
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", desc, redactErr(err, rawURL))
	}
	if !strings.Contains(rawURL, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, 8)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", desc, redactErr(err, rawURL))
	}
	s := &Store{pool: pool, connCfg: cfg.ConnConfig, opt: opt, desc: desc, log: opt.Logger.With("store", desc)}
	schema, err := migrate(ctx, pool, len(migrations))
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open store %s: %w", desc, redactErr(err, rawURL))
	}
	s.channel = channelName(schema)
	s.events = newBroker()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.lease = newLease(s)
	if err := s.lease.register(ctx); err != nil {
		s.cancel()
		s.lease.stop()
		pool.Close()
		return nil, fmt.Errorf("open store %s: take a lease: %w", desc, redactErr(err, rawURL))
	}
	s.wg.Go(s.lease.keep)
	s.wg.Go(s.listen)
	return s, nil
}

// Close gives up this replica's lease, so that its chat locks and leaderships
// go at once (a turn or a leader still running loses them), and closes the
// connections. Pending marks stay: they are a dead replica's now, and the
// next TakePending, here or on another replica, takes them.
func (s *Store) Close() error {
	s.closed.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.lease.release()
		s.pool.Close()
	})
	return nil
}

// crash stops the store as a killed process would: no lease released, no lock
// given back; the connections just close. Tests use it.
func (s *Store) crash() {
	s.closed.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.pool.Close()
	})
}

// Path describes the store for logs: its URL without the password.
func (s *Store) Path() string { return s.desc }

// ID is this replica's id: its lease's row in the replicas table. It changes
// when the lease was lost and a new one taken.
func (s *Store) ID() string {
	if sess := s.lease.current(); sess != nil {
		return sess.id
	}
	return ""
}

// Redact returns a connection URL or string without its password, for logs.
func Redact(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	// key=value form: blank out password=…
	fields := strings.Fields(raw)
	for i, f := range fields {
		if k, _, ok := strings.Cut(f, "="); ok && k == "password" {
			fields[i] = "password=xxxxx"
		}
	}
	return strings.Join(fields, " ")
}

// redactErr removes the password from an error's text, should a driver
// error quote the connection string.
func redactErr(err error, raw string) error {
	if err == nil {
		return nil
	}
	pw := ""
	if u, perr := url.Parse(raw); perr == nil {
		pw, _ = u.User.Password()
	}
	if pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return redacted{err: err, text: strings.ReplaceAll(err.Error(), pw, "xxxxx")}
}

type redacted struct {
	err  error
	text string
}

func (r redacted) Error() string { return r.text }
func (r redacted) Unwrap() error { return r.err }

// newID returns n random bytes in hex.
func newID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// live returns ctx's error, or ErrClosed after Close: calls check it first,
// so that none does I/O once its context is done.
func (s *Store) live(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	return nil
}
