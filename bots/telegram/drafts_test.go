package telegram_test

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram"
	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/conversation/conversationtest"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// goroutinesIn counts the goroutines with fn on their stack.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// gate holds every model stream after its first text (Responses API events)
// until it is opened, so that a test can make a reply as slow as it likes.
type gate struct {
	open chan struct{}
	once sync.Once
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func (g *gate) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		resp.Body = &gatedBody{ReadCloser: resp.Body, g: g}
	}
	return resp, err
}

// gatedBody passes a stream until its first text delta event has passed whole,
// however the client's reads cut it, then holds it until the gate opens.
type gatedBody struct {
	io.ReadCloser
	g    *gate
	seen []byte // what passed, from the first text delta on
	read bool
}

func (b *gatedBody) Read(p []byte) (int, error) {
	if b.read {
		<-b.g.open
	}
	n, err := b.ReadCloser.Read(p)
	b.seen = append(b.seen, p[:n]...)
	if i := bytes.Index(b.seen, []byte("response.output_text.delta")); i < 0 {
		b.seen = b.seen[max(0, len(b.seen)-64):] // the mark may straddle two reads
	} else {
		b.read = bytes.Contains(b.seen[i:], []byte("\n\n"))
	}
	return n, err
}

// fakeTelegram runs the bot against a fake Bot API made with o.
func fakeTelegram(o telegramtest.Options) option {
	return func(h *harness) {
		h.tg.Close()
		h.tg = telegramtest.NewServer(o)
		h.t.Cleanup(h.tg.Close)
		h.opt.Token, h.opt.APIURL = h.tg.Token, h.tg.URL
	}
}

// TestDraftRefreshedPastItsLife: a reply that shows its first words, then
// writes nothing for 70 s (by a fake clock that the bot's draft refresher and
// the fake Bot API's drafts share), keeps its draft on screen the whole time
// and ends in exactly one sendMessage with the whole answer.
func TestDraftRefreshedPastItsLife(t *testing.T) {
	clock, hold := conversationtest.NewClock(), newGate()
	defer hold.release()
	h := newHarness(t, fakeTelegram(telegramtest.Options{Now: clock.Now}),
		func(h *harness) { h.modelHTTP = &http.Client{Transport: hold} },
		adapter(func(o *telegram.Options) { o.Drafts, o.Clock = true, clock }))
	want := "First words arrive at once. The rest comes seventy seconds later, all of it."
	h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize(want), TokenDelay: 20 * time.Millisecond})
	h.say(alice, telegramtest.Chat{}, "take your time")

	h.waitFor("the first draft", func() bool { return len(h.tg.Drafts(alice.ID)) > 0 })
	start := clock.Now()
	h.waitFor("the draft's refresher", clock.Pending)
	if n := goroutinesIn("telegram.(*reply).refresh"); n != 0 {
		t.Errorf("%d goroutines in the draft's refresher while it waits, want none (a timer)", n)
	}
	for clock.Now().Sub(start) < 70*time.Second {
		clock.Advance(5 * time.Second)
		h.waitFor("the draft's refresher", clock.Pending)
		if _, ok := h.tg.DraftShown(alice.ID, 0); !ok {
			t.Fatalf("no draft shows %v after the first one", clock.Now().Sub(start))
		}
	}
	if n := len(h.tg.BotMessages(alice.ID)); n != 0 {
		t.Fatalf("%d messages while the reply was slow, want only the draft", n)
	}
	drafts := h.tg.Drafts(alice.ID)
	if len(drafts) < 5 { // the first, then one every 15 s
		t.Errorf("%d drafts over 70 s, want it sent again every 15 s", len(drafts))
	}
	hold.release()
	msgs := h.waitReply(alice.ID, 1, want)

	if len(msgs) != 1 || len(msgs[0].Versions) != 1 || msgs[0].Versions[0].Text != want {
		t.Errorf("messages %+v, want one sendMessage with the whole answer", msgs)
	}
	if n := len(h.tg.CallsTo("sendMessage")); n != 1 {
		t.Errorf("%d sendMessage calls, want 1", n)
	}
	if exp := h.tg.ExpiredDrafts(alice.ID); len(exp) != 0 {
		t.Errorf("drafts vanished before the answer: %+v", exp)
	}
	drafts = h.tg.Drafts(alice.ID)
	for i, d := range drafts {
		switch {
		case d.DraftID != drafts[0].DraftID:
			t.Errorf("draft %d has id %d, want one id for the reply (%d)", i, d.DraftID, drafts[0].DraftID)
		case d.Text == "" || !strings.HasPrefix(want, d.Text):
			t.Errorf("draft %d shows %q, not a part of the answer", i, d.Text)
		case !d.CanStop || !d.KeepOnStop:
			t.Errorf("draft %d without the stop button (can_stop %v, keep_on_stop %v)", i, d.CanStop, d.KeepOnStop)
		case i > 0 && d.At.Sub(drafts[i-1].At) > 20*time.Second:
			t.Errorf("draft %d came %v after the one before, want within 15 s (+ the test's 5 s step)", i, d.At.Sub(drafts[i-1].At))
		}
	}
}

