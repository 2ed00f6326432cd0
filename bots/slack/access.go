package slack

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/chatbot-dev/chatbot/conversation"
)

// denied returns the note for a user who may not use the bot here, or "" if they
// may. Everyone in the workspace may, unless slack.allowed_user_ids lists the
// users or slack.allowed_channel_ids the channels. A DM passes the channel list
// when the DM's own id is listed or the user is listed by id.
func (a *Adapter) denied(user, channel string, dm bool) string {
	users, channels := a.cfg.AllowedUserIDs, a.cfg.AllowedChannelIDs
	if len(users) > 0 && !slices.Contains(users, user) {
		return fmt.Sprintf("Sorry, I only answer the people the bot's owner has listed. "+
			"To let you in, they can add your user id `%s` to `slack.allowed_user_ids`.", user)
	}
	if len(channels) == 0 || slices.Contains(channels, channel) {
		return ""
	}
	if dm {
		if len(users) > 0 {
			return "" // listed by id above
		}
		return fmt.Sprintf("Sorry, I only answer in the channels the bot's owner has listed. "+
			"To let you in, they can add your user id `%s` to `slack.allowed_user_ids` "+
			"or this conversation's id `%s` to `slack.allowed_channel_ids`.", user, channel)
	}
	return fmt.Sprintf("Sorry, I don't answer in this channel. "+
		"The bot's owner can add its id `%s` to `slack.allowed_channel_ids`.", channel)
}

// helpText is the engine's help for the conversation chat (a thread, a DM's top
// level or a thread in a DM) plus how the bot works in Slack.
func (a *Adapter) helpText(ctx context.Context, chat conversation.ChatID) string {
	bot := "@" + a.botName
	follow := "and I follow the thread without further mentions"
	if !a.cfg.ReplyInThreadsWithoutMention {
		follow = "and mention me again for each message there"
	}
	base := a.engine.HelpText(ctx, chat)
	settings := "• `" + bot + " model` shows this conversation's model with buttons to switch it; " +
		"`" + bot + " model NAME` switches."
	words := "`model` works"
	// The engine names /persona only when personas are configured.
	if strings.Contains(base, "/"+conversation.CommandPersona) {
		settings += " `" + bot + " persona` does the same for personas; `" + bot + " persona off` goes back to the default."
		words = "`model` and `persona` work"
	}
	return base + "\n\n" +
		"**In Slack**\n" +
		"• Mention me (" + bot + ") in a channel and I answer in a thread, " + follow + ". " +
		"Each thread is its own conversation.\n" +
		"• In a DM with me every message is for me; a thread in a DM is a conversation of its own.\n" +
		"• To start over: `" + bot + " reset` in a thread (or just `reset` or `!reset` in a DM or in my threads), " +
		"or the `/reset` command in a DM.\n" +
		settings + " In a DM or my threads, " + words + " without the mention too.\n" +
		a.mediaHelp(base) +
		"• `" + bot + " stop` stops the answer in progress; `" + bot + " help` shows this."
}

// channelResetNote answers /reset in a channel.
func (a *Adapter) channelResetNote() string {
	bot := "@" + a.botName
	return "In channels each thread is its own conversation, so there is nothing to reset here. " +
		"To start a thread over, write `" + bot + " reset` in it; to start a new conversation, " +
		"mention me in a new message."
}
