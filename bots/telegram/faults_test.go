package telegram_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram"
	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store"
)

// faultKey is the model API key of the fault tests: no text a user sees and no
// log line may hold it.
const faultKey = "sk-test-SECRET-fault-key-0123456789"

// tuning is what a fault test changes in the model client and the engine.
type tuning struct {
	model  openai.Options      // APIKey and Model are set; BaseURL defaults to the fake
	engine conversation.Config // Logger is set
}

// newTunedHarness is newHarness with the model client and the engine built from
// tu: newHarness starts the bot with the default options, and it is restarted at
// once on the same store with the tuned ones.
func newTunedHarness(t *testing.T, tu func(h *harness) tuning, opts ...option) *harness {
	t.Helper()
	h := newHarness(t, opts...)
	h.stop()
	h.ai.APIKey = faultKey // before any model call: the fake reads it unlocked
	h.startTuned(tu(h))
	return h
}

// startTuned opens the store and runs a new engine and adapter built from tu.
func (h *harness) startTuned(tu tuning) {
	h.t.Helper()
	db, err := store.Open(h.dbPath, store.Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	tokens, err := openai.NewTokenCounter("gpt-5.4-mini")
	if err != nil {
		h.t.Fatal(err)
	}
	mo := tu.model
	if mo.BaseURL == "" {
		mo.BaseURL = h.ai.BaseURL()
	}
	mo.APIKey, mo.Model = faultKey, "gpt-5.4-mini"
	ec := tu.engine
	ec.Logger = h.opt.Logger
	h.db = db
	h.engine = conversation.New(ec, db, openai.New(mo), tokens)
	ctx, cancel := context.WithCancel(context.Background())
	b, err := telegram.New(ctx, h.opt, h.engine, db)
	if err != nil {
		cancel()
		db.Close()
		h.t.Fatal(err)
	}
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- b.Run(ctx) }()
}

// fastRetries retries model calls twice, quickly.
func fastRetries(*harness) tuning {
	return tuning{model: openai.Options{MaxRetries: 2, BackoffBase: 10 * time.Millisecond}}
}

// checkClear fails the test if a text the bot showed in the chat holds a stack
// trace, an error's innards or a secret, or if a note is not short.
func checkClear(t *testing.T, h *harness, chatID int64) {
	t.Helper()
	for _, m := range h.tg.BotMessages(chatID) {
		for _, v := range m.Versions {
			for _, bad := range []string{"goroutine", "panic", ".go:", "HTTP", "runtime.", faultKey, h.tg.Token, "sk-"} {
				if strings.Contains(v.Raw, bad) {
					t.Errorf("message %d shows %q: %q", m.ID, bad, v.Raw)
				}
			}
		}
	}
	if strings.Contains(h.logs.String(), faultKey) {
		t.Errorf("the model key appears in the logs")
	}
}

// nextWorks checks that the chat carries on: a new message is answered, and the
// model sees the earlier turns that were kept (wantUsers, then the new one).
func nextWorks(t *testing.T, h *harness, n int, wantUsers ...string) {
	t.Helper()
	h.say(alice, telegramtest.Chat{}, "and now?")
	h.waitFor("the next answer", func() bool {
		msgs := live(h.tg.BotMessages(alice.ID))
		return len(msgs) > n && msgs[len(msgs)-1].Last().Text == "You said: and now?"
	})
	reqs := h.ai.Requests()
	got := userTexts(reqs[len(reqs)-1])
	want := append(wantUsers, "and now?")
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("the next model call holds the user messages %q, want %q", got, want)
	}
}

// errorReply is a scripted model error answer.
func errorReply(status int, code, msg, retryAfter string) openaitest.Reply {
	r := openaitest.Error(status, code, msg)
	r.RetryAfter = retryAfter
	return r
}

