package storetest_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/chatbot-dev/chatbot/store"
	"github.com/chatbot-dev/chatbot/store/postgres"
	"github.com/chatbot-dev/chatbot/store/postgres/pgtest"
	"github.com/chatbot-dev/chatbot/store/storetest"
)

var pg = pgtest.New()

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

// TestBolt runs the suite against the bbolt store, a fresh file per test.
func TestBolt(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "chatbot.db")
		return func(t *testing.T, c storetest.Caps) storetest.Store { return openBolt(t, path, c) }
	})
}

// TestPostgres runs the suite against the PostgreSQL store, a fresh database
// per test on a server the test starts.
func TestPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		url := pg.Database(t)
		return func(t *testing.T, c storetest.Caps) storetest.Store { return openPostgres(t, url, c) }
	})
}

// BenchmarkTurn measures what the store costs one turn of the engine on each
// store: take the chat's lock, mark the reply pending, read the newest 50
// messages, append the user's message and the reply, clear the mark, give
// the lock back. (On PostgreSQL over loopback; a database over a network adds
// its round trips: six per turn.)
func BenchmarkTurn(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, db storetest.Store) {
		for i := range 100 {
			db.AppendTurn(ctx, "bench", storetest.Msg("bench", 2*i), storetest.Msg("bench", 2*i+1))
		}
		b.ResetTimer()
		for i := range b.N {
			unlock, err := db.LockChat(ctx, "bench")
			if err != nil {
				b.Fatal(err)
			}
			db.MarkPending(ctx, "bench")
			if _, err := db.Recent(ctx, "bench", 50); err != nil {
				b.Fatal(err)
			}
			if err := db.AppendTurn(ctx, "bench", storetest.Msg("bench", 2*i), storetest.Msg("bench", 2*i+1)); err != nil {
				b.Fatal(err)
			}
			db.ClearPending(ctx, "bench")
			unlock()
		}
	}
	b.Run("bolt", func(b *testing.B) {
		db, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		run(b, db)
	})
	b.Run("postgres", func(b *testing.B) {
		db, err := postgres.Open(ctx, pg.Database(b), postgres.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		run(b, db)
	})
}

// openBolt opens the bbolt store at path with caps c, closed when t ends.
func openBolt(t *testing.T, path string, c storetest.Caps) *store.DB {
	db, err := store.Open(path, store.Options{MaxMessagesPerChat: c.MaxMessagesPerChat, MaxFileBytesPerChat: c.MaxFileBytesPerChat})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openPostgres opens the PostgreSQL store at url with caps c, closed when t ends.
func openPostgres(t *testing.T, url string, c storetest.Caps) *postgres.Store {
	db, err := postgres.Open(context.Background(), url, postgres.Options{
		MaxMessagesPerChat: c.MaxMessagesPerChat, MaxFileBytesPerChat: c.MaxFileBytesPerChat,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
