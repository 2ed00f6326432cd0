package telegram

import (
	"context"
	"sync"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// typing shows "typing" in the chat, renewed every TypingEvery, until its stop
// is called.
func (b *Bot) typing(ctx context.Context, chatID int64, thread int) *shownAction {
	return b.chatAction(ctx, chatID, thread, models.ChatActionTyping)
}

// chatAction shows action in the chat (typing, uploading a photo), renewed
// every TypingEvery, until its stop is called.
func (b *Bot) chatAction(ctx context.Context, chatID int64, thread int, action models.ChatAction) *shownAction {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(b.opt.TypingEvery)
		defer tick.Stop()
		for {
			_, err := b.api.SendChatAction(ctx, &bot.SendChatActionParams{ChatID: chatID, MessageThreadID: thread,
				Action: action})
			if err != nil && ctx.Err() == nil {
				b.log.Debug("telegram: chat action", "action", action, "chat_id", chatID, "err", b.red.err(err))
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return &shownAction{cancel: cancel, done: done}
}

// shownAction is a chat action being renewed. Once stopped it holds nothing,
// as the reply keeps it until its end.
type shownAction struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// stop ends the action; it may be called more than once, and on nil.
func (a *shownAction) stop() {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel == nil {
		return
	}
	a.cancel()
	<-a.done
	a.cancel, a.done = nil, nil
}
