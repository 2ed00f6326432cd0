package storetest_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/chatbot-dev/chatbot/store"
	"github.com/chatbot-dev/chatbot/store/postgres"
	"github.com/chatbot-dev/chatbot/store/storetest"
)

// TestWebBolt runs the web chat's part of the suite against the bbolt store.
func TestWebBolt(t *testing.T) {
	storetest.RunWeb(t, func(t *testing.T) storetest.WebOpener {
		path := filepath.Join(t.TempDir(), "chatbot.db")
		return func(t *testing.T, c storetest.Caps) storetest.WebStore {
			db, err := store.Open(path, store.Options{MaxMessagesPerChat: c.MaxMessagesPerChat, MaxFileBytesPerChat: c.MaxFileBytesPerChat})
			if err != nil {
				t.Fatalf("open %s: %v", path, err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
	})
}

// TestWebPostgres runs the web chat's part of the suite against the
// PostgreSQL store.
func TestWebPostgres(t *testing.T) {
	storetest.RunWeb(t, func(t *testing.T) storetest.WebOpener {
		url := pg.Database(t)
		return func(t *testing.T, c storetest.Caps) storetest.WebStore {
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
