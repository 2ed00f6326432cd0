package telegram_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram"
	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// firstTokenOf records when each model response's body first delivers bytes
// (with the fake's FirstDelay, the first token), by the "ask N" text of its
// request.
type firstTokenOf struct {
	mu    sync.Mutex
	times map[string]time.Time
}

var askRe = regexp.MustCompile(`ask \d+`)

func (f *firstTokenOf) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(body))
	key := string(askRe.Find(body))
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		resp.Body = &keyedBody{ReadCloser: resp.Body, f: f, key: key}
	}
	return resp, err
}

func (f *firstTokenOf) at(key string) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.times[key]
}

type keyedBody struct {
	io.ReadCloser
	f    *firstTokenOf
	key  string
	seen bool
}

func (b *keyedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 && !b.seen {
		b.seen = true
		b.f.mu.Lock()
		b.f.times[b.key] = time.Now()
		b.f.mu.Unlock()
	}
	return n, err
}

// TestFiguresDrafts measures the figures of private chats with drafts (the
// default of cmd/chatbot), against the fakes with Telegram's documented limits
// and the adapter's default pacing: the time from the first model token to the
// first visible text (the first draft) for 10 replies one after another and
// for 20 that start at once; that each reply ends in exactly one sendMessage
// with the whole text, after no empty draft, no draft out of step with the
// answer and no draft that lapsed; and a 30-second reply's drafts. Run:
// go test ./bots/telegram -run TestFigures -figures -v
func TestFiguresDrafts(t *testing.T) {
	if !*figures {
		t.Skip("run with -figures")
	}
	ft := &firstTokenOf{times: map[string]time.Time{}}
	users, ids := someUsers(31)
	h := newHarness(t, func(h *harness) { h.modelHTTP = &http.Client{Transport: ft} }, adapter(func(o *telegram.Options) {
		o.EditEvery, o.GroupEditEvery, o.TypingEvery = 0, 0, 0 // the defaults: 1 s, 3 s, 4.5 s
		o.Drafts, o.AllowedUserIDs = true, ids
	}))
	h.tg.SetFlood(telegramtest.TelegramLimits)
	answer := func(ask string) string { return "First token of the answer to " + ask + ", and the rest of it." }
	h.ai.SetHandler(func(r openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Tokens: openaitest.Tokenize(answer(r.LastUser())), FirstDelay: 300 * time.Millisecond,
			TokenDelay: 20 * time.Millisecond}
	})
	// check checks one finished reply and returns the time from its first
	// token to its first draft.
	check := func(u telegramtest.User, ask string) time.Duration {
		t.Helper()
		want := answer(ask)
		msgs := h.waitReply(u.ID, 1, want)
		if len(msgs) != 1 || len(msgs[0].Versions) != 1 || msgs[0].Versions[0].Method != "sendMessage" {
			t.Errorf("%s: %d messages, %d versions: want one sendMessage", ask, len(msgs), len(msgs[0].Versions))
		}
		drafts := h.tg.Drafts(u.ID)
		if len(drafts) == 0 {
			t.Fatalf("%s: no draft", ask)
		}
		for _, d := range drafts {
			if d.Text == "" || !strings.HasPrefix(want, d.Text) || d.Ignored {
				t.Errorf("%s: draft %q is empty, out of step with the answer, or ignored", ask, d.Text)
			}
		}
		if exp := h.tg.ExpiredDrafts(u.ID); len(exp) != 0 {
			t.Errorf("%s: %d drafts lapsed", ask, len(exp))
		}
		return drafts[0].At.Sub(ft.at(ask))
	}
	median := func(d []time.Duration) (time.Duration, time.Duration) {
		slices.Sort(d)
		return d[len(d)/2].Round(time.Microsecond), d[len(d)-1].Round(time.Microsecond)
	}

	var one []time.Duration
	for i, u := range users[:10] {
		ask := fmt.Sprintf("ask %d", i)
		h.say(u, telegramtest.Chat{}, ask)
		one = append(one, check(u, ask))
	}
	med, most := median(one)
	t.Logf("drafts: first model token → first visible text, 10 replies one after another: median %v, max %v", med, most)

	for i, u := range users[10:30] {
		h.say(u, telegramtest.Chat{}, fmt.Sprintf("ask %d", 10+i))
	}
	var many []time.Duration
	for i, u := range users[10:30] {
		many = append(many, check(u, fmt.Sprintf("ask %d", 10+i)))
	}
	med, most = median(many)
	t.Logf("drafts: first model token → first visible text, 20 replies at once: median %v, max %v", med, most)

	words := strings.Fields(strings.Repeat("a thirty second reply streams three hundred tokens at ten per second ", 25))[:300]
	long := strings.Join(words, " ")
	h.ai.SetHandler(func(openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Tokens: openaitest.Tokenize(long), TokenDelay: 100 * time.Millisecond}
	})
	u := users[30]
	start := time.Now()
	h.say(u, telegramtest.Chat{}, "long one")
	var msgs []telegramtest.BotMessage
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if msgs = h.tg.BotMessages(u.ID); len(msgs) == 1 && msgs[0].Last().Text == long {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("30-second reply: no final text after 2 minutes")
		}
	}
	drafts := h.tg.Drafts(u.ID)
	span := drafts[len(drafts)-1].At.Sub(drafts[0].At).Seconds()
	t.Logf("drafts: 30-second reply: %d drafts (%.2f a second), %d message(s) sent %d time(s), final text intact after %v, 429 answers %d, lapsed drafts %d",
		len(drafts), float64(len(drafts)-1)/span, len(msgs), len(msgs[0].Versions),
		msgs[0].Last().At.Sub(start).Round(100*time.Millisecond), h.tg.Limited(u.ID), len(h.tg.ExpiredDrafts(u.ID)))
	if n := len(h.tg.CallsTo("sendMessage")); n != 31 {
		t.Errorf("%d sendMessage calls for 31 replies, want 31", n)
	}
}
