package slack

import (
	"testing"

	"github.com/chatbot-dev/chatbot/bots/slack/slackfake"
)

// TestReadyFollowsTheConnection: /healthz asks Ready, which must say whether the
// Socket Mode connection is up.
func TestReadyFollowsTheConnection(t *testing.T) {
	h := newHarness(t, slackfake.Options{}, nil)
	eventually(t, "the adapter to be ready", h.adapter.Ready)
	a := h.adapter
	h.shutdown()
	if a.Ready() {
		t.Error("still ready after Run returned")
	}
}
