package telegramtest

import "time"

// User is a Telegram user or bot (https://core.telegram.org/bots/api#user).
type User struct {
	ID        int64  `json:"id"`
	IsBot     bool   `json:"is_bot"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name,omitempty"`
	Username  string `json:"username,omitempty"`
}

// Chat is a chat (https://core.telegram.org/bots/api#chat). Type is "private",
// "group", "supergroup" or "channel".
type Chat struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	Title     string `json:"title,omitempty"`
	Username  string `json:"username,omitempty"`
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	IsForum   bool   `json:"is_forum,omitempty"`
}

// MessageEntity is one formatted or special part of a text, with offsets and
// lengths in UTF-16 code units (https://core.telegram.org/bots/api#messageentity).
type MessageEntity struct {
	Type     string `json:"type"`
	Offset   int    `json:"offset"`
	Length   int    `json:"length"`
	URL      string `json:"url,omitempty"`
	User     *User  `json:"user,omitempty"`
	Language string `json:"language,omitempty"`
}

// PhotoSize is one size of a photo (https://core.telegram.org/bots/api#photosize).
// FileSize is optional: Telegram may leave it out.
type PhotoSize struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	FileSize     int64  `json:"file_size,omitempty"`
}

// File is the common part of a sticker, a voice note, an audio file, a video
// note, a video, an animation or a document, with the fields each may have.
type File struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	FileName     string `json:"file_name,omitempty"`
	MimeType     string `json:"mime_type,omitempty"`
	FileSize     int64  `json:"file_size,omitempty"`
	Duration     int    `json:"duration,omitempty"`
	Type         string `json:"type,omitempty"` // stickers: "regular"
	Width        int    `json:"width,omitempty"`
	Height       int    `json:"height,omitempty"`
	Length       int    `json:"length,omitempty"` // video notes: the diameter
}

// FileInfo is what getFile answers (https://core.telegram.org/bots/api#file):
// the file's size and the path to download it from, at
// /file/bot<token>/<file_path>.
type FileInfo struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	FileSize     int64  `json:"file_size,omitempty"`
	FilePath     string `json:"file_path,omitempty"`
}

// Message is a message as the Bot API sends it (the fields this fake knows).
type Message struct {
	MessageID       int             `json:"message_id"`
	MessageThreadID int             `json:"message_thread_id,omitempty"`
	From            *User           `json:"from,omitempty"`
	SenderChat      *Chat           `json:"sender_chat,omitempty"`
	Date            int64           `json:"date"`
	Chat            Chat            `json:"chat"`
	IsTopicMessage  bool            `json:"is_topic_message,omitempty"`
	ReplyToMessage  *Message        `json:"reply_to_message,omitempty"`
	EditDate        int64           `json:"edit_date,omitempty"`
	Text            string          `json:"text,omitempty"`
	Entities        []MessageEntity `json:"entities,omitempty"`
	Photo           []PhotoSize     `json:"photo,omitempty"`
	Sticker         *File           `json:"sticker,omitempty"`
	Voice           *File           `json:"voice,omitempty"`
	Audio           *File           `json:"audio,omitempty"`
	VideoNote       *File           `json:"video_note,omitempty"`
	Video           *File           `json:"video,omitempty"`
	Animation       *File           `json:"animation,omitempty"`
	Document        *File           `json:"document,omitempty"`
	Caption         string          `json:"caption,omitempty"`
	MediaGroupID    string          `json:"media_group_id,omitempty"` // the album the photo or file belongs to
	CaptionEntities []MessageEntity `json:"caption_entities,omitempty"`
	NewChatMembers  []User          `json:"new_chat_members,omitempty"`
	NewChatTitle    string          `json:"new_chat_title,omitempty"`
	// ForumTopicCreated marks the service message that opens a forum topic.
	ForumTopicCreated *ForumTopic `json:"forum_topic_created,omitempty"`
	// ReplyMarkup is the inline keyboard under a bot message.
	ReplyMarkup *InlineKeyboardMarkup `json:"reply_markup,omitempty"`
}

// InlineKeyboardMarkup is an inline keyboard: rows of buttons
// (https://core.telegram.org/bots/api#inlinekeyboardmarkup).
type InlineKeyboardMarkup struct {
	InlineKeyboard [][]InlineKeyboardButton `json:"inline_keyboard"`
}

// InlineKeyboardButton is one button of an inline keyboard, as the fake keeps it:
// its label and, for the buttons a bot can be told about, its callback_data or url.
type InlineKeyboardButton struct {
	Text         string `json:"text"`
	CallbackData string `json:"callback_data,omitempty"`
	URL          string `json:"url,omitempty"`
}

