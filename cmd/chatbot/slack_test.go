package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"

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

// TestFeedbackCounter: presses of the feedback buttons show on /metrics as
// chatbot_feedback_total{platform,kind}, both kinds at 0 from the start; a
// second platform asking for the counter shares it.
func TestFeedbackCounter(t *testing.T) {
	m := newMetrics()
	count := feedbackCounter(m, "slack")
	again := feedbackCounter(m, "other")
	count("positive")
	count("positive")
	again("negative")
	if feedbackCounter(nil, "slack") != nil {
		t.Errorf("a counter without metrics")
	}
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`chatbot_feedback_total{kind="positive",platform="slack"} 2`,
		`chatbot_feedback_total{kind="negative",platform="slack"} 0`,
		`chatbot_feedback_total{kind="negative",platform="other"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
