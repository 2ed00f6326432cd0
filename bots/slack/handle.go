package slack

import (
	"context"
	"errors"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/chatbot-dev/chatbot/conversation"
)

// incoming is a person's message the adapter may answer.
type incoming struct {
	eventID  string
	team     string
	channel  string
	user     string
	text     string
	ts       string
	threadTS string
	dm       bool // in a direct message with the bot
	mention  bool // the bot is mentioned
	files    []slackgo.File
}

// onEventsAPI handles one Events API event, from either mode.
func (a *Adapter) onEventsAPI(ctx context.Context, ev slackevents.EventsAPIEvent) {
	if ev.Type != slackevents.CallbackEvent {
		return
	}
	in := incoming{team: ev.TeamID}
	if cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent); ok {
		in.eventID = cb.EventID
	}
	if in.team == "" {
		in.team = a.team
	}
	switch e := ev.InnerEvent.Data.(type) {
	case *slackevents.AppMentionEvent:
		if e.BotID != "" || e.User == "" || e.User == a.botUser || e.Edited != nil {
			a.trace("skipped", in.eventID)
			return
		}
		in.channel, in.user, in.text, in.ts, in.threadTS = e.Channel, e.User, e.Text, e.TimeStamp, e.ThreadTimeStamp
		in.dm, in.mention, in.files = strings.HasPrefix(e.Channel, "D"), true, e.Files
	case *slackevents.MessageEvent:
		if !a.fromPerson(e) {
			a.trace("skipped", in.eventID)
			return
		}
		in.channel, in.user, in.text, in.ts, in.threadTS = e.Channel, e.User, e.Text, e.TimeStamp, e.ThreadTimeStamp
		in.dm, in.mention = e.ChannelType == slackevents.ChannelTypeIM, a.mentions(e.Text)
		if e.Message != nil {
			in.files = e.Message.Files
		}
	case *slackevents.AppHomeOpenedEvent:
		if e.Tab == homeMessagesTab { // an agent app's conversation opened
			a.offerPrompts(ctx, in.eventID, in.team, e.Channel, "", e.User)
		}
		return
	case *slackevents.AssistantThreadStartedEvent: // the legacy assistant view
		t := e.AssistantThread
		a.offerPrompts(ctx, in.eventID, in.team, t.ChannelID, t.ThreadTimeStamp, t.UserID)
		return
	case *slackevents.AgentSessionStoppedEvent:
		a.onStopped(ctx, in.eventID, in.team, e)
		return
	default:
		return
	}
	a.onMessage(ctx, in)
}

// fromPerson reports whether a message event is a new message by a person: not
// the bot's own, not another bot's, not an edit, a join or any other subtype
// than a message with files (file_share) or one sent also to the channel.
func (a *Adapter) fromPerson(e *slackevents.MessageEvent) bool {
	if e.SubType != "" && e.SubType != "thread_broadcast" && e.SubType != "file_share" {
		return false
	}
	return e.BotID == "" && e.User != "" && e.User != a.botUser
}

// mentions reports whether text mentions the bot.
func (a *Adapter) mentions(text string) bool {
	return strings.Contains(text, "<@"+a.botUser+">") || strings.Contains(text, "<@"+a.botUser+"|")
}

// onMessage answers in if it is for the bot, new, and allowed.
func (a *Adapter) onMessage(ctx context.Context, in incoming) {
	if !a.addressed(ctx, in) {
		a.trace("ignored", in.channel+":"+in.ts)
		return
	}
	if in.eventID != "" && a.seen(ctx, "event:"+in.eventID) {
		a.trace("duplicate", in.eventID)
		return
	}
	if a.seen(ctx, "msg:"+in.team+":"+in.channel+":"+in.ts) {
		a.trace("duplicate", in.channel+":"+in.ts)
		return
	}
	thread := in.threadTS
	if !in.dm && thread == "" {
		thread = in.ts // a mention in a channel opens a thread under itself
	}
	if note := a.denied(in.user, in.channel, in.dm); note != "" {
		a.note(ctx, in.team, &ephemeral{api: a.api, channel: in.channel, user: in.user, thread: in.threadTS}, note)
		a.trace("denied", in.user)
		return
	}
	if in.mention && !in.dm {
		a.markThread(ctx, in.team, in.channel, thread)
	}
	a.answer(ctx, in, thread)
	a.trace("answered", in.channel+":"+in.ts)
}

// addressed reports whether a message is for the bot: in a DM, a mention, or a
// follow-up in a thread where the bot was mentioned.
func (a *Adapter) addressed(ctx context.Context, in incoming) bool {
	if in.dm || in.mention {
		return true
	}
	if in.threadTS == "" || !a.cfg.ReplyInThreadsWithoutMention {
		return false
	}
	return a.knownThread(ctx, in.team, in.channel, in.threadTS)
}

// seen records key in the store and reports whether it was there already. When
// the store fails it lets the message through: better twice than never.
func (a *Adapter) seen(ctx context.Context, key string) bool {
	first, err := a.store.FirstSeen(ctx, "slack:"+key, seenTTL)
	if err != nil {
		a.log.Warn("slack: deduplicate", "key", key, "err", err)
		return false
	}
	return !first
}

