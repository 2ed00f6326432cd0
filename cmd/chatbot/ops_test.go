package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
)

type fakePlatform struct{ ready bool }

func (f *fakePlatform) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (f *fakePlatform) Ready() bool                   { return f.ready }

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestHealthzReadyOnlyWhenStoreOpenAndPlatformsConnected(t *testing.T) {
	p := &fakePlatform{}
	r := &readiness{platforms: []platform{p}}
	h := opsHandler(r, newMetrics())
	if code, _ := get(t, h, "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("store closed: %d", code)
	}
	r.storeOpen.Store(true)
	if code, body := get(t, h, "/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not connected") {
		t.Errorf("platform down: %d %q", code, body)
	}
	p.ready = true
	if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("all up: %d", code)
	}
}

func TestMetricsCountTurnsTokensErrorsAndPlatformCalls(t *testing.T) {
	m := newMetrics()
	m.TurnDone(conversation.TurnStats{Outcome: conversation.OutcomeOK, Usage: conversation.Usage{PromptTokens: 12, CompletionTokens: 30},
		FirstToken: 300 * time.Millisecond, Duration: 2 * time.Second})
	modelErr := &conversation.Error{Text: "x", Err: &openai.Error{Kind: openai.KindQuota}}
	m.TurnDone(conversation.TurnStats{Outcome: conversation.OutcomeError, Err: modelErr, Duration: time.Second})

	platformAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "editMessageText") {
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer platformAPI.Close()
	client := m.client("telegram", 5*time.Second)
	for _, method := range []string{"sendMessage", "editMessageText", "editMessageText"} {
		resp, err := client.Post(platformAPI.URL+"/bot123:SECRET/"+method, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	_, body := get(t, opsHandler(&readiness{}, m), "/metrics")
	for _, want := range []string{
		`chatbot_turns_total{outcome="ok"} 1`,
		`chatbot_turns_total{outcome="error"} 1`,
		`chatbot_tokens_total{direction="in"} 12`,
		`chatbot_tokens_total{direction="out"} 30`,
		`chatbot_model_errors_total{kind="quota"} 1`,
		`chatbot_first_token_seconds_count 1`,
		`chatbot_final_text_seconds_count 2`,
		`chatbot_platform_calls_total{method="sendMessage",platform="telegram",status="200"} 1`,
		`chatbot_platform_rate_limited_total{method="editMessageText",platform="telegram"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "SECRET") {
		t.Error("a token leaked into the metrics")
	}
}

func TestHealthCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &readiness{}
	srv := &http.Server{Handler: opsHandler(r, newMetrics())}
	go srv.Serve(ln)
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(path, []byte("http:\n  listen: "+ln.Addr().String()+"\n"), 0o600)
	if code, _, _ := run(t, "", "health", "-config", path); code != 1 {
		t.Errorf("not ready: exit %d, want 1", code)
	}
	r.storeOpen.Store(true)
	if code, out, errOut := run(t, "", "health", "-config", path); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("ready: exit %d, %q %q", code, out, errOut)
	}
}

func TestServeExposesHealthAndStopsOnSignal(t *testing.T) {
	// serve with a platform that is always connected: the ops server answers, and
	// cancelling the context (the signal) shuts everything down cleanly.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	ops := http.Client{Timeout: 2 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	r := &readiness{platforms: []platform{&fakePlatform{ready: true}}}
	r.storeOpen.Store(true)
	stop, err := serveOps(ctx, addr, opsHandler(r, newMetrics()), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- runAll(ctx, r.platforms) }()
	resp, err := ops.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("healthz = %d %q", resp.StatusCode, body)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	stop()
	if _, err := ops.Get("http://" + addr + "/healthz"); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("ops server still answers after stop (err %v)", err)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestOpsServerHasTimeouts(t *testing.T) {
	srv := newOpsServer(http.NotFoundHandler())
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 {
		t.Errorf("read header %v, read %v, write %v, idle %v: want deadlines on every read and write, and on idle connections",
			srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
}
