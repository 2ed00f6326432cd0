package slack

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/chatbot-dev/chatbot/conversation"
)

// Slack's AI-app surface: suggested prompts, thread titles, feedback buttons,
// and its stop button.
const (
	// maxSessionTitle is the longest title agents.sessions.setStatus takes.
	maxSessionTitle = 200
	// maxTitleChars is how much of a thread's first message makes its title.
	maxTitleChars = 60
	// titleTTL is how long a thread is remembered as titled already.
	titleTTL = 90 * 24 * time.Hour
	// feedbackActionID is the action_id of the feedback buttons under answers;
	// their values say which was pressed.
	feedbackActionID = "chatbot_feedback"
	feedbackPositive = "positive"
	feedbackNegative = "negative"
	// homeMessagesTab is app_home_opened's tab when someone opens the app's DM.
	homeMessagesTab = "messages"
)

// feedbackBlock is a context_actions block with thumbs up and down buttons.
func feedbackBlock() slackgo.Block {
	button := func(emoji, value, label string) *slackgo.FeedbackButton {
		return slackgo.NewFeedbackButton(slackgo.NewTextBlockObject(slackgo.PlainTextType, emoji, true, false), value).
			WithAccessibilityLabel(label)
	}
	return slackgo.NewContextActionsBlock("", slackgo.NewFeedbackButtonsBlockElement(feedbackActionID,
		button("👍", feedbackPositive, "Good answer"), button("👎", feedbackNegative, "Bad answer")))
}

// feedbackBlocks is a message of text (mrkdwn, at most a section's length)
// with the feedback buttons under it.
func feedbackBlocks(text string) []slackgo.Block {
	return []slackgo.Block{
		slackgo.NewSectionBlock(slackgo.NewTextBlockObject(slackgo.MarkdownType, truncate(text, maxSectionChars), false, false), nil, nil),
		feedbackBlock(),
	}
}

// feedbackPress reads a press of the feedback buttons: its kind, and what makes
// it unique.
func feedbackPress(cb slackgo.InteractionCallback) (kind, key string, ok bool) {
	if cb.Type != slackgo.InteractionTypeBlockActions {
		return "", "", false
	}
	for _, act := range cb.ActionCallback.BlockActions {
		if act == nil || act.ActionID != feedbackActionID || (act.Value != feedbackPositive && act.Value != feedbackNegative) {
			continue
		}
		key = cb.TriggerID
		if key == "" {
			key = cb.Container.ChannelID + ":" + cb.Container.MessageTs + ":" + cb.User.ID + ":" + act.ActionTs
		}
		return act.Value, key, true
	}
	return "", "", false
}

// onFeedback counts a press of the feedback buttons once, if the user may use
// the bot here.
func (a *Adapter) onFeedback(ctx context.Context, cb slackgo.InteractionCallback, kind, key string) {
	if a.seen(ctx, "feedback:"+key) {
		a.trace("duplicate", key)
		return
	}
	channel := cb.Container.ChannelID
	if channel == "" {
		channel = cb.Channel.ID
	}
	if a.denied(cb.User.ID, channel, strings.HasPrefix(channel, "D")) != "" {
		a.trace("denied", cb.User.ID)
		return
	}
	a.cfg.Feedback(kind)
	a.trace("feedback", kind)
}

