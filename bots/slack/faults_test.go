package slack

import (
	"context"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/slack/slackfake"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store"
)

// faultKey is the model API key of the fault tests; no text may show it.
const faultKey = "sk-test-SECRET-fault-key-0123456789"

// newTunedHarness is newHarness with the model client built from mo (BaseURL,
// APIKey and Model are set) and the engine from ec (Logger is set).
func newTunedHarness(t *testing.T, opt slackfake.Options, edit func(*Config), mo openai.Options, ec conversation.Config) *harness {
	t.Helper()
	h := buildHarness(t, opt, edit)
	h.ai.APIKey = faultKey
	h.startTuned(mo, ec)
	t.Cleanup(h.shutdown)
	return h
}

// startTuned opens the store and runs the engine and the adapter (Socket Mode).
func (h *harness) startTuned(mo openai.Options, ec conversation.Config) {
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
	mo.BaseURL, mo.APIKey, mo.Model = h.modelURL, faultKey, "gpt-5.4-mini"
	ec.Logger = h.cfg.Logger
	h.db = db
	h.engine = conversation.New(ec, db, openai.New(mo), tokens)
	a, err := New(context.Background(), h.cfg, h.engine, db)
	if err != nil {
		t.Fatal(err)
	}
	a.trace = h.record
	h.adapter = a
	ctx, cancel := context.WithCancel(context.Background())
	h.stop, h.done = cancel, make(chan error, 1)
	go func() { h.done <- a.Run(ctx) }()
}

// fastEdits lets the adapter edit as often as it likes, every 50 ms.
func fastEdits(c *Config) {
	c.UpdatesPerMinute, c.UpdateBurst, c.UpdateEvery = 6000, 100, 50*time.Millisecond
}

// checkClearSlack fails the test if a text the bot showed in the thread holds a
// stack trace, an error's innards or a secret.
func checkClearSlack(t *testing.T, h *harness, channel, thread string) {
	t.Helper()
	o := h.slack.Options()
	for _, m := range h.slack.BotMessages(channel, thread) {
		for _, text := range m.History {
			for _, bad := range []string{"goroutine", "panic", ".go:", "HTTP", faultKey, o.BotToken, o.AppToken, "sk-"} {
				if strings.Contains(text, bad) {
					t.Errorf("a message shows %q: %q", bad, text)
				}
			}
		}
	}
}

// threadGoesOn checks that a follow-up in the thread is answered, and that the
// model sees the kept turns' user messages (want), then the follow-up.
func threadGoesOn(t *testing.T, h *harness, channel, thread string, want ...string) {
	t.Helper()
	h.answered(h.slack.PostInThread(channel, thread, alice, "and now?"))
	texts := h.lastTexts(channel, thread)
	if got := texts[len(texts)-1]; got != "You said: Alice: and now?" {
		t.Errorf("follow-up answered %q", got)
	}
	reqs := h.ai.Requests()
	var users []string
	for _, m := range reqs[len(reqs)-1].Messages {
		if m.Role == "user" {
			users = append(users, m.Content)
		}
	}
	if want = append(want, "Alice: and now?"); !equal(users, want) {
		t.Errorf("the follow-up's model call holds %q, want %q", users, want)
	}
}

// TestModelFaultsThroughSlack: a 429 is retried, and a 500, a stalled or a cut
// stream end the reply in the thread with a clear note; the thread goes on.
func TestModelFaultsThroughSlack(t *testing.T) {
	limited := openaitest.Error(429, "rate_limit_exceeded", "Rate limit reached for "+faultKey)
	limited.RetryAfter = "0.2"
	partial := openaitest.Tokenize("Partial answer before the trouble, and then some more words")
	tests := []struct {
		name   string
		script []openaitest.Reply
		want   string // the final text ends with it
		kept   bool
	}{
		{"429 with Retry-After is retried", []openaitest.Reply{limited, openaitest.Text("Fine after the wait.")}, "Fine after the wait.", true},
		{"500 until the retries run out", []openaitest.Reply{
			openaitest.Error(500, "", "boom"), openaitest.Error(500, "", "boom"), openaitest.Error(500, "", "boom")},
			"The model service is having trouble. Please try again in a minute.", false},
		{"stream stalls", []openaitest.Reply{{Tokens: partial, Stall: true, StallAfter: 4}},
			"The model stopped answering, so the reply was cut off. Please try again.", false},
		{"stream cut in the middle", []openaitest.Reply{{Tokens: partial, Cut: true, CutAfter: 4}},
			"The connection to the model broke, so the reply was cut off. Please try again.", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newTunedHarness(t, slackfake.Options{}, fastEdits,
				openai.Options{MaxRetries: 2, BackoffBase: 10 * time.Millisecond, StallTimeout: 300 * time.Millisecond},
				conversation.Config{})
			h.ai.Enqueue(tt.script...)
			m := h.slack.Post(general, alice, h.mention("hello"))
			h.answered(m)
			texts := h.lastTexts(general, m.TS)
			if len(texts) != 1 || !strings.HasSuffix(texts[0], tt.want) {
				t.Fatalf("the thread shows %q, want one message ending with %q", texts, tt.want)
			}
			if len(tt.script[0].Tokens) > 0 && !strings.HasPrefix(texts[0], "Partial answer before the") {
				t.Errorf("the partial text is gone: %q", texts[0])
			}
			checkClearSlack(t, h, general, m.TS)
			var kept []string
			if tt.kept {
				kept = []string{"Alice: hello"}
			}
			threadGoesOn(t, h, general, m.TS, kept...)
		})
	}
}

