package slackfake

import (
	"math"
	"net/http"
	"time"
)

// Slack's documented rate limits of the methods the fake serves, "per API
// method per workspace per app" (docs.slack.dev/apis/web-api/rate-limits and
// each method's page): Tier 2 is 20+ a minute, Tier 3 50+, Tier 4 100+. The
// fake allows exactly that many in any window of RateWindow (a minute).
// chat.update keeps its own UpdateLimit and UpdateWindow.
var tierLimits = map[string]int{
	"chat.startStream":                      20,  // Tier 2
	"chat.stopStream":                       20,  // Tier 2
	"chat.appendStream":                     100, // Tier 4
	"chat.delete":                           50,  // Tier 3
	"chat.postEphemeral":                    100, // Tier 4
	"assistant.threads.setSuggestedPrompts": 100, // Tier 4
	"assistant.threads.setTitle":            100, // Tier 4
	"agents.sessions.setStatus":             50,  // Tier 3
	"users.info":                            100, // Tier 4
}

// Special limits: chat.postMessage "generally allows posting one message per
// second per channel" with short bursts, "while also maintaining a
// workspace-wide limit" (several hundred a minute, the official SDKs note);
// assistant.threads.setStatus has a limit "similar to chat.postMessage", per
// channel.
const (
	defaultPostEvery          = time.Second
	defaultPostBurst          = 3
	defaultPostWorkspaceLimit = 300
)

// slidingWindow counts calls of one method within the last window.
type slidingWindow struct {
	at []time.Time
}

// take counts a call at now against limit calls per window, or returns the
// whole seconds to wait when the window is full.
func (w *slidingWindow) take(now time.Time, limit int, window time.Duration) (int, bool) {
	for len(w.at) > 0 && now.Sub(w.at[0]) >= window {
		w.at = w.at[1:]
	}
	if len(w.at) < limit {
		w.at = append(w.at, now)
		return 0, false
	}
	wait := w.at[0].Add(window).Sub(now)
	return max(1, int(math.Ceil(wait.Seconds()))), true
}

// bucket is a token bucket: burst calls at once, then one every period.
type bucket struct {
	tokens float64
	last   time.Time
}

// take spends a token at now, or returns the whole seconds to wait.
func (b *bucket) take(now time.Time, burst int, every time.Duration) (int, bool) {
	if b.last.IsZero() {
		b.tokens, b.last = float64(burst), now
	}
	b.tokens = math.Min(float64(burst), b.tokens+now.Sub(b.last).Seconds()/every.Seconds())
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, false
	}
	wait := time.Duration((1 - b.tokens) * float64(every))
	return max(1, int(math.Ceil(wait.Seconds()))), true
}

// limit checks a call of method against its documented limit (per channel
// for chat.postMessage and assistant.threads.setStatus) and returns Slack's
// ratelimited answer when it is over, counting it; nil when the call may go.
func (s *Server) limit(method, channel string) *response {
	if s.opt.NoRateLimits {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var wait int
	var limited bool
	switch method {
	case "chat.postMessage":
		if wait, limited = s.channelBucket(s.postBuckets, channel).take(now, s.opt.PostBurst, s.opt.PostEvery); !limited {
			wait, limited = s.window(method).take(now, s.opt.PostWorkspaceLimit, s.opt.RateWindow)
			if limited { // the channel's token was not used after all
				s.postBuckets[channel].tokens++
			}
		}
	case "assistant.threads.setStatus":
		wait, limited = s.channelBucket(s.statusBuckets, channel).take(now, s.opt.PostBurst, s.opt.PostEvery)
	default:
		n, ok := s.opt.TierLimits[method]
		if !ok {
			n, ok = tierLimits[method]
		}
		if !ok {
			return nil
		}
		wait, limited = s.window(method).take(now, n, s.opt.RateWindow)
	}
	if !limited {
		return nil
	}
	s.limited++
	s.limitedBy[method]++
	return &response{status: http.StatusTooManyRequests, retryAfter: wait,
		body: map[string]any{"ok": false, "error": "ratelimited"}}
}

// window returns method's sliding window; the caller holds s.mu.
func (s *Server) window(method string) *slidingWindow {
	w := s.windows[method]
	if w == nil {
		w = &slidingWindow{}
		s.windows[method] = w
	}
	return w
}

// channelBucket returns channel's bucket in m; the caller holds s.mu.
func (s *Server) channelBucket(m map[string]*bucket, channel string) *bucket {
	b := m[channel]
	if b == nil {
		b = &bucket{}
		m[channel] = b
	}
	return b
}

// RateLimitedBy returns how many ratelimited (429) answers a method got.
func (s *Server) RateLimitedBy(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limitedBy[method]
}
