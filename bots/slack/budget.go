package slack

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/chatbot-dev/chatbot/conversation"
)

// Slack limits each Web API method per workspace (docs.slack.dev/apis/web-api/
// rate-limits and the methods' pages). The adapter keeps below each, so that
// Slack never has to answer ratelimited: token buckets where a steady pace
// matters (their burst plus a minute's refill stays under the minute's limit),
// sliding windows where many calls may go at once (the stream starts and stops).
const (
	// chat.postMessage: one message a second per channel after a short burst
	// (Config.PostEvery, PostBurst; each call that waits for its turn goes
	// postMargin late, against the network's jitter), and several hundred a
	// minute over the workspace.
	postMargin         = 100 * time.Millisecond
	postsPerMinute     = 240
	postWorkspaceBurst = 40
	// chat.appendStream is Tier 4 (100 a minute).
	appendsPerMinute = 90
	appendBurst      = 8
	// chat.startStream and chat.stopStream are Tier 2 (20 a minute): 19 of
	// each in any 61 seconds.
	streamWindowCalls = 19
	streamWindow      = 61 * time.Second
	// agents.sessions.setStatus is Tier 3 (50 a minute): 48 in any 61
	// seconds, of which at most half open sessions, so that each opened one
	// finds room to be closed.
	sessionWindowCalls = 48
	sessionOpenCalls   = 24
	// assistant.threads.setSuggestedPrompts and setTitle are Tier 4.
	assistPerMinute = 90
	assistBurst     = 5
	// nativeOffFor is how long a workspace edits in place after native
	// streaming failed there for a reason that does not pass by itself.
	nativeOffFor = 30 * time.Minute
	// maxChannelBudgets bounds the per-channel budgets kept; beyond, they
	// start over (a crude bound, as users.info's cache).
	maxChannelBudgets = 10000
)

// limiter paces one Web API method: take waits for a call's turn, tryTake
// takes one only if there is room within patience, pause makes every caller
// wait after Slack answered ratelimited anyway.
type limiter interface {
	tryTake(ctx context.Context, patience time.Duration) (time.Duration, error)
	take(ctx context.Context) error
	pause(d time.Duration)
	paused() time.Duration
	// hold takes one call now if there is room, with a func that gives it
	// back; else it returns the wait.
	hold() (func(), time.Duration)
}

// budget is a token bucket below Slack's limit of a method, shared by all the
// workspace's replies, and a pause for everyone when Slack answers ratelimited.
type budget struct {
	lim *rate.Limiter
	slackWait
}

func newBudget(perMinute float64, burst int) *budget {
	return &budget{lim: rate.NewLimiter(rate.Limit(perMinute/60), burst)}
}

// tryTake takes one call if the budget has room within patience, waiting for
// it; otherwise it takes nothing and returns how long to wait.
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

// take waits for its turn and takes one call. Its reservation is kept while it
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

func (b *budget) hold() (func(), time.Duration) {
	if d := b.paused(); d > 0 {
		return nil, d
	}
	r := b.lim.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return nil, d
	}
	return r.Cancel, 0
}

// slackWait is the time Slack asked a limiter's calls to wait until (a
// ratelimited answer's Retry-After), under the limiter's mutex.
type slackWait struct {
	mu    sync.Mutex
	until time.Time
}

// pause makes every caller wait d, after Slack said ratelimited.
func (s *slackWait) pause(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until := time.Now().Add(d); until.After(s.until) {
		s.until = until
	}
}

// paused returns how long Slack asked everyone to wait still.
func (s *slackWait) paused() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Until(s.until)
}

// tryReserve takes a call with reserve at once or after a wait of at most
// patience; a longer wait is returned instead of waited.
func tryReserve(ctx context.Context, reserve func() time.Duration, patience time.Duration) (time.Duration, error) {
	d := reserve()
	if d == 0 {
		return 0, nil
	}
	if d > patience {
		return d, nil
	}
	if err := sleep(ctx, d); err != nil {
		return 0, err
	}
	return 0, takeReserved(ctx, reserve) // someone may have taken the room meanwhile
}