// streamedReply is the model's reply in the platform fault tests.
var streamedReply = strings.TrimSpace(strings.Repeat("steady words keep coming ", 12))

// faultOn answers the first n calls of method whose arguments match with f
// (n < 0: all of them).
func faultOn(method string, n int32, match func(url.Values) bool, f *slackfake.Fault) func(string, url.Values) *slackfake.Fault {
	var seen atomic.Int32
	return func(m string, args url.Values) *slackfake.Fault {
		if m != method || !match(args) {
			return nil
		}
		if k := seen.Add(1); n >= 0 && k > n {
			return nil
		}
		return f
	}
}

// TestPlatformFaultsThroughSlack: whatever Slack answers to posts and edits
// (ratelimited, 5xx, internal_error, a reset connection), the thread ends up with
// the whole reply, once, and goes on.
func TestPlatformFaultsThroughSlack(t *testing.T) {
	always := func(url.Values) bool { return true }
	final := func(a url.Values) bool { return a.Get("text") == streamedReply }
	interim := func(a url.Values) bool { return a.Get("text") != streamedReply }
	unavailable := &slackfake.Fault{Status: 503}
	reset := &slackfake.Fault{Reset: true}
	tests := []struct {
		name  string
		fault func(string, url.Values) *slackfake.Fault
		// slow makes the final text the first to try the whole reply.
		slow bool
	}{
		{"ratelimited chat.postMessage", faultOn("chat.postMessage", 2, always, slackfake.Ratelimited(1)), false},
		{"ratelimited chat.update", faultOn("chat.update", 3, always, slackfake.Ratelimited(1)), false},
		{"ratelimited final chat.update", faultOn("chat.update", 1, final, slackfake.Ratelimited(1)), true},
		{"5xx on chat.postMessage", faultOn("chat.postMessage", 1, always, unavailable), false},
		{"5xx on interim chat.update", faultOn("chat.update", -1, interim, unavailable), false},
		{"5xx on the final chat.update", faultOn("chat.update", 1, final, unavailable), true},
		{"internal_error on the final chat.update", faultOn("chat.update", 1, final, &slackfake.Fault{Error: "internal_error"}), true},
		{"connection reset on interim chat.update", faultOn("chat.update", 3, interim, reset), false},
		{"connection reset on the final chat.update", faultOn("chat.update", 1, final, reset), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			edit, delay := fastEdits, 20*time.Millisecond
			if tt.slow {
				edit = func(c *Config) { fastEdits(c); c.UpdateEvery = 500 * time.Millisecond }
				delay = 5 * time.Millisecond
			}
			h := newHarness(t, slackfake.Options{}, edit)
			var hits atomic.Int32
			h.slack.SetFault(func(method string, args url.Values) *slackfake.Fault {
				f := tt.fault(method, args)
				if f != nil {
					hits.Add(1)
				}
				return f
			})
			h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize(streamedReply), TokenDelay: delay})
			m := h.slack.Post(general, alice, h.mention("hello"))
			h.answered(m)
			if got := h.lastTexts(general, m.TS); !equal(got, []string{streamedReply}) {
				t.Fatalf("the thread shows %q, want the whole reply in one message", got)
			}
			if hits.Load() == 0 {
				t.Error("no call failed: the test proves nothing")
			}
			h.slack.SetFault(nil)
			threadGoesOn(t, h, general, m.TS, "Alice: hello")
		})
	}
}

// TestSocketDroppedMidReply: the Socket Mode connection drops while a reply
// streams; the reply completes (it goes over the Web API), the adapter reconnects,
// the message is answered once, and the thread goes on.
func TestSocketDroppedMidReply(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, fastEdits)
	h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize(streamedReply), TokenDelay: 60 * time.Millisecond})
	m := h.slack.Post(general, alice, h.mention("hello"))
	eventually(t, "the reply to grow", func() bool {
		msgs := h.slack.BotMessages(general, m.TS)
		return len(msgs) == 1 && len(msgs[0].History) >= 3
	})
	h.slack.Drop()
	h.answered(m)
	if got := h.lastTexts(general, m.TS); !equal(got, []string{streamedReply}) {
		t.Fatalf("the thread shows %q, want the whole reply", got)
	}
	eventually(t, "a new connection", func() bool { return h.slack.Connections() >= 2 })
	threadGoesOn(t, h, general, m.TS, "Alice: hello")
	if n := h.traceCount("answered", general+":"+m.TS); n != 1 {
		t.Errorf("the message was answered %d times", n)
	}
}

// TestEventsShutdownWithASilentConnection: a client that opened a connection to
// the events endpoint and sent nothing yet (a load balancer's warm connection, a
// transport's spare dial) must not make the shutdown fail.
func TestEventsShutdownWithASilentConnection(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, eventsMode)
	h.answered(h.slack.Post(aliceDM, alice, "hi"))
	conn, err := net.Dial("tcp", h.adapter.cfg.EventsListener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h.shutdown() // fails the test if Run returns an error
}
