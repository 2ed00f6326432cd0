package mcp_test

import (
	"context"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatbot-dev/chatbot/mcp"
)

// BenchmarkCall is one tool call through Servers to an in-memory server: the
// SDK's JSON-RPC round trip plus this package's lookup, checks and formatting.
func BenchmarkCall(b *testing.B) {
	ts := newToolServer(b, "a")
	r := newRig(b, mcp.Options{}, []mcp.ServerConfig{inMemory("a")}, ts)
	ctx := context.Background()
	if _, err := r.Call(ctx, "a__echo", `{"text":"hi"}`); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Call(ctx, "a__echo", `{"text":"hi"}`); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallSDK is the same call on a bare SDK session, for comparison.
func BenchmarkCallSDK(b *testing.B) {
	ts := newToolServer(b, "a")
	ctx := context.Background()
	t, err := ts.dial(ctx)
	if err != nil {
		b.Fatal(err)
	}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "0"}, nil).Connect(ctx, t, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEverythingStart starts npm's server-everything over stdio until its
// tools are listed, then stops it: the cost of a stdio Node server's start.
func BenchmarkEverythingStart(b *testing.B) {
	argv := requireEverything(b)
	ctx := context.Background()
	for b.Loop() {
		s, err := mcp.New([]mcp.ServerConfig{{Name: "everything", Command: argv}}, mcp.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if tools, err := s.List(ctx); err != nil || len(tools) == 0 {
			b.Fatalf("List = %d tools, %v", len(tools), err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}
