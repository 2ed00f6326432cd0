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
//
// It has no goroutine of its own: Changed arms a timer (Clock.AfterFunc) for the
// next slot, the timer's call composes the text (only then) and sends it, and
// Finish delivers the final text in its caller's goroutine. While a reply waits
// for the model, a pacer is a few words of heap.
type pacer struct {
	reply Reply
	every time.Duration
	clock Clock
	log   *slog.Logger
	ctx   context.Context // bounds every platform call, including the final one

	src textSource // the text to show now; asked by one send at a time

	mu      sync.Mutex
	sent    string    // the text the platform shows
	next    time.Time // earliest time of the next platform call
	timer   Timer     // the pacer's one timer, made at the first send
	armed   bool      // timer will call send
	dirty   bool      // the text changed since the last send composed it
	sending bool      // a send is composing or in Update
	final   bool      // Finish has begun: no more updates
	idle    sync.Cond // on mu: signalled when a send ends
}

// textSource gives the text a pacer shows. The pacer asks for it only when an
// update goes out, and from one send at a time, so compose must only be safe
// against its source's writers.
type textSource interface {
	compose() string
}

// newPacer returns a pacer for r whose platform calls end with ctx, showing
// what src composes (nil: only Finish is called).
func newPacer(ctx context.Context, r Reply, every time.Duration, c Clock, log *slog.Logger, src textSource) *pacer {
	p := &pacer{}
	p.init(ctx, r, every, c, log, src)
	return p
}

// init makes p a new pacer, as newPacer does, in place.
func (p *pacer) init(ctx context.Context, r Reply, every time.Duration, c Clock, log *slog.Logger, src textSource) {
	if every <= 0 {
		every = time.Second
	}
	*p = pacer{reply: r, every: every, clock: c, log: log, ctx: ctx, src: src}
	p.idle.L = &p.mu
}

// Changed says that the text to show has changed; it never blocks on the
// platform. A send is armed for the next slot unless one is armed or in flight
// already (that one shows the newest text, or arms the next send).
func (p *pacer) Changed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dirty = true
	p.arm()
}

// arm schedules a send at the next slot; mu is held.
func (p *pacer) arm() {
	if p.final || p.sending || p.armed || p.ctx.Err() != nil {
		return
	}
	p.armed = true
	wait := p.next.Sub(p.clock.Now())
	if p.timer == nil {
		p.timer = p.clock.AfterFunc(wait, p.send)
		return
	}
	p.timer.Reset(wait)
}

// send shows the latest text, unless the platform shows it already. A text
// that changed meanwhile, or that the platform refused, arms the next send.
func (p *pacer) send() {
	p.mu.Lock()
	p.armed = false
	if p.final || p.ctx.Err() != nil {
		p.idle.Broadcast()
		p.mu.Unlock()
		return
	}
	p.sending, p.dirty = true, false
	p.mu.Unlock()

	text := p.src.compose()
	shown := text == "" || text == p.sent
	var err error
	if !shown {
		err = p.reply.Update(p.ctx, text)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	p.sending = false
	p.idle.Broadcast()
	if !shown {
		p.sendDone(text, err)
	}
	if p.dirty || err != nil {
		p.arm()
	}
}

// sendDone records an Update's outcome: the next slot, and the text shown.
func (p *pacer) sendDone(text string, err error) {
	p.next = p.clock.Now().Add(p.every)
	if after, ok := RetryAfter(err); ok {
		p.next = p.clock.Now().Add(after)
		return
	}
	if err != nil {
		p.log.WarnContext(p.ctx, "update reply", "err", err)
		return
	}
	p.sent = text
}

// Finish hands over the final text and delivers it: after the send in flight,
// if any, at the next slot (at once when the platform shows that text already),
// waiting out every retry-after until finalTimeout. It returns Finish's error.
func (p *pacer) Finish(text string) error {
	p.mu.Lock()
	p.final = true
	if p.armed && p.timer.Stop() {
		p.armed = false
	}
	for p.sending || p.armed {
		p.idle.Wait()
	}
	next := p.next
	if text == p.sent {
		next = time.Time{}
	}
	p.mu.Unlock()
	return p.deliver(next, text)
}

// deliver waits until next, then calls Finish, waiting again whenever the platform
// asks to, until the final text is delivered or finalTimeout passes.
func (p *pacer) deliver(next time.Time, final string) error {
	ctx, cancel := context.WithTimeout(p.ctx, finalTimeout)
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