// threadKey names the store's marker of a thread the bot was mentioned in.
func threadKey(team, channel, thread string) string {
	return "slack:thread:" + team + ":" + channel + ":" + thread
}

// knownThread reports whether the bot was mentioned in the thread (ever: the
// marker is kept in the store, so it survives restarts).
func (a *Adapter) knownThread(ctx context.Context, team, channel, thread string) bool {
	v, err := a.store.Cursor(ctx, threadKey(team, channel, thread))
	if err != nil {
		a.log.Warn("slack: read thread marker", "err", err)
	}
	return v != 0
}

// markThread remembers that the bot was mentioned in the thread.
func (a *Adapter) markThread(ctx context.Context, team, channel, thread string) {
	if err := a.store.SetCursor(ctx, threadKey(team, channel, thread), time.Now().Unix()); err != nil {
		a.log.Warn("slack: store thread marker", "err", err)
	}
}

// answer hands the message to the engine, or answers help itself.
func (a *Adapter) answer(ctx context.Context, in incoming, thread string) {
	replyThread := thread
	if in.dm {
		replyThread = in.threadTS // a DM's top level is answered at the top level
	}
	rep := a.newReply(in, replyThread)
	text, cmd := a.command(in)
	if cmd == conversation.CommandHelp {
		a.finish(ctx, rep, a.helpText(ctx, chatID(in.team, in.channel, replyThread)))
		return
	}
	req := conversation.Request{
		Chat:        chatID(in.team, in.channel, replyThread),
		UserID:      "slack:" + in.user,
		Text:        text,
		Private:     in.dm,
		Reply:       rep,
		UpdateEvery: a.cfg.UpdateEvery,
	}
	if !in.dm {
		req.UserName = a.userName(ctx, in.user)
	}
	if cmd == "" {
		title := threadTitle(text)
		rep.feedback = true
		rep.onHalt = func() { a.spawn(ctx, func(ctx context.Context) { a.stopChat(ctx, req.Chat, in.user) }) }
		rep.begin(ctx, title)
		defer rep.end(ctx)
		if in.dm && replyThread != "" {
			a.spawn(ctx, func(ctx context.Context) { a.titleThread(ctx, in.team, in.channel, replyThread, title) })
		}
	}
	if len(in.files) > 0 && cmd == "" {
		files, release, note := a.takeFiles(ctx, in.files)
		if note != "" {
			rep.feedback = false            // a note, not an answer
			a.note(ctx, in.team, rep, note) // at best, as refusals are (a flood of files costs little)
			return
		}
		defer release() // the engine is done with the files once Handle returns
		req.Files = files
	}
	if err := a.engine.Handle(ctx, req); err != nil && !errors.Is(err, conversation.ErrClosed) {
		a.log.Warn("slack: handle message", "chat", string(req.Chat), "err", err)
	}
}

// newReply returns the reply for a message, posted in thread ("" = top level).
func (a *Adapter) newReply(in incoming, thread string) *reply {
	return &reply{
		api: a.api, files: a.files, ws: a.spaces.of(in.team), notes: a.notes, log: a.log,
		channel: in.channel, thread: thread, team: in.team, user: in.user, dm: in.dm,
		limit:      a.cfg.MaxMessageChars,
		native:     a.cfg.NativeStreaming && thread != "",
		background: func(f func(context.Context)) { a.handlers.Go(func() { f(context.Background()) }) },
	}
}

// chatID names the conversation of a channel's or DM's thread, or of a DM's top
// level (thread "").
func chatID(team, channel, thread string) conversation.ChatID {
	id := "slack:" + team + ":" + channel
	if thread != "" {
		id += ":" + thread
	}
	return conversation.ChatID(id)
}

// command strips the bot's mention and maps Slack's forms of the commands
// ("@bot reset", "reset" or "!reset" in a DM or a bot thread, "@bot model NAME",
// "@bot image PROMPT") onto the engine's ("/reset", "/model NAME", "/image
// PROMPT"). It returns the text for the engine and the command, if any.
func (a *Adapter) command(in incoming) (string, string) {
	text := strings.TrimSpace(unescape(a.stripMention(in.text)))
	if text == "" && len(in.files) > 0 { // files without a word: the engine asks the model about them
		return "", ""
	}
	if text == "" { // a bare mention, or a message with no text and no file (an attachment)
		return "/" + conversation.CommandHelp, conversation.CommandHelp
	}
	lower := strings.ToLower(text)
	for _, c := range []string{conversation.CommandReset, conversation.CommandHelp, conversation.CommandStop} {
		bare := lower == c && (in.mention || c == conversation.CommandReset)
		if bare || lower == "!"+c || lower == "/"+c {
			return "/" + c, c
		}
	}
	if cmd, ok := settingsCommand(text, in.mention); ok {
		return cmd, strings.TrimPrefix(strings.Fields(cmd)[0], "/")
	}
	if cmd, ok := imageCommand(text, len(in.files) > 0); ok {
		return cmd, conversation.CommandImage
	}
	return text, ""
}

