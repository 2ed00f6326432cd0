package conversation_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/conversation/conversationtest"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// fakeTools runs tools by name; a tool may block until released.
type fakeTools struct {
	mu      sync.Mutex
	calls   []string
	running int
	peak    int
	run     map[string]func(ctx context.Context, args string) (string, error)
}

func (f *fakeTools) List(context.Context) ([]conversation.Tool, error) {
	var tools []conversation.Tool
	for name := range f.run {
		tools = append(tools, conversation.Tool{Name: name, Description: "test tool",
			Parameters: json.RawMessage(`{"type":"object","properties":{}}`)})
	}
	return tools, nil
}

func (f *fakeTools) Call(ctx context.Context, name, args string) (string, error) {
	f.mu.Lock()
	f.calls = append(f.calls, name+" "+args)
	f.running++
	f.peak = max(f.peak, f.running)
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.running--; f.mu.Unlock() }()
	return f.run[name](ctx, args)
}

func toolsHarness(t *testing.T, cfg conversation.Config, run map[string]func(context.Context, string) (string, error)) (*harness, *fakeTools) {
	tools := &fakeTools{run: run}
	cfg.Tools = tools
	return newHarness(t, cfg), tools
}

// ask sends a private message and waits for the final text.
func (h *harness) ask(t *testing.T, text string, private bool) (*conversationtest.Reply, string) {
	t.Helper()
	r := conversationtest.NewReply()
	h.engine.Handle(context.Background(), conversation.Request{Chat: "c1", UserID: "u1", Text: text, Private: private, Reply: r, UpdateEvery: time.Millisecond})
	got, ok := r.WaitFinal(wait)
	if !ok {
		t.Fatal("no final reply")
	}
	return r, got
}

func sum(_ context.Context, args string) (string, error) {
	var in struct{ A, B int }
	if err := json.Unmarshal([]byte(args), &in); err != nil {
		return "", err
	}
	return fmt.Sprint(in.A + in.B), nil
}

func TestToolCallRoundTrip(t *testing.T) {
	for _, api := range []string{"responses", "chat"} {
		t.Run(api, func(t *testing.T) {
			release := make(chan struct{})
			h, tools := toolsHarness(t, conversation.Config{}, map[string]func(context.Context, string) (string, error){
				"add": func(ctx context.Context, args string) (string, error) { <-release; return sum(ctx, args) },
			})
			h.fake.NoResponses = api == "chat"
			h.fake.Enqueue(openaitest.Reply{Tokens: []string{"Let me add."}, Calls: []openaitest.Call{{Name: "add", Arguments: `{"a":2,"b":3}`}}},
				openaitest.Text("It is 5."))
			r := conversationtest.NewReply()
			done := make(chan struct{})
			go func() {
				h.engine.Handle(context.Background(), conversation.Request{Chat: "c1", UserID: "u1", Text: "2+3?", Private: true, Reply: r, UpdateEvery: time.Millisecond})
				close(done)
			}()
			waitUntil(t, "the tool's name on screen", func() bool {
				u := r.Updates()
				return len(u) > 0 && strings.Contains(u[len(u)-1], "🔧 add…")
			})
			close(release)
			<-done
			final, _ := r.WaitFinal(wait)
			if final != "Let me add.\n\nIt is 5." {
				t.Errorf("final %q: want the text of both rounds, no tool line", final)
			}
			reqs := h.fake.Requests()
			if len(reqs) != 2 || len(reqs[0].Tools) != 1 || reqs[0].Tools[0] != "add" {
				t.Fatalf("%d calls, tools %v", len(reqs), reqs[0].Tools)
			}
			second := reqs[1].Messages
			if n := len(second); n < 2 || second[n-1].Role != "tool" || second[n-1].Content != "5" ||
				len(second[n-2].ToolCalls) != 1 || second[n-2].ToolCalls[0] != `add {"a":2,"b":3}` {
				t.Errorf("second call's last messages: %+v", second)
			}
			msgs, _ := h.db.Recent(context.Background(), "c1", 10)
			if len(msgs) != 2 || !strings.HasSuffix(msgs[1].Content, "[tools used: add]") || strings.Contains(msgs[1].Content, "🔧") {
				t.Errorf("stored %+v", msgs)
			}
			if len(tools.calls) != 1 {
				t.Errorf("tool calls %v", tools.calls)
			}
		})
	}
}

func TestToolsRunInParallel(t *testing.T) {
	var both sync.WaitGroup
	both.Add(2)
	meet := func(context.Context, string) (string, error) { both.Done(); both.Wait(); return "ok", nil }
	h, tools := toolsHarness(t, conversation.Config{}, map[string]func(context.Context, string) (string, error){"a": meet, "b": meet})
	h.fake.Enqueue(openaitest.Reply{Calls: []openaitest.Call{{Name: "a", Arguments: "{}"}, {Name: "b", Arguments: "{}"}}}, openaitest.Text("done"))
	if _, got := h.ask(t, "go", true); got != "done" || tools.peak != 2 {
		t.Errorf("final %q, %d tools at once; want both at once", got, tools.peak)
	}
}

