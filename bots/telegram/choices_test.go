package telegram_test

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/chatbot-dev/chatbot/bots/telegram"
	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/conversation"
)

// Models and personas of the tests.
var (
	mini, nano   = "gpt-5.4-mini", "gpt-5.4-nano"
	pirate, poet = "Talk like a pirate.", "Answer in verse."
	systemPrompt = "You are a helpful assistant."
)

// choices configures two models and two personas.
func choices(h *harness) {
	h.ai.Models = []string{mini, nano}
	h.config.Models = []string{mini, nano}
	h.config.Personas = map[string]string{"pirate": pirate, "poet": poet}
	h.config.SystemPrompt = systemPrompt
}

// labels returns a message's buttons as "label=data", row by row ("|" between rows).
func labels(kb *telegramtest.InlineKeyboardMarkup) string {
	if kb == nil {
		return ""
	}
	var rows []string
	for _, row := range kb.InlineKeyboard {
		var bs []string
		for _, b := range row {
			bs = append(bs, b.Text+"="+b.CallbackData)
		}
		rows = append(rows, strings.Join(bs, ", "))
	}
	return strings.Join(rows, " | ")
}

// press presses a button and fails the test if the message does not show it.
func (h *harness) press(from telegramtest.User, chatID int64, msgID int, data string) {
	h.t.Helper()
	if _, err := h.tg.Press(from, chatID, msgID, data); err != nil {
		h.t.Fatal(err)
	}
}

// lastRequest returns the newest model call.
func (h *harness) lastRequest() (r struct {
	Model, Instructions string
	Users               []string
}) {
	h.t.Helper()
	calls := h.ai.Requests()
	if len(calls) == 0 {
		h.t.Fatal("no model call")
	}
	c := calls[len(calls)-1]
	r.Model, r.Instructions, r.Users = c.Model, c.Instructions, userTexts(c)
	return r
}

func TestModelByButton(t *testing.T) {
	h := newHarness(t, choices)
	h.say(alice, telegramtest.Chat{}, "/model")
	menu := h.waitReply(alice.ID, 1, "Switch with /model NAME.")[0]
	if got, want := labels(menu.Last().Keyboard), "✓ gpt-5.4-mini=/model gpt-5.4-mini, gpt-5.4-nano=/model gpt-5.4-nano"; got != want {
		t.Errorf("buttons %q, want %q", got, want)
	}
	if !strings.Contains(menu.Last().Text, "• gpt-5.4-nano") {
		t.Errorf("the menu's text does not list the models: %q", menu.Last().Text)
	}

	h.press(alice, alice.ID, menu.ID, "/model gpt-5.4-nano")
	h.waitReply(alice.ID, 2, "Model for this chat: gpt-5.4-nano.")
	h.waitFor("the menu to mark the new model", func() bool {
		return strings.HasPrefix(labels(h.tg.Keyboard(alice.ID, menu.ID)), "gpt-5.4-mini=/model gpt-5.4-mini, ✓ gpt-5.4-nano=")
	})
	if got := h.tg.BotMessages(alice.ID)[0].Last().Text; !strings.HasPrefix(got, "Model for this chat: gpt-5.4-nano\n") {
		t.Errorf("the menu's text was not updated: %q", got)
	}
	if got := h.tg.CallbackAnswers(); len(got) != 1 || got[0].Text != "/model gpt-5.4-nano" || got[0].ShowAlert {
		t.Errorf("callback answers: %+v, want one toast naming the command", got)
	}

	h.say(alice, telegramtest.Chat{}, "hello")
	h.waitReply(alice.ID, 3, "You said: hello")
	if calls := h.ai.Requests(); len(calls) != 1 || calls[0].Model != nano {
		t.Errorf("model calls %+v, want one to %s", calls, nano)
	}
	if n := len(h.tg.BotMessages(alice.ID)); n != 3 {
		t.Errorf("%d bot messages, want the menu, the confirmation and the answer", n)
	}
	for _, c := range h.tg.CallsTo("answerCallbackQuery") {
		if c.ErrorCode != 0 {
			t.Errorf("answerCallbackQuery failed: %+v", c)
		}
	}
}

