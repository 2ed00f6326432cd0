package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/store"
)

func TestNewTelegram(t *testing.T) {
	fake := telegramtest.NewServer(telegramtest.Options{})
	defer fake.Close()
	db, err := store.Open(filepath.Join(t.TempDir(), "bot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name    string
		cfg     TelegramConfig
		wantNil bool
		wantErr string
	}{
		{"off without a token", TelegramConfig{}, true, ""},
		{"on with a token", TelegramConfig{Token: fake.Token, APIURL: fake.URL, Mode: "polling"}, false, ""},
		{"a wrong token stops the start", TelegramConfig{Token: "123:wrong", APIURL: fake.URL}, true, "check telegram.token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newTelegram(context.Background(), deps{cfg: &Config{Telegram: tt.cfg}, db: db, log: log})
			if (p == nil) != tt.wantNil {
				t.Errorf("platform %v, want nil %v", p, tt.wantNil)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "wrong") {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
}
