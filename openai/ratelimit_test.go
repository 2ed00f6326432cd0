package openai_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// A call the provider rate-limited is conversation.ErrRateLimited (the engine's
// adaptive limit backs off on it); other errors, an exhausted quota included,
// are not.
func TestRateLimitIsErrRateLimited(t *testing.T) {
	for _, c := range []struct {
		reply openaitest.Reply
		want  bool
	}{
		{openaitest.Error(http.StatusTooManyRequests, "rate_limit_exceeded", "Rate limit reached"), true},
		{openaitest.Error(http.StatusTooManyRequests, "insufficient_quota", "You exceeded your current quota"), false},
		{openaitest.Error(http.StatusInternalServerError, "", "boom"), false},
		{openaitest.Error(http.StatusUnauthorized, "invalid_api_key", "Incorrect API key"), false},
	} {
		fake := newFake(t)
		fake.SetHandler(func(openaitest.Request) openaitest.Reply { return c.reply })
		_, _, err := stream(t, newClient(t, fake, openai.Options{MaxRetries: -1}), "hi")
		if got := errors.Is(err, conversation.ErrRateLimited); got != c.want {
			t.Errorf("%d %s: errors.Is(err, ErrRateLimited) = %v, want %v (err %v)", c.reply.Status, c.reply.Code, got, c.want, err)
		}
	}
}