func TestSettingsPersistAcrossResetAndRestart(t *testing.T) {
	h := newHarness(t, choices)
	h.say(alice, telegramtest.Chat{}, "/persona")
	menu := h.waitReply(alice.ID, 1, "/persona off.")[0]
	if got, want := labels(menu.Last().Keyboard), "pirate=/persona pirate, poet=/persona poet, ✓ off=/persona off"; got != want {
		t.Errorf("buttons %q, want %q", got, want)
	}
	h.press(alice, alice.ID, menu.ID, "/persona pirate")
	h.waitReply(alice.ID, 2, "Persona for this chat: pirate.")
	h.say(alice, telegramtest.Chat{}, "/model gpt-5.4-nano") // by text
	h.waitReply(alice.ID, 3, "Model for this chat: gpt-5.4-nano.")
	h.say(alice, telegramtest.Chat{}, "/reset")
	h.waitReply(alice.ID, 4, "Context cleared")

	h.stop()
	h.start()
	h.say(alice, telegramtest.Chat{}, "ahoy")
	h.waitReply(alice.ID, 5, "You said: ahoy")
	if r := h.lastRequest(); r.Model != nano || r.Instructions != pirate || !slices.Equal(r.Users, []string{"ahoy"}) {
		t.Errorf("after /reset and a restart: %+v, want %s with the pirate persona and a fresh context", r, nano)
	}
	h.say(alice, telegramtest.Chat{}, "/help")
	help := h.waitReply(alice.ID, 6, "/help")[5].Last().Text
	if !strings.Contains(help, "gpt-5.4-nano") || !strings.Contains(help, "Persona: pirate") {
		t.Errorf("/help does not name the chat's model and persona: %q", help)
	}
	h.say(alice, telegramtest.Chat{}, "/persona off")
	h.waitReply(alice.ID, 7, "Persona off")
	h.say(alice, telegramtest.Chat{}, "plain")
	h.waitReply(alice.ID, 8, "You said: plain")
	if r := h.lastRequest(); r.Instructions != systemPrompt || r.Model != nano {
		t.Errorf("after /persona off: %+v, want the system prompt", r)
	}
}

func TestUnknownModelIsRefusedWithoutAModelCall(t *testing.T) {
	h := newHarness(t, choices)
	h.say(alice, telegramtest.Chat{}, "/model gpt-9")
	got := h.waitReply(alice.ID, 1, "gpt-5.4-nano")[0].Last().Text
	if !strings.Contains(got, "gpt-9") || !strings.Contains(got, "gpt-5.4-mini") {
		t.Errorf("refusal %q should name the model asked for and the allowed ones", got)
	}
	h.say(alice, telegramtest.Chat{}, "/persona captain")
	h.waitReply(alice.ID, 2, "pirate, poet")
	if n := len(h.ai.Requests()); n != 0 {
		t.Errorf("%d model calls, want none", n)
	}
}

func TestPressInForumTopicSetsThatTopic(t *testing.T) {
	h := newHarness(t, choices)
	me := "@" + h.tg.Bot.Username
	h.tg.Inject(telegramtest.Incoming{From: alice, Chat: forum, ThreadID: 7, Text: "/model"})
	menu := h.waitReply(forum.ID, 1, "Switch with /model NAME.")[0]
	if menu.ThreadID != 7 {
		t.Fatalf("menu went to topic %d, want 7", menu.ThreadID)
	}
	// bob is allowed in the forum, which is an allowed chat.
	h.press(bob, forum.ID, menu.ID, "/model gpt-5.4-nano")
	msgs := h.waitReply(forum.ID, 2, "Model for this chat: gpt-5.4-nano.")
	if msgs[1].ThreadID != 7 || msgs[1].ReplyTo != menu.ID {
		t.Errorf("confirmation in topic %d quoting %d, want topic 7 quoting the menu %d", msgs[1].ThreadID, msgs[1].ReplyTo, menu.ID)
	}
	h.waitFor("the menu to mark the new model", func() bool {
		return strings.Contains(labels(h.tg.Keyboard(forum.ID, menu.ID)), "✓ gpt-5.4-nano")
	})

	h.tg.Inject(telegramtest.Incoming{From: alice, Chat: forum, ThreadID: 7, Text: me + " seven"})
	h.waitReply(forum.ID, 3, "You said: Alice Smith: seven")
	if r := h.lastRequest(); r.Model != nano {
		t.Errorf("topic 7 uses %s, want %s", r.Model, nano)
	}
	h.tg.Inject(telegramtest.Incoming{From: alice, Chat: forum, ThreadID: 9, Text: me + " nine"})
	h.waitReply(forum.ID, 4, "You said: Alice Smith: nine")
	if r := h.lastRequest(); r.Model != mini {
		t.Errorf("topic 9 uses %s, want the default %s", r.Model, mini)
	}
	h.say(alice, club, me+" club")
	h.waitReply(club.ID, 1, "You said: Alice Smith: club")
	if r := h.lastRequest(); r.Model != mini {
		t.Errorf("another group uses %s, want the default %s", r.Model, mini)
	}
}

