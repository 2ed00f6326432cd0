package telegram

import (
	"context"
	"sync"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
	"golang.org/x/time/rate"

	"github.com/chatbot-dev/chatbot/conversation"
)

// maxTracked bounds the per-chat state kept by throttle and chatLimits; beyond it,
// stale entries are forgotten.
const maxTracked = 1000

// throttle lets one event per key through per period.
type throttle struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
}

func newThrottle(every time.Duration) *throttle {
	return &throttle{every: every, last: make(map[string]time.Time)}
}

// allow reports whether key may have its event now, and records it if so.
func (t *throttle) allow(key string) bool {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.last[key]; ok && now.Sub(last) < t.every {
		return false
	}
	if len(t.last) >= maxTracked {
		for k, at := range t.last {
			if now.Sub(at) >= t.every {
				delete(t.last, k)
			}
		}
	}
	t.last[key] = now
	return true
}

// chatLimits is the budget of sends and edits: the bot's over all chats, and each
// group's, shared by all the replies in it (forum topics, commands during a reply):
// as many per minute as one reply paced at GroupEditEvery makes (20 at 3 s,
// Telegram's limit), burst included.
type chatLimits struct {
	rate   rate.Limit
	global *rate.Limiter // the bot's sends and edits over all chats
	mu     sync.Mutex
	chats  map[int64]*rate.Limiter
}

// Telegram lets a bot send about 30 messages a second over all chats; the bot
// keeps under it with a bucket of globalRate and globalBurst (at most 30 calls
// in any second).
const (
	globalRate  = 25
	globalBurst = 5
	editReserve = 2
)

// groupBurst is how many calls a group may make at once (a message that fills up
// and the next one, a command's answer during a reply).
const groupBurst = 3

func newChatLimits(every time.Duration) *chatLimits {
	// A bucket of rate r and burst b lets b + 60r calls through in a minute.
	perMinute := float64(time.Minute) / float64(every)
	r := rate.Limit(max(perMinute-groupBurst, 1) / time.Minute.Seconds())
	return &chatLimits{rate: r, chats: make(map[int64]*rate.Limiter),
		global: rate.NewLimiter(globalRate, globalBurst)}
}

func (c *chatLimits) limiter(chatID int64) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.chats[chatID]
	if l == nil {
		if len(c.chats) >= maxTracked {
			now := time.Now()
			for id, old := range c.chats {
				if old.TokensAt(now) >= groupBurst {
					delete(c.chats, id)
				}
			}
		}
		l = rate.NewLimiter(c.rate, groupBurst)
		c.chats[chatID] = l
	}
	return l
}

// wait takes one call from the bot's budget and, in a group, from the group's. An
// interim update that would have to wait is skipped with a RetryAfterError (the
// pacer sends a later text instead); a final one waits its turn.
//
// An interim edit of a message already shown also leaves editReserve calls of the
// bot's budget to first texts and final ones: when the budget is short, a user who
// sees nothing yet goes first.
func (c *chatLimits) wait(ctx context.Context, chatID int64, group, final, shown bool) error {
	now := time.Now()
	if shown && !final {
		if spare := c.global.TokensAt(now) - editReserve; spare < 1 {
			after := time.Duration((1 - spare) / globalRate * float64(time.Second))
			return &conversation.RetryAfterError{After: after, Err: errBudget}
		}
	}
	res := []*rate.Reservation{c.global.ReserveN(now, 1)}
	if group {
		res = append(res, c.limiter(chatID).ReserveN(now, 1))
	}
	var delay time.Duration
	for _, r := range res {
		delay = max(delay, r.DelayFrom(now))
	}
	if delay <= 0 {
		return nil
	}
	if !final {
		for _, r := range res {
			r.CancelAt(now)
		}
		return &conversation.RetryAfterError{After: delay, Err: errBudget}
	}
	if !sleep(ctx, delay) {
		for _, r := range res {
			r.Cancel()
		}
		return ctx.Err()
	}
	return nil
}

var errBudget = &redactedError{msg: "edit budget spent"}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// typing shows "typing" in the chat, renewed every TypingEvery, until the returned
// stop is called (it may be called more than once).
func (b *Bot) typing(ctx context.Context, chatID int64, thread int) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(b.opt.TypingEvery)
		defer tick.Stop()
		for {
			_, err := b.api.SendChatAction(ctx, &bot.SendChatActionParams{ChatID: chatID, MessageThreadID: thread,
				Action: models.ChatActionTyping})
			if err != nil && ctx.Err() == nil {
				b.log.Debug("telegram: typing", "chat_id", chatID, "err", b.red.err(err))
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}