// offerPrompts sets the suggested prompts of the app's conversation in channel:
// for an agent app when someone opens it (thread ""; a thread_ts would make
// Slack ignore the call), for the legacy assistant view in the assistant
// thread that started. At best: one attempt, within the budget.
func (a *Adapter) offerPrompts(ctx context.Context, eventID, team, channel, thread, user string) {
	if len(a.cfg.SuggestedPrompts) == 0 || channel == "" {
		return
	}
	if eventID != "" && a.seen(ctx, "event:"+eventID) {
		a.trace("duplicate", eventID)
		return
	}
	if a.denied(user, channel, true) != "" {
		a.trace("denied", user)
		return
	}
	ws := a.spaces.of(team)
	if d, _ := ws.prompts.tryTake(ctx, 0); d > 0 {
		a.trace("skipped", "prompts:"+channel)
		return
	}
	p := slackgo.AssistantThreadsSetSuggestedPromptsParameters{ChannelID: channel, ThreadTS: thread,
		Title: a.cfg.SuggestedPromptsTitle}
	for _, pr := range a.cfg.SuggestedPrompts {
		p.AddPrompt(pr.Title, pr.Message)
	}
	err := a.api.SetAssistantThreadsSuggestedPromptsContext(ctx, p)
	if d, ok := rateLimited(err); ok {
		ws.prompts.pause(d)
	}
	if err != nil {
		a.log.Info("slack: suggested prompts not set (the app needs the assistant:write scope, declared an agent)",
			"channel", channel, "err", err)
		return
	}
	a.trace("prompts", channel+":"+thread)
}

// threadTitle is a thread's title made of its first message: its first line,
// cut to a short phrase.
func threadTitle(text string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(text), "\n")
	line = strings.Join(strings.Fields(line), " ")
	if utf8.RuneCountInString(line) > maxTitleChars {
		line = strings.TrimSpace(truncate(line, maxTitleChars-1)) + "…"
	}
	return line
}

// titleThread names a DM thread (a conversation in the app's view) after its
// first message, once: assistant.threads.setTitle, at best.
func (a *Adapter) titleThread(ctx context.Context, team, channel, thread, title string) {
	if title == "" {
		return
	}
	first, err := a.store.FirstSeen(ctx, "slack:title:"+team+":"+channel+":"+thread, titleTTL)
	if err != nil || !first {
		return
	}
	ws := a.spaces.of(team)
	if d, _ := ws.titles.tryTake(ctx, 0); d > 0 {
		return
	}
	err = a.api.SetAssistantThreadsTitleContext(ctx, slackgo.AssistantThreadsSetTitleParameters{
		ChannelID: channel, ThreadTS: thread, Title: title})
	if d, ok := rateLimited(err); ok {
		ws.titles.pause(d)
	}
	if err != nil {
		a.log.Debug("slack: thread title not set", "channel", channel, "err", err)
		return
	}
	a.trace("titled", channel+":"+thread)
}

// onStopped handles Slack's stop button (agent_session_stopped): the answer in
// progress in the thread stops, as /stop stops it, if the user may use the bot.
func (a *Adapter) onStopped(ctx context.Context, eventID, team string, e *slackevents.AgentSessionStoppedEvent) {
	if eventID != "" && a.seen(ctx, "event:"+eventID) {
		a.trace("duplicate", eventID)
		return
	}
	dm := strings.HasPrefix(e.Channel, "D")
	if e.User == "" || a.denied(e.User, e.Channel, dm) != "" {
		a.trace("denied", e.User)
		return
	}
	if e.ThreadTimestamp == "" && !dm {
		a.trace("ignored", e.Channel) // a session channel: none of the bot's conversations
		return
	}
	a.stopChat(ctx, chatID(team, e.Channel, e.ThreadTimestamp), e.User)
	a.trace("stopped", e.Channel+":"+e.ThreadTimestamp)
}

// stopChat stops the answer in progress in chat, as the user's /stop; the
// engine's answer to it is dropped (the stopped reply says so).
func (a *Adapter) stopChat(ctx context.Context, chat conversation.ChatID, user string) {
	req := conversation.Request{Chat: chat, UserID: "slack:" + user, Text: "/" + conversation.CommandStop,
		Reply: discard{}, UpdateEvery: a.cfg.UpdateEvery}
	if err := a.engine.Handle(ctx, req); err != nil && !errors.Is(err, conversation.ErrClosed) {
		a.log.Warn("slack: stop", "chat", string(chat), "err", err)
	}
}
