package conversation

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// finalTimeout bounds the delivery of a final text, counted from when it is
// handed over: long enough to wait out every retry-after of a busy platform
// (200 finals queued behind Slack's ~50 edits a minute take four minutes).
const finalTimeout = 10 * time.Minute

// pacer sits between the model stream and a Reply: the first text goes out at once,
// then at most one Update per interval with the latest text (intermediate texts are
// dropped, never queued), a retry-after from the platform delays the next call, and
// the final text is always delivered with Finish.
type pacer struct {
	reply Reply
	every time.Duration
	clock Clock
	log   *slog.Logger

	mu     sync.Mutex
	latest string

	wake     chan struct{} // a new latest text; capacity 1
	finished chan string   // the final text; closed loop
	done     chan error    // the result of Finish
}

func newPacer(r Reply, every time.Duration, c Clock, log *slog.Logger) *pacer {
	if every <= 0 {
		every = time.Second
	}
	return &pacer{
		reply:    r,
		every:    every,
		clock:    c,
		log:      log,
		wake:     make(chan struct{}, 1),
		finished: make(chan string, 1),
		done:     make(chan error, 1),
	}
}

// Set records the reply so far; it never blocks.
func (p *pacer) Set(text string) {
	p.mu.Lock()
	p.latest = text
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pacer) text() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latest
}

// Finish hands over the final text and waits until it is delivered (or ctx ends).
func (p *pacer) Finish(text string) error {
	p.finished <- text
	return <-p.done
}

// run is the pacer's loop; ctx bounds every platform call, including the final one.
func (p *pacer) run(ctx context.Context) {
	var next time.Time // earliest time of the next platform call
	sent := ""
	for {
		// With nothing new to show, wait for news; a text not shown yet (its update
		// was deferred or refused) is tried again at the next slot even if the
		// model sends nothing more for a while.
		if latest := p.text(); latest == "" || latest == sent {
			select {
			case final := <-p.finished:
				p.done <- p.deliver(ctx, nextFor(final, sent, next), final)
				return
			case <-ctx.Done():
				p.done <- p.deliver(ctx, next, <-p.finished)
				return
			case <-p.wake:
			}
		}
		if wait := next.Sub(p.clock.Now()); wait > 0 {
			select {
			case final := <-p.finished:
				p.done <- p.deliver(ctx, nextFor(final, sent, next), final)
				return
			case <-p.clock.After(wait):
			}
		}
		text := p.text()
		if text == "" || text == sent {
			continue
		}
		err := p.reply.Update(ctx, text)
		next = p.clock.Now().Add(p.every)
		if after, ok := RetryAfter(err); ok {
			next = p.clock.Now().Add(after)
			continue
		}
		if err != nil {
			p.log.WarnContext(ctx, "update reply", "err", err)
			continue
		}
		sent = text
	}
}

// nextFor is when the final text may go: at once when it is what the platform
// shows already (Finish changes nothing visible then), else at the next slot.
func nextFor(final, sent string, next time.Time) time.Time {
	if final == sent {
		return time.Time{}
	}
	return next
}

// deliver waits until next, then calls Finish, waiting again whenever the platform
// asks to, until the final text is delivered or finalTimeout passes.
func (p *pacer) deliver(ctx context.Context, next time.Time, final string) error {
	ctx, cancel := context.WithTimeout(ctx, finalTimeout)
	defer cancel()
	for {
		if wait := next.Sub(p.clock.Now()); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-p.clock.After(wait):
			}
		}
		err := p.reply.Finish(ctx, final)
		after, ok := RetryAfter(err)
		if !ok {
			return err
		}
		next = p.clock.Now().Add(after)
	}
}
