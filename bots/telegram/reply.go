package telegram

import (
	"context"
	stdhtml "html"
	"strings"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/chatbot-dev/chatbot/conversation"
)

var (
	_ conversation.Reply   = (*reply)(nil)
	_ conversation.Noticer = (*reply)(nil)
)

// messenger lists the SDK calls a reply makes.
type messenger interface {
	SendMessage(ctx context.Context, params *bot.SendMessageParams) (*models.Message, error)
	EditMessageText(ctx context.Context, params *bot.EditMessageTextParams) (*models.Message, error)
	DeleteMessage(ctx context.Context, params *bot.DeleteMessageParams) (bool, error)
	SendMessageDraft(ctx context.Context, params *bot.SendMessageDraftParams) (bool, error)
	SendChatAction(ctx context.Context, params *bot.SendChatActionParams) (bool, error)
	EditMessageReplyMarkup(ctx context.Context, params *bot.EditMessageReplyMarkupParams) (*models.Message, error)
}

// reply is one answer in a chat: the first text is sent, later texts edit it, and
// a reply longer than a message continues in new messages. The engine's pacer calls
// Update and Finish one at a time.
type reply struct {
	b      *Bot
	chatID int64
	thread int
	quote  int  // the message answered, quoted in groups
	group  bool // edits share the group's budget
	chat   conversation.ChatID
	draft  *draft // streaming with sendMessageDraft; nil: edits in place
	limit  int    // the longest message, as Telegram counts

	action *shownAction // shown until the first text ("typing"); nil if none
	order  *turn        // its place in the chat's order (started at the first text); nil if none
	msgs   []*sent
	// refusal is what an interim update the budget has no room for returns.
	refusal conversation.RetryAfterError
	// keyboard, when set, goes under the last message of the final text.
	keyboard *inlineKeyboard
	// editOnly keeps the reply to the messages it has (a menu being updated):
	// it sends none, not even for one deleted meanwhile.
	editOnly bool
}

// sent is one message of the reply as it shows now. It keeps fingerprints of
// its texts, not the texts: a reply in flight holds no copy of what it shows.
type sent struct {
	id    int
	html  uint64 // what was sent with parse_mode HTML (Bot.sum; 0: unknown)
	plain bool   // Telegram refused the HTML: the message shows plain text
	text  uint64 // the visible text (Bot.sum)
	keys  string // the inline keyboard under it (inlineKeyboard.key)
}

// newReply starts a reply to in, with "typing" shown until its first text when
// typing is set.
func (b *Bot) newReply(ctx context.Context, in *incoming, typing bool) *reply {
	r := &reply{b: b, chatID: in.chatID, thread: in.thread, group: !in.private, chat: in.chat,
		limit: maxMessageLen}
	if !in.private {
		r.quote = in.msgID
	}
	if b.opt.Drafts && in.private && b.drafts.allowed(r.chatID, b.opt.Clock.Now()) {
		r.draft = &draft{id: b.draftSeq.Add(1), on: true}
	}
	if typing {
		r.action = b.typing(ctx, r.chatID, r.thread)
	}
	return r
}

// end stops what the reply runs beside its texts: typing, a draft's refresher.
func (r *reply) end() {
	r.action.stop() // Drawing may have replaced it
	r.endDraft()
}

// Update shows the reply so far.
func (r *reply) Update(ctx context.Context, md string) error {
	r.order.started()
	r.action.stop()
	return r.showText(ctx, md, false)
}

// Finish shows the final reply: every message shows its part of it.
func (r *reply) Finish(ctx context.Context, md string) error {
	r.order.started()
	r.action.stop()
	return r.showText(ctx, md, true)
}

// showText shows md; should Telegram count a message longer than this adapter
// does, the reply is cut again with a smaller limit. An interim text that the
// budget has no room for now is not rendered at all: with many chats waiting
// for the bot's budget, each would otherwise render its text many times a
// second for nothing.
func (r *reply) showText(ctx context.Context, md string, final bool) error {
	if !final && !r.drafting() {
		if delay := r.b.limits.ready(r.chatID, r.group); delay > 0 {
			// One error for all the reply's refusals: its pacer reads it at once.
			r.refusal.After, r.refusal.Err = delay, errBudget
			return &r.refusal
		}
	}
	for {
		chunks := renderChunks(md, r.limit)
		if len(chunks) == 0 && final {
			chunks = plainChunks(md, r.limit) // Markdown that shows nothing: show it as it is
		}
		err := r.show(ctx, chunks, final)
		if badRequest(err, descTooLong) && r.limit > maxMessageLen/2 {
			r.limit = r.limit * 9 / 10
			continue
		}
		if err == nil && final {
			r.dropExtra(ctx, len(chunks))
		}
		return r.b.red.err(err)
	}
}

// show makes the reply's messages show chunks; while drafting, the last chunk is a
// draft.
func (r *reply) show(ctx context.Context, chunks []rendered, final bool) error {
	last := len(chunks)
	if !final && last > 0 && r.drafting() {
		last--
	}
	if final && last > 0 {
		chunks[last-1].keyboard = r.keyboard
	}
	for i := range last {
		if err := r.put(ctx, i, chunks[i], final); err != nil {
			return err
		}
	}
	if last < len(chunks) {
		return r.showDraft(ctx, last, chunks[last])
	}
	return nil
}

// put makes message i show c: sends it, or edits it if it shows something else.
func (r *reply) put(ctx context.Context, i int, c rendered, final bool) error {
	if i < len(r.msgs) && r.shows(r.msgs[i], c) || i >= len(r.msgs) && r.editOnly {
		return nil
	}
	if err := r.b.limits.wait(ctx, r.chatID, r.group, final, i < len(r.msgs)); err != nil {
		return err
	}
	if i < len(r.msgs) {
		return r.edit(ctx, i, c)
	}
	m, err := r.send(ctx, c, i == 0)
	if err != nil {
		return err
	}
	r.msgs = append(r.msgs, m)
	return nil
}

