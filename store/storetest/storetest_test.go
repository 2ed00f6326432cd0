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
		return func(t *testing.T, c storetest.Caps) storetest.Store {
			db, err := store.Open(path, store.Options{MaxMessagesPerChat: c.MaxMessagesPerChat, MaxFileBytesPerChat: c.MaxFileBytesPerChat})
			if err != nil {
				t.Fatalf("open %s: %v", path, err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
	})
}

// TestPostgres runs the suite against the PostgreSQL store, a fresh database
// per test on a server the test starts.
func TestPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		url := pg.Database(t)
		return func(t *testing.T, c storetest.Caps) storetest.Store {
			db, err := postgres.Open(context.Background(), url, postgres.Options{
				MaxMessagesPerChat: c.MaxMessagesPerChat, MaxFileBytesPerChat: c.MaxFileBytesPerChat,
				Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatalf("open %s: %v", url, err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
	})
}
