package slack

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// budget paces the edits (chat.update, chat.appendStream) of one workspace: a
// token bucket below Slack's limit, shared by all the workspace's streams, and a
// pause for everyone when Slack answers ratelimited anyway.
type budget struct {
	lim *rate.Limiter

	mu    sync.Mutex
	until time.Time // Slack asked to wait until then
}

func newBudget(perMinute float64, burst int) *budget {
	return &budget{lim: rate.NewLimiter(rate.Limit(perMinute/60), burst)}
}

// paused returns how long Slack asked everyone to wait still.
func (b *budget) paused() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return time.Until(b.until)
}

// tryTake takes one edit if the budget has room within patience, waiting for it;
// otherwise it takes nothing and returns how long to wait.
func (b *budget) tryTake(ctx context.Context, patience time.Duration) (time.Duration, error) {
	if d := b.paused(); d > 0 {
		return d, nil
	}
	r := b.lim.Reserve()
	d := r.Delay()
	if d > patience {
		r.Cancel()
		return d, nil
	}
	if err := sleep(ctx, d); err != nil {
		r.Cancel()
		return 0, err
	}
	return 0, nil
}

// take waits for its turn and takes one edit. Its reservation is kept while it
// waits, so final texts are served in order and never starved by updates.
func (b *budget) take(ctx context.Context) error {
	for {
		d := b.paused()
		if d <= 0 {
			break
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	r := b.lim.Reserve()
	if err := sleep(ctx, r.Delay()); err != nil {
		r.Cancel()
		return err
	}
	return nil
}

// pause makes every stream of the workspace wait d, after Slack said ratelimited.
func (b *budget) pause(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if until := time.Now().Add(d); until.After(b.until) {
		b.until = until
	}
}

// budgets holds one budget per workspace.
type budgets struct {
	perMinute float64
	burst     int

	mu sync.Mutex
	m  map[string]*budget
}

func newBudgets(perMinute float64, burst int) *budgets {
	return &budgets{perMinute: perMinute, burst: burst, m: map[string]*budget{}}
}

// of returns the budget of workspace team.
func (bs *budgets) of(team string) *budget {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.m[team]
	if b == nil {
		b = newBudget(bs.perMinute, bs.burst)
		bs.m[team] = b
	}
	return b
}