// imageCommand maps "image PROMPT" (with "!" or "/" in front, or none) onto the
// engine's "/image PROMPT". The message reaches here only when it is for the
// bot (a mention, a DM, a thread the bot follows), so the word alone is enough;
// but a file's caption that starts with "image" is a question about the file.
func imageCommand(text string, files bool) (string, bool) {
	first := strings.Fields(text)[0]
	word := strings.ToLower(first)
	prefixed := strings.HasPrefix(word, "!") || strings.HasPrefix(word, "/")
	if prefixed {
		word = word[1:]
	}
	if word != conversation.CommandImage || (files && !prefixed) {
		return "", false
	}
	prompt := strings.TrimSpace(strings.TrimPrefix(text, first))
	return strings.TrimSpace("/" + conversation.CommandImage + " " + prompt), true
}

// settingsCommand maps "model", "model NAME", "persona", "persona NAME" and
// "persona off" (with "!" or "/" in front, or none) onto the engine's /model and
// /persona. Without the mention (in a DM or a thread the bot follows) and
// without "!" or "/", only the word alone or with one more word counts, so that
// a sentence starting with "model" still goes to the model.
func settingsCommand(text string, mention bool) (string, bool) {
	fields := strings.Fields(text)
	word := strings.ToLower(fields[0])
	prefixed := strings.HasPrefix(word, "!") || strings.HasPrefix(word, "/")
	if prefixed {
		word = word[1:]
	}
	if word != conversation.CommandModel && word != conversation.CommandPersona {
		return "", false
	}
	args := fields[1:]
	if !prefixed && !mention && len(args) > 1 {
		return "", false
	}
	return strings.Join(append([]string{"/" + word}, args...), " "), true
}

// stripMention removes the bot's mentions from text.
func (a *Adapter) stripMention(text string) string {
	for {
		i := strings.Index(text, "<@"+a.botUser)
		if i < 0 {
			return text
		}
		end := strings.IndexByte(text[i:], '>')
		if end < 0 {
			return text
		}
		text = text[:i] + text[i+end+1:]
	}
}

// unescape undoes Slack's escaping of &, < and > in message text.
func unescape(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

// userName returns the speaker's name for the model, or "" if Slack cannot tell.
func (a *Adapter) userName(ctx context.Context, user string) string {
	name, err := a.users.name(ctx, user)
	if err != nil {
		a.log.Debug("slack: users.info", "user", user, "err", err)
	}
	return name
}

// finish delivers a one-off text (help, notes), waiting when Slack asks to.
func (a *Adapter) finish(ctx context.Context, rep conversation.Reply, text string) {
	for range 8 {
		err := rep.Finish(ctx, text)
		d, ok := conversation.RetryAfter(err)
		if !ok {
			if err != nil {
				a.log.Warn("slack: send", "err", err)
			}
			return
		}
		if sleep(ctx, d) != nil {
			return
		}
	}
}

// onSlash answers a slash command: /reset clears a DM's conversation; in a
// channel, where Slack allows no slash commands in threads, it explains how to
// reset a thread.
func (a *Adapter) onSlash(ctx context.Context, cmd slackgo.SlashCommand) {
	if cmd.TriggerID != "" && a.seen(ctx, "command:"+cmd.TriggerID) {
		a.trace("duplicate", cmd.TriggerID)
		return
	}
	dm := strings.HasPrefix(cmd.ChannelID, "D")
	eph := &ephemeral{api: a.api, channel: cmd.ChannelID, user: cmd.UserID}
	if note := a.denied(cmd.UserID, cmd.ChannelID, dm); note != "" {
		a.note(ctx, cmd.TeamID, eph, note)
		a.trace("denied", cmd.UserID)
		return
	}
	name := conversation.CommandReset
	switch c := strings.ToLower(cmd.Command + " " + cmd.Text); {
	case strings.Contains(c, conversation.CommandHelp):
		name = conversation.CommandHelp
	case strings.Contains(c, conversation.CommandStop):
		name = conversation.CommandStop
	}
	team := cmd.TeamID
	if team == "" {
		team = a.team
	}
	switch {
	case name == conversation.CommandHelp:
		a.finish(ctx, eph, a.helpText(ctx, chatID(team, cmd.ChannelID, "")))
	case !dm:
		a.finish(ctx, eph, a.channelResetNote())
	default:
		req := conversation.Request{Chat: chatID(team, cmd.ChannelID, ""), UserID: "slack:" + cmd.UserID,
			Text: "/" + name, Private: true, Reply: eph, UpdateEvery: a.cfg.UpdateEvery}
		if err := a.engine.Handle(ctx, req); err != nil && !errors.Is(err, conversation.ErrClosed) {
			a.log.Warn("slack: handle command", "chat", string(req.Chat), "err", err)
		}
	}
	a.trace("command", cmd.Command)
}
