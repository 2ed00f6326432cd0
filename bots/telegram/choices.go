package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/chatbot-dev/chatbot/conversation"
)

var _ conversation.ChoiceReply = (*reply)(nil)

// inlineKeyboard is an inline keyboard of callback buttons. The adapter sends
// its own type, which holds only what it uses (go-telegram/bot's
// InlineKeyboardButton sent an empty copy_text, which Telegram refuses, before
// v1.24.0), and gives it a key to compare keyboards by.
type inlineKeyboard struct {
	InlineKeyboard [][]callbackButton `json:"inline_keyboard"`
}

// callbackButton is a button that sends CallbackData back when pressed.
type callbackButton struct {
	Text         string `json:"text"`
	CallbackData string `json:"callback_data"`
}

// Limits of a keyboard.
const (
	// maxCallbackData is the longest callback_data Telegram takes, in bytes.
	maxCallbackData = 64
	// rowWidth is how many characters of labels a row holds, and rowButtons how
	// many buttons, so that short labels share a row on a phone.
	rowWidth   = 30
	rowButtons = 4
	// currentMark marks the option in use.
	currentMark = "✓ "
)

// choiceKeyboard lays out choices as buttons whose callback_data is the command
// they run. A choice whose command does not fit in callback_data gets no button
// (the text lists it). nil when no button is left.
func choiceKeyboard(choices []conversation.Choice) *inlineKeyboard {
	var rows [][]callbackButton
	var row []callbackButton
	width := 0
	for _, c := range choices {
		label := strings.TrimSpace(c.Label)
		if label == "" || c.Command == "" || len(c.Command) > maxCallbackData {
			continue
		}
		if c.Current {
			label = currentMark + label
		}
		w := utf8.RuneCountInString(label) + 2 // a button's padding
		if len(row) > 0 && (width+w > rowWidth || len(row) == rowButtons) {
			rows, row, width = append(rows, row), nil, 0
		}
		row, width = append(row, callbackButton{Text: label, CallbackData: c.Command}), width+w
	}
	if len(row) > 0 {
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil
	}
	return &inlineKeyboard{InlineKeyboard: rows}
}

// key identifies the keyboard's content, "" for none.
func (k *inlineKeyboard) key() string {
	if k == nil {
		return ""
	}
	b, _ := json.Marshal(k)
	return string(b)
}

// FinishChoices shows the final text with the choices as buttons under its last
// message.
func (r *reply) FinishChoices(ctx context.Context, text string, choices []conversation.Choice) error {
	r.keyboard = choiceKeyboard(choices)
	return r.Finish(ctx, text)
}

// Toasts a press is answered with.
const (
	pressTooOld     = "This menu is too old. Send the command again."
	pressNotAllowed = "Sorry, you are not allowed to use this bot."
	pressUnknown    = "This button no longer works."
)

// dispatchPress handles a press on one of the bot's buttons in a goroutine of
// its own, as dispatch does a message.
func (b *Bot) dispatchPress(ctx context.Context, q *models.CallbackQuery) {
	b.handlers.Add(1)
	go func() {
		defer b.handlers.Done()
		b.press(ctx, q)
	}()
}

// press answers the callback query at once (Telegram shows a spinner until
// then), then runs the button's command as if the presser had typed it in the
// chat (or forum topic) of the message that shows the button, and finally shows
// the chat's choices afresh in that message. Presses by users the allowlists do
// not let in change nothing.
func (b *Bot) press(ctx context.Context, q *models.CallbackQuery) {
	m := q.Message.Message
	switch {
	case m == nil: // too old for Telegram to send (InaccessibleMessage), or an inline message
		b.answerPress(ctx, q.ID, pressTooOld)
		return
	case m.Chat.Type != models.ChatTypePrivate && m.Chat.Type != models.ChatTypeGroup && m.Chat.Type != models.ChatTypeSupergroup:
		b.answerPress(ctx, q.ID, pressUnknown)
		return
	case !b.allowedUsers[q.From.ID] && !b.allowedChats[m.Chat.ID]:
		b.log.Info("telegram: press refused", "user_id", q.From.ID, "chat_id", m.Chat.ID)
		b.answerPress(ctx, q.ID, pressNotAllowed)
		return
	case !conversation.IsCommand(q.Data):
		b.answerPress(ctx, q.ID, pressUnknown)
		return
	}
	b.answerPress(ctx, q.ID, q.Data)

	from := q.From
	in := incoming{chatID: m.Chat.ID, fromID: from.ID, msgID: m.ID, // the command is the presser's
		private: m.Chat.Type == models.ChatTypePrivate, text: q.Data}
	in.chat, in.thread = chatOf(m)
	if !in.private {
		in.userName = displayName(&from)
	}
	// Presses in a chat run one at a time, so that the menu ends up showing the
	// last one's outcome.
	defer b.presses.lock(in.chat)()
	if err := b.answer(ctx, &in, nil); errors.Is(err, conversation.ErrClosed) {
		return
	}
	b.refreshMenu(ctx, in, m.ID)
}

