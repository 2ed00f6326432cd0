package telegram_test

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram"
	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/conversation"
)

// recoverWithin is how long the bot may take to poll again after a bad answer
// to getUpdates: its own back-off is 100 ms after one error.
const recoverWithin = 10 * time.Second

// pollAnswer is a scripted answer to getUpdates.
type pollAnswer struct {
	status int
	body   string
}

// pollProxy stands between the bot and the fake Bot API: it gives the bot's
// first getUpdates calls the scripted answers, then passes everything on.
type pollProxy struct {
	srv *httptest.Server

	mu      sync.Mutex
	script  []pollAnswer
	polls   int           // getUpdates calls seen
	arrived chan struct{} // closed and renewed at every getUpdates call
}

// newPollProxy starts a proxy in front of tg answering the first polls with script.
func newPollProxy(t *testing.T, tg *telegramtest.Server, script ...pollAnswer) *pollProxy {
	target, _ := url.Parse(tg.URL)
	fwd := httputil.NewSingleHostReverseProxy(target)
	fwd.ErrorLog = log.New(io.Discard, "", 0) // polls cut short by the bot's shutdown
	p := &pollProxy{script: script, arrived: make(chan struct{})}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/getUpdates") {
			fwd.ServeHTTP(w, r)
			return
		}
		p.mu.Lock()
		p.polls++
		close(p.arrived)
		p.arrived = make(chan struct{})
		var a *pollAnswer
		if len(p.script) > 0 {
			a, p.script = &p.script[0], p.script[1:]
		}
		p.mu.Unlock()
		if a == nil {
			fwd.ServeHTTP(w, r)
			return
		}
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// waitPolls waits until the bot has called getUpdates n times, at most d.
func (p *pollProxy) waitPolls(n int, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		polls, arrived := p.polls, p.arrived
		p.mu.Unlock()
		if polls >= n {
			return true
		}
		select {
		case <-arrived:
		case <-deadline.C:
			return false
		}
	}
}

// viaProxy points the bot at the proxy.
func viaProxy(p **pollProxy, script ...pollAnswer) option {
	return func(h *harness) {
		*p = newPollProxy(h.t, h.tg, script...)
		h.opt.APIURL = (*p).srv.URL
	}
}

