package telegram_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

func TestStrangerIsToldTheirID(t *testing.T) {
	h := newHarness(t)
	h.say(bob, telegramtest.Chat{}, "hello?")
	msgs := h.waitReply(bob.ID, 1, "telegram.allowed_user_ids")
	text := msgs[0].Last().Text
	if !strings.Contains(text, "2002") {
		t.Errorf("refusal %q does not tell bob his id 2002", text)
	}
	h.say(bob, telegramtest.Chat{}, "/start") // within a minute: no second refusal

	// In a group that is not allowed, only a call to the bot is refused.
	h.say(bob, team, "just chatting, no mention")
	h.say(bob, team, "@"+h.tg.Bot.Username+" may I?")
	msgs = h.waitReply(team.ID, 1, "telegram.allowed_chat_ids")
	if text := msgs[0].Last().Text; !strings.Contains(text, "2002") || !strings.Contains(text, "-1001234") {
		t.Errorf("group refusal %q must give the user id 2002 and the chat id -1001234", text)
	}

	// alice is allowed anywhere, even in that group; her answer marks the end.
	h.say(alice, team, "@"+h.tg.Bot.Username+" am I allowed?")
	h.waitReply(team.ID, 2, "You said: Alice Smith: am I allowed?")
	h.say(alice, telegramtest.Chat{}, "sync")
	h.waitReply(alice.ID, 1, "You said: sync")
	if n := len(h.ai.Requests()); n != 2 {
		t.Errorf("model called %d times, want 2 (never for a stranger)", n)
	}
	if n := len(h.tg.BotMessages(bob.ID)); n != 1 {
		t.Errorf("bob got %d refusals in a minute, want 1", n)
	}
	if n := len(live(h.tg.BotMessages(team.ID))); n != 2 {
		t.Errorf("team chat got %d bot messages, want 2 (the refusal and alice's answer)", n)
	}
}

func TestGroupTriggers(t *testing.T) {
	h := newHarness(t)
	me := "@" + h.tg.Bot.Username
	h.say(bob, club, "talking among ourselves")
	h.say(bob, club, "/help@other_bot")
	h.say(bob, club, "hey "+me+" what is 2+2?")
	first := h.waitReply(club.ID, 1, "You said: Bob: hey what is 2+2?")
	if first[0].ReplyTo == 0 {
		t.Error("in a group the answer should quote the question")
	}
	// A reply to the bot's message needs no mention.
	h.tg.Inject(telegramtest.Incoming{From: alice, Chat: club, Text: "and 3+3?", ReplyTo: first[0].ID})
	h.waitReply(club.ID, 2, "You said: Alice Smith: and 3+3?")
	h.say(bob, club, "/reset@"+h.tg.Bot.Username)
	h.waitReply(club.ID, 3, "Context cleared")
	h.say(bob, club, "/help")
	h.waitReply(club.ID, 4, "/reset")

	calls := h.ai.Requests()
	if len(calls) != 2 {
		t.Fatalf("model called %d times, want 2", len(calls))
	}
	want := []string{"Bob: hey what is 2+2?", "Alice Smith: and 3+3?"}
	if got := userTexts(calls[1]); !slices.Equal(got, want) {
		t.Errorf("model got %q, want the speakers named: %q", got, want)
	}
}

func TestForumTopicsAreSeparateConversations(t *testing.T) {
	h := newHarness(t)
	me := "@" + h.tg.Bot.Username
	h.ai.Enqueue(openaitest.Reply{Tokens: []string{"You said: Alice Smith: topic seven"}, FirstDelay: 300 * time.Millisecond})
	h.tg.Inject(telegramtest.Incoming{From: alice, Chat: forum, ThreadID: 7, Text: me + " topic seven"})
	h.waitReply(forum.ID, 1, "You said: Alice Smith: topic seven")
	h.tg.Inject(telegramtest.Incoming{From: alice, Chat: forum, ThreadID: 9, Text: me + " topic nine"})
	msgs := h.waitReply(forum.ID, 2, "You said: Alice Smith: topic nine")
	if msgs[0].ThreadID != 7 || msgs[1].ThreadID != 9 {
		t.Errorf("answers went to topics %d and %d, want 7 and 9", msgs[0].ThreadID, msgs[1].ThreadID)
	}
	if got := userTexts(h.ai.Requests()[1]); len(got) != 1 {
		t.Errorf("topic nine's context holds %q, want only its own message", got)
	}
	if actions := h.tg.ChatActions(forum.ID); len(actions) == 0 || actions[0].ThreadID != 7 {
		t.Errorf("typing should go to the topic: %+v", actions)
	}
}

func TestNonTextMessages(t *testing.T) {
	h := newHarness(t)
	h.tg.Inject(telegramtest.Incoming{From: alice, Sticker: true})
	h.waitReply(alice.ID, 1, "I can't read stickers")
	h.tg.Inject(telegramtest.Incoming{From: alice, Media: telegramtest.Video([]byte("not read")), Caption: "what happens?"})
	h.waitReply(alice.ID, 2, "I can't read videos")
	h.tg.Inject(telegramtest.Incoming{From: alice, Photo: true, Caption: "what is in this photo?"})
	h.waitReply(alice.ID, 3, "You said: what is in this photo?")

	// Ignored: an edit, a service message, another bot, a sticker in a group
	// that does not reply to the bot.
	h.tg.Inject(telegramtest.Incoming{From: alice, Text: "edited text", Edit: 1})
	h.tg.Inject(telegramtest.Incoming{From: alice, Chat: club, NewChatMembers: []telegramtest.User{bob}})
	h.tg.Inject(telegramtest.Incoming{From: telegramtest.User{ID: 777, IsBot: true, FirstName: "Other"}, Chat: club,
		Text: "@" + h.tg.Bot.Username + " hi from a bot"})
	h.tg.Inject(telegramtest.Incoming{From: alice, Chat: club, Sticker: true})
	h.say(alice, telegramtest.Chat{}, "done")
	h.waitReply(alice.ID, 4, "You said: done")
	if n := len(h.ai.Requests()); n != 2 {
		t.Errorf("model called %d times, want 2", n)
	}
	if n := len(h.tg.BotMessages(club.ID)); n != 0 {
		t.Errorf("bot wrote %d messages in the group, want none", n)
	}
}
