package slack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/slack/slackfake"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store"
)

// Test users and channels.
const (
	alice   = "U0ALICE"
	bob     = "U0BOB"
	general = "C0GENERAL"
	aliceDM = "D0ALICE"
	secret  = "test-signing-secret"
)

// waitTimeout is generous: CI is a small, noisy machine. Tests wait for
// conditions, never for fixed times.
const waitTimeout = 30 * time.Second

// harness is the real adapter and engine against a fake Slack and a fake OpenAI.
type harness struct {
	t      *testing.T
	slack  *slackfake.Server
	ai     *openaitest.Server
	dbPath string
	cfg    Config
	// modelURL is openai.base_url: the fake OpenAI, or a proxy in front of it.
	modelURL string
	// modelOpt and engineCfg tune the model client and the engine (start fills in
	// the fakes' addresses, the store and the logger).
	modelOpt  openai.Options
	engineCfg conversation.Config

	mu     sync.Mutex
	traces []string // "event detail", in order

	db      *store.DB
	engine  *conversation.Engine
	adapter *Adapter
	stop    context.CancelFunc
	done    chan error
}

// newHarness starts everything; edit tunes the adapter's config.
func newHarness(t *testing.T, opt slackfake.Options, edit func(*Config)) *harness {
	t.Helper()
	h := buildHarness(t, opt, edit)
	h.start()
	t.Cleanup(h.shutdown)
	return h
}

// buildHarness makes the fakes and the config; start runs the rest.
func buildHarness(t *testing.T, opt slackfake.Options, edit func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, slack: slackfake.NewServer(opt), ai: openaitest.NewServer(),
		dbPath: filepath.Join(t.TempDir(), "bot.db")}
	t.Cleanup(h.ai.Close)
	t.Cleanup(h.slack.Close)
	h.slack.AddUser(alice, "Alice")
	h.slack.AddUser(bob, "Bob")
	h.slack.AddChannel(general)
	h.slack.AddChannel(aliceDM)
	o := h.slack.Options()
	h.cfg = Config{BotToken: o.BotToken, AppToken: o.AppToken, APIURL: h.slack.APIURL(),
		ReplyInThreadsWithoutMention: true, Logger: testLogger(t)}
	if edit != nil {
		edit(&h.cfg)
	}
	h.modelURL = h.ai.BaseURL()
	return h
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// start opens the store and runs the engine and the adapter.
func (h *harness) start() {
	t := h.t
	t.Helper()
	db, err := store.Open(h.dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := openai.NewTokenCounter("gpt-5.4-mini")
	if err != nil {
		t.Fatal(err)
	}
	mo := h.modelOpt
	mo.BaseURL, mo.APIKey, mo.Model = h.modelURL, "sk-test", "gpt-5.4-mini"
	if mo.MaxRetries == 0 {
		mo.MaxRetries = -1
	}
	ec := h.engineCfg
	ec.Logger, ec.Settings = h.cfg.Logger, db
	model := openai.New(mo)
	if ec.Transcriber == nil {
		ec.Transcriber = model
	}
	if ec.Images == nil {
		ec.Images = model
	}
	if ec.Usage == nil && ec.DailyImagesPerUser > 0 {
		ec.Usage = db
	}
	h.db = db
	h.engine = conversation.New(ec, db, model, tokens)
	cfg := h.cfg
	if cfg.Mode == ModeEvents {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg.EventsListener = ln
		h.slack.SetEventsURL("http://"+ln.Addr().String()+EventsPath, secret)
	}
	a, err := New(context.Background(), cfg, h.engine, db)
	if err != nil {
		t.Fatal(err)
	}
	a.trace = h.record
	h.adapter = a
	ctx, cancel := context.WithCancel(context.Background())
	h.stop, h.done = cancel, make(chan error, 1)
	go func() { h.done <- a.Run(ctx) }()
}

// shutdown stops the adapter, the engine and the store, as cmd/chatbot does.
func (h *harness) shutdown() {
	if h.stop == nil {
		return
	}
	h.stop()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := h.engine.Shutdown(ctx); err != nil {
		h.t.Errorf("engine shutdown: %v", err)
	}
	if err := <-h.done; err != nil {
		h.t.Errorf("adapter run: %v", err)
	}
	if err := h.db.Close(); err != nil {
		h.t.Errorf("close store: %v", err)
	}
	h.stop = nil
}

// restart stops everything but the fakes and starts again on the same store file.
func (h *harness) restart() {
	h.shutdown()
	h.start()
}

func (h *harness) record(event, detail string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.traces = append(h.traces, event+" "+detail)
}

// traced reports whether the adapter reported event with detail.
func (h *harness) traced(event, detail string) bool {
	return h.traceCount(event, detail) > 0
}

// traceCount returns how often the adapter reported event with detail.
func (h *harness) traceCount(event, detail string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, tr := range h.traces {
		if tr == event+" "+detail {
			n++
		}
	}
	return n
}

// waitTraced waits until the adapter reports event with detail.
func (h *harness) waitTraced(event, detail string) {
	h.t.Helper()
	eventually(h.t, fmt.Sprintf("trace %q %q", event, detail), func() bool { return h.traced(event, detail) })
}

// answered waits until the message m was answered.
func (h *harness) answered(m slackfake.UserMessage) {
	h.t.Helper()
	h.waitTraced("answered", m.Channel+":"+m.TS)
}

// eventually waits for cond, failing the test after waitTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lastTexts returns the current texts of the bot's messages in a thread.
func (h *harness) lastTexts(channel, thread string) []string {
	var out []string
	for _, m := range h.slack.BotMessages(channel, thread) {
		out = append(out, m.Text)
	}
	return out
}

// mention is "<@bot> text".
func (h *harness) mention(text string) string {
	return "<@" + h.slack.Options().BotUserID + "> " + text
}
