package telegramtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Telegram's wording of the errors about inline keyboards and callback queries.
const (
	MarkupInvalid     = "can't parse reply keyboard markup JSON object"
	ButtonTextOnly    = "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
	ButtonDataInvalid = "BUTTON_DATA_INVALID"
	ButtonCopyInvalid = "BUTTON_COPY_TEXT_INVALID"
	ButtonTypeInvalid = "BUTTON_TYPE_INVALID"
	QueryTooOld       = "query is too old and response timeout expired or query ID is invalid"
)

// MaxCallbackData is the longest callback_data Telegram takes, in bytes.
const MaxCallbackData = 64

// buttonKinds are the optional fields of an InlineKeyboardButton that give it
// its kind; exactly one of them must be used.
var buttonKinds = []string{"url", "callback_data", "web_app", "login_url", "switch_inline_query",
	"switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text", "callback_game", "pay"}

// parseMarkup reads a reply_markup parameter as Telegram does, for the inline
// keyboards this fake knows: "" and a keyboard without buttons are no keyboard.
//
// A button with a copy_text whose text is empty is refused even beside a
// callback_data (as go-telegram/bot's InlineKeyboardButton always sends one):
// Telegram refuses such a copy_text on its own (BUTTON_COPY_TEXT_INVALID) and
// documents that a button uses exactly one of its optional fields.
func parseMarkup(raw string) (*InlineKeyboardMarkup, *APIError) {
	if raw == "" {
		return nil, nil
	}
	var markup struct {
		InlineKeyboard *[][]map[string]json.RawMessage `json:"inline_keyboard"`
	}
	if json.Unmarshal([]byte(raw), &markup) != nil {
		return nil, BadRequest(MarkupInvalid)
	}
	if markup.InlineKeyboard == nil {
		return nil, BadRequest("the fake supports only inline keyboards in reply_markup")
	}
	out := &InlineKeyboardMarkup{}
	for _, row := range *markup.InlineKeyboard {
		var buttons []InlineKeyboardButton
		for _, fields := range row {
			b, e := parseButton(fields)
			if e != nil {
				return nil, e
			}
			buttons = append(buttons, b)
		}
		if len(buttons) > 0 {
			out.InlineKeyboard = append(out.InlineKeyboard, buttons)
		}
	}
	if len(out.InlineKeyboard) == 0 {
		return nil, nil
	}
	return out, nil
}

func parseButton(fields map[string]json.RawMessage) (InlineKeyboardButton, *APIError) {
	var b InlineKeyboardButton
	if json.Unmarshal(fields["text"], &b.Text) != nil {
		return b, BadRequest("can't parse inline keyboard button: Field \"text\" must be of type String")
	}
	if raw, ok := fields["copy_text"]; ok {
		var copyText struct {
			Text string `json:"text"`
		}
		if json.Unmarshal(raw, &copyText) != nil || copyText.Text == "" || utf8.RuneCountInString(copyText.Text) > 256 {
			return b, BadRequest(ButtonCopyInvalid)
		}
	}
	kinds := 0
	for _, k := range buttonKinds {
		if raw, ok := fields[k]; ok && (k != "pay" || string(raw) == "true") {
			kinds++
		}
	}
	switch {
	case kinds == 0:
		return b, BadRequest(ButtonTextOnly)
	case kinds > 1:
		return b, BadRequest(ButtonTypeInvalid)
	}
	if raw, ok := fields["callback_data"]; ok {
		if json.Unmarshal(raw, &b.CallbackData) != nil || len(b.CallbackData) < 1 || len(b.CallbackData) > MaxCallbackData {
			return b, BadRequest(ButtonDataInvalid)
		}
	}
	if raw, ok := fields["url"]; ok {
		_ = json.Unmarshal(raw, &b.URL)
	}
	return b, nil
}

func sameKeyboard(a, b *InlineKeyboardMarkup) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.EqualFunc(a.InlineKeyboard, b.InlineKeyboard, func(x, y []InlineKeyboardButton) bool {
		return slices.Equal(x, y)
	})
}