// takeReserved waits until reserve takes a call, or ctx ends.
func takeReserved(ctx context.Context, reserve func() time.Duration) error {
	for {
		d := reserve()
		if d == 0 {
			return nil
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// window allows at most limit calls in any span of time: many at once, as
// long as the span's count stays below Slack's (a sliding log of the calls).
type window struct {
	limit int
	span  time.Duration

	slackWait             // mu guards at too
	at        []time.Time // the calls within the span, oldest first
}

func (w *window) tryTake(ctx context.Context, patience time.Duration) (time.Duration, error) {
	return tryReserve(ctx, w.reserve, patience)
}

func (w *window) take(ctx context.Context) error { return takeReserved(ctx, w.reserve) }

func newWindow(limit int, span time.Duration) *window {
	return &window{limit: limit, span: span}
}

// reserve takes a call now if the window has room, else returns the wait.
func (w *window) reserve() time.Duration {
	_, d := w.reserveAt()
	return d
}

// reserveAt takes a call now if the window has room and returns its time,
// else returns the wait.
func (w *window) reserveAt() (time.Time, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if d := w.until.Sub(now); d > 0 {
		return now, d
	}
	for len(w.at) > 0 && now.Sub(w.at[0]) >= w.span {
		w.at = w.at[1:]
	}
	if len(w.at) < w.limit {
		w.at = append(w.at, now)
		return now, 0
	}
	return now, max(w.at[0].Add(w.span).Sub(now), time.Millisecond)
}

func (w *window) hold() (func(), time.Duration) {
	taken, d := w.reserveAt()
	if d > 0 {
		return nil, d
	}
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for i := len(w.at) - 1; i >= 0; i-- {
			if w.at[i] == taken {
				w.at = append(w.at[:i], w.at[i+1:]...)
				return
			}
		}
	}, 0
}

// paced allows burst calls at once, then one every period, as Slack's own
// token bucket of the method does (chat.postMessage in one channel), but a call
// that needs a token refilled since the last one waits margin longer: a call
// reaching Slack a little earlier than it left (the network's jitter) still
// finds its token, the burst goes at once, and the lag behind Slack's floor
// stays margin however many calls queue (a slower pace would fall further
// behind with each).
type paced struct {
	every  time.Duration
	burst  float64
	margin time.Duration

	slackWait           // mu guards tokens and last too
	tokens    float64   // as of last
	last      time.Time // the last call
}

func (p *paced) tryTake(ctx context.Context, patience time.Duration) (time.Duration, error) {
	return tryReserve(ctx, p.reserve, patience)
}

func (p *paced) take(ctx context.Context) error { return takeReserved(ctx, p.reserve) }

func newPaced(every time.Duration, burst int, margin time.Duration) *paced {
	return &paced{every: every, burst: float64(max(burst, 1)), margin: margin}
}

// reserve takes a call now if the bucket allows it, else returns the wait.
func (p *paced) reserve() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if d := p.until.Sub(now); d > 0 {
		return d
	}
	if p.last.IsZero() {
		p.tokens, p.last = p.burst, now
	}
	refill := func(d time.Duration) float64 {
		return math.Min(p.burst, p.tokens+max(d, 0).Seconds()/p.every.Seconds())
	}
	if refill(now.Sub(p.last)-p.margin) < 1 { // only what had refilled margin ago counts
		wait := p.last.Add(p.margin + time.Duration((1-p.tokens)*float64(p.every))).Sub(now)
		return max(wait, time.Millisecond)
	}
	p.tokens, p.last = refill(now.Sub(p.last))-1, now
	return 0
}

func (p *paced) hold() (func(), time.Duration) {
	if d := p.reserve(); d > 0 {
		return nil, d
	}
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.tokens = math.Min(p.burst, p.tokens+1)
	}, 0
}

// errNoRoom is why a call was not made now: its method's budget is spent.
var errNoRoom = errors.New("no room in the workspace's budget of the method")

// spend takes one call from lim: a final text waits its turn; anything else
// waits up to patience, else gets a RetryAfterError (and the pacer tries again
// later with the latest text).
func spend(ctx context.Context, lim limiter, final bool, patience time.Duration) error {
	if final {
		return lim.take(ctx)
	}
	d, err := lim.tryTake(ctx, patience)
	if err != nil {
		return err
	}
	if d > 0 {
		return &conversation.RetryAfterError{After: d, Err: errNoRoom}
	}
	return nil
}