// TestStopButtonStopsTheReply: the user's stop button under a draft cancels
// the model call; the reply ends in one message, the text so far marked
// stopped, with no draft after the stop and no other message.
func TestStopButtonStopsTheReply(t *testing.T) {
	h := newHarness(t, adapter(func(o *telegram.Options) { o.Drafts = true }))
	h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize("Here are the first words and then nothing more"),
		StallAfter: 5, Stall: true})
	h.say(alice, telegramtest.Chat{}, "go on forever")
	h.waitFor("a draft", func() bool { _, ok := h.tg.DraftShown(alice.ID, 0); return ok })
	if _, err := h.tg.StopDraft(alice.ID, 0); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the model call to be cancelled", func() bool { return h.ai.Canceled() == 1 })
	msgs := h.waitReply(alice.ID, 1, "(stopped)")
	if len(msgs) != 1 || len(msgs[0].Versions) != 1 || !strings.HasPrefix(msgs[0].Last().Text, "Here are the first words") {
		t.Errorf("messages %+v, want one with the words so far, marked stopped", msgs)
	}
	for _, d := range h.tg.Drafts(alice.ID) {
		if d.Ignored {
			t.Errorf("a draft was sent after the stop: %q", d.Text)
		}
	}
	if n := len(h.ai.Requests()); n != 1 {
		t.Errorf("%d model calls, want 1", n)
	}
	// Nothing else comes: the engine's "Stopped." is not shown for the button.
	time.Sleep(200 * time.Millisecond)
	if n := len(h.tg.BotMessages(alice.ID)); n != 1 {
		t.Errorf("%d messages after the stop, want the stopped reply alone", n)
	}
	// A second press on the kept draft, or one after the answer, changes nothing.
	if _, err := h.tg.StopDraft(alice.ID, 0); err == nil {
		t.Error("the stopped draft still shows after the final message")
	}
	h.ai.Enqueue(openaitest.Text("The next answer is whole."))
	h.say(alice, telegramtest.Chat{}, "and now?")
	h.waitReply(alice.ID, 2, "The next answer is whole.")
}

// TestDraftErrorTurnsDraftsOffForTheChat: after a draft error, the reply and
// the chat's next replies edit in place; other chats keep drafts.
func TestDraftErrorTurnsDraftsOffForTheChat(t *testing.T) {
	carol := telegramtest.User{ID: 3003, FirstName: "Carol"}
	h := newHarness(t, adapter(func(o *telegram.Options) {
		o.Drafts = true
		o.AllowedUserIDs = append(o.AllowedUserIDs, carol.ID)
	}))
	h.tg.SetFault(func(c telegramtest.Call) *telegramtest.APIError {
		if c.Method == "sendMessageDraft" && c.ChatID == alice.ID {
			return telegramtest.BadRequest("TEXTDRAFT_PEER_INVALID")
		}
		return nil
	})
	reply := strings.TrimSpace(strings.Repeat("edits in place after a draft error ", 6))
	h.ai.SetHandler(func(openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Tokens: openaitest.Tokenize(reply), TokenDelay: 10 * time.Millisecond}
	})
	h.say(alice, telegramtest.Chat{}, "one")
	h.waitReply(alice.ID, 1, "draft error")
	h.waitFor("the first answer", func() bool { return h.tg.BotMessages(alice.ID)[0].Last().Text == reply })
	h.say(alice, telegramtest.Chat{}, "two")
	h.waitFor("the second answer", func() bool {
		msgs := h.tg.BotMessages(alice.ID)
		return len(msgs) == 2 && msgs[1].Last().Text == reply
	})
	tried := 0
	for _, c := range h.tg.CallsTo("sendMessageDraft") {
		if c.ChatID == alice.ID {
			tried++
		}
	}
	if tried != 1 {
		t.Errorf("sendMessageDraft tried %d times in the chat, want once", tried)
	}
	for i, m := range h.tg.BotMessages(alice.ID) {
		if len(m.Versions) < 2 {
			t.Errorf("answer %d has %d states, want it to grow by edits", i, len(m.Versions))
		}
	}
	h.say(carol, telegramtest.Chat{}, "three")
	h.waitReply(carol.ID, 1, "draft error")
	if len(h.tg.Drafts(carol.ID)) == 0 {
		t.Error("another chat lost its drafts")
	}
}

// TestDraftRefreshErrorFallsBack: a refresh that fails turns drafts off, and
// the reply's next text is a message.
func TestDraftRefreshErrorFallsBack(t *testing.T) {
	clock, hold := conversationtest.NewClock(), newGate()
	defer hold.release()
	h := newHarness(t, fakeTelegram(telegramtest.Options{Now: clock.Now}),
		func(h *harness) { h.modelHTTP = &http.Client{Transport: hold} },
		adapter(func(o *telegram.Options) { o.Drafts, o.Clock = true, clock }))
	want := "Words before the pause, and words after it."
	h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize(want), TokenDelay: 20 * time.Millisecond})
	h.say(alice, telegramtest.Chat{}, "pause")
	h.waitFor("the first draft", func() bool { return len(h.tg.Drafts(alice.ID)) > 0 })
	h.tg.SetFault(func(c telegramtest.Call) *telegramtest.APIError {
		if c.Method == "sendMessageDraft" {
			return telegramtest.BadRequest("DRAFT_INVALID")
		}
		return nil
	})
	h.waitFor("the draft's refresher", clock.Pending)
	clock.Advance(16 * time.Second)
	h.waitFor("the refresh", func() bool { return len(h.tg.CallsTo("sendMessageDraft")) == 2 })
	hold.release()
	msgs := h.waitReply(alice.ID, 1, want)
	if len(msgs) != 1 {
		t.Errorf("%d messages, want 1", len(msgs))
	}
	if n := len(h.tg.CallsTo("sendMessageDraft")); n != 2 {
		t.Errorf("%d drafts tried, want none after the failed refresh", n)
	}
}