// TestModelFaultsEndToEnd: whatever the model service does (rate limits, errors,
// a bad key, timeouts, a stalled or cut stream), the Telegram user gets the reply
// or a short clear note after the partial text, nothing failed is stored, and the
// next message is answered with the kept context.
func TestModelFaultsEndToEnd(t *testing.T) {
	partial := openaitest.Tokenize("Partial answer before the trouble, and then some more words")
	tests := []struct {
		name   string
		tune   func(*harness) tuning
		script []openaitest.Reply
		want   string // the final text, or the end of it after the partial text
		prefix string // the partial text the final one starts with
		kept   bool   // the turn is stored
		calls  int    // model calls for the message
	}{
		{"429 with Retry-After is retried", fastRetries, []openaitest.Reply{
			errorReply(429, "rate_limit_exceeded", "Rate limit reached for "+faultKey, "0.2"),
			openaitest.Text("Fine after the wait.")}, "Fine after the wait.", "", true, 2},
		{"429 until the retries run out", fastRetries, []openaitest.Reply{
			errorReply(429, "rate_limit_exceeded", "slow down", "0.05"),
			errorReply(429, "rate_limit_exceeded", "slow down", "0.05"),
			errorReply(429, "rate_limit_exceeded", "slow down", "0.05")},
			"The model is busy (rate limit). Please try again in a minute.", "", false, 3},
		{"500", fastRetries, []openaitest.Reply{
			openaitest.Error(500, "", "The server had an error while processing your request."),
			openaitest.Error(500, "", "The server had an error while processing your request."),
			openaitest.Error(500, "", "The server had an error while processing your request.")},
			"The model service is having trouble. Please try again in a minute.", "", false, 3},
		{"401", fastRetries, []openaitest.Reply{
			openaitest.Error(401, "invalid_api_key", "Incorrect API key provided: "+faultKey+".")},
			"The model service rejected the bot's API key. The bot's owner needs to check openai.api_key.", "", false, 1},
		{"quota", fastRetries, []openaitest.Reply{
			openaitest.Error(429, "insufficient_quota", "You exceeded your current quota.")},
			"The OpenAI account behind this bot has run out of quota. The bot's owner needs to check billing.", "", false, 1},
		{"turn timeout before the first token", func(*harness) tuning {
			return tuning{engine: conversation.Config{TurnTimeout: 2 * time.Second}}
		}, []openaitest.Reply{{Tokens: []string{"late"}, FirstDelay: time.Minute}},
			"The answer took too long and was cut off.", "", false, 1},
		{"turn timeout mid-reply", func(*harness) tuning {
			return tuning{engine: conversation.Config{TurnTimeout: 2 * time.Second}}
		}, []openaitest.Reply{{Tokens: openaitest.Tokenize(strings.Repeat("slow words trickle in ", 40)), TokenDelay: 50 * time.Millisecond}},
			"⚠️ The answer took too long and was cut off.", "slow words trickle in", false, 1},
		{"stream stalls", func(*harness) tuning {
			return tuning{model: openai.Options{StallTimeout: 300 * time.Millisecond}}
		}, []openaitest.Reply{{Tokens: partial, Stall: true, StallAfter: 4}},
			"⚠️ The model stopped answering, so the reply was cut off. Please try again.", "Partial answer before the", false, 1},
		{"stream cut in the middle", fastRetries, []openaitest.Reply{{Tokens: partial, Cut: true, CutAfter: 4}},
			"⚠️ The connection to the model broke, so the reply was cut off. Please try again.", "Partial answer before the", false, 1},
		{"stream cut before the first token is retried", fastRetries, []openaitest.Reply{
			{Tokens: partial, Cut: true}, openaitest.Text("Whole on the second try.")},
			"Whole on the second try.", "", true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newTunedHarness(t, tt.tune)
			h.ai.Enqueue(tt.script...)
			h.say(alice, telegramtest.Chat{}, "hello")
			h.waitFor("the final text", func() bool {
				msgs := live(h.tg.BotMessages(alice.ID))
				return len(msgs) == 1 && strings.HasSuffix(msgs[0].Last().Text, tt.want)
			})
			final := h.tg.BotMessages(alice.ID)[0].Last().Text
			if !strings.HasPrefix(final, tt.prefix) {
				t.Errorf("final text %q does not keep the partial reply %q", final, tt.prefix)
			}
			if tt.prefix == "" && final != tt.want {
				t.Errorf("final text %q, want %q", final, tt.want)
			}
			if n := len(h.ai.Requests()); n != tt.calls {
				t.Errorf("%d model calls, want %d", n, tt.calls)
			}
			checkClear(t, h, alice.ID)
			var kept []string
			if tt.kept {
				kept = []string{"hello"}
			}
			nextWorks(t, h, 1, kept...)
		})
	}
}