// spendAll takes one call from each of lims, all or none: a call that needs
// room in several budgets (a post: its channel's and the workspace's) does not
// spend one when another has none.
func spendAll(ctx context.Context, final bool, lims ...limiter) error {
	if final {
		for _, l := range lims {
			if err := l.take(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	var undo []func()
	for _, l := range lims {
		cancel, d := l.hold()
		if d > 0 {
			for _, u := range undo {
				u()
			}
			return &conversation.RetryAfterError{After: d, Err: errNoRoom}
		}
		undo = append(undo, cancel)
	}
	return nil
}

// channelBudgets are the per-channel limits of one channel.
type channelBudgets struct {
	posts  *paced // chat.postMessage
	status *paced // assistant.threads.setStatus
}

// workspace is the state the adapter keeps per Slack workspace: the budgets
// of the methods its replies share, and which of Slack's optional powers work
// there.
type workspace struct {
	update   *budget // chat.update (Tier 3)
	appends  *budget // chat.appendStream (Tier 4)
	starts   *window // chat.startStream (Tier 2)
	stops    *window // chat.stopStream (Tier 2)
	posts    *budget // chat.postMessage over the workspace
	sessions *window // agents.sessions.setStatus (Tier 3)
	// sessionOpens bounds the calls that open a session to half the window.
	sessionOpens *window
	prompts      *budget // assistant.threads.setSuggestedPrompts (Tier 4)
	titles       *budget // assistant.threads.setTitle (Tier 4)

	postEvery time.Duration // chat.postMessage and setStatus per channel
	postBurst int

	mu          sync.Mutex
	channels    map[string]*channelBudgets
	threads     map[string]*threadState // channel:thread → its live replies
	nativeUntil time.Time               // native streaming off until then
	noStatus    bool                    // assistant.threads.setStatus refused here
	noSessions  bool                    // agents.sessions.setStatus refused here (not an agent app)
}

// channel returns the per-channel budgets of channel.
func (w *workspace) channel(id string) *channelBudgets {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.channels[id]
	if c == nil {
		if len(w.channels) >= maxChannelBudgets {
			clear(w.channels)
		}
		c = &channelBudgets{posts: newPaced(w.postEvery, w.postBurst, postMargin),
			status: newPaced(w.postEvery, w.postBurst, postMargin)}
		w.channels[id] = c
	}
	return c
}

// threadState is what a thread's live replies share: the agent session and
// the thinking state belong to the thread, not to one reply.
type threadState struct {
	live    int  // replies started and not ended
	session bool // its agent session is processing, set by one of them
}

// enterThread counts a reply starting in a thread and reports whether it is
// the only live one there (the one to show the thread's state).
func (w *workspace) enterThread(channel, thread string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := channel + ":" + thread
	st := w.threads[key]
	if st == nil {
		st = &threadState{}
		w.threads[key] = st
	}
	st.live++
	return st.live == 1
}

// leaveThread counts a reply ending and reports whether it was the last live
// one of a thread whose agent session is still processing (to be closed).
func (w *workspace) leaveThread(channel, thread string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := channel + ":" + thread
	st := w.threads[key]
	if st == nil {
		return false
	}
	if st.live--; st.live > 0 {
		return false
	}
	delete(w.threads, key)
	return st.session
}

// sessionOpened and sessionClosed record the state of a thread's agent session.
func (w *workspace) sessionOpened(channel, thread string) { w.setSession(channel, thread, true) }
func (w *workspace) sessionClosed(channel, thread string) { w.setSession(channel, thread, false) }

func (w *workspace) setSession(channel, thread string, on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if st := w.threads[channel+":"+thread]; st != nil {
		st.session = on
	}
}

// native reports whether native streaming is on in the workspace now.
func (w *workspace) native() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Now().After(w.nativeUntil)
}

// nativeOff turns native streaming off in the workspace for a while.
func (w *workspace) nativeOff() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nativeUntil = time.Now().Add(nativeOffFor)
}

// flag reads or sets one of the workspace's switches.
func (w *workspace) flag(f *bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return *f
}

func (w *workspace) set(f *bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	*f = true
}

// workspaces holds the state of each workspace.
type workspaces struct {
	perMinute float64 // chat.update budget
	burst     int
	postEvery time.Duration // chat.postMessage per channel
	postBurst int

	mu sync.Mutex
	m  map[string]*workspace
}

func newWorkspaces(cfg Config) *workspaces {
	return &workspaces{perMinute: cfg.UpdatesPerMinute, burst: cfg.UpdateBurst,
		postEvery: cfg.PostEvery, postBurst: cfg.PostBurst, m: map[string]*workspace{}}
}

// of returns the state of workspace team.
func (ws *workspaces) of(team string) *workspace {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.m[team]
	if w == nil {
		w = &workspace{
			update:       newBudget(ws.perMinute, ws.burst),
			appends:      newBudget(appendsPerMinute, appendBurst),
			starts:       newWindow(streamWindowCalls, streamWindow),
			stops:        newWindow(streamWindowCalls, streamWindow),
			posts:        newBudget(postsPerMinute, postWorkspaceBurst),
			sessions:     newWindow(sessionWindowCalls, streamWindow),
			sessionOpens: newWindow(sessionOpenCalls, streamWindow),
			threads:      map[string]*threadState{},
			prompts:      newBudget(assistPerMinute, assistBurst),
			titles:       newBudget(assistPerMinute, assistBurst),
			channels:     map[string]*channelBudgets{},
			postEvery:    ws.postEvery, postBurst: ws.postBurst,
		}
		ws.m[team] = w
	}
	return w
}
