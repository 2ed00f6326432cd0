package telegram

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
)

// The bot's budget keeps all chats together under Telegram's 30 messages a
// second, and an edit of a message already shown leaves the last calls to a
// chat that shows nothing yet.
func TestBotBudget(t *testing.T) {
	c := newChatLimits(time.Second, 3*time.Second)
	ctx := context.Background()
	sent := 0
	for i := range 100 { // a burst of first texts from 100 private chats
		if c.wait(ctx, int64(10+i), false, false, false) == nil {
			sent++
		}
	}
	if sent > 30 {
		t.Errorf("%d calls went out at once, want at most 30", sent)
	}
	// The bucket is (nearly) empty now: fewer than editReserve calls are left, so
	// an edit of a shown message must wait while a final text waits its turn.
	err := c.wait(ctx, 2, false, false, true)
	if _, ok := conversation.RetryAfter(err); !ok {
		t.Errorf("an interim edit took a call from the reserve: err %v", err)
	}
	if err := c.wait(ctx, 3, false, true, true); err != nil {
		t.Errorf("a final edit did not wait its turn: %v", err)
	}
}

// A private chat gets about one call a second, as Telegram allows: an interim
// update right after a send is skipped, while another chat is not held up.
func TestPrivateChatBudget(t *testing.T) {
	c := newChatLimits(time.Second, 3*time.Second)
	ctx := context.Background()
	if err := c.wait(ctx, 1, false, false, false); err != nil {
		t.Fatalf("first text: %v", err)
	}
	err := c.wait(ctx, 1, false, false, true)
	if after, ok := conversation.RetryAfter(err); !ok || after <= 0 || after > time.Second {
		t.Errorf("a second call in the same second: err %v, want a RetryAfterError of up to 1 s", err)
	}
	if err := c.wait(ctx, 2, false, false, false); err != nil {
		t.Errorf("another private chat was held up: %v", err)
	}
}

// Notes take one call only when it can be had at once without touching what
// replies need, and never more than the notes' cap; a note that finds no room
// is dropped, taking nothing.
func TestNotesTakeOnlyWhatIsSpare(t *testing.T) {
	c := newChatLimits(time.Second, 3*time.Second)
	ctx := context.Background()
	sent := 0
	for i := range 100 { // 100 strangers at once
		if c.notice(ctx, int64(1000+i), false) == nil {
			sent++
		}
	}
	if sent == 0 || sent > noteBurst {
		t.Errorf("%d of 100 notes went out at once, want between 1 and %d", sent, noteBurst)
	}

	c = newChatLimits(time.Second, 3*time.Second)
	for range 10 { // final texts queued for the next 0.2 s
		c.global.ReserveN(time.Now(), 1)
	}
	before := c.global.TokensAt(time.Now())
	err := c.notice(ctx, 7, false)
	if _, ok := conversation.RetryAfter(err); !ok {
		t.Errorf("a note went out while replies waited for the budget: %v", err)
	}
	if after := c.global.TokensAt(time.Now()); after < before {
		t.Errorf("a dropped note took from the bot's budget: %.2f → %.2f", before, after)
	}
}

// Many chats trying at once for a spent budget leave it as they found it:
// interim updates that must wait take nothing, however their tries interleave
// (before, cancelled reservations leaked calls until no first text went out).
func TestCrowdDoesNotLeakTheBudget(t *testing.T) {
	c := newChatLimits(time.Second, 3*time.Second)
	ctx := context.Background()
	for chat := int64(1); c.wait(ctx, chat, false, false, false) == nil; chat++ { // spend the bot's budget
	}
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			for range 50 {
				c.wait(ctx, int64(1000+i), false, false, false)
			}
		})
	}
	wg.Wait()
	if tokens := c.global.TokensAt(time.Now()); tokens < -1 {
		t.Errorf("the bot's budget owes %.0f calls after a crowd's refused tries, want none", -tokens)
	}
}

// An interim update that the budget has no room for is refused before its
// Markdown is rendered: a crowd of chats waiting for the bot's budget retries
// many times a second, and rendering each time made as much garbage.
func TestInterimUpdateWithoutBudgetRendersNothing(t *testing.T) {
	b := &Bot{limits: newChatLimits(time.Second, 3*time.Second)}
	ctx := context.Background()
	for chat := int64(100); b.limits.wait(ctx, chat, false, false, false) == nil; chat++ { // spend the bot's budget
	}
	r := &reply{b: b, chatID: 1, limit: maxMessageLen}
	md := strings.Repeat("Some **bold** words, a [link](https://example.com) and `code`.\n\n", 20)
	var err error
	allocs := testing.AllocsPerRun(20, func() { err = r.Update(ctx, md) })
	if _, ok := conversation.RetryAfter(err); !ok {
		t.Fatalf("Update without budget: %v, want a RetryAfterError", err)
	}
	if allocs > 5 {
		t.Errorf("%.0f allocations for an update the budget has no room for, want a handful (no rendering)", allocs)
	}
}
