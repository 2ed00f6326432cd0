package telegramtest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
)

// chatState is one chat as the fake knows it.
type chatState struct {
	chat    Chat
	nextMsg int
	msgs    map[int]*stored
	bot     []int // the bot's messages, oldest first
	drafts  []Draft
	live    map[int]*liveDraft // the draft each thread shows (0: no topic)
	stopped map[draftKey]bool  // drafts whose stop button was pressed
	expired []Draft            // drafts that ended their life while shown
	actions []ChatAction
	window  []time.Time // accepted sends and edits, for flood control
	limited int         // 429 answers
}

// stored is a message of the chat; bot is set for the bot's own.
type stored struct {
	msg Message
	bot *BotMessage
}

// chat returns the chat's state, creating it; s.mu is held.
func (s *Server) chat(c Chat) *chatState {
	st := s.chats[c.ID]
	if st == nil {
		st = &chatState{chat: c, msgs: make(map[int]*stored)}
		s.chats[c.ID] = st
	}
	return st
}

// AddChat makes a chat known, as if the bot had been added to it.
func (s *Server) AddChat(c Chat) {
	s.mu.Lock()
	s.chat(c)
	s.mu.Unlock()
}

// lookup finds the chat of the call's chat_id; s.mu is held.
func (s *Server) lookup(p params) (*chatState, *APIError) {
	if strings.TrimSpace(p["chat_id"]) == "" {
		return nil, BadRequest("chat_id is empty")
	}
	id, ok := p.int64("chat_id")
	st := s.chats[id]
	if !ok || st == nil {
		return nil, BadRequest(ChatNotFound)
	}
	return st, nil
}

// formatted returns the visible text and entities of the call's text and parse_mode,
// checked as Telegram checks them.
func formatted(p params, allowEmpty bool) (string, []MessageEntity, *APIError) {
	text := p["text"]
	var ents []MessageEntity
	switch strings.ToLower(p["parse_mode"]) {
	case "":
		if raw := p["entities"]; raw != "" {
			if json.Unmarshal([]byte(raw), &ents) != nil {
				return "", nil, BadRequest("can't parse entities JSON object")
			}
		}
	case "html":
		var err error
		text, ents, err = ParseHTML(text)
		var pe *ParseError
		var ae *APIError
		switch {
		case errors.As(err, &pe):
			return "", nil, BadRequest(ParseFailed + pe.Msg)
		case errors.As(err, &ae):
			return "", nil, ae
		}
	default:
		return "", nil, BadRequest("unsupported parse_mode") // the fake speaks HTML only
	}
	text, ents = finishText(text, ents)
	switch {
	case text == "" && !allowEmpty:
		return "", nil, BadRequest("message text is empty")
	case UTF16Len(text) > MaxMessageLength:
		return "", nil, BadRequest(TooLong)
	}
	return text, ents, nil
}

type replyParameters struct {
	MessageID                int  `json:"message_id"`
	AllowSendingWithoutReply bool `json:"allow_sending_without_reply"`
}

func (s *Server) sendMessage(_ context.Context, p params) (any, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.lookup(p)
	if e != nil {
		return nil, e
	}
	text, ents, e := formatted(p, false)
	if e != nil {
		return nil, e
	}
	kb, e := parseMarkup(p["reply_markup"])
	if e != nil {
		return nil, e
	}
	rp := replyParameters{MessageID: p.int("reply_to_message_id")}
	if raw := p["reply_parameters"]; raw != "" {
		_ = json.Unmarshal([]byte(raw), &rp)
	}
	quoted, found := c.msgs[rp.MessageID]
	if rp.MessageID != 0 && !found && !rp.AllowSendingWithoutReply {
		return nil, BadRequest("message to be replied not found")
	}
	if e := s.floodCheck(c); e != nil {
		return nil, e
	}
	c.nextMsg++
	now := time.Now()
	bot := s.Bot
	m := Message{MessageID: c.nextMsg, MessageThreadID: p.int("message_thread_id"), From: &bot, Date: now.Unix(),
		Chat: c.chat, Text: text, Entities: ents, IsTopicMessage: c.chat.IsForum && p.int("message_thread_id") != 0,
		ReplyMarkup: kb}
	bm := &BotMessage{ID: m.MessageID, ThreadID: m.MessageThreadID,
		Versions: []Version{{Method: "sendMessage", Text: text, Raw: p["text"], ParseMode: p["parse_mode"], Entities: ents,
			Keyboard: kb, At: now}}}
	if found {
		q := quoted.msg
		q.ReplyToMessage = nil
		m.ReplyToMessage, bm.ReplyTo = &q, q.MessageID
	}
	c.msgs[m.MessageID] = &stored{msg: m, bot: bm}
	c.bot = append(c.bot, m.MessageID)
	s.messageSent(c, m.MessageThreadID)
	return m, nil
}

