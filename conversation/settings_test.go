package conversation_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/conversation/conversationtest"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// choiceReply is a Reply that shows buttons, recording the last choices.
type choiceReply struct {
	*conversationtest.Reply
	mu      sync.Mutex
	choices []conversation.Choice
}

func (r *choiceReply) FinishChoices(ctx context.Context, text string, choices []conversation.Choice) error {
	r.mu.Lock()
	r.choices = choices
	r.mu.Unlock()
	return r.Finish(ctx, text)
}

// sayWithChoices sends text in chat and returns the final reply and its buttons.
func (h *harness) sayWithChoices(t *testing.T, chat, text string) (string, []conversation.Choice) {
	t.Helper()
	r := &choiceReply{Reply: conversationtest.NewReply()}
	if err := h.engine.Handle(context.Background(), conversation.Request{Chat: conversation.ChatID(chat), UserID: "u1", Text: text, Reply: r, UpdateEvery: time.Millisecond}); err != nil {
		t.Fatalf("handle %q: %v", text, err)
	}
	got, ok := r.WaitFinal(wait)
	if !ok {
		t.Fatalf("no final reply to %q", text)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return got, r.choices
}

var modelsCfg = conversation.Config{
	SystemPrompt: "Be brief.",
	Models:       []string{"gpt-5.4-mini", "gpt-5.5"},
	Personas:     map[string]string{"pirate": "Talk like a pirate.", "tutor": "Explain step by step."},
}

func newModelsHarness(t *testing.T) *harness {
	h := newHarness(t, modelsCfg)
	h.fake.Models = []string{"gpt-5.4-mini", "gpt-5.5"}
	return h
}

func TestModelCommandListsAndSwitches(t *testing.T) {
	h := newModelsHarness(t)
	text, choices := h.sayWithChoices(t, "c1", "/model")
	if !strings.Contains(text, "Model for this chat: gpt-5.4-mini") || !strings.Contains(text, "gpt-5.5") {
		t.Errorf("/model answered %q", text)
	}
	want := []conversation.Choice{{Label: "gpt-5.4-mini", Command: "/model gpt-5.4-mini", Current: true},
		{Label: "gpt-5.5", Command: "/model gpt-5.5"}}
	if len(choices) != 2 || choices[0] != want[0] || choices[1] != want[1] {
		t.Errorf("choices = %+v, want %+v", choices, want)
	}
	if got := h.say(t, "c1", choices[1].Command); got != "Model for this chat: gpt-5.5." {
		t.Errorf("pressing gpt-5.5 answered %q", got)
	}
	h.say(t, "c1", "hello")
	h.say(t, "c2", "hello")
	reqs := h.fake.Requests()
	if reqs[0].Model != "gpt-5.5" || reqs[1].Model != "gpt-5.4-mini" {
		t.Errorf("models used %q, %q; want gpt-5.5 in c1 only", reqs[0].Model, reqs[1].Model)
	}
}

func TestUnknownModelRefusedWithoutModelCall(t *testing.T) {
	h := newModelsHarness(t)
	got := h.say(t, "c1", "/model gpt-4o")
	if !strings.Contains(got, "gpt-5.4-mini, gpt-5.5") || !strings.Contains(got, `"gpt-4o"`) {
		t.Errorf("answered %q, want the allowed names", got)
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Errorf("%d model calls, want none", n)
	}
}

func TestSettingsSurviveResetAndRestart(t *testing.T) {
	h := newModelsHarness(t)
	h.say(t, "c1", "/model gpt-5.5")
	h.say(t, "c1", "/persona pirate")
	h.say(t, "c1", "/reset")
	h.db.Close()
	h.open(t)
	h.say(t, "c1", "ahoy")
	req := h.fake.Requests()[0]
	if req.Model != "gpt-5.5" || req.Instructions != "Talk like a pirate." {
		t.Errorf("after /reset and a restart: model %q, instructions %q", req.Model, req.Instructions)
	}
	if help := h.say(t, "c1", "/help"); !strings.Contains(help, "gpt-5.5") || !strings.Contains(help, "Persona: pirate") {
		t.Errorf("/help = %q, want the chat's model and persona", help)
	}
}

func TestPersonaCommands(t *testing.T) {
	h := newModelsHarness(t)
	text, choices := h.sayWithChoices(t, "c1", "/persona")
	if !strings.Contains(text, "pirate") || !strings.Contains(text, "tutor") || len(choices) != 3 || !choices[2].Current {
		t.Errorf("/persona = %q with %+v", text, choices)
	}
	if got := h.say(t, "c1", "/persona wizard"); !strings.Contains(got, "pirate, tutor") {
		t.Errorf("unknown persona answered %q", got)
	}
	h.say(t, "c1", "/persona tutor")
	h.say(t, "c1", "why?")
	h.say(t, "c1", "/persona off")
	h.say(t, "c1", "and now?")
	reqs := h.fake.Requests()
	if reqs[0].Instructions != "Explain step by step." || reqs[1].Instructions != "Be brief." {
		t.Errorf("instructions %q then %q", reqs[0].Instructions, reqs[1].Instructions)
	}
}

func TestReasoningSummaryShownButNotStored(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	h.modelOpt = openai.Options{ReasoningSummary: true}
	h.db.Close()
	h.open(t)
	h.fake.Enqueue(openaitest.Reply{Reasoning: []string{"Thinking about it."}, Tokens: openaitest.Tokenize("Forty-two.")})
	got := h.say(t, "c1", "the answer?")
	summary, answer := conversation.SplitReasoning(got)
	if summary != "Thinking about it." || answer != "Forty-two." {
		t.Errorf("final %q split into %q and %q", got, summary, answer)
	}
	h.say(t, "c1", "again")
	for _, m := range h.fake.Requests()[1].Messages {
		if strings.Contains(m.Content, "Thinking") {
			t.Errorf("the summary went back to the model: %q", m.Content)
		}
	}
}

func TestWebSearchSourcesEndTheReply(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	h.fake.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize("Sunny."), Citations: []openaitest.Citation{
		{URL: "https://example.com/a b", Title: "Weather [today]"}, {URL: "https://example.org/"}}})
	got := h.say(t, "c1", "weather?")
	want := "Sunny.\n\nSources:\n1. [Weather (today)](<https://example.com/a%20b>)\n2. [https://example.org/](<https://example.org/>)"
	if got != want {
		t.Errorf("reply = %q, want %q", got, want)
	}
}

