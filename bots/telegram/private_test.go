package telegram_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

func TestPrivateReply(t *testing.T) {
	h := newHarness(t)
	h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize("Hello, Alice!"), FirstDelay: time.Second})
	h.say(alice, telegramtest.Chat{}, "hello")
	msgs := h.waitReply(alice.ID, 1, "Hello, Alice!")

	if got := msgs[0].Last().Text; got != "Hello, Alice!" {
		t.Errorf("reply = %q, want %q", got, "Hello, Alice!")
	}
	if len(msgs) != 1 || msgs[0].ReplyTo != 0 {
		t.Errorf("got %d messages (first quoting %d), want one that quotes nothing in a private chat", len(msgs), msgs[0].ReplyTo)
	}
	if got := userTexts(h.ai.Requests()[0]); !slices.Equal(got, []string{"hello"}) {
		t.Errorf("model got %q, want [hello]", got)
	}
	actions := h.tg.ChatActions(alice.ID)
	if len(actions) < 2 || actions[0].Action != "typing" || !actions[0].At.Before(msgs[0].Versions[0].At) {
		t.Errorf("want \"typing\" renewed until the first text (1 s, every 100 ms), got %+v", actions)
	}
	for _, a := range actions {
		if a.At.After(msgs[0].Versions[0].At) {
			t.Errorf("typing sent after the first text: %+v", a)
		}
	}
	var names []string
	for _, c := range h.tg.Commands() {
		names = append(names, c.Command)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"help", "image", "model", "persona", "reset", "start", "stop", "usage"}) {
		t.Errorf("commands = %v, want help image model persona reset start stop usage", names)
	}
}

func TestStreamingShowsGrowingText(t *testing.T) {
	h := newHarness(t)
	reply := strings.TrimSpace(strings.Repeat("streaming words arrive one by one ", 12))
	h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize(reply), TokenDelay: 15 * time.Millisecond})
	h.say(alice, telegramtest.Chat{}, "tell me something")
	msgs := h.waitReply(alice.ID, 1, "one by one")
	h.waitFor("the final text", func() bool { return h.tg.BotMessages(alice.ID)[0].Last().Text == reply })

	versions := h.tg.BotMessages(alice.ID)[0].Versions
	if len(versions) < 3 {
		t.Fatalf("got %d states, want at least two growing states before the final: %+v", len(versions), versions)
	}
	for i := 1; i < len(versions); i++ {
		prev, cur := versions[i-1].Text, versions[i].Text
		if len(cur) <= len(prev) || !strings.HasPrefix(cur, prev) {
			t.Errorf("state %d %q does not grow state %d %q", i, cur, i-1, prev)
		}
	}
	if versions[0].Method != "sendMessage" || versions[1].Method != "editMessageText" {
		t.Errorf("want sendMessage then editMessageText, got %s, %s", versions[0].Method, versions[1].Method)
	}
	checkHTML(t, msgs)
}

func TestContextAndReset(t *testing.T) {
	h := newHarness(t)
	h.say(alice, telegramtest.Chat{}, "my name is Ann")
	h.waitReply(alice.ID, 1, "You said: my name is Ann")
	h.say(alice, telegramtest.Chat{}, "what is my name?")
	h.waitReply(alice.ID, 2, "You said: what is my name?")
	if got := userTexts(h.ai.Requests()[1]); !slices.Equal(got, []string{"my name is Ann", "what is my name?"}) {
		t.Errorf("second call's user messages = %q, want the first one too", got)
	}

	h.say(alice, telegramtest.Chat{}, "/reset")
	h.waitReply(alice.ID, 3, "Context cleared")
	h.say(alice, telegramtest.Chat{}, "/start@"+h.tg.Bot.Username)
	h.waitReply(alice.ID, 4, "/reset")
	h.say(alice, telegramtest.Chat{}, "who am I?")
	h.waitReply(alice.ID, 5, "You said: who am I?")
	calls := h.ai.Requests()
	if len(calls) != 3 {
		t.Fatalf("model called %d times, want 3 (commands do not call it)", len(calls))
	}
	if got := userTexts(calls[2]); !slices.Equal(got, []string{"who am I?"}) {
		t.Errorf("after /reset the model got %q, want only the new message", got)
	}
}

func TestRestartNeitherSkipsNorRepeats(t *testing.T) {
	h := newHarness(t)
	h.say(alice, telegramtest.Chat{}, "first")
	h.waitReply(alice.ID, 1, "You said: first")
	h.stop()

	// While the bot is down: two messages wait at Telegram.
	h.say(alice, telegramtest.Chat{}, "second")
	h.say(alice, telegramtest.Chat{}, "third")
	h.start()
	h.waitReply(alice.ID, 3, "You said: third")
	h.waitFor("the queue to be confirmed", func() bool { return h.tg.Pending() == 0 })
	h.stop()
	h.start() // nothing new: nothing is answered again
	h.say(alice, telegramtest.Chat{}, "fourth")
	msgs := h.waitReply(alice.ID, 4, "You said: fourth")

	var got []string
	for _, r := range h.ai.Requests() {
		got = append(got, r.LastUser())
	}
	if want := []string{"first", "second", "third", "fourth"}; !slices.Equal(got, want) {
		t.Errorf("model saw %q, want each message once: %q", got, want)
	}
	if len(msgs) != 4 {
		t.Errorf("got %d replies, want 4", len(msgs))
	}
	if got := userTexts(h.ai.Requests()[3]); len(got) != 4 {
		t.Errorf("after two restarts the context holds %q, want all four messages", got)
	}
}

func TestPollingDeletesWebhook(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		resp, err := http.PostForm(h.tg.URL+"/bot"+h.tg.Token+"/setWebhook", url.Values{"url": {"https://example.com/hook"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	})
	h.say(alice, telegramtest.Chat{}, "hi")
	h.waitReply(alice.ID, 1, "You said: hi")
	if n := len(h.tg.CallsTo("deleteWebhook")); n != 1 {
		t.Errorf("want one deleteWebhook call, got %d", n)
	}
	if info := h.tg.WebhookInfo(); info.URL != "" {
		t.Errorf("webhook still set: %+v", info)
	}
}

func TestBacklogIsAnsweredInOrder(t *testing.T) {
	h := newHarness(t)
	h.ai.SetHandler(func(r openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Tokens: openaitest.Tokenize("You said: " + r.LastUser()), FirstDelay: 200 * time.Millisecond}
	})
	h.stop()
	for _, text := range []string{"one", "two", "three"} { // one getUpdates batch
		h.say(alice, telegramtest.Chat{}, text)
	}
	h.start()
	h.waitFor("two answers and a busy notice", func() bool {
		var texts []string
		for _, m := range h.tg.BotMessages(alice.ID) {
			texts = append(texts, m.Last().Text)
		}
		slices.Sort(texts)
		return slices.Equal(texts, []string{"Still answering your previous message, please wait.", "You said: one", "You said: two"})
	})
	var got []string
	for _, r := range h.ai.Requests() {
		got = append(got, r.LastUser())
	}
	if !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("model saw %q, want one then two (three is told to wait, as the engine rules)", got)
	}
}
