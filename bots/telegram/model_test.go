package telegram_test

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram"
	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// roles returns a model call's messages as "role: text".
func roles(r openaitest.Request) []string {
	var out []string
	for _, m := range r.Messages {
		out = append(out, m.Role+": "+m.Content)
	}
	return out
}

func TestResponsesRequestShape(t *testing.T) {
	h := newHarness(t, choices, modelOptions(func(o *openai.Options) { o.ReasoningEffort = "low" }))
	h.say(alice, telegramtest.Chat{}, "hello")
	h.waitReply(alice.ID, 1, "You said: hello")
	h.say(alice, telegramtest.Chat{}, "again")
	h.waitReply(alice.ID, 2, "You said: again")
	h.say(alice, telegramtest.Chat{}, "/persona pirate")
	h.waitReply(alice.ID, 3, "Persona for this chat: pirate.")
	h.say(alice, telegramtest.Chat{}, "arr")
	h.waitReply(alice.ID, 4, "You said: arr")

	calls := h.ai.Requests()
	if len(calls) != 3 {
		t.Fatalf("%d model calls, want 3", len(calls))
	}
	for i, c := range calls {
		if c.API != "responses" || !c.Stream || c.Model != mini {
			t.Errorf("call %d: API %q stream %v model %q, want a streamed Responses call to %s", i, c.API, c.Stream, c.Model, mini)
		}
		if got := c.Field("store"); got != false {
			t.Errorf("call %d: store = %v, want false", i, got)
		}
		if got := c.Field("reasoning.effort"); got != "low" {
			t.Errorf("call %d: reasoning.effort = %v, want low", i, got)
		}
	}
	if got := calls[1].Instructions; got != systemPrompt {
		t.Errorf("instructions %q, want the system prompt", got)
	}
	want := []string{"user: hello", "assistant: You said: hello", "user: again"}
	if got := roles(calls[1]); !slices.Equal(got, want) {
		t.Errorf("input %q, want the history then the message: %q", got, want)
	}
	if got := calls[2].Instructions; got != pirate {
		t.Errorf("with a persona the instructions are %q, want %q", got, pirate)
	}
	if got := roles(calls[2]); len(got) != 5 || got[4] != "user: arr" {
		t.Errorf("input %q, want the four earlier messages (commands are not history) and the new one", got)
	}
}

// countingTransport counts the requests to one path.
type countingTransport struct {
	path string
	n    atomic.Int32
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, c.path) {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(req)
}

func TestFallbackToChatCompletions(t *testing.T) {
	responses := &countingTransport{path: "/responses"}
	h := newHarness(t, func(h *harness) {
		h.ai.NoResponses = true // an Ollama-like server: /responses is a 404
		h.modelHTTP = &http.Client{Transport: responses}
	}, modelOptions(func(o *openai.Options) { o.ReasoningEffort = "low" }))
	for i, text := range []string{"one", "two", "three"} {
		h.say(alice, telegramtest.Chat{}, text)
		h.waitReply(alice.ID, i+1, "You said: "+text)
	}
	calls := h.ai.Requests()
	if len(calls) != 3 {
		t.Fatalf("%d Chat Completions calls, want 3", len(calls))
	}
	for i, c := range calls {
		if c.API != "chat" {
			t.Errorf("call %d went to %q", i, c.API)
		}
	}
	if got := calls[0].Field("reasoning_effort"); got != "low" {
		t.Errorf("reasoning_effort = %v, want low on Chat Completions", got)
	}
	if got := roles(calls[2]); len(got) != 5 {
		t.Errorf("the third call holds %q, want the whole conversation", got)
	}
	if n := responses.n.Load(); n != 1 {
		t.Errorf("/responses tried %d times, want once for the process", n)
	}
}

