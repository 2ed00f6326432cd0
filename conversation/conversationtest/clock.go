// Package conversationtest has test doubles for the conversation package's
// interfaces: a clock driven by hand and a Reply that records every call.
package conversationtest

import (
	"slices"
	"sync"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
)

// Clock is a conversation.Clock whose time moves only by Advance.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*waiter
	changed chan struct{} // closed and replaced whenever waiters change
}

var _ conversation.Clock = (*Clock)(nil)

// waiter is a pending After (ch) or AfterFunc (f).
type waiter struct {
	at time.Time
	ch chan time.Time
	f  func()
	c  *Clock
}

// NewClock returns a Clock at a fixed instant.
func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), changed: make(chan struct{})}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After fires once the clock has been advanced by d.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, &waiter{at: c.now.Add(d), ch: ch})
	c.notify()
	return ch
}

// AfterFunc calls f in its own goroutine once the clock has been advanced by
// d; at once (still in its own goroutine) when d is not positive.
func (c *Clock) AfterFunc(d time.Duration, f func()) conversation.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &waiter{at: c.now.Add(d), f: f, c: c}
	if d <= 0 {
		go f()
		return w
	}
	c.waiters = append(c.waiters, w)
	c.notify()
	return w
}

// Stop cancels an AfterFunc that has not fired; it reports whether it did.
func (w *waiter) Stop() bool {
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remove(w)
}

// Reset makes an AfterFunc fire once the clock has been advanced by d from
// now (at once, in its own goroutine, when d is not positive); it reports
// whether it had not fired yet.
func (w *waiter) Reset(d time.Duration) bool {
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	pending := c.remove(w)
	w.at = c.now.Add(d)
	if d <= 0 {
		go w.f()
		return pending
	}
	c.waiters = append(c.waiters, w)
	c.notify()
	return pending
}

// remove takes w off the pending timers; c.mu is held.
func (c *Clock) remove(w *waiter) bool {
	i := slices.Index(c.waiters, w)
	if i < 0 {
		return false
	}
	c.waiters = slices.Delete(c.waiters, i, i+1)
	c.notify()
	return true
}

// Advance moves the clock by d and fires the timers that are due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		if w.f != nil {
			go w.f()
		} else {
			w.ch <- c.now
		}
	}
	c.waiters = kept
	c.notify()
}

// Pending reports whether a timer waits for the clock to move.
func (c *Clock) Pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters) > 0
}

// WaitForWaiters blocks until at least n timers are pending or the timeout (real
// time) passes; it reports whether they are.
func (c *Clock) WaitForWaiters(n int, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		ok, changed := len(c.waiters) >= n, c.changed
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-deadline:
			return false
		}
	}
}

func (c *Clock) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}
