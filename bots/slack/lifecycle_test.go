package slack

import (
	"context"
	"testing"

	"github.com/chatbot-dev/chatbot/conversation"

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

// TestNotifyPostsInItsOwnConversations: after a crash, serve tells each chat
// whose reply was cut off; the adapter posts in its own threads and leaves other
// platforms' (and other workspaces') chats alone.
func TestNotifyPostsInItsOwnConversations(t *testing.T) {
	h := newHarness(t, slackfake.Options{}, nil)
	team := h.slack.Options().TeamID
	ctx := context.Background()
	mine, err := h.adapter.Notify(ctx, conversation.ChatID("slack:"+team+":"+general+":1700000000.000100"), "cut off <sorry>")
	if err != nil || !mine {
		t.Fatalf("Notify = %v, %v", mine, err)
	}
	if got := h.lastTexts(general, "1700000000.000100"); len(got) != 1 || got[0] != "cut off &lt;sorry&gt;" {
		t.Errorf("thread shows %q", got)
	}
	for _, other := range []conversation.ChatID{"telegram:42", "slack:T0OTHER:" + general} {
		if mine, _ := h.adapter.Notify(ctx, other, "x"); mine {
			t.Errorf("%s taken as its own", other)
		}
	}
}
