package telegram

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"

	"github.com/go-telegram/bot/models"

	"github.com/chatbot-dev/chatbot/conversation"
)

// incoming is a message for the bot, as classify reads it.
type incoming struct {
	// The message's chat, sender and id: the message itself is not kept while
	// it is answered.
	chatID, fromID int64
	msgID          int
	chat           conversation.ChatID
	private        bool
	thread         int // the forum topic, 0 if none
	// text is what to answer: the message (or a file's caption) without the
	// bot's mention, commands without "@botname".
	text string
	// files are the photo, voice note or file the message brings for the model
	// (an album's photos and files, gathered).
	files []fileRef
	// media names what the message holds that the bot does not read ("stickers").
	media string
	// userName is the speaker's display name in groups.
	userName string
}

// classify decides whether m is for the bot and reads it; ok is false for messages
// to ignore: other bots', service messages, group messages that do not call the bot.
func (b *Bot) classify(m *models.Message) (in incoming, ok bool) {
	if m.From == nil || m.From.IsBot {
		return in, false
	}
	in.private = m.Chat.Type == models.ChatTypePrivate
	if !in.private && m.Chat.Type != models.ChatTypeGroup && m.Chat.Type != models.ChatTypeSupergroup {
		return in, false
	}
	text, ents := m.Text, m.Entities
	if text == "" {
		text, ents = m.Caption, m.CaptionEntities
	}
	media, file := mediaKind(m), fileOf(m)
	if text == "" && media == "" && file.what == "" {
		return in, false // a service message: members joined, a title changed, ...
	}
	text, called, forOther := b.stripBot(text, ents)
	if forOther {
		return in, false // "/command@another_bot"
	}
	if !in.private && !called && !b.repliesToBot(m) && !conversation.IsCommand(text) {
		return in, false
	}
	in.chatID, in.fromID, in.msgID = m.Chat.ID, m.From.ID, m.ID
	in.text, in.media = text, media
	if file.what != "" {
		in.files = []fileRef{file}
	}
	if in.text == "" && in.media == "" && len(in.files) == 0 {
		in.text = "/" + conversation.CommandHelp // just "@bot"
	}
	in.chat, in.thread = chatOf(m)
	if !in.private {
		in.userName = displayName(m.From)
	}
	return in, true
}

// chatOf names the conversation m belongs to: its chat, or its forum topic
// ("telegram:<chat id>:<topic id>"), and returns the topic (0 if none).
func chatOf(m *models.Message) (conversation.ChatID, int) {
	if m.IsTopicMessage && m.MessageThreadID != 0 {
		return conversation.ChatID(fmt.Sprintf("telegram:%d:%d", m.Chat.ID, m.MessageThreadID)), m.MessageThreadID
	}
	return conversation.ChatID(fmt.Sprintf("telegram:%d", m.Chat.ID)), 0
}

func displayName(u *models.User) string {
	if name := strings.TrimSpace(u.FirstName + " " + u.LastName); name != "" {
		return name
	}
	return u.Username
}

// repliesToBot reports whether m replies to one of the bot's messages.
func (b *Bot) repliesToBot(m *models.Message) bool {
	r := m.ReplyToMessage
	return r != nil && r.From != nil && r.From.ID == b.me.ID && r.ForumTopicCreated == nil
}

// stripBot removes the bot's @mention (or text mention) from text and "@botname"
// from a leading command. called reports that the bot was named; forOther that the
// leading command names another bot.
func (b *Bot) stripBot(text string, ents []models.MessageEntity) (out string, called, forOther bool) {
	u := utf16.Encode([]rune(text))
	type cut struct{ from, to int }
	var cuts []cut
	for _, e := range ents {
		if e.Offset < 0 || e.Length <= 0 || e.Offset+e.Length > len(u) {
			continue
		}
		word := string(utf16.Decode(u[e.Offset : e.Offset+e.Length]))
		switch e.Type {
		case models.MessageEntityTypeMention:
			if strings.EqualFold(word, "@"+b.me.Username) {
				cuts, called = append(cuts, cut{e.Offset, e.Offset + e.Length}), true
			}
		case models.MessageEntityTypeTextMention:
			if e.User != nil && e.User.ID == b.me.ID {
				cuts, called = append(cuts, cut{e.Offset, e.Offset + e.Length}), true
			}
		case models.MessageEntityTypeBotCommand:
			cmd, target, ok := strings.Cut(word, "@")
			switch {
			case e.Offset != 0 || !ok:
			case strings.EqualFold(target, b.me.Username):
				at := e.Offset + len(utf16.Encode([]rune(cmd)))
				cuts, called = append(cuts, cut{at, e.Offset + e.Length}), true
			default:
				forOther = true
			}
		}
	}
	slices.SortFunc(cuts, func(a, b cut) int { return b.from - a.from })
	for _, c := range cuts {
		if c.from > 0 && u[c.from-1] == ' ' && c.to < len(u) && u[c.to] == ' ' {
			c.to++ // "hey @bot what" → "hey what"
		}
		u = append(u[:c.from], u[c.to:]...)
	}
	return strings.TrimSpace(string(utf16.Decode(u))), called, forOther
}

