package conversation_test

import (
	"strings"
	"testing"

	"github.com/chatbot-dev/chatbot/conversation"
)

func TestRedactSecret(t *testing.T) {
	const token = "123456:AAE-x_y/z+w" // ':' '/' '+' are escaped differently in paths and queries
	tests := []struct {
		name, text, want string
	}{
		{"raw", "POST https://api.telegram.org/bot123456:AAE-x_y/z+w/getMe", "POST https://api.telegram.org/bot[redacted]/getMe"},
		{"query-escaped", "url=%2Fbot123456%3AAAE-x_y%2Fz%2Bw%2FgetMe", "url=%2Fbot[redacted]%2FgetMe"},
		{"query-escaped, lower-case hex", "url=%2fbot123456%3aAAE-x_y%2fz%2bw%2fgetMe", "url=%2fbot[redacted]%2fgetMe"},
		{"path-escaped", "/bot123456:AAE-x_y%2Fz+w/getMe", "/bot[redacted]/getMe"},
		{"path-escaped, lower-case hex", "/bot123456:AAE-x_y%2fz+w/getMe", "/bot[redacted]/getMe"},
		{"twice", "123456:AAE-x_y/z+w and 123456%3AAAE-x_y%2Fz%2Bw", "[redacted] and [redacted]"},
		{"absent", "nothing secret here", "nothing secret here"},
	}
	for _, tt := range tests {
		if got := conversation.RedactSecret(tt.text, token); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := conversation.RedactSecret("keep", ""); got != "keep" {
		t.Errorf("empty secret: got %q", got)
	}
}

func TestClipText(t *testing.T) {
	if got := conversation.ClipText("short", 10); got != "short" {
		t.Errorf("got %q", got)
	}
	page := "<html>" + strings.Repeat("é", 500) + "</html>"
	got := conversation.ClipText(page, 301)
	if !strings.HasPrefix(got, "<html>é") || !strings.HasSuffix(got, "more bytes)") || len(got) > 330 {
		t.Errorf("got %q (%d bytes), want about 300 bytes and a note", got, len(got))
	}
	if !strings.Contains(got, "é… (") { // cut between two characters, not inside one
		t.Errorf("cut inside a character: %q", got[290:])
	}
}
