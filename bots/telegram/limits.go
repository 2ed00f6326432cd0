package telegram

import (
	"context"
	"sync"
	"time"

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

// forget drops key's record, so that its next event is let through.
func (t *throttle) forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.last, key)
}

// chatLimits is the budget of sends and edits: the bot's over all chats, and each
// chat's, shared by all the replies in it (forum topics, commands during a reply):
// as many per minute as one reply paced at its EditEvery (private chats, 1 s:
// Telegram's one message a second) or GroupEditEvery (groups, 3 s: Telegram's 20 a
// minute) makes, burst included. Notes (refusals, busy notices) have a cap of
// their own and take only what replies leave (see notice).
type chatLimits struct {
	private, group rate.Limit // the chats' rates
	global         *rate.Limiter
	notes          *rate.Limiter // the cap on best-effort notes over all chats

	// take serializes what is taken from these limiters, with the time read
	// under it: x/time/rate wants times that only go forward. Nothing is
	// reserved to be cancelled: it gives a cancelled reservation back in full
	// only when no other came after it, and under a crowd of streams refused
	// updates bled the bot's budget to a fraction of its rate.
	take sync.Mutex

	mu    sync.Mutex // guards chats
	chats map[int64]*rate.Limiter
}

// Telegram lets a bot send about 30 messages a second over all chats; the bot
// keeps under it with a bucket of globalRate and globalBurst: at most 28 calls
// taken in any second, leaving room for the network's jitter, which bunches
// calls that left a little apart.
const (
	globalRate  = 24
	globalBurst = 4
	editReserve = 2
)

// Bursts of a chat's budget: a group may make groupBurst calls at once (a message
// that fills up and the next one, a command's answer during a reply); a private
// chat one, as Telegram allows it about one message a second.
const (
	groupBurst   = 3
	privateBurst = 1
)

// Best-effort notes (refusals, busy notices) go out at most noteRate a second
// over all chats, after a burst of noteBurst: a flood of strangers costs the
// replies at most that much of the bot's budget.
const (
	noteRate  = 2
	noteBurst = 5
)

// newChatLimits returns the budgets for replies edited every privateEvery in
// private chats and every groupEvery in groups.
func newChatLimits(privateEvery, groupEvery time.Duration) *chatLimits {
	// A bucket of rate r and burst b lets b + 60r calls through in a minute.
	perMinute := float64(time.Minute) / float64(groupEvery)
	group := rate.Limit(max(perMinute-groupBurst, 1) / time.Minute.Seconds())
	return &chatLimits{
		private: rate.Every(privateEvery), // burst 1: one call per privateEvery, never more
		group:   group,
		global:  rate.NewLimiter(globalRate, globalBurst),
		notes:   rate.NewLimiter(noteRate, noteBurst),
		chats:   make(map[int64]*rate.Limiter),
	}
}

// limiter returns the budget of one chat.
func (c *chatLimits) limiter(chatID int64, group bool) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.chats[chatID]
	if l == nil {
		if len(c.chats) >= maxTracked {
			now := time.Now()
			for id, old := range c.chats {
				if old.TokensAt(now) >= float64(old.Burst()) {
					delete(c.chats, id)
				}
			}
		}
		if group {
			l = rate.NewLimiter(c.group, groupBurst)
		} else {
			l = rate.NewLimiter(c.private, privateBurst)
		}
		c.chats[chatID] = l
	}
	return l
}

// wait takes one call from the bot's budget and from the chat's, at the moment
// the call leaves, so that both budgets count calls when Telegram sees them. An
// interim update that would have to wait is skipped with a RetryAfterError (the
// pacer sends a later text instead); a final one waits its turn: first the
// chat's, then a place in the queue of the bot's budget.
//
// An interim edit of a message already shown also leaves editReserve calls of the
// bot's budget to first texts and final ones: when the budget is short, a user who
// sees nothing yet goes first.
func (c *chatLimits) wait(ctx context.Context, chatID int64, group, final, shown bool) error {
	chat := c.limiter(chatID, group)
	if !final {
		reserve := 0.0
		if shown {
			reserve = editReserve
		}
		return c.takeNow(errBudget, reserve, chat)
	}
	for {
		if !sleep(ctx, untilToken(chat, time.Now())) {
			return ctx.Err()
		}
		slot := c.queue(chat)
		if slot == nil {
			return nil
		}
		if !sleep(ctx, slot.Delay()) {
			c.giveBack(slot)
			return ctx.Err()
		}
		if c.takeNow(errBudget, -1, chat) == nil {
			return nil
		}
		// Another reply in the chat took its turn meanwhile: wait for the next.
	}
}

