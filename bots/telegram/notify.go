package telegram

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-telegram/bot"

	"github.com/chatbot-dev/chatbot/conversation"
)

// Notify sends a plain note to chat, if it is a Telegram conversation (as
// message.go names them: "telegram:<chat id>[:<topic id>]"); it reports whether
// the chat was Telegram's.
func (b *Bot) Notify(ctx context.Context, chat conversation.ChatID, text string) (bool, error) {
	rest, ok := strings.CutPrefix(string(chat), "telegram:")
	if !ok {
		return false, nil
	}
	idText, topicText, _ := strings.Cut(rest, ":")
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		return true, fmt.Errorf("telegram: notify %q: not a chat id", chat)
	}
	topic, _ := strconv.Atoi(topicText)
	_, err = b.api.SendMessage(ctx, &bot.SendMessageParams{ChatID: id, MessageThreadID: topic, Text: text})
	return true, b.red.err(err)
}
