package telegram_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chatbot-dev/chatbot/bots/telegram"
	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/store"
)

// startBot runs telegram.New against tg, whose getMe answers 502 the first
// failures times, and returns its logs and error.
func startBot(t *testing.T, failures int32) (string, error) {
	t.Helper()
	tg := telegramtest.NewServer(telegramtest.Options{})
	t.Cleanup(tg.Close)
	var n atomic.Int32
	tg.SetFault(func(c telegramtest.Call) *telegramtest.APIError {
		if c.Method == "getMe" && n.Add(1) <= failures {
			return badGateway()
		}
		return nil
	})
	db, err := store.Open(filepath.Join(t.TempDir(), "bot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	logs := &syncBuffer{}
	_, err = telegram.New(context.Background(), telegram.Options{Token: tg.Token, APIURL: tg.URL,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}, nil, db)
	if got := len(tg.CallsTo("getMe")); int32(got) != min(failures+1, 3) {
		t.Errorf("getMe asked %d times", got)
	}
	return logs.String(), err
}

// TestStartRetriesGetMe: a failing getMe at start is tried again, a bounded
// number of times, and the error says so, not that it will retry.
func TestStartRetriesGetMe(t *testing.T) {
	t.Run("once down", func(t *testing.T) {
		t.Parallel()
		logs, err := startBot(t, 1)
		if err != nil {
			t.Errorf("New: %v, want it to try again and succeed", err)
		}
		if !strings.Contains(logs, "getMe failed, trying again") {
			t.Errorf("logs do not say it tries again:\n%s", logs)
		}
	})
	t.Run("down for good", func(t *testing.T) {
		t.Parallel()
		_, err := startBot(t, 100)
		if err == nil || !strings.Contains(err.Error(), "getMe failed (tried 3 times)") || strings.Contains(err.Error(), "retry after") {
			t.Errorf("New: %v, want it to say it gave up after 3 tries", err)
		}
	})
}