// query is a callback query not answered yet.
type query struct {
	answered bool
}

func (s *Server) editMessageReplyMarkup(_ context.Context, p params) (any, *APIError) {
	if p["inline_message_id"] != "" {
		return nil, BadRequest("inline messages are not supported by this fake")
	}
	kb, e := parseMarkup(p["reply_markup"])
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.lookup(p)
	if e != nil {
		return nil, e
	}
	st := c.msgs[p.int("message_id")]
	switch {
	case st == nil || (st.bot != nil && st.bot.Deleted):
		return nil, BadRequest("message to edit not found")
	case st.bot == nil:
		return nil, BadRequest("message can't be edited")
	}
	last := st.bot.Last()
	if sameKeyboard(last.Keyboard, kb) {
		return nil, BadRequest(NotModified)
	}
	if e := s.floodCheck(c); e != nil {
		return nil, e
	}
	now := time.Now()
	last.Method, last.Keyboard, last.At = "editMessageReplyMarkup", kb, now
	st.bot.Versions = append(st.bot.Versions, last)
	st.msg.ReplyMarkup, st.msg.EditDate = kb, now.Unix()
	return st.msg, nil
}

func (s *Server) answerCallbackQuery(_ context.Context, p params) (any, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := p["callback_query_id"]
	q := s.queries[id]
	if q == nil || q.answered {
		return nil, BadRequest(QueryTooOld)
	}
	q.answered = true
	s.answers = append(s.answers, CallbackAnswer{QueryID: id, Text: p["text"], ShowAlert: p.bool("show_alert"), At: time.Now()})
	return true, nil
}

// Press queues the callback query a user's press on a callback button of a bot
// message makes, and returns the query's id. It fails unless the message shows
// a button with that callback_data.
func (s *Server) Press(from User, chatID int64, messageID int, data string) (string, error) {
	return s.press(from, chatID, messageID, data, false)
}

// PressOld is Press on a message too old for Telegram to send: the query holds
// an InaccessibleMessage (the chat, the message id and date 0).
func (s *Server) PressOld(from User, chatID int64, messageID int, data string) (string, error) {
	return s.press(from, chatID, messageID, data, true)
}

func (s *Server) press(from User, chatID int64, messageID int, data string, old bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[chatID]
	if c == nil {
		return "", errors.New("telegramtest: no such chat")
	}
	st := c.msgs[messageID]
	if st == nil || st.bot == nil || st.bot.Deleted {
		return "", fmt.Errorf("telegramtest: no bot message %d in chat %d", messageID, chatID)
	}
	found := false
	if kb := st.msg.ReplyMarkup; kb != nil {
		for _, row := range kb.InlineKeyboard {
			for _, b := range row {
				found = found || b.CallbackData == data
			}
		}
	}
	if !found {
		return "", fmt.Errorf("telegramtest: message %d shows no button with callback_data %q", messageID, data)
	}
	s.querySeq++
	id := fmt.Sprintf("%d%07d", s.Bot.ID%1000000, s.querySeq)
	s.queries[id] = &query{}
	msg := st.msg
	if old {
		msg = Message{MessageID: msg.MessageID, Chat: msg.Chat}
	}
	s.push(Update{CallbackQuery: &CallbackQuery{ID: id, From: from, Message: &msg,
		ChatInstance: fmt.Sprintf("%d", -chatID*31+7), Data: data}})
	return id, nil
}

// CallbackAnswers returns the accepted answerCallbackQuery calls, oldest first.
func (s *Server) CallbackAnswers() []CallbackAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.answers)
}

// Keyboard returns the inline keyboard a bot message shows now, nil if none.
func (s *Server) Keyboard(chatID int64, messageID int) *InlineKeyboardMarkup {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.chats[chatID]; c != nil {
		if st := c.msgs[messageID]; st != nil {
			return st.msg.ReplyMarkup
		}
	}
	return nil
}
