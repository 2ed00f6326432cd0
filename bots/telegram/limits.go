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
	mu             sync.Mutex
	chats          map[int64]*rate.Limiter
}

// Telegram lets a bot send about 30 messages a second over all chats; the bot
// keeps under it with a bucket of globalRate and globalBurst (at most 30 calls
// in any second).
const (
	globalRate  = 25
	globalBurst = 5
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

// limiter returns the budget of one chat; c.mu is held.
func (c *chatLimits) limiter(chatID int64, group bool) *rate.Limiter {
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

// wait takes one call from the bot's budget and from the chat's. An interim
// update that would have to wait is skipped with a RetryAfterError (the pacer
// sends a later text instead); a final one waits its turn.
//
// An interim edit of a message already shown also leaves editReserve calls of the
// bot's budget to first texts and final ones: when the budget is short, a user who
// sees nothing yet goes first.
func (c *chatLimits) wait(ctx context.Context, chatID int64, group, final, shown bool) error {
	res, delay, err := c.reserve(chatID, group, final, shown)
	if err != nil || delay <= 0 {
		return err
	}
	if !sleep(ctx, delay) {
		c.giveBack(res)
		return ctx.Err()
	}
	return nil
}

// ready returns a RetryAfterError, taking nothing, when a call in chat would
// have to wait now: an interim update then need not be prepared.
func (c *chatLimits) ready(chatID int64, group bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if delay := max(tokenWait(c.global, now), tokenWait(c.limiter(chatID, group), now)); delay > 0 {
		return &conversation.RetryAfterError{After: delay, Err: errBudget}
	}
	return nil
}

// tokenWait is how long l needs to have a call's token from now.
func tokenWait(l *rate.Limiter, now time.Time) time.Duration {
	tokens := l.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(l.Limit()) * float64(time.Second))
}

// reserve takes one call from the bot's budget and from the chat's, and says
// how long to wait for it; an interim update that would have to wait takes
// nothing and gets a RetryAfterError. Reservations and their cancellations are
// made under c.mu: a reservation cancelled after another one was made is not
// given back in full (rate.Reservation.CancelAt), so that a crowd of chats
// trying at once would otherwise leak the budget until no first text went out.
func (c *chatLimits) reserve(chatID int64, group, final, shown bool) ([]*rate.Reservation, time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if shown && !final {
		if err := c.spare(now); err != nil {
			return nil, 0, err
		}
	}
	res := []*rate.Reservation{c.global.ReserveN(now, 1), c.limiter(chatID, group).ReserveN(now, 1)}
	delay := delayOf(res, now)
	if delay > 0 && !final {
		cancelAt(res, now)
		return nil, 0, &conversation.RetryAfterError{After: delay, Err: errBudget}
	}
	return res, delay, nil
}

// notice takes one call for a best-effort note (a refusal, a busy notice) if it
// can be had without holding up any reply: the bot's budget must have more than
// editReserve calls to spare now (so that no other chat's reply waits behind a
// note), and the notes' cap must have room now. The chat's own budget may make
// the note wait, one call's worth of it at most (the note then costs only that
// chat's reply a slot). Otherwise it takes nothing and returns a RetryAfterError:
// the note is to be dropped, never queued.
func (c *chatLimits) notice(ctx context.Context, chatID int64, group bool) error {
	res, delay, err := c.reserveNote(chatID, group)
	if err != nil {
		return err
	}
	if !sleep(ctx, delay) {
		c.giveBack(res)
		return ctx.Err()
	}
	return nil
}

// reserveNote takes the calls of a note, or nothing, under c.mu (see reserve).
func (c *chatLimits) reserveNote(chatID int64, group bool) ([]*rate.Reservation, time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if err := c.spare(now); err != nil {
		return nil, 0, err
	}
	res := []*rate.Reservation{c.notes.ReserveN(now, 1), c.global.ReserveN(now, 1)}
	if delay := delayOf(res, now); delay > 0 {
		cancelAt(res, now)
		return nil, 0, &conversation.RetryAfterError{After: delay, Err: errNoteBudget}
	}
	chat := c.limiter(chatID, group)
	res = append(res, chat.ReserveN(now, 1))
	delay := delayOf(res, now)
	if patience := time.Duration(float64(time.Second) / float64(chat.Limit())); delay > patience {
		cancelAt(res, now)
		return nil, 0, &conversation.RetryAfterError{After: delay, Err: errNoteBudget}
	}
	return res, delay, nil
}

// giveBack cancels reservations that were not used (see reserve).
func (c *chatLimits) giveBack(res []*rate.Reservation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range res {
		r.Cancel()
	}
}

// spare returns a RetryAfterError unless the bot's budget has more than
// editReserve calls now.
func (c *chatLimits) spare(now time.Time) error {
	if spare := c.global.TokensAt(now) - editReserve; spare < 1 {
		after := time.Duration((1 - spare) / globalRate * float64(time.Second))
		return &conversation.RetryAfterError{After: after, Err: errBudget}
	}
	return nil
}

// delayOf is the longest wait of reservations made at now.
func delayOf(res []*rate.Reservation, now time.Time) time.Duration {
	var delay time.Duration
	for _, r := range res {
		delay = max(delay, r.DelayFrom(now))
	}
	return delay
}

// cancelAt gives back reservations made at now.
func cancelAt(res []*rate.Reservation, now time.Time) {
	for _, r := range res {
		r.CancelAt(now)
	}
}

var (
	errBudget     = &redactedError{msg: "edit budget spent"}
	errNoteBudget = &redactedError{msg: "no budget for a note now: dropped"}
)

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
