package openai_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// BenchmarkClientTurn measures one streamed reply of 50 tokens through the client
// against the fake on loopback, on each API: the client's overhead per turn
// (request, SSE parsing, events) plus the loopback server's.
//
//	go test -run XXX -bench ClientTurn -benchmem ./openai/
func BenchmarkClientTurn(b *testing.B) {
	reply := openaitest.Text(strings.Repeat("word ", 50))
	for _, api := range []openai.API{openai.APIResponses, openai.APIChat} {
		b.Run(string(api), func(b *testing.B) {
			fake := openaitest.NewServer()
			defer fake.Close()
			fake.SetHandler(func(openaitest.Request) openaitest.Reply { return reply })
			c := openai.New(openai.Options{BaseURL: fake.BaseURL(), APIKey: "k", Model: "gpt-5.4-mini", API: api})
			req := conversation.ModelRequest{Instructions: "Be brief.", Messages: []conversation.Message{{Role: conversation.RoleUser, Content: "hi"}}}
			out := conversation.ModelOutput{Text: func(string) {}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Stream(context.Background(), &req, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
