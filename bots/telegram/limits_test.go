package telegram

import (
	"context"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
)

// The bot's budget keeps all chats together under Telegram's 30 messages a
// second, and an edit of a message already shown leaves the last calls to a
// chat that shows nothing yet.
func TestBotBudget(t *testing.T) {
	c := newChatLimits(3 * time.Second)
	ctx := context.Background()
	sent := 0
	for range 100 { // a burst of first texts from 100 private chats
		if c.wait(ctx, 1, false, false, false) == nil {
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