// pingWorks checks that alice's message is answered within recoverWithin.
func pingWorks(t *testing.T, h *harness, text string) {
	t.Helper()
	h.say(alice, telegramtest.Chat{}, text)
	deadline := time.Now().Add(recoverWithin)
	for {
		for _, m := range h.tg.BotMessages(alice.ID) {
			if m.Last().Text == "You said: "+text {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q not answered within %s", text, recoverWithin)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestGetUpdatesGarbageThenRecovers: whatever a getUpdates answer holds (an
// error page, broken JSON, updates of unknown kinds or odd shapes), the bot polls
// on and answers the next real message within seconds, and calls the model for
// nothing else.
func TestGetUpdatesGarbageThenRecovers(t *testing.T) {
	stranger := `{"id": 777, "is_bot": false, "first_name": "Eve"}`
	tests := []struct {
		name string
		pollAnswer
	}{
		{"HTML error page", pollAnswer{http.StatusBadGateway, "<html><body>502 Bad Gateway</body></html>"}},
		{"not JSON", pollAnswer{http.StatusOK, "ok, here you go"}},
		{"empty body", pollAnswer{http.StatusOK, ""}},
		{"truncated", pollAnswer{http.StatusOK, `{"ok":true,"result":[{"update_id":5,"message":{"message_id":`}},
		{"ok without result", pollAnswer{http.StatusOK, `{"ok":true}`}},
		{"result not a list", pollAnswer{http.StatusOK, `{"ok":true,"result":"surprise"}`}},
		{"update id of the wrong type", pollAnswer{http.StatusOK, `{"ok":true,"result":[{"update_id":"x"}]}`}},
		{"list of numbers", pollAnswer{http.StatusOK, `{"ok":true,"result":[1,2,3]}`}},
		{"error without a code", pollAnswer{http.StatusOK, `{"ok":false}`}},
		{"unknown update kinds", pollAnswer{http.StatusOK, `{"ok":true,"result":[` +
			`{"update_id":7,"poll":{"id":"p1","question":"?","options":[]}},` +
			`{"update_id":8,"callback_query":{"id":"c1","from":` + stranger + `,"chat_instance":"x"}},` +
			`{"update_id":9,"some_future_kind":{"a":[1,{"b":null}]}},` +
			`{"update_id":10,"channel_post":{"message_id":1,"date":1,"chat":{"id":-100,"type":"channel"},"text":"hi"}},` +
			`{"update_id":11,"edited_message":{"message_id":1,"date":1,"chat":{"id":1001,"type":"private"},"text":"edit"}}]}`}},
		{"odd messages", pollAnswer{http.StatusOK, `{"ok":true,"result":[` +
			`{"update_id":12,"message":{"message_id":1,"date":1,"chat":{"id":1001,"type":"private"},"text":"no sender"}},` +
			`{"update_id":13,"message":{"message_id":2,"date":1,"chat":{"id":1001,"type":"secret"},"from":` + stranger + `,"text":"odd chat"}},` +
			`{"update_id":14,"message":{"message_id":3,"date":1,"chat":{"id":777,"type":"private"},"from":` + stranger + `,` +
			`"text":"@test_bot hi","entities":[{"type":"mention","offset":-5,"length":900},{"type":"bot_command","offset":3,"length":0}]}},` +
			`{"update_id":15,"message":{"message_id":4,"chat":{"id":1001,"type":"private"},"from":{"id":1001,"first_name":"A"},` +
			`"reply_to_message":{"message_id":9},"text":""}}]}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var p *pollProxy
			h := newHarness(t, viaProxy(&p, tt.pollAnswer))
			pingWorks(t, h, "still there?")
			if n := len(h.ai.Requests()); n != 1 {
				t.Errorf("%d model calls, want 1: only for the real message", n)
			}
		})
	}
}

// TestGetUpdatesNullUpdateDoesNotCrash runs in a process of its own: a null in
// getUpdates' result made go-telegram/bot dereference a nil update, which kills
// the whole process.
func TestGetUpdatesNullUpdateDoesNotCrash(t *testing.T) {
	const env = "CHATBOT_TEST_NULL_UPDATE"
	if os.Getenv(env) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestGetUpdatesNullUpdateDoesNotCrash$", "-test.count=1")
		cmd.Env = append(os.Environ(), env+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the bot died on {\"result\":[null]} in getUpdates (%v):\n%s", err, lastLines(string(out), 25))
		}
		return
	}
	var p *pollProxy
	h := newHarness(t, viaProxy(&p, pollAnswer{http.StatusOK, `{"ok":true,"result":[null]}`}))
	pingWorks(t, h, "still there?")
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// TestOversizedAndOddTexts: a message of 100,000 characters gets the too-long
// note, or, with a budget that takes it, an answer in parts within Telegram's
// limit; invalid UTF-8, empty, blank and invisible texts are handled, never a
// crash, and the chat goes on.
func TestOversizedAndOddTexts(t *testing.T) {
	words := strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu")
	var b strings.Builder
	for i := 0; b.Len() < 100_000; i++ {
		fmt.Fprintf(&b, "%s%d ", words[i%len(words)], i)
	}
	huge := strings.TrimSpace(b.String())[:100_000]

	t.Run("100,000 characters are refused with a note", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.say(alice, telegramtest.Chat{}, huge)
		msgs := h.waitReply(alice.ID, 1, "too long for me")
		checkHTML(t, msgs)
		if n := len(h.ai.Requests()); n != 0 {
			t.Errorf("%d model calls, want none", n)
		}
		nextWorks(t, h, 1)
	})
	t.Run("100,000 characters are answered in parts when the budget allows", func(t *testing.T) {
		t.Parallel()
		h := newTunedHarness(t, func(*harness) tuning {
			return tuning{engine: conversation.Config{MaxContextTokens: 400_000}}
		})
		h.say(alice, telegramtest.Chat{}, huge)
		h.waitFor("the whole echo", func() bool {
			msgs := live(h.tg.BotMessages(alice.ID))
			return len(msgs) > 0 && strings.HasSuffix(msgs[len(msgs)-1].Last().Text, huge[len(huge)-40:])
		})
		msgs := live(h.tg.BotMessages(alice.ID))
		checkHTML(t, msgs)
		var shown strings.Builder
		for _, m := range msgs {
			shown.WriteString(m.Last().Text)
		}
		if got, want := letters(shown.String()), letters("You said: "+huge); got != want {
			t.Errorf("the parts lost text: %d letters shown, want %d", len(got), len(want))
		}
		if len(msgs) < 25 {
			t.Errorf("%d messages, want at least 25 of at most 4096 characters", len(msgs))
		}
	})
	t.Run("invalid UTF-8, empty and blank texts", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.say(alice, telegramtest.Chat{}, "caf\xe9 \xff\xfe\xfd ok")
		h.waitReply(alice.ID, 1, "You said: caf\ufffd \ufffd\ufffd\ufffd ok")
		h.tg.Inject(telegramtest.Incoming{From: alice}) // no text, no media: ignored
		h.say(alice, telegramtest.Chat{}, " \n\t ")     // blank: the help
		h.waitReply(alice.ID, 2, "/reset")
		h.say(alice, telegramtest.Chat{}, "\u200b\u202e\ufeff")
		h.waitReply(alice.ID, 3, "You said:")
		checkHTML(t, h.tg.BotMessages(alice.ID))
		nextWorks(t, h, 3, "caf\ufffd \ufffd\ufffd\ufffd ok", "\u200b\u202e\ufeff")
	})
}

// FuzzGetUpdatesAnswer feeds any body to the bot as the answer to its first
// getUpdates: the bot must not die, and must poll again soon.
func FuzzGetUpdatesAnswer(f *testing.F) {
	f.Fuzz(func(t *testing.T, status int, body string) {
		if status < 200 || status > 599 {
			status = http.StatusOK
		}
		var p *pollProxy
		newHarness(t, viaProxy(&p, pollAnswer{status, body}))
		if !p.waitPolls(2, recoverWithin) {
			t.Fatalf("no getUpdates within %s after the answer %d %q", recoverWithin, status, body)
		}
	})
}

// FuzzWebhookUpdate posts any body as an update to the webhook, with the right
// secret: the bot answers 200 or 400 (never breaks the connection, as a panic
// would), and the next real message is answered.
func FuzzWebhookUpdate(f *testing.F) {
	f.Fuzz(func(t *testing.T, body string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hook := "http://" + ln.Addr().String() + "/telegram/hook"
		h := newHarness(t, adapter(func(o *telegram.Options) {
			o.Mode, o.WebhookURL, o.WebhookSecret, o.WebhookListener = telegram.ModeWebhook, hook, webhookSecret, ln
		}))
		h.waitFor("setWebhook", func() bool { return h.tg.WebhookInfo().URL == hook })
		req, _ := http.NewRequest(http.MethodPost, hook, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", webhookSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("the webhook broke the connection on %q: %v", body, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("the webhook answered %d to %q", resp.StatusCode, body)
		}
		pingWorks(t, h, "ping")
	})
}
