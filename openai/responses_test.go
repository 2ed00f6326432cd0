package openai_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// call is what one Stream call delivered.
type call struct {
	text, reasoning string
	answer          conversation.Answer
	err             error
}

func streamReq(t *testing.T, c *openai.Client, req conversation.ModelRequest) call {
	t.Helper()
	var text, reasoning strings.Builder
	answer, err := c.Stream(context.Background(), &req, conversation.ModelOutput{
		Text:      func(d string) { text.WriteString(d) },
		Reasoning: func(d string) { reasoning.WriteString(d) },
	})
	return call{text.String(), reasoning.String(), answer, err}
}

func history(texts ...string) []conversation.Message {
	msgs := make([]conversation.Message, len(texts))
	for i, t := range texts {
		role := conversation.RoleUser
		if i%2 == 1 {
			role = conversation.RoleAssistant
		}
		msgs[i] = conversation.Message{Role: role, Content: t}
	}
	return msgs
}

func TestResponsesRequestShape(t *testing.T) {
	tests := []struct {
		name string
		opt  openai.Options
		want map[string]any // dotted path → value; nil means absent
	}{
		{"plain", openai.Options{},
			map[string]any{"store": false, "stream": true, "instructions": "Be brief.", "model": "gpt-5.5", "reasoning": nil, "tools": nil}},
		{"effort", openai.Options{ReasoningEffort: "low"},
			map[string]any{"reasoning.effort": "low", "reasoning.summary": nil}},
		{"summary", openai.Options{ReasoningSummary: true},
			map[string]any{"reasoning.summary": "auto", "reasoning.effort": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t)
			fake.Models = append(fake.Models, "gpt-5.5")
			c := newClient(t, fake, tt.opt)
			got := streamReq(t, c, conversation.ModelRequest{Model: "gpt-5.5", Instructions: "Be brief.",
				Messages: history("hi", "hello", "how are you?")})
			if got.err != nil {
				t.Fatal(got.err)
			}
			req := fake.Requests()[0]
			if req.API != "responses" {
				t.Fatalf("API = %s, want responses", req.API)
			}
			for path, want := range tt.want {
				if v := req.Field(path); fmt.Sprint(v) != fmt.Sprint(want) && !(want == nil && v == nil) {
					t.Errorf("%s = %v, want %v", path, v, want)
				}
			}
			var roles []string
			for _, m := range req.Messages {
				roles = append(roles, m.Role+":"+m.Content)
			}
			if want := "user:hi|assistant:hello|user:how are you?"; strings.Join(roles, "|") != want {
				t.Errorf("input = %q, want %q", roles, want)
			}
		})
	}
}

func TestResponsesWebSearchToolAndSources(t *testing.T) {
	fake := newFake(t)
	fake.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize("It rains in Oslo."), Citations: []openaitest.Citation{
		{URL: "https://yr.no/oslo", Title: "Yr: Oslo"},
		{URL: "https://met.no/", Title: ""},
		{URL: "https://yr.no/oslo", Title: "Yr: Oslo"},
	}})
	c := newClient(t, fake, openai.Options{WebSearch: true})
	got := streamReq(t, c, conversation.ModelRequest{Messages: history("weather in Oslo?")})
	if got.err != nil {
		t.Fatal(got.err)
	}
	if tools := fmt.Sprint(fake.Requests()[0].Field("tools")); tools != "[map[type:web_search]]" {
		t.Errorf("tools = %s, want the web_search tool", tools)
	}
	want := []conversation.Source{{URL: "https://yr.no/oslo", Title: "Yr: Oslo"}, {URL: "https://met.no/"}}
	if fmt.Sprint(got.answer.Sources) != fmt.Sprint(want) {
		t.Errorf("sources = %v, want %v (deduplicated, in order)", got.answer.Sources, want)
	}
}

func TestResponsesStreamsReasoningTextAndUsage(t *testing.T) {
	fake := newFake(t)
	fake.Enqueue(openaitest.Reply{Reasoning: []string{"**Planning** the answer.", "Checking facts."},
		Tokens: openaitest.Tokenize("The answer is 42.")})
	c := newClient(t, fake, openai.Options{ReasoningSummary: true})
	got := streamReq(t, c, conversation.ModelRequest{Messages: history("question")})
	if got.err != nil {
		t.Fatal(got.err)
	}
	if got.text != "The answer is 42." {
		t.Errorf("text = %q", got.text)
	}
	if got.reasoning != "**Planning** the answer.\n\nChecking facts." {
		t.Errorf("reasoning = %q", got.reasoning)
	}
	if got.answer.Usage.CompletionTokens != 4 || got.answer.Usage.PromptTokens == 0 {
		t.Errorf("usage = %+v, want the completed event's", got.answer.Usage)
	}
}

func TestAutoFallsBackToChatOnceForTheProcess(t *testing.T) {
	fake := newFake(t)
	fake.NoResponses = true
	var logs strings.Builder
	c := newClient(t, fake, openai.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for i := range 3 {
		got := streamReq(t, c, conversation.ModelRequest{Instructions: "Be brief.", Messages: history(fmt.Sprint("hi ", i))})
		if got.err != nil || got.text != fmt.Sprint("You said: hi ", i) {
			t.Fatalf("call %d: %q, %v", i, got.text, got.err)
		}
	}
	if c.API() != openai.APIChat {
		t.Errorf("API() = %s, want chat", c.API())
	}
	reqs := fake.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d calls recorded, want 3 on Chat Completions (the 404 is not a call)", len(reqs))
	}
	if reqs[0].Messages[0].Role != "system" || reqs[0].Messages[0].Content != "Be brief." {
		t.Errorf("chat call lacks the system prompt: %+v", reqs[0].Messages)
	}
	if n := strings.Count(logs.String(), "no Responses API"); n != 1 {
		t.Errorf("logged the switch %d times, want once:\n%s", n, logs.String())
	}
}

