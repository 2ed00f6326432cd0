package conversation_test

import (
	"strings"
	"testing"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// The provider's rate limit (a 429 that outlasts the client's retries) lowers the
// engine's limit on concurrent model calls; a 429 for an exhausted quota is no
// congestion and does not.
func TestRateLimitLowersTheConcurrencyLimit(t *testing.T) {
	h := newHarness(t, conversation.Config{MaxConcurrent: 20})
	if limit, _ := h.engine.ModelConcurrency(); limit != 20 {
		t.Fatalf("limit starts at %d, want 20", limit)
	}
	h.fake.SetHandler(func(openaitest.Request) openaitest.Reply {
		return openaitest.Error(429, "insufficient_quota", "You exceeded your current quota")
	})
	h.say(t, "c1", "hi")
	if limit, _ := h.engine.ModelConcurrency(); limit != 20 {
		t.Errorf("after a quota error the limit is %d, want 20", limit)
	}
	h.fake.SetHandler(func(openaitest.Request) openaitest.Reply {
		return openaitest.Error(429, "rate_limit_exceeded", "Rate limit reached for requests")
	})
	if got := h.say(t, "c1", "hi"); !strings.Contains(got, "rate limit") {
		t.Errorf("answer %q, want the rate limit named", got)
	}
	if limit, inFlight := h.engine.ModelConcurrency(); limit != 18 || inFlight != 0 {
		t.Errorf("after a rate-limited call: limit %d, in flight %d; want 18 and 0", limit, inFlight)
	}
}