// garbageModel answers the first Responses call with a stream whose data lines
// are not JSON, then passes every call on to the fake.
func garbageModel(t *testing.T, fake *openaitest.Server) string {
	target, _ := url.Parse(fake.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	var served atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/responses") && served.CompareAndSwap(false, true) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "event: response.output_text.delta\n"+
				"data: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"delta\":\"Half\"}\n\n")
			fmt.Fprint(w, "data: <html>502 Bad Gateway</html>\n\n")
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

// TestModelSendsGarbageEndToEnd: a stream data line that is not JSON ends the
// reply with a note after the partial text; the next message works.
func TestModelSendsGarbageEndToEnd(t *testing.T) {
	h := newTunedHarness(t, func(h *harness) tuning {
		return tuning{model: openai.Options{BaseURL: garbageModel(t, h.ai), MaxRetries: -1}}
	})
	h.say(alice, telegramtest.Chat{}, "hello")
	h.waitFor("a note after the partial text", func() bool {
		msgs := live(h.tg.BotMessages(alice.ID))
		return len(msgs) == 1 && strings.HasPrefix(msgs[0].Last().Text, "Half\n\n⚠️ ")
	})
	checkClear(t, h, alice.ID)
	nextWorks(t, h, 1)
}

// streamed is the model's reply in the platform fault tests: many tokens, so
// that it is shown in many edits.
var streamed = strings.TrimSpace(strings.Repeat("steady words keep coming ", 12))

// platformFault installs a fault on the fake Bot API; final is the reply's
// whole text as the bot sends it.
type platformFault func(tg *telegramtest.Server, final string)

// callMatch picks the calls a fault hits; final is the reply's whole text.
type callMatch func(c telegramtest.Call, final string) bool

// The calls the platform faults hit.
var (
	always  callMatch = func(telegramtest.Call, string) bool { return true }
	interim callMatch = func(c telegramtest.Call, final string) bool { return c.Params["text"] != final }
	last    callMatch = func(c telegramtest.Call, final string) bool { return c.Params["text"] == final }
)

// answers makes a fault that answers with e the first n calls of method that
// match (n < 0: all of them).
func answers(method string, n int32, match callMatch, e func() *telegramtest.APIError) platformFault {
	return func(tg *telegramtest.Server, final string) {
		var seen atomic.Int32
		tg.SetFault(func(c telegramtest.Call) *telegramtest.APIError {
			if c.Method != method || !match(c, final) {
				return nil
			}
			if k := seen.Add(1); n >= 0 && k > n {
				return nil
			}
			return e()
		})
	}
}

// resets makes a fault that drops the connection of the first n calls of method
// that match.
func resets(method string, n int32, match callMatch) platformFault {
	return func(tg *telegramtest.Server, final string) {
		var seen atomic.Int32
		tg.SetReset(func(c telegramtest.Call) bool {
			return c.Method == method && match(c, final) && seen.Add(1) <= n
		})
	}
}

// flood is Telegram's 429 with retry_after 1.
func flood() *telegramtest.APIError { return telegramtest.TooManyRequests(1) }

// badGateway is the 502 Telegram's front end answers when the Bot API is down.
func badGateway() *telegramtest.APIError {
	return &telegramtest.APIError{Code: 502, Description: "Bad Gateway"}
}

// TestPlatformFaultsEndToEnd: whatever Telegram answers to sends and edits, the
// user ends up with the whole reply, once, and the chat carries on.
func TestPlatformFaultsEndToEnd(t *testing.T) {
	slow := adapter(func(o *telegram.Options) { o.EditEvery = 500 * time.Millisecond })
	tests := []struct {
		name  string
		fault platformFault
		// slowEdits makes the final text the first to try the whole reply.
		slowEdits bool
	}{
		{"429 on sendMessage", answers("sendMessage", 1, always, flood), false},
		{"429 on interim edits", answers("editMessageText", 3, always, flood), false},
		{"429 on the final edit", answers("editMessageText", 1, last, flood), true},
		{"5xx on interim edits", answers("editMessageText", -1, interim, badGateway), false},
		{"5xx on the final edit", answers("editMessageText", 1, last, badGateway), true},
		{"connection reset on sendMessage", resets("sendMessage", 1, always), false},
		{"connection reset on interim edits", resets("editMessageText", 3, interim), false},
		{"connection reset on the final edit", resets("editMessageText", 1, last), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var opts []option
			delay := 20 * time.Millisecond
			if tt.slowEdits {
				opts, delay = append(opts, slow), 5*time.Millisecond
			}
			h := newHarness(t, opts...)
			tt.fault(h.tg, streamed)
			h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize(streamed), TokenDelay: delay})
			h.say(alice, telegramtest.Chat{}, "hello")
			// The turn is stored just before its final text goes out; the final
			// text follows once the platform takes it.
			h.waitFor("the end of the turn", func() bool { return storedTurns(h) > 0 })
			h.waitFor("the final text", func() bool {
				msgs := live(h.tg.BotMessages(alice.ID))
				return len(msgs) > 0 && msgs[len(msgs)-1].Last().Text == streamed
			})
			msgs := live(h.tg.BotMessages(alice.ID))
			if len(msgs) != 1 || msgs[0].Last().Text != streamed {
				var texts []string
				for _, m := range msgs {
					texts = append(texts, m.Last().Text)
				}
				t.Fatalf("the chat shows %q, want the whole reply in one message", texts)
			}
			faulty := 0
			for _, c := range h.tg.Calls() {
				if c.Reset || c.ErrorCode != 0 && !strings.Contains(c.Description, "not modified") {
					faulty++
				}
			}
			if faulty == 0 {
				t.Error("no call failed: the test proves nothing")
			}
			h.tg.SetFault(nil)
			h.tg.SetReset(nil)
			nextWorks(t, h, 1, "hello")
		})
	}
}

// storedTurns counts the messages stored for alice's private chat.
func storedTurns(h *harness) int {
	msgs, err := h.db.Recent(context.Background(), conversation.ChatID(fmt.Sprintf("telegram:%d", alice.ID)), 100)
	if err != nil {
		return 0
	}
	return len(msgs) / 2
}