// CallbackQuery is what a press on a callback button sends the bot
// (https://core.telegram.org/bots/api#callbackquery). Message is the message
// with the button; for a message too old to show, it holds only the chat, the
// message_id and date 0 (an InaccessibleMessage).
type CallbackQuery struct {
	ID              string   `json:"id"`
	From            User     `json:"from"`
	Message         *Message `json:"message,omitempty"`
	InlineMessageID string   `json:"inline_message_id,omitempty"`
	ChatInstance    string   `json:"chat_instance"`
	Data            string   `json:"data,omitempty"`
}

// ForumTopic is what forum_topic_created holds.
type ForumTopic struct {
	Name      string `json:"name"`
	IconColor int    `json:"icon_color"`
}

// MessageGenerationStopped is what the user's stop button under a draft sent
// with can_stop sends the bot
// (https://core.telegram.org/bots/api#messagegenerationstopped).
type MessageGenerationStopped struct {
	Chat            Chat  `json:"chat"`
	MessageThreadID int   `json:"message_thread_id,omitempty"`
	DraftID         int64 `json:"draft_id"`
}

// Update is one incoming update (https://core.telegram.org/bots/api#update).
type Update struct {
	UpdateID      int64          `json:"update_id"`
	Message       *Message       `json:"message,omitempty"`
	EditedMessage *Message       `json:"edited_message,omitempty"`
	ChannelPost   *Message       `json:"channel_post,omitempty"`
	CallbackQuery *CallbackQuery `json:"callback_query,omitempty"`
	// StoppedMessageGeneration: the user pressed the stop button of a draft
	// (Bot API 10.3).
	StoppedMessageGeneration *MessageGenerationStopped `json:"stopped_message_generation,omitempty"`
}

// kind is the update's type as allowed_updates names it.
func (u Update) kind() string {
	switch {
	case u.Message != nil:
		return "message"
	case u.EditedMessage != nil:
		return "edited_message"
	case u.ChannelPost != nil:
		return "channel_post"
	case u.CallbackQuery != nil:
		return "callback_query"
	case u.StoppedMessageGeneration != nil:
		return "stopped_message_generation"
	}
	return "other"
}

// BotCommand is one entry of setMyCommands.
type BotCommand struct {
	Command     string `json:"command"`
	Description string `json:"description"`
}

// Version is one state of a bot message: as sent, then after each edit.
type Version struct {
	Method    string // "sendMessage", "editMessageText", "editMessageReplyMarkup", "sendPhoto" or "sendDocument"
	Text      string // the visible text, as Telegram shows it
	Raw       string // the text parameter as sent (HTML when ParseMode is "HTML")
	ParseMode string
	Entities  []MessageEntity
	// Keyboard is the inline keyboard under the message, nil if none.
	Keyboard *InlineKeyboardMarkup
	At       time.Time
}

// BotMessage is a message the bot sent, with its whole edit history. A photo
// or a document the bot sent is one too: its Version's Text is the caption and
// Upload holds the file.
type BotMessage struct {
	ID       int
	ThreadID int
	ReplyTo  int // the message it replies to, 0 if none
	Deleted  bool
	Versions []Version
	Upload   *Upload
}

// Last is the message's current state.
func (m BotMessage) Last() Version { return m.Versions[len(m.Versions)-1] }

// Draft is one sendMessageDraft call that Telegram accepted.
type Draft struct {
	DraftID   int64
	ThreadID  int
	Text      string // visible text; empty shows a "Thinking..." placeholder
	Raw       string
	ParseMode string
	// CanStop and KeepOnStop are the call's can_stop and keep_on_stop.
	CanStop, KeepOnStop bool
	// Ignored marks a draft sent after the user stopped its draft_id: the
	// stop button stops further drafts, so it is not shown.
	Ignored bool
	// At is when it was sent, by Options.Now.
	At time.Time
}

// ChatAction is one sendChatAction call.
type ChatAction struct {
	Action   string
	ThreadID int
	At       time.Time
}

// CallbackAnswer is one answerCallbackQuery call that Telegram accepted.
type CallbackAnswer struct {
	QueryID   string
	Text      string
	ShowAlert bool
	At        time.Time
}

// Call is one Bot API request the fake answered.
type Call struct {
	Method string // as Telegram spells it, e.g. "editMessageText"
	ChatID int64
	Params map[string]string
	At     time.Time
	// ErrorCode and Description are set when the call failed.
	ErrorCode   int
	Description string
	// Reset is set when the fake closed the connection instead of answering
	// (SetReset); the call had no effect.
	Reset bool
}
