package conversation

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

var (
	errLimited = fmt.Errorf("model: %w", ErrRateLimited)
	cancelled  = func() context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}()
)

// take acquires n permits, failing the test if one has to wait.
func take(t *testing.T, l *limiter, n int) []*permit {
	t.Helper()
	ps := make([]*permit, n)
	for i := range ps {
		p, err := l.acquire(cancelled) // a call that would have to wait fails at once
		if err != nil {
			limit, inFlight := l.state()
			t.Fatalf("call %d of %d had to wait (limit %d, in flight %d)", i+1, n, limit, inFlight)
		}
		ps[i] = p
	}
	return ps
}

// full reports whether one more call would have to wait.
func full(l *limiter) bool {
	p, err := l.acquire(cancelled)
	if err == nil {
		p.release(0, context.Canceled)
	}
	return err != nil
}

func TestLimiterStartsHighWithinTheBound(t *testing.T) {
	for _, c := range []struct{ initial, max, want int }{
		{0, 256, 64}, {0, 16, 16}, {10, 256, 10}, {500, 100, 100},
	} {
		if got, _ := newLimiter(c.initial, c.max).state(); got != c.want {
			t.Errorf("newLimiter(%d, %d) starts at %d, want %d", c.initial, c.max, got, c.want)
		}
	}
}

// Calls beyond the limit wait, in order of arrival; a waiter that gives up
// leaves its place to the next.
func TestLimiterQueuesInOrder(t *testing.T) {
	l := newLimiter(2, 2)
	ps := take(t, l, 2)
	if !full(l) {
		t.Fatal("a third call did not wait under a limit of 2")
	}
	got := make(chan int, 3)
	gaveUp, giveUp := context.WithCancel(context.Background())
	for i := range 3 {
		ctx := context.Background()
		if i == 1 {
			ctx = gaveUp
		}
		go func() {
			if p, err := l.acquire(ctx); err == nil {
				got <- i
				p.release(0, context.Canceled)
			}
		}()
		for { // wait until it is queued, so that the order is known
			l.mu.Lock()
			n := len(l.waiting)
			l.mu.Unlock()
			if n == i+1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	giveUp()
	for {
		l.mu.Lock()
		n := len(l.waiting)
		l.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ps[0].release(0, context.Canceled)
	if i := <-got; i != 0 {
		t.Errorf("call %d went first, want 0", i)
	}
	ps[1].release(0, context.Canceled)
	if i := <-got; i != 2 {
		t.Errorf("call %d went second, want 2 (1 gave up)", i)
	}
}

// 50 calls rate-limited together cut the limit once (64 → 57), not 50 times;
// calls started after the cut can cut it again; successes under load grow it
// by one each, up to the bound.
func TestLimiterBacksOffOncePerRound(t *testing.T) {
	l := newLimiter(64, 80)
	ps := take(t, l, 50)
	for _, p := range ps {
		p.release(0, errLimited)
	}
	if got, _ := l.state(); got != 57 {
		t.Fatalf("after 50 rate-limited calls of one round the limit is %d, want 57", got)
	}
	ps = take(t, l, 40)
	ps[0].release(0, errLimited)
	ps[1].release(0, errLimited)
	if got, _ := l.state(); got != 51 {
		t.Fatalf("after a second round the limit is %d, want 51", got)
	}
	for _, p := range ps[2:] { // 38 successes, one after the other
		p.release(time.Second, nil)
	}
	// Each grows the limit while at least half of it is in use: from 38 in
	// flight and a limit of 51 that holds for 9 of them (30 in flight, limit 59).
	if got, _ := l.state(); got != 60 {
		t.Errorf("after 38 successes the limit is %d, want 60", got)
	}
	ps = take(t, l, 60)
	for _, p := range ps {
		p.release(time.Second, nil)
	}
	if got, _ := l.state(); got != 80 {
		t.Errorf("after many successes under load the limit is %d, want the bound 80", got)
	}
}

// Other failures (the user's /stop, a server error) neither cut nor grow the
// limit, nor do successes with the limit mostly idle.
func TestLimiterIgnoresOtherOutcomes(t *testing.T) {
	l := newLimiter(10, 100)
	for _, err := range []error{context.Canceled, errors.New("model server: 500")} {
		take(t, l, 1)[0].release(0, err)
	}
	take(t, l, 1)[0].release(time.Second, nil) // 1 in flight of 10: idle
	if got, _ := l.state(); got != 10 {
		t.Errorf("limit %d, want 10 unchanged", got)
	}
}

// When the time to first token grows well past its long-run level, the limit is
// cut (once per round); a steady latency, however high, cuts nothing.
func TestLimiterBacksOffOnLatencyGrowth(t *testing.T) {
	l := newLimiter(20, 20)
	for range 5 { // rounds of 20 calls, all at 2 s to the first token
		for _, p := range take(t, l, 20) {
			p.release(2*time.Second, nil)
		}
	}
	if got, _ := l.state(); got != 20 {
		t.Fatalf("a steady 2 s cut the limit to %d", got)
	}
	for _, p := range take(t, l, 20) { // then 10 s: the provider queues
		p.release(10*time.Second, nil)
	}
	if got, _ := l.state(); got != 18 {
		t.Errorf("after a round at 10 s the limit is %d, want 18 (one cut)", got)
	}
	for _, p := range take(t, l, 18) {
		p.release(10*time.Second, nil)
	}
	if got, _ := l.state(); got != 16 {
		t.Errorf("after a second round at 10 s the limit is %d, want 16", got)
	}
}
