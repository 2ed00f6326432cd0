package telegram

import (
	"reflect"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"
)

func TestClassify(t *testing.T) {
	b := &Bot{me: models.User{ID: 42, IsBot: true, Username: "test_bot"}}
	alice := &models.User{ID: 1001, FirstName: "Alice", LastName: "Smith"}
	private := models.Chat{ID: 1001, Type: models.ChatTypePrivate}
	group := models.Chat{ID: -100, Type: models.ChatTypeSupergroup}
	mention := func(off, n int) []models.MessageEntity {
		return []models.MessageEntity{{Type: models.MessageEntityTypeMention, Offset: off, Length: n}}
	}
	command := func(n int) []models.MessageEntity {
		return []models.MessageEntity{{Type: models.MessageEntityTypeBotCommand, Offset: 0, Length: n}}
	}
	botMsg := &models.Message{ID: 5, From: &models.User{ID: 42, IsBot: true}}
	// Telegram lists a photo's sizes smallest first; the bot reads the largest.
	photo := []models.PhotoSize{{FileID: "S", Width: 90, Height: 67, FileSize: 1200},
		{FileID: "L", Width: 1280, Height: 960, FileSize: 98000}, {FileID: "M", Width: 320, Height: 240, FileSize: 9000}}
	largest := fileRef{id: "L", size: 98000, name: "photo.jpg", mime: "image/jpeg", what: "photo"}
	tests := []struct {
		name string
		msg  models.Message
		ok   bool
		want incoming // chat, thread, text, files, media, userName are compared
	}{
		{"private text", models.Message{Chat: private, Text: "hi"}, true,
			incoming{chat: "telegram:1001", text: "hi"}},
		{"private command for the bot", models.Message{Chat: private, Text: "/reset@test_bot", Entities: command(15)}, true,
			incoming{chat: "telegram:1001", text: "/reset"}},
		{"private command for another bot", models.Message{Chat: private, Text: "/reset@other_bot", Entities: command(16)}, false, incoming{}},
		{"group without mention", models.Message{Chat: group, Text: "hi all"}, false, incoming{}},
		{"group mention", models.Message{Chat: group, Text: "@test_bot hi", Entities: mention(0, 9)}, true,
			incoming{chat: "telegram:-100", text: "hi", userName: "Alice Smith"}},
		{"group mention, other case", models.Message{Chat: group, Text: "@Test_Bot hi", Entities: mention(0, 9)}, true,
			incoming{chat: "telegram:-100", text: "hi", userName: "Alice Smith"}},
		{"group mention inside", models.Message{Chat: group, Text: "hey @test_bot what's up", Entities: mention(4, 9)}, true,
			incoming{chat: "telegram:-100", text: "hey what's up", userName: "Alice Smith"}},
		{"mention after emoji (UTF-16 offsets)", models.Message{Chat: group, Text: "😀 @test_bot hi", Entities: mention(3, 9)}, true,
			incoming{chat: "telegram:-100", text: "😀 hi", userName: "Alice Smith"}},
		{"mention of someone else", models.Message{Chat: group, Text: "@bob hi", Entities: mention(0, 4)}, false, incoming{}},
		{"text mention", models.Message{Chat: group, Text: "Bot, hi", Entities: []models.MessageEntity{
			{Type: models.MessageEntityTypeTextMention, Offset: 0, Length: 3, User: &models.User{ID: 42}}}}, true,
			incoming{chat: "telegram:-100", text: ", hi", userName: "Alice Smith"}},
		{"reply to the bot", models.Message{Chat: group, Text: "and then?", ReplyToMessage: botMsg}, true,
			incoming{chat: "telegram:-100", text: "and then?", userName: "Alice Smith"}},
		{"reply to someone else", models.Message{Chat: group, Text: "yes", ReplyToMessage: &models.Message{From: alice}}, false, incoming{}},
		{"bare known command in a group", models.Message{Chat: group, Text: "/help", Entities: command(5)}, true,
			incoming{chat: "telegram:-100", text: "/help", userName: "Alice Smith"}},
		{"bare unknown command in a group", models.Message{Chat: group, Text: "/weather", Entities: command(8)}, false, incoming{}},
		{"unknown command for the bot", models.Message{Chat: group, Text: "/weather@test_bot Paris", Entities: command(17)}, true,
			incoming{chat: "telegram:-100", text: "/weather Paris", userName: "Alice Smith"}},
		{"forum topic", models.Message{Chat: group, Text: "@test_bot hi", Entities: mention(0, 9), IsTopicMessage: true, MessageThreadID: 7}, true,
			incoming{chat: "telegram:-100:7", thread: 7, text: "hi", userName: "Alice Smith"}},
		{"just the mention", models.Message{Chat: group, Text: "@test_bot", Entities: mention(0, 9)}, true,
			incoming{chat: "telegram:-100", text: "/help", userName: "Alice Smith"}},
		{"sticker", models.Message{Chat: private, Sticker: &models.Sticker{}}, true,
			incoming{chat: "telegram:1001", media: "stickers"}},
		{"photo with caption", models.Message{Chat: private, Photo: photo, Caption: "what is it?"}, true,
			incoming{chat: "telegram:1001", text: "what is it?", files: []fileRef{largest}}},
		{"photo without caption", models.Message{Chat: private, Photo: photo}, true,
			incoming{chat: "telegram:1001", files: []fileRef{largest}}},
		{"file with caption", models.Message{Chat: private, Document: &models.Document{FileID: "D", FileName: "a.pdf",
			MimeType: "application/pdf", FileSize: 900}, Caption: "read this"}, true,
			incoming{chat: "telegram:1001", text: "read this", files: []fileRef{{id: "D", size: 900, name: "a.pdf",
				mime: "application/pdf", what: "file"}}}},
		{"file without a name", models.Message{Chat: private, Document: &models.Document{FileID: "D"}}, true,
			incoming{chat: "telegram:1001", files: []fileRef{{id: "D", name: "file", what: "file"}}}},
		{"voice", models.Message{Chat: private, Voice: &models.Voice{FileID: "V", FileSize: 5000}}, true,
			incoming{chat: "telegram:1001", files: []fileRef{{id: "V", size: 5000, name: "voice.ogg", mime: "audio/ogg", what: "voice message"}}}},
		{"audio", models.Message{Chat: private, Audio: &models.Audio{FileID: "A", FileName: "song.mp3", MimeType: "audio/mpeg"}}, true,
			incoming{chat: "telegram:1001", files: []fileRef{{id: "A", name: "song.mp3", mime: "audio/mpeg", what: "audio file"}}}},
		{"video note", models.Message{Chat: private, VideoNote: &models.VideoNote{FileID: "N", FileSize: 7}}, true,
			incoming{chat: "telegram:1001", files: []fileRef{{id: "N", size: 7, name: "video_note.mp4", mime: "video/mp4", what: "video message"}}}},
		{"video", models.Message{Chat: private, Video: &models.Video{FileID: "W"}, Caption: "look"}, true,
			incoming{chat: "telegram:1001", text: "look", media: "videos"}},
		{"video as a file", models.Message{Chat: private, Document: &models.Document{FileID: "W", MimeType: "video/mp4"}}, true,
			incoming{chat: "telegram:1001", media: "videos"}},
		{"GIF (an animation and a document)", models.Message{Chat: private, Animation: &models.Animation{FileID: "G"},
			Document: &models.Document{FileID: "G", MimeType: "video/mp4"}}, true, incoming{chat: "telegram:1001", media: "GIFs"}},
		{"caption mention in a group", models.Message{Chat: group, Photo: photo, Caption: "@test_bot what?",
			CaptionEntities: mention(0, 9)}, true, incoming{chat: "telegram:-100", text: "what?", userName: "Alice Smith", files: []fileRef{largest}}},
		{"photo in a group without mention", models.Message{Chat: group, Photo: photo, Caption: "look at this"}, false, incoming{}},
		{"photo in a group replying to the bot", models.Message{Chat: group, Photo: photo, ReplyToMessage: botMsg}, true,
			incoming{chat: "telegram:-100", userName: "Alice Smith", files: []fileRef{largest}}},
		{"service message", models.Message{Chat: group, NewChatMembers: []models.User{*alice}}, false, incoming{}},
		{"channel", models.Message{Chat: models.Chat{ID: -200, Type: models.ChatTypeChannel}, Text: "post"}, false, incoming{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.msg
			m.From = alice
			got, ok := b.classify(&m)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			got.chatID, got.fromID, got.msgID, got.private = 0, 0, 0, false
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestClassifyIgnoresBots(t *testing.T) {
	b := &Bot{me: models.User{ID: 42, Username: "test_bot"}}
	m := &models.Message{From: &models.User{ID: 7, IsBot: true}, Chat: models.Chat{ID: 7, Type: models.ChatTypePrivate}, Text: "hi"}
	if _, ok := b.classify(m); ok {
		t.Error("a bot's message was taken")
	}
}

func TestThrottle(t *testing.T) {
	th := newThrottle(time.Hour)
	if !th.allow("a") || th.allow("a") || !th.allow("b") {
		t.Error("want one event per key per period")
	}
}
