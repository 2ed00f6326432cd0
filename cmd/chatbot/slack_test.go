package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/chatbot-dev/chatbot/bots/slack/slackfake"
)

func TestNewSlack(t *testing.T) {
	fake := slackfake.NewServer(slackfake.Options{})
	defer fake.Close()
	o := fake.Options()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name    string
		cfg     SlackConfig
		wantNil bool
		wantErr string
	}{
		{"off without a bot token", SlackConfig{}, true, ""},
		{"on with tokens", SlackConfig{BotToken: o.BotToken, AppToken: o.AppToken, APIURL: fake.APIURL()}, false, ""},
		{"a wrong bot token stops the start", SlackConfig{BotToken: "xoxb-wrong", AppToken: o.AppToken, APIURL: fake.APIURL()}, true, "invalid_auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newSlack(context.Background(), deps{cfg: &Config{Slack: tt.cfg}, log: log})
			if (p == nil) != tt.wantNil {
				t.Errorf("platform %v, want nil %v", p, tt.wantNil)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}