// shows reports whether m shows c already.
func (r *reply) shows(m *sent, c rendered) bool {
	if m.keys != c.keyboard.key() {
		return false
	}
	if m.plain {
		return m.text == r.b.sum(c.plain)
	}
	return m.html == r.b.sum(c.html)
}

// shown records that m shows c now.
func (r *reply) shown(m *sent, c rendered) {
	m.html, m.text, m.keys = r.b.sum(c.html), r.b.sum(c.plain), c.keyboard.key()
}

// send sends c as a new message, as plain text if Telegram cannot parse its HTML.
func (r *reply) send(ctx context.Context, c rendered, first bool) (*sent, error) {
	p := &bot.SendMessageParams{ChatID: r.chatID, MessageThreadID: r.thread, Text: c.html,
		ParseMode: models.ParseModeHTML, LinkPreviewOptions: noPreview()}
	if first && r.quote != 0 {
		p.ReplyParameters = &models.ReplyParameters{MessageID: r.quote, AllowSendingWithoutReply: true}
	}
	if c.keyboard != nil {
		p.ReplyMarkup = c.keyboard
	}
	went := r.sendingMessage()
	msg, err := r.b.api.SendMessage(ctx, p)
	plain := false
	if badRequest(err, descParseFailed) {
		r.b.log.Warn("telegram: HTML refused, sending plain text", "chat_id", r.chatID, "err", r.b.red.err(err))
		p.Text, p.ParseMode, plain = c.plain, "", true
		msg, err = r.b.api.SendMessage(ctx, p)
	}
	went(err == nil)
	if err != nil {
		return nil, err
	}
	m := &sent{id: msg.ID, plain: plain}
	r.shown(m, c)
	return m, nil
}

// edit makes message i show c. "message is not modified" is success; a message the
// user deleted is sent again.
func (r *reply) edit(ctx context.Context, i int, c rendered) error {
	m := r.msgs[i]
	p := &bot.EditMessageTextParams{ChatID: r.chatID, MessageID: m.id, Text: c.html,
		ParseMode: models.ParseModeHTML, LinkPreviewOptions: noPreview()}
	if m.plain {
		p.Text, p.ParseMode = c.plain, ""
	}
	if c.keyboard != nil { // an edit without reply_markup removes the keyboard
		p.ReplyMarkup = c.keyboard
	}
	_, err := r.b.api.EditMessageText(ctx, p)
	if badRequest(err, descParseFailed) && !m.plain {
		r.b.log.Warn("telegram: HTML refused, editing as plain text", "chat_id", r.chatID, "err", r.b.red.err(err))
		m.plain = true
		p.Text, p.ParseMode = c.plain, ""
		_, err = r.b.api.EditMessageText(ctx, p)
	}
	switch {
	case err == nil, badRequest(err, descNotModified):
		r.shown(m, c)
		return nil
	case badRequest(err, descEditNotFound) && r.editOnly:
		return nil
	case badRequest(err, descEditNotFound):
		again, err := r.send(ctx, c, false)
		if err != nil {
			return err
		}
		r.msgs[i] = again
		return nil
	}
	return err
}

// dropExtra deletes messages an earlier, longer rendering needed and the final
// one does not.
func (r *reply) dropExtra(ctx context.Context, keep int) {
	for _, m := range r.msgs[min(keep, len(r.msgs)):] {
		if _, err := r.b.api.DeleteMessage(ctx, &bot.DeleteMessageParams{ChatID: r.chatID, MessageID: m.id}); err != nil {
			r.b.log.Warn("telegram: delete extra message", "chat_id", r.chatID, "err", r.b.red.err(err))
		}
	}
	r.msgs = r.msgs[:min(keep, len(r.msgs))]
}

var codeTags = strings.NewReplacer("<code>", "", "</code>", "")

func noPreview() *models.LinkPreviewOptions {
	return &models.LinkPreviewOptions{IsDisabled: bot.True()}
}

// notify sends a one-off note in answer to in (refusals, notes) at best: one
// attempt, and only if the budgets have room for it now (chatLimits.notice), so
// that notes never hold up replies. html may hold <code> tags. It reports whether
// the note went out.
func (b *Bot) notify(ctx context.Context, in incoming, html string) bool {
	r := &reply{b: b, chatID: in.chatID, thread: in.thread, group: !in.private, limit: maxMessageLen}
	if !in.private {
		r.quote = in.msgID
	}
	c := rendered{html: html, plain: stdhtml.UnescapeString(codeTags.Replace(html))}
	if err := r.note(ctx, c); err != nil {
		b.log.Debug("telegram: note not sent", "chat_id", r.chatID, "err", err)
		return false
	}
	return true
}

// Notice writes a best-effort note (the engine's busy notice): one attempt, and
// only if the budgets have room for it now; else a RetryAfterError.
func (r *reply) Notice(ctx context.Context, md string) error {
	r.order.started()
	r.action.stop()
	chunks := renderChunks(md, r.limit)
	if len(chunks) == 0 {
		chunks = plainChunks(md, r.limit)
	}
	if len(chunks) == 0 {
		return nil
	}
	return r.note(ctx, chunks[0])
}

// note sends c as the reply's first message at best (see chatLimits.notice).
func (r *reply) note(ctx context.Context, c rendered) error {
	if err := r.b.limits.notice(ctx, r.chatID, r.group); err != nil {
		return err
	}
	m, err := r.send(ctx, c, true)
	if err != nil {
		return r.b.red.err(err)
	}
	r.msgs = append(r.msgs, m)
	return nil
}