func TestFallbackOnlyInAuto(t *testing.T) {
	fake := newFake(t)
	fake.NoResponses = true
	c := newClient(t, fake, openai.Options{API: openai.APIResponses, MaxRetries: -1})
	if got := streamReq(t, c, conversation.ModelRequest{Messages: history("hi")}); got.err == nil {
		t.Fatal("api: responses against a server without /responses succeeded")
	}
	fake.NoResponses = false
	chat := newClient(t, fake, openai.Options{API: openai.APIChat})
	streamReq(t, chat, conversation.ModelRequest{Messages: history("hi")})
	if reqs := fake.Requests(); len(reqs) != 1 || reqs[0].API != "chat" {
		t.Errorf("api: chat made %+v, want one Chat Completions call", reqs)
	}
}

func TestModelNotFoundDoesNotFallBack(t *testing.T) {
	fake := newFake(t)
	c := newClient(t, fake, openai.Options{Model: "gpt-9-imaginary"})
	got := streamReq(t, c, conversation.ModelRequest{Messages: history("hi")})
	if got.err == nil || !strings.Contains(conversation.UserText(got.err), "openai.model") ||
		!strings.Contains(conversation.UserText(got.err), "gpt-9-imaginary") {
		t.Fatalf("err = %v, want a text naming the model and openai.model", got.err)
	}
	if c.API() != openai.APIResponses {
		t.Errorf("a missing model switched the API to %s", c.API())
	}
}

func TestRefusalsNameTheConfigKey(t *testing.T) {
	tests := []struct {
		msg, code, want string
	}{
		{"Unsupported parameter: 'reasoning.effort' is not supported with this model.", "unsupported_parameter", "openai.reasoning_effort"},
		{"Unsupported value: 'reasoning.effort' does not support 'minimal' with this model. Supported values are: 'low', 'medium', and 'high'.", "unsupported_value", "openai.reasoning_effort"},
		{"Hosted tool 'web_search' is not supported with gpt-5.4-nano.", "", "openai.web_search"},
		{"Function tools with reasoning_effort are not supported for gpt-5.5 in /v1/chat/completions. Please use /v1/responses instead.", "", "openai.api"},
		{"Your organization must be verified to generate reasoning summaries.", "", "openai.reasoning_summary"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			fake := newFake(t)
			fake.Enqueue(openaitest.Error(400, tt.code, tt.msg))
			got := streamReq(t, newClient(t, fake, openai.Options{}), conversation.ModelRequest{Messages: history("hi")})
			if text := conversation.UserText(got.err); !strings.Contains(text, tt.want) {
				t.Errorf("text = %q, want it to name %s", text, tt.want)
			}
			if n := len(fake.Requests()); n != 1 {
				t.Errorf("%d calls: a refusal is not retried", n)
			}
		})
	}
}

func TestResponsesStreamFaults(t *testing.T) {
	tests := []struct {
		name  string
		reply openaitest.Reply
		text  string // delivered before the error
		want  string // in the user's text
	}{
		{"error event mid-stream", openaitest.Reply{Tokens: []string{"Half", " way"}, StreamError: "The server had an error"},
			"Half way", "trouble"},
		{"cut before completed", openaitest.Reply{Tokens: []string{"Half", " way"}, Cut: true, CutAfter: 1}, "Half", "broke"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t)
			fake.Enqueue(tt.reply)
			got := streamReq(t, newClient(t, fake, openai.Options{}), conversation.ModelRequest{Messages: history("hi")})
			if got.text != tt.text || !strings.Contains(conversation.UserText(got.err), tt.want) {
				t.Errorf("got %q, %v; want %q then a note with %q", got.text, got.err, tt.text, tt.want)
			}
			if n := len(fake.Requests()); n != 1 {
				t.Errorf("%d calls, want 1 (no retry after output)", n)
			}
		})
	}
}

func TestResponsesRetriesBeforeOutput(t *testing.T) {
	fake := newFake(t)
	fake.Enqueue(openaitest.Reply{Status: 429, Code: "rate_limit_exceeded", Type: "requests", Message: "Rate limit reached", RetryAfter: "0.01"})
	got := streamReq(t, newClient(t, fake, openai.Options{}), conversation.ModelRequest{Messages: history("hi")})
	if got.err != nil || got.text != "You said: hi" || len(fake.Requests()) != 2 {
		t.Errorf("got %q, %v after %d calls; want the second call's reply", got.text, got.err, len(fake.Requests()))
	}
}

// TestResponsesEndWithoutCompletedIsCut: a stream that ends cleanly but without
// response.completed was cut short by something on the way.
func TestResponsesEndWithoutCompletedIsCut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: response.output_text.delta\n"+
			`data: {"type":"response.output_text.delta","sequence_number":1,"item_id":"m","output_index":0,"content_index":0,"delta":"Hi"}`+"\n\n")
	}))
	defer srv.Close()
	c := openai.New(openai.Options{BaseURL: srv.URL + "/v1", APIKey: secretKey, Model: "m", MaxRetries: -1})
	got := streamReq(t, c, conversation.ModelRequest{Messages: history("hi")})
	if got.text != "Hi" || openai.KindOf(errors.Unwrap(got.err)) != openai.KindCut {
		t.Errorf("got %q, %v; want the text then a cut", got.text, got.err)
	}
}