func TestReasoningSummaryIsCollapsedAndNotStored(t *testing.T) {
	h := newHarness(t, modelOptions(func(o *openai.Options) { o.ReasoningSummary = true }))
	h.ai.Enqueue(openaitest.Reply{Reasoning: []string{"**Weighing** the question carefully."},
		Tokens: openaitest.Tokenize("The answer is 42, as everyone knows."), TokenDelay: 25 * time.Millisecond})
	h.say(alice, telegramtest.Chat{}, "what is the answer?")
	msgs := h.waitReply(alice.ID, 1, "as everyone knows.")
	checkHTML(t, msgs)
	final := msgs[0].Last()
	if want := "💭 Weighing the question carefully.\n\nThe answer is 42, as everyone knows."; final.Text != want {
		t.Errorf("final text %q, want %q", final.Text, want)
	}
	for i, v := range msgs[0].Versions {
		if len(v.Entities) == 0 || v.Entities[0].Type != "expandable_blockquote" || v.Entities[0].Offset != 0 ||
			!strings.HasPrefix(v.Text, "💭 Weighing") {
			t.Errorf("version %d does not start with the collapsed summary: %q %+v", i, v.Text, v.Entities)
		}
	}
	if len(msgs[0].Versions) < 2 {
		t.Errorf("%d versions, want the reply to grow in place", len(msgs[0].Versions))
	}

	h.say(alice, telegramtest.Chat{}, "and then?")
	h.waitReply(alice.ID, 2, "You said: and then?")
	want := []string{"user: what is the answer?", "assistant: The answer is 42, as everyone knows.", "user: and then?"}
	if got := roles(h.ai.Requests()[1]); !slices.Equal(got, want) {
		t.Errorf("history %q, want it without the summary: %q", got, want)
	}
}

func TestWebSearchSourcesAreLinks(t *testing.T) {
	h := newHarness(t, modelOptions(func(o *openai.Options) { o.WebSearch = true }))
	wiki := "https://en.wikipedia.org/wiki/Go_(programming_language)"
	h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize("Go is a programming language."),
		Citations: []openaitest.Citation{{URL: "https://go.dev/", Title: "The Go Programming Language"}, {URL: wiki, Title: "Go (programming language)"}}})
	h.say(alice, telegramtest.Chat{}, "what is Go?")
	msgs := h.waitReply(alice.ID, 1, "Go (programming language)")
	checkHTML(t, msgs)
	final := msgs[0].Last()
	if !strings.Contains(final.Text, "Sources:") {
		t.Errorf("no sources in %q", final.Text)
	}
	var links []string
	for _, e := range final.Entities {
		if e.Type == "text_link" {
			links = append(links, e.URL)
		}
	}
	if want := []string{"https://go.dev/", wiki}; !slices.Equal(links, want) {
		t.Errorf("links %q, want %q", links, want)
	}
	if tools, _ := h.ai.Requests()[0].Field("tools").([]any); len(tools) == 0 {
		t.Error("the web_search tool was not offered")
	}
}

func TestRejectedParameterNamesTheKey(t *testing.T) {
	h := newHarness(t, modelOptions(func(o *openai.Options) { o.ReasoningEffort = "high" }))
	h.ai.Enqueue(openaitest.Error(http.StatusBadRequest, "unsupported_parameter",
		"Unsupported parameter: 'reasoning.effort' is not supported with this model."))
	h.say(alice, telegramtest.Chat{}, "think hard")
	h.waitFor("an answer", func() bool { return len(h.tg.BotMessages(alice.ID)) > 0 })
	got := h.waitReply(alice.ID, 1, "")[0].Last().Text
	if !strings.Contains(got, "openai.reasoning_effort") {
		t.Errorf("answer %q does not name the key to change, openai.reasoning_effort", got)
	}
}

func TestTypingUntilTheFirstTokenWithDrafts(t *testing.T) {
	h := newHarness(t, adapter(func(o *telegram.Options) { o.Drafts = true }))
	// The model "thinks" until the chat has shown "typing" three times (renewed
	// every 100 ms), however long that takes.
	h.ai.SetHandler(func(r openaitest.Request) openaitest.Reply {
		deadline := time.Now().Add(waitTimeout)
		for len(h.tg.ChatActions(alice.ID)) < 3 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		return openaitest.Reply{Tokens: openaitest.Tokenize("Thought it through, here it is."), TokenDelay: 30 * time.Millisecond}
	})
	h.say(alice, telegramtest.Chat{}, "take your time")
	msgs := h.waitReply(alice.ID, 1, "here it is.")
	want := "Thought it through, here it is."

	actions := h.tg.ChatActions(alice.ID)
	if len(actions) < 3 {
		t.Fatalf("%d typing actions, want it renewed while the model thinks", len(actions))
	}
	drafts := h.tg.Drafts(alice.ID)
	if len(drafts) == 0 {
		t.Fatal("no drafts")
	}
	for _, d := range drafts {
		if !strings.HasPrefix(want, d.Text) {
			t.Errorf("draft %q is not part of the answer (a placeholder?)", d.Text)
		}
	}
	if len(msgs) != 1 || len(msgs[0].Versions) != 1 || msgs[0].Versions[0].Text != want {
		t.Errorf("messages %+v, want one message sent once with the whole answer", msgs)
	}
	first := drafts[0].At
	for _, a := range actions {
		if a.Action != "typing" || a.At.After(first) {
			t.Errorf("action %+v after the first draft at %v", a, first)
		}
	}
}
