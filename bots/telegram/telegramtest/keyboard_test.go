package telegramtest

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

func TestInlineKeyboardsAsTelegramChecksThem(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.AddChat(PrivateChat(User{ID: 7}))
	send := func(markup string) string {
		t.Helper()
		_, a := call(t, s, "sendMessage", url.Values{"chat_id": {"7"}, "text": {"pick"}, "reply_markup": {markup}})
		if a.OK {
			return ""
		}
		return a.Description
	}
	tests := []struct{ markup, want string }{
		{`{"inline_keyboard":[[{"text":"a","callback_data":"/model a"}]]}`, ""},
		{`{"inline_keyboard":[[{"text":"a","callback_data":"` + strings.Repeat("x", 64) + `"}]]}`, ""},
		{`{"inline_keyboard":[[{"text":"a","callback_data":"` + strings.Repeat("x", 65) + `"}]]}`, "Bad Request: BUTTON_DATA_INVALID"},
		{`{"inline_keyboard":[[{"text":"a","callback_data":""}]]}`, "Bad Request: BUTTON_DATA_INVALID"},
		{`{"inline_keyboard":[[{"text":"a"}]]}`, "Bad Request: " + ButtonTextOnly},
		{`{"inline_keyboard":[[{"text":"a","callback_data":"x","url":"https://x.io"}]]}`, "Bad Request: BUTTON_TYPE_INVALID"},
		{`{"inline_keyboard":[[{"text":"a","callback_data":"x","copy_text":{"text":""}}]]}`, "Bad Request: BUTTON_COPY_TEXT_INVALID"},
		{`{"inline_keyboard":[[`, "Bad Request: " + MarkupInvalid},
	}
	for _, tt := range tests {
		if got := send(tt.markup); got != tt.want {
			t.Errorf("reply_markup %s: got %q, want %q", tt.markup, got, tt.want)
		}
	}

	// go-telegram/bot's own button type: v1.19.0 always sent a copy_text, which
	// was refused; since v1.24.0 it is a pointer, left out when nil.
	b, err := bot.New(s.Token, bot.WithServerURL(s.URL), bot.WithSkipGetMe())
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.SendMessage(context.Background(), &bot.SendMessageParams{ChatID: 7, Text: "x",
		ReplyMarkup: models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{{{Text: "a", CallbackData: "a"}}}}})
	if err != nil {
		t.Errorf("library button: %v", err)
	}
	_, err = b.SendMessage(context.Background(), &bot.SendMessageParams{ChatID: 7, Text: "x",
		ReplyMarkup: models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{{{Text: "a", CallbackData: "a",
			CopyText: &models.CopyTextButton{}}}}}})
	if err == nil || !strings.Contains(err.Error(), ButtonCopyInvalid) {
		t.Errorf("library button with an empty copy_text: %v", err)
	}

	msg := s.BotMessages(7)[0]
	if kb := msg.Last().Keyboard; kb == nil || kb.InlineKeyboard[0][0] != (InlineKeyboardButton{Text: "a", CallbackData: "/model a"}) {
		t.Fatalf("keyboard not kept: %+v", kb)
	}
	edit := url.Values{"chat_id": {"7"}, "message_id": {"1"},
		"reply_markup": {`{"inline_keyboard":[[{"text":"a","callback_data":"/model a"}]]}`}}
	if _, a := call(t, s, "editMessageReplyMarkup", edit); a.Description != "Bad Request: "+NotModified {
		t.Errorf("same keyboard: %+v", a)
	}
	edit.Set("reply_markup", `{"inline_keyboard":[]}`)
	if _, a := call(t, s, "editMessageReplyMarkup", edit); !a.OK || s.Keyboard(7, 1) != nil {
		t.Errorf("removing the keyboard: %+v, now %+v", a, s.Keyboard(7, 1))
	}
	// An edit of the text without reply_markup removes the keyboard too.
	send(`{"inline_keyboard":[[{"text":"b","callback_data":"b"}]]}`)
	id := s.BotMessages(7)[1].ID
	if _, a := call(t, s, "editMessageText", url.Values{"chat_id": {"7"}, "message_id": {itoa(int64(id))}, "text": {"pick"}}); !a.OK {
		t.Errorf("text edit that drops the keyboard is a change: %+v", a)
	}
	if s.Keyboard(7, id) != nil {
		t.Error("editMessageText without reply_markup kept the keyboard")
	}
}

func TestCallbackQueries(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	u := User{ID: 7, FirstName: "U"}
	s.AddChat(PrivateChat(u))
	call(t, s, "sendMessage", url.Values{"chat_id": {"7"}, "text": {"pick"},
		"reply_markup": {`{"inline_keyboard":[[{"text":"a","callback_data":"/model a"}]]}`}})
	if _, err := s.Press(u, 7, 1, "/model b"); err == nil {
		t.Error("pressed a button the message does not show")
	}
	id, err := s.Press(u, 7, 1, "/model a")
	if err != nil {
		t.Fatal(err)
	}
	_, a := call(t, s, "getUpdates", url.Values{"allowed_updates": {`["message","callback_query"]`}})
	var ups []Update
	if err := json.Unmarshal(a.Result, &ups); err != nil || len(ups) != 1 || ups[0].CallbackQuery == nil {
		t.Fatalf("getUpdates: %s %v", a.Result, err)
	}
	q := ups[0].CallbackQuery
	if q.ID != id || q.Data != "/model a" || q.From.ID != 7 || q.Message == nil || q.Message.MessageID != 1 ||
		q.Message.ReplyMarkup == nil || q.Message.Date == 0 {
		t.Errorf("callback query: %+v", q)
	}
	if _, a := call(t, s, "answerCallbackQuery", url.Values{"callback_query_id": {id}, "text": {"ok"}}); !a.OK {
		t.Errorf("answer: %+v", a)
	}
	for _, bad := range []string{id, "12345"} { // answered already; unknown
		if _, a := call(t, s, "answerCallbackQuery", url.Values{"callback_query_id": {bad}}); a.Description != "Bad Request: "+QueryTooOld {
			t.Errorf("answer %s: %+v", bad, a)
		}
	}
	if got := s.CallbackAnswers(); len(got) != 1 || got[0].Text != "ok" {
		t.Errorf("answers: %+v", got)
	}

	// Not allowed: a bot that asks only for messages never gets the press.
	s.Press(u, 7, 1, "/model a")
	_, a = call(t, s, "getUpdates", url.Values{"offset": {itoa(ups[0].UpdateID + 1)}, "allowed_updates": {`["message"]`}})
	if string(a.Result) != "[]" || s.Pending() != 0 {
		t.Errorf("a press reached a bot that did not allow callback_query: %s", a.Result)
	}

	if _, err := s.PressOld(u, 7, 1, "/model a"); err != nil {
		t.Fatal(err)
	}
	_, a = call(t, s, "getUpdates", url.Values{"allowed_updates": {`["callback_query"]`}})
	var raw []map[string]map[string]json.RawMessage
	_ = json.Unmarshal(a.Result, &raw)
	if len(raw) != 1 || !strings.Contains(string(raw[0]["callback_query"]["message"]), `"date":0`) {
		t.Errorf("old press: %s", a.Result)
	}
}
