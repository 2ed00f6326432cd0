package slack

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/slack/slackfake"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// Messages to a busy thread: one waits its turn, one busy notice answers the
// rest, and none of them costs a placeholder or a thread status of its own
// (the thread shows that it is thinking already), let alone a chat.update of
// the workspace's 45 a minute.
func TestBusyThreadOneNoticeNoStrayPlaceholders(t *testing.T) {
	t.Parallel()
	const flood = 30
	h := newHarness(t, slackfake.Options{}, nil)
	h.ai.Enqueue(openaitest.Reply{Tokens: []string{"partial", " never"}, TokenDelay: time.Hour})
	m := h.slack.Post(general, alice, h.mention("one"))
	eventually(t, "the first reply's text", func() bool {
		texts := h.lastTexts(general, m.TS)
		return len(texts) == 1 && texts[0] == "partial"
	})
	for i := range flood {
		h.slack.PostInThread(general, m.TS, alice, fmt.Sprintf("more %d", i))
	}
	// One of them waits in the engine; the others are answered.
	eventually(t, "the flood to be handled", func() bool { return h.events("answered") >= flood-1 })
	count := func(want string) int {
		n := 0
		for _, text := range h.lastTexts(general, m.TS) {
			if strings.Contains(text, want) {
				n++
			}
		}
		return n
	}
	if n := count("Still answering"); n != 1 {
		t.Errorf("%d busy notices for %d messages, want 1", n, flood-1)
	}
	if n := count(thinkingText); n != 0 {
		t.Errorf("%d placeholders in the thread, want none", n)
	}
	statuses := 0
	for _, s := range h.slack.Statuses() {
		if s.Status != "" {
			statuses++
		}
	}
	if n, d := statuses, h.slack.Deleted(); n != 1 || d != 0 {
		t.Errorf("%d statuses set, %d messages deleted; want the first message's status alone", n, d)
	}
	h.slack.PostInThread(general, m.TS, alice, h.mention("stop"))
	eventually(t, "the waiting message's answer", func() bool { return count("You said: Alice: more") == 1 })
	if n := count(thinkingText); n != 0 {
		t.Errorf("%d placeholders left, want none", n)
	}
}

// Refusals are best-effort notes under a cap: a crowd of people the bot does not
// answer gets a few notes, not one each retried 8 times.
func TestRefusalsAreCapped(t *testing.T) {
	t.Parallel()
	const strangers = 50
	h := newHarness(t, slackfake.Options{}, func(c *Config) { c.AllowedUserIDs = []string{alice} })
	for i := range strangers {
		h.slack.Post(general, fmt.Sprintf("U0STRANGER%d", i), h.mention("let me in"))
	}
	eventually(t, "every stranger refused", func() bool { return h.events("denied") == strangers })
	notes := 0
	for i := range strangers {
		notes += len(h.slack.Ephemerals(general, fmt.Sprintf("U0STRANGER%d", i)))
	}
	t.Logf("%d refusal notes for %d strangers", notes, strangers)
	// A burst of 5 and 2 a second: what the test took seconds to deliver, beyond.
	if notes == 0 || notes > 25 {
		t.Errorf("%d refusal notes for %d strangers, want between 1 and 25", notes, strangers)
	}
	h.answered(h.slack.Post(general, alice, h.mention("me?")))
}

// events counts the adapter's reports of event, whatever their detail.
func (h *harness) events(event string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, tr := range h.traces {
		if strings.HasPrefix(tr, event+" ") {
			n++
		}
	}
	return n
}