// answerPress answers a callback query with a short notice at the top of the chat.
func (b *Bot) answerPress(ctx context.Context, id, toast string) {
	if _, err := b.api.AnswerCallbackQuery(ctx, &bot.AnswerCallbackQueryParams{CallbackQueryID: id, Text: toast}); err != nil {
		b.log.Warn("telegram: answer callback query", "err", b.red.err(err))
	}
}

// menus are the commands whose bare form shows choices: a press on "/model NAME"
// refreshes the menu with "/model".
var menus = []string{conversation.CommandModel, conversation.CommandPersona}

// refreshMenu shows the menu the pressed command belongs to afresh in the menu's
// message, menuID, asking the engine for it ("/model" for "/model NAME"): its
// text and buttons then mark the chat's current choice. After a press on any
// other command, or when the engine answers without choices, the message just
// loses its buttons.
func (b *Bot) refreshMenu(ctx context.Context, in incoming, menuID int) {
	r := &reply{b: b, chatID: in.chatID, thread: in.thread, group: !in.private, limit: maxMessageLen,
		msgs: []*sent{{id: menuID}}, editOnly: true}
	word, arg, _ := strings.Cut(strings.TrimSpace(in.text), " ")
	menu, _, _ := strings.Cut(strings.ToLower(strings.TrimPrefix(word, "/")), "@")
	if strings.TrimSpace(arg) == "" || !slices.Contains(menus, menu) {
		if err := (menuReply{r}).Finish(ctx, ""); err != nil {
			b.log.Warn("telegram: remove buttons", "chat", in.chat, "err", err)
		}
		return
	}
	err := b.handler.Handle(ctx, conversation.Request{
		Chat:     in.chat,
		UserID:   fmt.Sprintf("telegram:%d", in.fromID),
		UserName: in.userName,
		Text:     "/" + menu,
		Private:  in.private,
		Reply:    menuReply{r},
	})
	if err != nil && !errors.Is(err, conversation.ErrClosed) {
		b.log.Warn("telegram: refresh menu", "chat", in.chat, "err", b.red.err(err))
	}
}

// menuReply writes a menu into the message that shows it, instead of a new one.
type menuReply struct {
	r *reply
}

// Update shows nothing: the menu shows its final state only.
func (m menuReply) Update(context.Context, string) error { return nil }

// Finish, for an answer without choices, removes the buttons and leaves the text.
func (m menuReply) Finish(ctx context.Context, _ string) error {
	if err := m.r.b.limits.wait(ctx, m.r.chatID, m.r.group, true, true); err != nil {
		return err
	}
	_, err := m.r.b.api.EditMessageReplyMarkup(ctx, &bot.EditMessageReplyMarkupParams{ChatID: m.r.chatID,
		MessageID: m.r.msgs[0].id, ReplyMarkup: &inlineKeyboard{InlineKeyboard: [][]callbackButton{}}})
	if badRequest(err, descNotModified) || badRequest(err, descEditNotFound) {
		return nil
	}
	return m.r.b.red.err(err)
}

// FinishChoices edits the menu's text and buttons.
func (m menuReply) FinishChoices(ctx context.Context, text string, choices []conversation.Choice) error {
	return m.r.FinishChoices(ctx, text, choices)
}

// chatLocks is a mutex per chat, kept only while someone holds or waits for it.
type chatLocks struct {
	mu    sync.Mutex
	chats map[conversation.ChatID]*chatLock
}

type chatLock struct {
	mu    sync.Mutex
	users int
}

func newChatLocks() *chatLocks {
	return &chatLocks{chats: make(map[conversation.ChatID]*chatLock)}
}

// lock locks chat's mutex and returns its unlock.
func (c *chatLocks) lock(chat conversation.ChatID) (unlock func()) {
	c.mu.Lock()
	l := c.chats[chat]
	if l == nil {
		l = &chatLock{}
		c.chats[chat] = l
	}
	l.users++
	c.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		c.mu.Lock()
		if l.users--; l.users == 0 {
			delete(c.chats, chat)
		}
		c.mu.Unlock()
	}
}
