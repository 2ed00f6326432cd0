package conversation

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"
)

// ErrRateLimited marks a model error caused by the provider's rate limit (HTTP
// 429 rate_limit_exceeded): the Model wraps it in the errors it returns, so that
// the engine can lower its limit on concurrent calls.
var ErrRateLimited = errors.New("rate limited by the model provider")

// The adaptive limit on concurrent model calls (see limiter).
const (
	// defaultInitialConcurrent is where the limit starts, unless the upper bound
	// is lower.
	defaultInitialConcurrent = 64
	// backoffRatio is what the limit is multiplied by when the provider pushes back.
	backoffRatio = 0.9
	// latencyTolerance: the recent time to first token past this multiple of its
	// long-run level (and past it by at least minLatencyGrowth) is congestion.
	latencyTolerance = 2.0
	minLatencyGrowth = 500 * time.Millisecond
	// recentWeight and longWeight are the weights of a new sample in the recent
	// and the long-run moving averages of the time to first token.
	recentWeight = 0.2  // about the last 5 calls
	longWeight   = 0.01 // about the last 100
	// minLatencySamples is how many samples the averages need before latency
	// counts at all.
	minLatencySamples = 10
)

// limiter bounds the model calls running at once over all chats with a limit
// that adapts, additive increase and multiplicative decrease (AIMD, as Netflix's
// concurrency-limits does it):
//
//   - the limit starts high (initial) and never passes max (the owner's
//     openai.max_concurrent_requests) nor falls under 1;
//   - it is multiplied by backoffRatio when a call fails because the provider
//     rate-limited it (ErrRateLimited), or when the recent time to first token
//     has grown past latencyTolerance times its long-run level; at most once per
//     round of calls: a call started before the last cut causes no further cut,
//     so 50 calls failing together cut the limit once, not 50 times;
//   - it grows by one after each call that succeeded while at least half the
//     limit was in use (an idle limit proves nothing).
//
// Calls over the limit wait in order of arrival.
type limiter struct {
	max float64

	mu       sync.Mutex
	limit    float64
	inFlight int
	waiting  []chan struct{} // closed when granted, oldest first
	round    uint64          // advanced at each cut

	samples      int
	recent, long float64 // moving averages of the time to first token, seconds
}

// newLimiter returns a limiter starting at initial (default: the smaller of 64
// and max) and bounded by max.
func newLimiter(initial, max int) *limiter {
	if initial <= 0 {
		initial = min(defaultInitialConcurrent, max)
	}
	return &limiter{max: float64(max), limit: float64(min(initial, max))}
}

// permit is one model call's place under the limit.
type permit struct {
	l     *limiter
	round uint64
}

// acquire waits until a call may start, or ctx ends.
func (l *limiter) acquire(ctx context.Context) (*permit, error) {
	l.mu.Lock()
	if len(l.waiting) == 0 && l.inFlight < l.allowed() {
		l.inFlight++
		p := &permit{l: l, round: l.round}
		l.mu.Unlock()
		return p, nil
	}
	ch := make(chan struct{})
	l.waiting = append(l.waiting, ch)
	l.mu.Unlock()
	select {
	case <-ch:
		l.mu.Lock()
		defer l.mu.Unlock()
		return &permit{l: l, round: l.round}, nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-ch: // granted meanwhile: hand the place on
		l.inFlight--
		l.grant()
	default:
		for i, w := range l.waiting {
			if w == ch {
				l.waiting = append(l.waiting[:i], l.waiting[i+1:]...)
				break
			}
		}
	}
	return nil, ctx.Err()
}

// allowed is the limit as a number of calls; l.mu is held.
func (l *limiter) allowed() int { return max(int(l.limit), 1) }

// grant lets waiting calls in while the limit has room; l.mu is held.
func (l *limiter) grant() {
	for len(l.waiting) > 0 && l.inFlight < l.allowed() {
		close(l.waiting[0])
		l.waiting = l.waiting[1:]
		l.inFlight++
	}
}

// release ends the call and adapts the limit to how it went: firstToken is the
// time from its start to its first token (0: none came), err its error.
func (p *permit) release(firstToken time.Duration, err error) {
	l := p.l
	l.mu.Lock()
	defer l.mu.Unlock()
	busy := l.inFlight*2 >= l.allowed()
	l.inFlight--
	switch {
	case errors.Is(err, ErrRateLimited):
		l.cut(p.round)
	case firstToken > 0 && l.congested(firstToken):
		l.cut(p.round)
	case err == nil && busy:
		l.limit = math.Min(l.max, l.limit+1)
	}
	l.grant()
}

// cut lowers the limit, once per round; l.mu is held.
func (l *limiter) cut(round uint64) {
	if round != l.round {
		return // the cut for this round was made
	}
	l.limit = math.Max(1, math.Floor(l.limit*backoffRatio))
	l.round++
}

// congested adds a time to first token to the averages and reports whether the
// recent one has grown well past the long-run one; l.mu is held.
func (l *limiter) congested(d time.Duration) bool {
	s := d.Seconds()
	if l.samples == 0 {
		l.recent, l.long = s, s
	}
	l.samples++
	l.recent += recentWeight * (s - l.recent)
	l.long += longWeight * (s - l.long)
	return l.samples >= minLatencySamples && l.recent > latencyTolerance*l.long &&
		l.recent-l.long >= minLatencyGrowth.Seconds()
}

// state returns the limit and the calls in flight.
func (l *limiter) state() (limit, inFlight int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.allowed(), l.inFlight
}

// firstTokenTimer measures a model call's time to its first token on the
// engine's clock; the call's output callbacks tell it of each token.
type firstTokenTimer struct {
	clock Clock
	start time.Time
	first time.Duration // 0 until the first token
}

// begin starts measuring a call.
func (t *firstTokenTimer) begin(c Clock) {
	*t = firstTokenTimer{clock: c, start: c.Now()}
}

// seen notes a token; the first one sets the time.
func (t *firstTokenTimer) seen() {
	if t.first == 0 {
		t.first = max(t.clock.Now().Sub(t.start), time.Nanosecond)
	}
}

// elapsed is the time to the first token, 0 if none came.
func (t *firstTokenTimer) elapsed() time.Duration { return t.first }

// ModelConcurrency reports the adaptive limit on concurrent model calls and the
// calls running now (for /metrics).
func (e *Engine) ModelConcurrency() (limit, inFlight int) { return e.calls.state() }