func TestSplitReasoning(t *testing.T) {
	tests := []struct{ text, summary, answer string }{
		{"plain answer", "", "plain answer"},
		{"> 💭 one\n> two\n>\n> three\n\nanswer\n> quote", "one\ntwo\n\nthree", "answer\n> quote"},
		{"> 💭 only thinking\n", "only thinking", ""},
		{"> not a summary\n\nanswer", "", "> not a summary\n\nanswer"},
	}
	for _, tt := range tests {
		s, a := conversation.SplitReasoning(tt.text)
		if s != tt.summary || a != tt.answer {
			t.Errorf("SplitReasoning(%q) = %q, %q; want %q, %q", tt.text, s, a, tt.summary, tt.answer)
		}
	}
}

// links issues numbered login links and records who asked.
type links struct{ asked []string }

func (l *links) LoginLink(_ context.Context, user string, chat conversation.ChatID) (string, error) {
	l.asked = append(l.asked, user+" "+string(chat))
	return "https://bot.example/login/one-time-" + user, nil
}

func TestWebCommandGivesALinkInPrivateOnly(t *testing.T) {
	l := &links{}
	h := newHarness(t, conversation.Config{WebLinks: l})
	ask := func(private bool) string {
		r := conversationtest.NewReply()
		h.engine.Handle(context.Background(), conversation.Request{Chat: "telegram:7", UserID: "telegram:7", Text: "/web", Private: private, Reply: r})
		got, _ := r.WaitFinal(wait)
		return got
	}
	if got := ask(false); !strings.Contains(got, "private chat") || len(l.asked) != 0 {
		t.Errorf("in a group: %q, %d links", got, len(l.asked))
	}
	if got := ask(true); !strings.Contains(got, "https://bot.example/login/one-time-telegram:7") || l.asked[0] != "telegram:7 telegram:7" {
		t.Errorf("in private: %q, asked %v", got, l.asked)
	}
	if got := newHarness(t, conversation.Config{}).say(t, "c", "/web"); !strings.Contains(got, "not set up") {
		t.Errorf("without a web chat: %q", got)
	}
}
