package slack

import (
	"context"
	"fmt"
	"strings"

	slackgo "github.com/slack-go/slack"

	"github.com/chatbot-dev/chatbot/conversation"
)

// Notify posts a plain note in chat, if it is a conversation of this workspace
// (as chatID names them: "slack:<team>:<channel>[:<thread ts>]"); it reports
// whether the chat was this adapter's.
func (a *Adapter) Notify(ctx context.Context, chat conversation.ChatID, text string) (bool, error) {
	rest, ok := strings.CutPrefix(string(chat), "slack:"+a.team+":")
	if !ok {
		return false, nil
	}
	channel, thread, _ := strings.Cut(rest, ":")
	opts := []slackgo.MsgOption{slackgo.MsgOptionText(escapeText(text), false)}
	if thread != "" {
		opts = append(opts, slackgo.MsgOptionTS(thread))
	}
	if _, _, err := a.api.PostMessageContext(ctx, channel, opts...); err != nil {
		return true, fmt.Errorf("slack: notify %s: %w", chat, err)
	}
	return true, nil
}
