package telegram_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram"
	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// 2,000 strangers write once, then the owner: the refusals are best-effort notes
// that take only what the bot's budget has to spare, so the owner's reply is not
// queued behind them (it was: 2,000 refusals at 25 a second, 80 s).
func TestRefusalsDoNotHoldUpReplies(t *testing.T) {
	const strangers = 2000
	h := newHarness(t)
	for i := range strangers {
		h.say(telegramtest.User{ID: int64(500000 + i), FirstName: "Stranger"}, telegramtest.Chat{}, "let me in")
	}
	h.say(alice, telegramtest.Chat{}, "hello")
	h.waitReply(alice.ID, 1, "You said: hello")

	refusals, before := 0, -1
	for _, c := range h.tg.CallsTo("sendMessage") {
		switch {
		case c.ChatID == alice.ID && before < 0:
			before = refusals
		case c.ChatID != alice.ID && c.ErrorCode == 0:
			refusals++
		}
	}
	t.Logf("%d refusals sent of %d, %d of them before the owner's first text", refusals, strangers, before)
	if refusals == 0 {
		t.Error("no stranger was told why they are refused")
	}
	// The notes' cap lets a burst of 5 and 2 a second through: what goes out
	// before the owner's text is what the test took seconds to poll.
	if before > 100 {
		t.Errorf("%d refusals went out before the owner's first text, want them not to hold it up", before)
	}
	if n := len(h.ai.Requests()); n != 1 {
		t.Errorf("%d model calls, want the owner's only", n)
	}
}

// countHandler counts the Handle calls that returned.
type countHandler struct {
	telegram.Handler
	returned atomic.Int32
}

func (c *countHandler) Handle(ctx context.Context, req conversation.Request) error {
	defer c.returned.Add(1)
	return c.Handler.Handle(ctx, req)
}

// One user sends 500 messages while a reply is being written: one waits its
// turn and the rest get one busy notice between them, not 498 (each was retried
// for up to 10 minutes, and held up everyone else's replies).
func TestOneBusyNoticeForAFlood(t *testing.T) {
	const flood = 500
	counter := &countHandler{}
	h := newHarness(t, func(h *harness) {
		h.wrap = func(e telegram.Handler) telegram.Handler { counter.Handler = e; return counter }
	})
	h.ai.Enqueue(openaitest.Reply{Tokens: []string{"partial", " never"}, TokenDelay: time.Hour})
	h.say(alice, telegramtest.Chat{}, "one")
	h.waitReply(alice.ID, 1, "partial")
	for i := range flood - 1 {
		h.say(alice, telegramtest.Chat{}, fmt.Sprintf("spam %d", i))
	}
	// "one" runs and "spam 0" waits; every other message has been answered.
	h.waitFor("the flood to be handled", func() bool { return counter.returned.Load() == flood-2 })
	h.say(alice, telegramtest.Chat{}, "/stop")
	h.waitFor("the waiting message's answer", func() bool {
		for _, m := range h.tg.BotMessages(alice.ID) {
			if m.Last().Text == "You said: spam 0" {
				return true
			}
		}
		return false
	})
	busy := 0
	for _, m := range h.tg.BotMessages(alice.ID) {
		if strings.Contains(m.Last().Text, "Still answering") {
			busy++
		}
	}
	if busy != 1 {
		t.Errorf("%d busy notices for %d messages to a busy chat, want 1", busy, flood-2)
	}
	if n := len(h.ai.Requests()); n != 2 {
		t.Errorf("%d model calls, want 2", n)
	}
}