// dispatch decides what to do with m, in update order, and does it in a goroutine
// of its own: a refusal for strangers, a note for what the bot cannot read, else the
// engine's answer. Messages of a chat enter the engine in the order they came. The
// parts of an album are gathered and answered as one message.
func (b *Bot) dispatch(ctx context.Context, m *models.Message) {
	if b.albums.add(m, b) {
		return // a further part of an album being gathered
	}
	in, ok := b.classify(m)
	if !ok {
		return
	}
	var run func()
	switch {
	case !b.allowedUsers[m.From.ID] && !b.allowedChats[m.Chat.ID]:
		run = func() { b.deny(ctx, in) }
	case in.media != "":
		run = func() { b.notify(ctx, in, cantReadText(in.media)) }
	case conversation.IsCommand(in.text) && !isTurnCommand(in.text):
		run = func() { _ = b.answer(ctx, &in, nil) } // commands are answered at once
	default:
		t := b.order.join(in.chat)
		if m.MediaGroupID != "" && len(in.files) > 0 && !conversation.IsCommand(in.text) {
			// The first part of an album: its other parts follow in the next
			// updates; all are answered as one message, in this one's place.
			b.handlers.Add(1)
			b.albums.start(m.MediaGroupID, in, func(in incoming) {
				defer b.handlers.Done()
				b.answerInTurn(ctx, &in, t)
			})
			return
		}
		run = func() { b.answerInTurn(ctx, &in, t) }
	}
	b.handlers.Add(1)
	go b.run(run)
}

// run runs a dispatched message's work; the bot's Close waits for it.
func (b *Bot) run(work func()) {
	defer b.handlers.Done()
	work()
}

// answerInTurn answers in once its chat's earlier messages are handed over.
func (b *Bot) answerInTurn(ctx context.Context, in *incoming, t *turn) {
	defer t.done()
	if t.wait != nil {
		<-t.wait
	}
	_ = b.answer(ctx, in, t)
}

// isTurnCommand reports whether text is a command the engine runs as a turn of
// its chat, in order with the chat's messages (/image), rather than at once.
func isTurnCommand(text string) bool {
	word, _, _ := strings.Cut(strings.TrimSpace(text), " ")
	word, _, _ = strings.Cut(word, "\n")
	word, _, _ = strings.Cut(strings.TrimPrefix(word, "/"), "@")
	return strings.EqualFold(word, conversation.CommandImage)
}

// answer hands in to the engine and returns when the reply is finished. t is its
// place in the chat's order (nil for commands, which keep none). A
// message's file is downloaded first (typing shows meanwhile); a file the bot
// cannot take gets a note instead of the engine's answer. The error, already
// logged, is the engine's or the note's.
//
// The goroutine that answers waits on the model's stream for most of a reply,
// so answer (and what calls it) keeps a small stack frame: see the engine's turn.
func (b *Bot) answer(ctx context.Context, in *incoming, t *turn) error {
	r := b.newReply(ctx, in, t != nil)
	r.order = t
	defer r.end()
	req, note, release := b.request(ctx, in, r)
	defer release() // a file's memory is held until its answer is done
	if t != nil {
		t.entering()
	}
	var err error
	if note != "" {
		err = b.finishNote(ctx, r, note)
	} else {
		err = b.handler.Handle(ctx, *req)
	}
	if t != nil {
		t.done()
	}
	b.answered(in, note != "", err)
	return err
}

// request is the engine's request for in, answered in r; note is set instead
// when a file of in cannot be taken, to answer with. release lets the files'
// memory go.
func (b *Bot) request(ctx context.Context, in *incoming, r *reply) (req *conversation.Request, note string, release func()) {
	every := b.opt.EditEvery
	if !in.private {
		every = b.opt.GroupEditEvery
	}
	req = &conversation.Request{
		Chat:        in.chat,
		UserID:      fmt.Sprintf("telegram:%d", in.fromID),
		UserName:    in.userName,
		Text:        in.text,
		Private:     in.private,
		Reply:       r,
		UpdateEvery: every,
	}
	if len(in.files) == 0 || conversation.IsCommand(in.text) {
		return req, "", func() {}
	}
	req.Files, note, release = b.fetch(ctx, in.files)
	return req, note, release
}

// answered logs how the answer to in (a note about its file, or the engine's)
// ended.
func (b *Bot) answered(in *incoming, noted bool, err error) {
	switch {
	case noted && err != nil:
		b.log.Warn("telegram: file note", "chat", in.chat, "err", b.red.err(err))
	case noted:
	case errors.Is(err, conversation.ErrClosed):
		b.log.Info("telegram: message arrived during shutdown", "chat", in.chat)
	case err != nil:
		b.log.Warn("telegram: answer", "chat", in.chat, "err", b.red.err(err))
	}
}

// deny tells a stranger their id and where the owner adds it, once a minute at most
// per user and chat, at best (a note the budget has no room for is dropped); the
// model is never called for them.
func (b *Bot) deny(ctx context.Context, in incoming) {
	b.log.Info("telegram: refused", "user_id", in.fromID, "chat_id", in.chatID)
	key := fmt.Sprintf("%d:%d", in.chatID, in.fromID)
	if !b.denials.allow(key) {
		return
	}
	text := fmt.Sprintf("Sorry, this bot is private.\n\nYour Telegram user id is <code>%d</code>. "+
		"To let you in, the owner adds it to <code>telegram.allowed_user_ids</code> in the bot's config.yaml "+
		"and restarts the bot.", in.fromID)
	if !in.private {
		text = fmt.Sprintf("Sorry, this bot is not enabled in this chat.\n\nYour user id is <code>%d</code> and "+
			"this chat's id is <code>%d</code>. The owner can add the chat id to <code>telegram.allowed_chat_ids</code> "+
			"(everyone here may use the bot) or your user id to <code>telegram.allowed_user_ids</code> "+
			"in the bot's config.yaml.", in.fromID, in.chatID)
	}
	if !b.notify(ctx, in, text) {
		b.denials.forget(key) // dropped for want of budget: their next message may get it
	}
}