// ready returns how long a call in chat would have to wait now (0: none),
// taking nothing: an interim update that must wait need not be prepared.
func (c *chatLimits) ready(chatID int64, group bool) time.Duration {
	now := time.Now()
	return max(untilToken(c.global, now), untilToken(c.limiter(chatID, group), now))
}

// queue takes the chat's call and one of the bot's if both are there now
// (returning nil), or else a place in the bot's queue, leaving the chat's.
func (c *chatLimits) queue(chat *rate.Limiter) *rate.Reservation {
	c.take.Lock()
	defer c.take.Unlock()
	now := time.Now()
	if chat.TokensAt(now) >= 1 && c.global.TokensAt(now) >= 1 {
		chat.AllowN(now, 1)
		c.global.AllowN(now, 1)
		return nil
	}
	return c.global.ReserveN(now, 1)
}

// notice takes one call for a best-effort note (a refusal, a busy notice) if it
// can be had without holding up any reply: the bot's budget must have more than
// editReserve calls to spare (so that no other chat's reply waits behind a
// note), and the notes' cap must have room. The chat's own budget may make the
// note wait, one call's worth of it at most (the note then costs only that
// chat's reply a slot). Otherwise it takes nothing and returns a RetryAfterError:
// the note is to be dropped, never queued.
func (c *chatLimits) notice(ctx context.Context, chatID int64, group bool) error {
	chat := c.limiter(chatID, group)
	patience := time.Duration(float64(time.Second) / float64(chat.Limit()))
	if wait := untilToken(chat, time.Now()); wait > patience {
		return &conversation.RetryAfterError{After: wait, Err: errNoteBudget}
	} else if !sleep(ctx, wait) {
		return ctx.Err()
	}
	return c.takeNow(errNoteBudget, editReserve, chat, c.notes)
}

// takeNow takes one call from the bot's budget, leaving reserve calls in it
// (with a negative reserve it takes none), and one from each of others, if all
// of them have it now; otherwise it takes nothing and returns a RetryAfterError
// of err and the longest wait.
func (c *chatLimits) takeNow(err error, reserve float64, others ...*rate.Limiter) error {
	c.take.Lock()
	defer c.take.Unlock()
	now := time.Now()
	var wait time.Duration
	if reserve >= 0 {
		wait = untilTokens(c.global, now, 1+reserve)
	}
	for _, l := range others {
		wait = max(wait, untilToken(l, now))
	}
	if wait > 0 {
		return &conversation.RetryAfterError{After: wait, Err: err}
	}
	if reserve >= 0 {
		c.global.AllowN(now, 1)
	}
	for _, l := range others {
		l.AllowN(now, 1)
	}
	return nil
}

// untilToken is how long from now until l has a call to give.
func untilToken(l *rate.Limiter, now time.Time) time.Duration {
	return untilTokens(l, now, 1)
}

// untilTokens is how long from now until l holds n calls.
func untilTokens(l *rate.Limiter, now time.Time, n float64) time.Duration {
	short := n - l.TokensAt(now)
	if short <= 0 {
		return 0
	}
	return time.Duration(short / float64(l.Limit()) * float64(time.Second))
}

// giveBack cancels a place in the bot's queue whose wait was cut short.
func (c *chatLimits) giveBack(r *rate.Reservation) {
	c.take.Lock()
	defer c.take.Unlock()
	r.CancelAt(time.Now())
}

var (
	errBudget     = &redactedError{msg: "edit budget spent"}
	errNoteBudget = &redactedError{msg: "no budget for a note now: dropped"}
)

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
