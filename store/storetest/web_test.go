package storetest_test

import (
	"path/filepath"
	"testing"

	"github.com/chatbot-dev/chatbot/store/storetest"
)

// TestWebBolt runs the web chat's part of the suite against the bbolt store.
func TestWebBolt(t *testing.T) {
	storetest.RunWeb(t, func(t *testing.T) storetest.WebOpener {
		path := filepath.Join(t.TempDir(), "chatbot.db")
		return func(t *testing.T, c storetest.Caps) storetest.WebStore { return openBolt(t, path, c) }
	})
}

// TestWebPostgres runs the web chat's part of the suite against the
// PostgreSQL store.
func TestWebPostgres(t *testing.T) {
	storetest.RunWeb(t, func(t *testing.T) storetest.WebOpener {
		url := pg.Database(t)
		return func(t *testing.T, c storetest.Caps) storetest.WebStore { return openPostgres(t, url, c) }
	})
}