func (s *Server) editMessageText(_ context.Context, p params) (any, *APIError) {
	if p["inline_message_id"] != "" {
		return nil, BadRequest("inline messages are not supported by this fake")
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
	text, ents, e := formatted(p, false)
	if e != nil {
		return nil, e
	}
	// An edit without reply_markup removes the message's inline keyboard.
	kb, e := parseMarkup(p["reply_markup"])
	if e != nil {
		return nil, e
	}
	if last := st.bot.Last(); last.Text == text && sameEntities(last.Entities, ents) && sameKeyboard(last.Keyboard, kb) {
		return nil, BadRequest(NotModified)
	}
	if e := s.floodCheck(c); e != nil {
		return nil, e
	}
	now := time.Now()
	st.bot.Versions = append(st.bot.Versions, Version{Method: "editMessageText", Text: text, Raw: p["text"],
		ParseMode: p["parse_mode"], Entities: ents, Keyboard: kb, At: now})
	st.msg.Text, st.msg.Entities, st.msg.ReplyMarkup, st.msg.EditDate = text, ents, kb, now.Unix()
	return st.msg, nil
}

func sameEntities(a, b []MessageEntity) bool {
	return slices.EqualFunc(a, b, func(x, y MessageEntity) bool {
		return x.Type == y.Type && x.Offset == y.Offset && x.Length == y.Length && x.URL == y.URL && x.Language == y.Language
	})
}

func (s *Server) deleteMessage(_ context.Context, p params) (any, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.lookup(p)
	if e != nil {
		return nil, e
	}
	st := c.msgs[p.int("message_id")]
	if st == nil || (st.bot != nil && st.bot.Deleted) {
		return nil, BadRequest("message to delete not found")
	}
	if st.bot != nil {
		st.bot.Deleted = true
	} else {
		delete(c.msgs, st.msg.MessageID)
	}
	return true, nil
}

var chatActions = []string{"typing", "upload_photo", "record_video", "upload_video", "record_voice",
	"upload_voice", "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note"}

func (s *Server) sendChatAction(_ context.Context, p params) (any, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.lookup(p)
	if e != nil {
		return nil, e
	}
	if !slices.Contains(chatActions, p["action"]) {
		return nil, BadRequest("wrong parameter action in request")
	}
	c.actions = append(c.actions, ChatAction{Action: p["action"], ThreadID: p.int("message_thread_id"), At: time.Now()})
	return true, nil
}

func (s *Server) setMyCommands(_ context.Context, p params) (any, *APIError) {
	var cmds []BotCommand
	if json.Unmarshal([]byte(p["commands"]), &cmds) != nil {
		return nil, BadRequest("can't parse commands JSON object")
	}
	for _, c := range cmds {
		if !validCommand(c.Command) {
			return nil, BadRequest("BOT_COMMAND_INVALID")
		}
		if n := len([]rune(c.Description)); n < 1 || n > 256 {
			return nil, BadRequest("BOT_COMMAND_DESCRIPTION_INVALID")
		}
	}
	s.mu.Lock()
	s.commands = cmds
	s.mu.Unlock()
	return true, nil
}

func validCommand(c string) bool {
	if len(c) < 1 || len(c) > 32 {
		return false
	}
	for _, r := range c {
		if !(r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9')) {
			return false
		}
	}
	return true
}

func (s *Server) getMyCommands(context.Context, params) (any, *APIError) {
	return append([]BotCommand{}, s.Commands()...), nil
}

func (s *Server) getMe(context.Context, params) (any, *APIError) {
	return struct {
		User
		CanJoinGroups           bool `json:"can_join_groups"`
		CanReadAllGroupMessages bool `json:"can_read_all_group_messages"`
		SupportsInlineQueries   bool `json:"supports_inline_queries"`
	}{User: s.Bot, CanJoinGroups: true}, nil
}

// BotMessages returns the messages the bot sent to the chat, oldest first, each
// with its edit history.
func (s *Server) BotMessages(chatID int64) []BotMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[chatID]
	if c == nil {
		return nil
	}
	out := make([]BotMessage, 0, len(c.bot))
	for _, id := range c.bot {
		m := *c.msgs[id].bot
		m.Versions = slices.Clone(m.Versions)
		out = append(out, m)
	}
	return out
}

// ChatActions returns the chat's sendChatAction calls, oldest first.
func (s *Server) ChatActions(chatID int64) []ChatAction {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.chats[chatID]; c != nil {
		return slices.Clone(c.actions)
	}
	return nil
}

// Commands returns the bot's commands as last set with setMyCommands.
func (s *Server) Commands() []BotCommand {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commands)
}
