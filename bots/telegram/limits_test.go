package telegram

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

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

// Updates refused for want of budget give back all they reserved, however many
// chats try at once: under a crowd of streams the bot's budget must not bleed
// away into refused attempts (it once fell from 25 sends a second to about 1).
func TestRefusedUpdatesTakeNothingUnderContention(t *testing.T) {
	c := newChatLimits(time.Second, 3*time.Second)
	c.global = rate.NewLimiter(rate.Limit(0.001), globalBurst) // no refill to speak of
	for range globalBurst + 10 {                               // final texts queued far ahead
		c.global.ReserveN(time.Now(), 1)
	}
	before := c.global.TokensAt(time.Now())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				err := c.wait(context.Background(), int64(g*1000+i), false, false, false)
				if _, ok := conversation.RetryAfter(err); !ok {
					t.Errorf("a first text went out with the bot's budget spent: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if after := c.global.TokensAt(time.Now()); after < before-0.01 {
		t.Errorf("4,000 refused first texts took %.2f calls of the bot's budget", before-after)
	}
}

// A final text waiting for its chat's turn does not hold a call of the bot's
// budget meanwhile: that call would be counted when taken but spent when the
// chat's turn comes, bunching up with the calls counted then (Telegram answered
// such bunches with 429s under a crowd). Another chat uses the call instead.
func TestFinalTakesTheBotsCallWhenItLeaves(t *testing.T) {
	c := newChatLimits(2*time.Second, 3*time.Second)
	c.global = rate.NewLimiter(5, 1)
	ctx := context.Background()
	if err := c.wait(ctx, 1, false, false, false); err != nil { // chat 1's first text
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the bot's budget has its one call again
	done := make(chan error)
	go func() { done <- c.wait(ctx, 1, false, true, true) }() // chat 1's final: its turn is in 2 s
	time.Sleep(50 * time.Millisecond)
	if err := c.wait(ctx, 2, false, false, false); err != nil {
		t.Errorf("chat 2's first text was held up by a final text that cannot leave yet: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("chat 1's final text: %v", err)
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
