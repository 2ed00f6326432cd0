package telegram_test

import (
	"flag"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram"
	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

var figures = flag.Bool("figures", false, "measure the figures of docs/telegram.md (takes about 40 s)")

// firstByte records when each model response's body first delivers bytes: with
// the fake's FirstDelay, that is when the first token arrives.
type firstByte struct {
	mu    sync.Mutex
	times []time.Time
}

func (f *firstByte) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		resp.Body = &timedBody{ReadCloser: resp.Body, f: f}
	}
	return resp, err
}

type timedBody struct {
	io.ReadCloser
	f    *firstByte
	seen bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 && !b.seen {
		b.seen = true
		b.f.mu.Lock()
		b.f.times = append(b.f.times, time.Now())
		b.f.mu.Unlock()
	}
	return n, err
}

func (f *firstByte) last() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.times[len(f.times)-1]
}

// TestFigures measures, against the fakes with Telegram's documented limits and
// the adapter's default pacing: the time from the first model token to the first
// visible text, and the edits and 429 answers of a 30-second reply in a private
// chat and in a group. Run: go test ./bots/telegram -run TestFigures -figures -v
func TestFigures(t *testing.T) {
	if !*figures {
		t.Skip("run with -figures")
	}
	fb := &firstByte{}
	users := make([]telegramtest.User, 11)
	ids := []int64{alice.ID}
	for i := range users {
		users[i] = telegramtest.User{ID: int64(7000 + i), FirstName: "User"}
		ids = append(ids, users[i].ID)
	}
	h := newHarness(t, func(h *harness) { h.modelHTTP = &http.Client{Transport: fb} }, adapter(func(o *telegram.Options) {
		o.EditEvery, o.GroupEditEvery, o.TypingEvery = 0, 0, 0 // the defaults: 1 s, 3 s, 4.5 s
		o.AllowedUserIDs = ids
	}))
	h.tg.SetFlood(telegramtest.TelegramLimits)

	// Ten replies, each in a chat of its own so that no flood wait of an earlier
	// reply counts.
	var lat []time.Duration
	for _, u := range users[:10] {
		h.ai.Enqueue(openaitest.Reply{Tokens: []string{"First", " token."}, FirstDelay: 300 * time.Millisecond})
		h.say(u, telegramtest.Chat{}, "ping")
		msgs := h.waitReply(u.ID, 1, "First token.")
		lat = append(lat, msgs[0].Versions[0].At.Sub(fb.last()))
	}
	slices.Sort(lat)
	t.Logf("first model token → first visible text, private chat, 10 replies: median %v, max %v",
		lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))

	words := strings.Fields(strings.Repeat("a thirty second reply streams three hundred tokens at ten per second ", 25))[:300]
	reply := openaitest.Reply{Tokens: openaitest.Tokenize(strings.Join(words, " ")), TokenDelay: 100 * time.Millisecond}
	h.ai.SetHandler(func(openaitest.Request) openaitest.Reply { return reply })
	start := time.Now()
	h.say(bob, club, "@"+h.tg.Bot.Username+" long one")
	h.say(users[10], telegramtest.Chat{}, "long one")
	for _, topic := range []int{7, 9} { // two replies at once in one group share its budget
		h.tg.Inject(telegramtest.Incoming{From: bob, Chat: forum, ThreadID: topic, Text: "@" + h.tg.Bot.Username + " long one"})
	}
	want := strings.Join(words, " ")
	for _, chat := range []struct {
		name string
		id   int64
		n    int
	}{{"private chat", users[10].ID, 1}, {"group", club.ID, 1}, {"forum, two topics at once", forum.ID, 2}} {
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
			msgs := h.tg.BotMessages(chat.id)
			if len(msgs) == chat.n && msgs[0].Last().Text == want && msgs[len(msgs)-1].Last().Text == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no final text after 2 minutes", chat.name)
			}
		}
		for _, m := range h.tg.BotMessages(chat.id) {
			t.Logf("30-second reply, %s: %d edits (%.2f per second), final text intact after %v",
				chat.name, len(m.Versions)-1, float64(len(m.Versions)-1)/m.Last().At.Sub(m.Versions[0].At).Seconds(),
				m.Last().At.Sub(start).Round(100*time.Millisecond))
		}
		t.Logf("429 answers in the %s: %d", chat.name, h.tg.Limited(chat.id))
	}
	for line := range strings.Lines(h.logs.String()) {
		if strings.Contains(line, "msg=turn") && strings.Contains(line, "tokens_out=300") {
			t.Log(strings.TrimSpace(line))
		}
	}
}