func TestToolRoundLimit(t *testing.T) {
	h, _ := toolsHarness(t, conversation.Config{MaxToolRounds: 2}, map[string]func(context.Context, string) (string, error){
		"again": func(context.Context, string) (string, error) { return "more", nil },
	})
	h.fake.SetHandler(func(r openaitest.Request) openaitest.Reply {
		if r.Field("tool_choice") == "none" {
			return openaitest.Text("giving up")
		}
		return openaitest.Reply{Calls: []openaitest.Call{{Name: "again", Arguments: "{}"}}}
	})
	_, got := h.ask(t, "loop", true)
	if got != "giving up" || len(h.fake.Requests()) != 3 {
		t.Errorf("final %q after %d calls; want the third call to forbid tools", got, len(h.fake.Requests()))
	}
}

func TestFailingToolsReachTheModelAsErrors(t *testing.T) {
	h, _ := toolsHarness(t, conversation.Config{ToolCallTimeout: 50 * time.Millisecond, MaxToolOutputBytes: 100},
		map[string]func(context.Context, string) (string, error){
			"hang":  func(ctx context.Context, _ string) (string, error) { <-ctx.Done(); return "", ctx.Err() },
			"crash": func(context.Context, string) (string, error) { panic("boom") },
			"fail":  func(context.Context, string) (string, error) { return "", errors.New("no such note") },
			"huge":  func(context.Context, string) (string, error) { return strings.Repeat("é", 1000), nil },
		})
	h.fake.Enqueue(openaitest.Reply{Calls: []openaitest.Call{{Name: "hang", Arguments: "{}"}, {Name: "crash", Arguments: "{}"}, {Name: "fail", Arguments: "{}"}, {Name: "huge", Arguments: "{}"}}},
		openaitest.Text("coped"))
	if _, got := h.ask(t, "try", true); got != "coped" {
		t.Fatalf("final %q", got)
	}
	var outputs []string
	for _, m := range h.fake.Requests()[1].Messages {
		if m.Role == "tool" {
			outputs = append(outputs, m.Content)
		}
	}
	want := []string{"did not answer", "crashed", "Error: no such note", "[output cut at 100 of 2000 bytes]"}
	for i, w := range want {
		if i >= len(outputs) || !strings.Contains(outputs[i], w) {
			t.Errorf("output %d = %q, want it to contain %q", i, outputs, w)
		}
	}
}

func TestStopCancelsARunningTool(t *testing.T) {
	cancelled := make(chan struct{})
	h, _ := toolsHarness(t, conversation.Config{}, map[string]func(context.Context, string) (string, error){
		"slow": func(ctx context.Context, _ string) (string, error) {
			<-ctx.Done()
			close(cancelled)
			return "", ctx.Err()
		},
	})
	h.fake.Enqueue(openaitest.Reply{Calls: []openaitest.Call{{Name: "slow", Arguments: "{}"}}})
	r, errc := h.startPrivate("c1", "wait")
	waitUntil(t, "the tool running", func() bool {
		u := r.Updates()
		return len(u) > 0 && strings.Contains(u[len(u)-1], "🔧 slow")
	})
	h.say(t, "c1", "/stop")
	<-cancelled
	<-errc
	if final, _ := r.WaitFinal(wait); final != "Stopped." {
		t.Errorf("final %q", final)
	}
}

func TestToolsOnlyInPrivateUnlessAllowed(t *testing.T) {
	for _, inGroups := range []bool{false, true} {
		h, _ := toolsHarness(t, conversation.Config{ToolsInGroups: inGroups}, map[string]func(context.Context, string) (string, error){"add": sum})
		h.ask(t, "in a group", false)
		if offered := len(h.fake.Requests()[0].Tools) > 0; offered != inGroups {
			t.Errorf("ToolsInGroups %v: tools offered in a group: %v", inGroups, offered)
		}
	}
}

// startPrivate sends a private message without waiting.
func (h *harness) startPrivate(chat, text string) (*conversationtest.Reply, chan error) {
	r := conversationtest.NewReply()
	errc := make(chan error, 1)
	go func() {
		errc <- h.engine.Handle(context.Background(), conversation.Request{Chat: conversation.ChatID(chat), UserID: "u1", Text: text, Private: true, Reply: r, UpdateEvery: time.Millisecond})
	}()
	return r, errc
}

// waitUntil polls cond until it holds, failing the test after a generous bound.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
