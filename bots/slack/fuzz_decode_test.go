package slack

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/slack/slackfake"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
)

// postSignedBody posts body with Content-Type ctype to the adapter's Events API
// endpoint, signed as Slack signs it, and returns the status; an error (a broken
// connection, as a panic in the handler makes) fails the test.
func (h *harness) postSignedBody(body, ctype string) int {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.eventsURL(), strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", slackfake.Sign(secret, ts, []byte(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("the events endpoint broke the connection on %q: %v", body, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// FuzzEventsRequest posts any body, correctly signed, to the Events API
// endpoint, as JSON or as a slash command's form: the adapter answers 200 or
// 400, and the next real message is answered.
func FuzzEventsRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, body string, form bool) {
		// NoEcho: fewer posts at once, fewer spare connections that the events
		// server's shutdown trips over (TestEventsShutdownWithASilentConnection).
		h := newHarness(t, slackfake.Options{NoEcho: true}, func(c *Config) { eventsMode(c); fastEdits(c) })
		ctype := "application/json"
		if form {
			ctype = "application/x-www-form-urlencoded"
		}
		if code := h.postSignedBody(body, ctype); code != http.StatusOK && code != http.StatusBadRequest {
			t.Fatalf("status %d for %q", code, body)
		}
		h.answered(h.slack.Post(aliceDM, alice, "ping"))
	})
}

// FuzzSocketEnvelope sends a Socket Mode frame of any type with any payload
// (valid JSON or not): the adapter does not die, and the next real message is
// answered (over a new connection, if the frame cost the old one).
func FuzzSocketEnvelope(f *testing.F) {
	f.Fuzz(func(t *testing.T, kind, payload string) {
		h := newHarness(t, slackfake.Options{AckTimeout: 500 * time.Millisecond}, fastEdits)
		typ, _ := json.Marshal(kind)
		frame := `{"envelope_id":"env-fuzz","type":` + string(typ) + `,"accepts_response_payload":false,"payload":` + payload + `}`
		if !h.slack.SendFrame([]byte(frame)) {
			t.Fatal("could not send the frame")
		}
		h.answered(h.slack.Post(aliceDM, alice, "ping"))
	})
}

// hugeText is 100,000 characters of numbered words.
func hugeText() string {
	words := strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu")
	var b strings.Builder
	for i := 0; b.Len() < 100_000; i++ {
		fmt.Fprintf(&b, "%s%d ", words[i%len(words)], i)
	}
	return strings.TrimSpace(b.String())[:100_000]
}

// TestOversizedMessages: 100,000 characters get the too-long note, or, with a
// budget that takes them, an answer split in messages within the adapter's limit.
func TestOversizedMessages(t *testing.T) {
	huge := hugeText()
	t.Run("refused with a note", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, slackfake.Options{}, fastEdits)
		m := h.slack.Post(aliceDM, alice, huge)
		h.answered(m)
		if got := h.lastTexts(aliceDM, ""); len(got) != 1 || !strings.Contains(got[0], "too long for me") {
			t.Errorf("replies %q, want one note that the message is too long", got)
		}
		if n := len(h.ai.Requests()); n != 0 {
			t.Errorf("%d model calls, want none", n)
		}
		h.answered(h.slack.Post(aliceDM, alice, "short"))
	})
	t.Run("answered in parts when the budget allows", func(t *testing.T) {
		t.Parallel()
		// Slack's one post a second per channel would make 34 messages last
		// half a minute: both sides go faster here.
		h := newTunedHarness(t, slackfake.Options{UpdateLimit: 100_000, PostEvery: 10 * time.Millisecond, PostBurst: 50},
			func(c *Config) { fastEdits(c); c.PostEvery, c.PostBurst = 20*time.Millisecond, 25 }, openai.Options{},
			conversation.Config{MaxContextTokens: 400_000})
		m := h.slack.Post(general, alice, h.mention(huge))
		h.answered(m)
		texts := h.lastTexts(general, m.TS)
		if len(texts) < 29 {
			t.Errorf("%d messages, want the reply split in at least 29", len(texts))
		}
		for i, txt := range texts {
			if n := len([]rune(txt)); n > DefaultMaxMessageChars {
				t.Errorf("message %d has %d characters", i, n)
			}
		}
		if got, want := strings.Join(strings.Fields(strings.Join(texts, " ")), " "), "You said: Alice: "+huge; got != want {
			t.Errorf("the parts do not add up to the reply: %d characters, want %d", len(got), len(want))
		}
	})
}

// TestOddTextsAndEvents: invalid UTF-8 is answered, a bare mention gets the
// help, and events of unknown types or shapes cost no model call.
func TestOddTextsAndEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	m := h.slack.Post(aliceDM, alice, "caf\xe9 \xff\xfe ok")
	h.answered(m)
	if got := h.lastTexts(aliceDM, ""); len(got) != 1 || got[0] != "You said: caf\ufffd \ufffd\ufffd ok" {
		t.Errorf("replies %q", got)
	}
	blank := h.slack.Post(general, alice, h.mention(""))
	h.answered(blank)
	if got := h.lastTexts(general, blank.TS); len(got) != 1 || !strings.Contains(got[0], "reset") {
		t.Errorf("a bare mention answered %q, want the help", got)
	}
	for _, ev := range []map[string]any{
		{"type": "reaction_added", "user": alice, "reaction": "tada", "item": map[string]any{"type": "message"}},
		{"type": "message"},
		{"type": "message", "subtype": "channel_join", "user": bob, "channel": general, "ts": "1.000001"},
		{"type": "app_mention"},
		{"type": "app_mention", "user": alice, "channel": general, "text": 42},
		{"type": "some_future_event", "nested": []any{1, map[string]any{"a": nil}}},
		{"type": "message", "channel": aliceDM, "channel_type": "im", "user": alice, "ts": "not a ts", "text": ""},
	} {
		h.slack.SendEvent(ev)
	}
	h.answered(h.slack.Post(aliceDM, alice, "still there?"))
	if n := len(h.ai.Requests()); n != 2 {
		t.Errorf("%d model calls, want 2: odd events cost nothing", n)
	}
}
