package terminal

import (
	"context"
	"strings"
	"testing"

	"github.com/chatbot-dev/chatbot/conversation"
)

// scripted plays texts into the reply: updates, then the last as the final text.
type scripted struct{ texts []string }

func (s scripted) Handle(ctx context.Context, req conversation.Request) error {
	for _, t := range s.texts[:len(s.texts)-1] {
		req.Reply.Update(ctx, t)
	}
	return req.Reply.Finish(ctx, s.texts[len(s.texts)-1])
}

func TestReasoningAndStatus(t *testing.T) {
	texts := []string{"> 💭 Weighing", "> 💭 Weighing options.", "> 💭 Weighing options.\n\nYes", "> 💭 Weighing options.\n\nYes."}
	tests := []struct {
		name, prompt, want string
	}{
		{"piped: plain text, no status", "", "💭 Weighing options.\n\nYes.\n"},
		{"terminal: status line, then dimmed reasoning", "> ",
			"> " + dim + "thinking…" + plain + clearLine + dim + "💭 Weighing options." + plain + "\n\nYes.\n> "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			if err := Run(context.Background(), scripted{texts}, Options{In: strings.NewReader("question\n"), Out: &out, Prompt: tt.prompt}); err != nil {
				t.Fatal(err)
			}
			got := strings.TrimSuffix(out.String(), "\n")
			if got != strings.TrimSuffix(tt.want, "\n") {
				t.Errorf("output = %q\nwant     %q", got, tt.want)
			}
		})
	}
}
