package conversation_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/store"
)

// instantModel streams a fixed reply in a few deltas without any I/O.
type instantModel struct{}

func (instantModel) Name() string { return "instant" }

func (instantModel) Stream(ctx context.Context, req *conversation.ModelRequest, out conversation.ModelOutput) (conversation.Answer, error) {
	for _, d := range []string{"Hello", ", this", " is", " an", " instant", " reply."} {
		out.Text(d)
	}
	return conversation.Answer{Usage: conversation.Usage{PromptTokens: 10, CompletionTokens: 6}}, nil
}

// memHistory is an in-memory History, to measure the engine alone.
type memHistory struct {
	mu    sync.Mutex
	chats map[conversation.ChatID][]conversation.Message
}

func (h *memHistory) Recent(ctx context.Context, chat conversation.ChatID, n int) ([]conversation.Message, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	msgs := h.chats[chat]
	return append([]conversation.Message(nil), msgs[max(0, len(msgs)-n):]...), nil
}

func (h *memHistory) AppendTurn(ctx context.Context, chat conversation.ChatID, msgs ...conversation.Message) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.chats[chat] = append(h.chats[chat], msgs...)
	if n := len(h.chats[chat]); n > 40 {
		h.chats[chat] = h.chats[chat][n-40:]
	}
	return nil
}

func (h *memHistory) Reset(ctx context.Context, chat conversation.ChatID) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.chats, chat)
	return nil
}

// nopReply accepts every write.
type nopReply struct{}

func (nopReply) Update(context.Context, string) error { return nil }
func (nopReply) Finish(context.Context, string) error { return nil }

func benchmarkTurns(b *testing.B, h conversation.History) {
	tokens, err := openai.NewTokenCounter("gpt-5.4-mini")
	if err != nil {
		b.Fatal(err)
	}
	e := conversation.New(conversation.Config{SystemPrompt: "Be brief.", Logger: slog.New(slog.DiscardHandler)}, h, instantModel{}, tokens)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := conversation.Request{Chat: conversation.ChatID(fmt.Sprintf("c%d", i%100)), Text: "what is the weather like today?", Reply: nopReply{}, UpdateEvery: time.Nanosecond}
		if err := e.Handle(ctx, req); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkEngineTurn is the engine's own cost per turn: commands parsing, chat
// queue, context building with token counting, pacer, with an instant model and an
// in-memory history holding 20 turns per chat.
func BenchmarkEngineTurn(b *testing.B) {
	benchmarkTurns(b, &memHistory{chats: map[conversation.ChatID][]conversation.Message{}})
}

// BenchmarkEngineTurnBolt is the same with the real bbolt store (one fsync'd
// transaction per turn).
func BenchmarkEngineTurnBolt(b *testing.B) {
	db, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	benchmarkTurns(b, db)
}

// toolModel asks for one tool call, then answers with the tool's result.
type toolModel struct{}

func (toolModel) Name() string { return "tool-model" }

func (toolModel) Stream(ctx context.Context, req *conversation.ModelRequest, out conversation.ModelOutput) (conversation.Answer, error) {
	if len(req.Rounds) == 0 {
		return conversation.Answer{Calls: []conversation.ToolCall{{ID: "c1", Name: "echo", Arguments: `{"text":"hi"}`}}}, nil
	}
	out.Text("The tool said " + req.Rounds[0].Results[0])
	return conversation.Answer{}, nil
}

// echoTool is a tool that answers at once.
type echoTool struct{}

func (echoTool) List(context.Context) ([]conversation.Tool, error) {
	return []conversation.Tool{{Name: "echo", Parameters: []byte(`{"type":"object"}`)}}, nil
}

func (echoTool) Call(_ context.Context, _, args string) (string, error) { return args, nil }

// BenchmarkToolRound measures the engine's own cost of a turn with one round of
// tool calls (model → tool → model), with an instant model and tool and an
// in-memory history:
//
//	go test -run XXX -bench ToolRound -benchmem ./conversation/
func BenchmarkToolRound(b *testing.B) {
	tokens, err := openai.NewTokenCounter("gpt-5.4-mini")
	if err != nil {
		b.Fatal(err)
	}
	h := &memHistory{chats: map[conversation.ChatID][]conversation.Message{}}
	e := conversation.New(conversation.Config{Tools: echoTool{}, Logger: slog.New(slog.DiscardHandler)}, h, toolModel{}, tokens)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := conversation.Request{Chat: conversation.ChatID(fmt.Sprintf("c%d", i%100)), Text: "use the tool", Private: true, Reply: nopReply{}, UpdateEvery: time.Nanosecond}
		if err := e.Handle(ctx, req); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