func TestPressesThatChangeNothing(t *testing.T) {
	h := newHarness(t, choices)
	me := "@" + h.tg.Bot.Username
	// team: only alice is allowed.
	h.say(alice, team, "/model")
	menu := h.waitReply(team.ID, 1, "Switch with /model NAME.")[0]
	before := labels(menu.Last().Keyboard)
	h.press(bob, team.ID, menu.ID, "/model gpt-5.4-nano")
	if _, err := h.tg.PressOld(alice, team.ID, menu.ID, "/model gpt-5.4-nano"); err != nil {
		t.Fatal(err)
	}
	h.waitFor("two answers", func() bool { return len(h.tg.CallbackAnswers()) == 2 })
	answers := h.tg.CallbackAnswers()
	both := answers[0].Text + "|" + answers[1].Text // the two presses are answered in either order
	if !strings.Contains(both, "not allowed") || !strings.Contains(both, "too old") {
		t.Errorf("toasts %q and %q, want a refusal and a too-old notice", answers[0].Text, answers[1].Text)
	}
	h.say(alice, team, me+" still mini?")
	h.waitReply(team.ID, 2, "You said: Alice Smith: still mini?")
	if r := h.lastRequest(); r.Model != mini {
		t.Errorf("a refused press switched the model to %s", r.Model)
	}
	if n := len(h.tg.BotMessages(team.ID)); n != 2 {
		t.Errorf("%d bot messages in the group, want the menu and the answer", n)
	}
	if got := labels(h.tg.Keyboard(team.ID, menu.ID)); got != before {
		t.Errorf("the menu changed: %q, was %q", got, before)
	}
}

func TestPressIsAnsweredOnceAcrossRestart(t *testing.T) {
	h := newHarness(t, choices)
	h.say(alice, telegramtest.Chat{}, "/model")
	menu := h.waitReply(alice.ID, 1, "Switch with /model NAME.")[0]
	h.press(alice, alice.ID, menu.ID, "/model gpt-5.4-nano")
	h.waitReply(alice.ID, 2, "Model for this chat: gpt-5.4-nano.")
	h.waitFor("the queue to be confirmed", func() bool { return h.tg.Pending() == 0 })
	h.stop()
	h.start()
	h.say(alice, telegramtest.Chat{}, "after restart")
	msgs := h.waitReply(alice.ID, 3, "You said: after restart")
	if len(msgs) != 3 || len(h.tg.CallbackAnswers()) != 1 {
		t.Errorf("%d messages and %d callback answers, want the press handled once", len(msgs), len(h.tg.CallbackAnswers()))
	}
}

func TestLongCommandsGetNoButton(t *testing.T) {
	long := "ft:gpt-5.4-mini:my-company:support-bot-fine-tuned:B7xYz9Qa" // "/model " + this is 65 bytes
	h := newHarness(t, func(h *harness) {
		h.ai.Models = []string{mini, long}
		h.config.Models = []string{mini, long}
	})
	h.say(alice, telegramtest.Chat{}, "/model")
	menu := h.waitReply(alice.ID, 1, "Switch with /model NAME.")[0]
	if got := labels(menu.Last().Keyboard); got != "✓ gpt-5.4-mini=/model gpt-5.4-mini" {
		t.Errorf("buttons %q, want only the model whose command fits in 64 bytes", got)
	}
	if !strings.Contains(menu.Last().Text, long) {
		t.Errorf("the text should still list %s: %q", long, menu.Last().Text)
	}
}

func TestPressViaWebhook(t *testing.T) {
	ln := listen(t)
	hook := "http://" + ln.Addr().String() + "/telegram/hook"
	h := newHarness(t, choices, adapter(func(o *telegram.Options) {
		o.Mode, o.WebhookURL, o.WebhookSecret, o.WebhookListener = telegram.ModeWebhook, hook, webhookSecret, ln
	}))
	h.waitFor("setWebhook", func() bool { return h.tg.WebhookInfo().URL == hook })
	if got := h.tg.WebhookInfo().AllowedUpdates; !slices.Contains(got, "callback_query") {
		t.Errorf("webhook allowed_updates %q lack callback_query", got)
	}
	h.say(alice, telegramtest.Chat{}, "/"+conversation.CommandPersona)
	menu := h.waitReply(alice.ID, 1, "/persona off.")[0]
	h.press(alice, alice.ID, menu.ID, "/persona poet")
	h.waitReply(alice.ID, 2, "Persona for this chat: poet.")
	h.say(alice, telegramtest.Chat{}, "rhyme")
	h.waitReply(alice.ID, 3, "You said: rhyme")
	if r := h.lastRequest(); r.Instructions != poet {
		t.Errorf("instructions %q, want the poet's", r.Instructions)
	}
}

// listen opens a loopback listener for a webhook.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
