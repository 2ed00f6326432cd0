package slack

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/slack/slackfake"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// userTexts returns the user messages of the i-th model request.
func (h *harness) userTexts(i int) []string {
	h.t.Helper()
	reqs := h.ai.Requests()
	if len(reqs) <= i {
		h.t.Fatalf("%d model requests, want more than %d", len(reqs), i)
	}
	var out []string
	for _, m := range reqs[i].Messages {
		if m.Role == "user" {
			out = append(out, m.Content)
		}
	}
	return out
}

func equal(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

func TestMentionAnsweredInThread(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	m := h.slack.Post(general, alice, h.mention("hello there"))
	h.answered(m)

	msgs := h.slack.BotMessages(general, m.TS)
	if len(msgs) != 1 {
		t.Fatalf("%d bot messages in the thread, want 1", len(msgs))
	}
	if got, want := msgs[0].Text, "You said: Alice: hello there"; got != want {
		t.Errorf("reply %q, want %q", got, want)
	}
	// Thinking shows as the thread status (chat:write allows it in channels);
	// the first text is a message of its own, not an edit of a placeholder.
	if got := msgs[0].History[0]; placeholder(got) {
		t.Errorf("first state %q: a placeholder", got)
	}
	var status bool
	for _, s := range h.slack.Statuses() {
		status = status || (s.Channel == general && s.ThreadTS == m.TS && s.Status == thinkingStatus)
	}
	// At most one chat.update: the final's feedback buttons, unless the answer
	// was complete by the time its first text went out (posted whole, buttons
	// and all).
	if !status || h.slack.Deleted() != 0 || h.slack.Calls("chat.update") > 1 {
		t.Errorf("statuses %v, %d deleted, %d chat.update (the final's feedback buttons only)",
			h.slack.Statuses(), h.slack.Deleted(), h.slack.Calls("chat.update"))
	}
	if top := h.slack.BotMessages(general, ""); len(top) != 0 {
		t.Errorf("%d bot messages at the channel's top level, want 0", len(top))
	}
}

func TestThreadFollowUpHasContext(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	m := h.slack.Post(general, alice, h.mention("my number is 42"))
	h.answered(m)
	f := h.slack.PostInThread(general, m.TS, bob, "what was her number?")
	h.answered(f)

	want := []string{"Alice: my number is 42", "Bob: what was her number?"}
	if got := h.userTexts(1); !equal(got, want) {
		t.Errorf("second request's user messages %q, want %q", got, want)
	}
	if n := len(h.slack.BotMessages(general, m.TS)); n != 2 {
		t.Errorf("%d replies in the thread, want 2", n)
	}

	// A thread the bot was never mentioned in is not its business.
	other := h.slack.Post(general, alice, "no mention here")
	h.waitTraced("ignored", general+":"+other.TS)
	reply := h.slack.PostInThread(general, other.TS, bob, "still none")
	h.waitTraced("ignored", general+":"+reply.TS)
	if n := len(h.ai.Requests()); n != 2 {
		t.Errorf("%d model requests, want 2", n)
	}
}

func TestDirectMessages(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	first := h.slack.Post(aliceDM, alice, "hi")
	h.answered(first)
	second := h.slack.Post(aliceDM, alice, "again")
	h.answered(second)

	if got, want := h.userTexts(1), []string{"hi", "again"}; !equal(got, want) {
		t.Errorf("DM context %q, want %q (no speaker names in DMs)", got, want)
	}
	if got := h.lastTexts(aliceDM, ""); !equal(got, []string{"You said: hi", "You said: again"}) {
		t.Errorf("DM replies %q", got)
	}

	// A thread in a DM is a conversation of its own, with the thinking status.
	th := h.slack.PostInThread(aliceDM, first.TS, alice, "in a thread")
	h.answered(th)
	if got := h.userTexts(2); !equal(got, []string{"in a thread"}) {
		t.Errorf("DM thread context %q, want only its own message", got)
	}
	if got := h.lastTexts(aliceDM, first.TS); !equal(got, []string{"You said: in a thread"}) {
		t.Errorf("DM thread replies %q", got)
	}
	var status bool
	for _, s := range h.slack.Statuses() {
		status = status || (s.Channel == aliceDM && s.ThreadTS == first.TS && s.Status == thinkingStatus)
	}
	if !status {
		t.Errorf("no thinking status in the DM thread: %v", h.slack.Statuses())
	}
}

func TestResetInThread(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	m := h.slack.Post(general, alice, h.mention("remember 42"))
	h.answered(m)
	r := h.slack.PostInThread(general, m.TS, alice, h.mention("reset"))
	h.answered(r)
	texts := h.lastTexts(general, m.TS)
	if got := texts[len(texts)-1]; !strings.Contains(got, "Context cleared") {
		t.Errorf("answer to reset %q", got)
	}
	f := h.slack.PostInThread(general, m.TS, alice, "what number?")
	h.answered(f)
	if got := h.userTexts(1); !equal(got, []string{"Alice: what number?"}) {
		t.Errorf("context after reset %q, want only the new message", got)
	}
}

func TestResetInDM(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	h.answered(h.slack.Post(aliceDM, alice, "one"))

	trigger := h.slack.Slash(aliceDM, alice, "/reset", "")
	h.waitTraced("command", "/reset")
	eph := h.slack.Ephemerals(aliceDM, alice)
	if len(eph) != 1 || !strings.Contains(eph[0].Text, "Context cleared") {
		t.Fatalf("ephemeral answers to /reset (%s): %+v", trigger, eph)
	}
	h.answered(h.slack.Post(aliceDM, alice, "two"))
	if got := h.userTexts(1); !equal(got, []string{"two"}) {
		t.Errorf("context after /reset %q", got)
	}

	// "reset" alone in a DM clears it too.
	h.answered(h.slack.Post(aliceDM, alice, "reset"))
	h.answered(h.slack.Post(aliceDM, alice, "three"))
	if got := h.userTexts(2); !equal(got, []string{"three"}) {
		t.Errorf("context after reset %q", got)
	}

	// In a channel /reset explains threads and clears nothing.
	h.slack.Slash(general, alice, "/reset", "")
	eventually(t, "the channel note", func() bool { return len(h.slack.Ephemerals(general, alice)) == 1 })
	if got := h.slack.Ephemerals(general, alice)[0].Text; !strings.Contains(got, "each thread is its own conversation") {
		t.Errorf("channel note %q", got)
	}
	if n := len(h.ai.Requests()); n != 3 {
		t.Errorf("%d model requests, want 3", n)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	m := h.slack.Post(general, alice, h.mention("help"))
	h.answered(m)
	got := h.lastTexts(general, m.TS)
	if len(got) != 1 || !strings.Contains(got[0], "gpt-5.4-mini") || !strings.Contains(got[0], "*In Slack*") {
		t.Errorf("help %q", got)
	}
	if !strings.Contains(got[0], "@chatbot model") || strings.Contains(got[0], "persona") {
		t.Errorf("help %q: want the model words, and no persona without personas", got)
	}
	if n := len(h.ai.Requests()); n != 0 {
		t.Errorf("%d model requests for help, want 0", n)
	}
}

func TestRedeliveredEventAnsweredOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	m := h.slack.Post(general, alice, h.mention("once"))
	h.answered(m)
	for _, ev := range m.Events {
		h.waitTraced("duplicate", general+":"+m.TS) // the app_mention/message twin
		h.slack.Redeliver(ev)
		h.waitTraced("duplicate", ev)
	}

	// Across a restart with the same store file, too; the thread is still known.
	h.restart()
	h.slack.Redeliver(m.Events[1])
	eventually(t, "a second duplicate", func() bool { return h.traceCount("duplicate", m.Events[1]) == 2 })
	if n := len(h.ai.Requests()); n != 1 {
		t.Errorf("%d model requests, want 1", n)
	}
	if n := len(h.slack.BotMessages(general, m.TS)); n != 1 {
		t.Errorf("%d replies, want 1", n)
	}
	f := h.slack.PostInThread(general, m.TS, alice, "after the restart")
	h.answered(f)
}

func TestMentionAndMessageAnsweredOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	m := h.slack.Post(general, alice, h.mention("both events"))
	if len(m.Events) != 2 {
		t.Fatalf("%d events for a mention, want message + app_mention", len(m.Events))
	}
	h.answered(m)
	h.waitTraced("duplicate", general+":"+m.TS)
	if n := len(h.ai.Requests()); n != 1 {
		t.Errorf("%d model requests, want 1", n)
	}
	if n := len(h.slack.BotMessages(general, m.TS)); n != 1 {
		t.Errorf("%d replies, want 1", n)
	}
}

func TestIgnoresBotsEditsAndJoins(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	events := []map[string]any{
		{"type": "message", "subtype": "channel_join", "user": bob, "text": "<@U0BOB> has joined",
			"channel": general, "channel_type": "channel", "ts": "1700000000.000100"},
		{"type": "message", "subtype": "message_changed", "channel": aliceDM, "channel_type": "im",
			"ts": "1700000000.000200", "message": map[string]any{"type": "message", "user": alice, "text": "edited"}},
		{"type": "message", "bot_id": "B0OTHER", "user": "U0OTHERBOT", "text": "beep",
			"channel": aliceDM, "channel_type": "im", "ts": "1700000000.000300"},
		{"type": "message", "user": h.slack.Options().BotUserID, "text": "my own words",
			"channel": aliceDM, "channel_type": "im", "ts": "1700000000.000400"},
	}
	for _, ev := range events {
		h.waitTraced("skipped", h.slack.SendEvent(ev))
	}
	if n := len(h.ai.Requests()); n != 0 {
		t.Errorf("%d model requests, want 0", n)
	}
}

func TestStreamingGrows(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	words := strings.Fields("one two three four five six seven eight nine ten eleven twelve thirteen fourteen")
	h.ai.Enqueue(openaitest.Reply{Tokens: spaced(words), TokenDelay: 300 * time.Millisecond})
	m := h.slack.Post(general, alice, h.mention("count"))
	h.answered(m)

	msgs := h.slack.BotMessages(general, m.TS)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	hist := msgs[0].History
	final := strings.Join(words, " ")
	if hist[len(hist)-1] != final {
		t.Fatalf("final %q, want %q", hist[len(hist)-1], final)
	}
	growing := 0
	prev := ""
	for _, s := range hist[1 : len(hist)-1] {
		if !strings.HasPrefix(final, s) || len(s) <= len(prev) {
			t.Errorf("state %q does not grow towards the final text (after %q)", s, prev)
		}
		prev = s
		growing++
	}
	if growing < 2 {
		t.Errorf("%d partial states before the final text, want at least 2: %q", growing, hist)
	}
}

// spaced joins words back into tokens with their leading spaces.
func spaced(words []string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		if i > 0 {
			w = " " + w
		}
		out[i] = w
	}
	return out
}

func TestRateLimitSurvived(t *testing.T) {
	t.Parallel()
	// Slack allows 2 edits per 2 s here, and the adapter's own budget is off.
	h := newHarness(t, slackfake.Options{UpdateLimit: 2, UpdateWindow: 2 * time.Second}, func(c *Config) {
		c.UpdatesPerMinute, c.UpdateBurst = 6000, 100
	})
	var words []string
	for i := range 30 {
		words = append(words, "w"+string(rune('a'+i%26)))
	}
	h.ai.Enqueue(openaitest.Reply{Tokens: spaced(words), TokenDelay: 150 * time.Millisecond})
	h.ai.Enqueue(openaitest.Reply{Tokens: spaced(words), TokenDelay: 150 * time.Millisecond})
	m1 := h.slack.Post(general, alice, h.mention("first"))
	m2 := h.slack.Post(general, bob, h.mention("second"))
	h.answered(m1)
	h.answered(m2)
	final := strings.Join(words, " ")
	for _, m := range []slackfake.UserMessage{m1, m2} {
		if got := h.lastTexts(general, m.TS); !equal(got, []string{final}) {
			t.Errorf("final texts %q, want %q", got, final)
		}
	}
	if h.slack.RateLimited() == 0 {
		t.Errorf("the fake never said ratelimited; the test proves nothing")
	}
}

func TestLongReplySplit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	var b strings.Builder
	for i := range 40 {
		b.WriteString("Paragraph " + itoa(i) + ": " + strings.Repeat("lorem ipsum dolor sit amet ", 8) + "\n\n")
		if i == 20 {
			b.WriteString("```go\n")
			for j := range 60 {
				b.WriteString("fmt.Println(\"line " + itoa(j) + " <of> code\")\n")
			}
			b.WriteString("```\n\n")
		}
	}
	long := b.String()
	h.ai.Enqueue(openaitest.Reply{Tokens: strings.SplitAfter(long, "\n\n")})
	m := h.slack.Post(general, alice, h.mention("write a lot"))
	h.answered(m)

	texts := h.lastTexts(general, m.TS)
	if len(texts) < 3 {
		t.Fatalf("%d messages, want the reply split over at least 3", len(texts))
	}
	all := strings.Join(texts, "\n")
	for i, txt := range texts {
		if n := len([]rune(txt)); n > DefaultMaxMessageChars {
			t.Errorf("message %d has %d characters", i, n)
		}
		if err := checkMrkdwn(txt); err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
	for i := range 40 {
		if !strings.Contains(all, "Paragraph "+itoa(i)+":") {
			t.Errorf("paragraph %d lost", i)
		}
	}
	for j := range 60 {
		if !strings.Contains(all, "line "+itoa(j)+" &lt;of&gt; code") {
			t.Errorf("code line %d lost", j)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestMsgTooLongSplitsFurther(t *testing.T) {
	t.Parallel()
	// The adapter's limit is set above Slack's 40,000: Slack's msg_too_long must
	// make it split further without losing text.
	h := newHarness(t, slackfake.Options{}, func(c *Config) { c.MaxMessageChars = 100000 })
	var b strings.Builder
	for i := range 90 {
		b.WriteString("Block " + itoa(i) + " " + strings.Repeat("x", 490) + "\n\n")
	}
	h.ai.Enqueue(openaitest.Reply{Tokens: []string{b.String()}})
	m := h.slack.Post(general, alice, h.mention("huge"))
	h.answered(m)
	texts := h.lastTexts(general, m.TS)
	if len(texts) < 2 {
		t.Fatalf("%d messages, want at least 2", len(texts))
	}
	all := strings.Join(texts, "\n")
	for i := range 90 {
		if !strings.Contains(all, "Block "+itoa(i)+" ") {
			t.Errorf("block %d lost", i)
		}
	}
}

func TestFormattingValid(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	md := "# Result\n\nThis is **bold**, *italic*, ~~old~~ and `x < y && z`.\n\n" +
		"- see [docs](https://example.com/?a=1&b=2)\n- done\n\n```sh\necho \"<hi>\"\n```"
	h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize(md), TokenDelay: 100 * time.Millisecond})
	m := h.slack.Post(general, alice, h.mention("format"))
	h.answered(m)
	want := "*Result*\n\nThis is *bold*, _italic_, ~old~ and `x &lt; y &amp;&amp; z`.\n\n" +
		"• see <https://example.com/?a=1&amp;b=2|docs>\n• done\n\n```\necho \"&lt;hi&gt;\"\n```"
	msgs := h.slack.BotMessages(general, m.TS)
	if len(msgs) != 1 || msgs[0].Text != want {
		t.Fatalf("final %q\nwant %q", h.lastTexts(general, m.TS), want)
	}
	for _, s := range msgs[0].History {
		if err := checkMrkdwn(s); err != nil {
			t.Errorf("state %q: %v", s, err)
		}
	}
}

func TestAccessDenied(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, func(c *Config) { c.AllowedUserIDs = []string{alice} })
	m := h.slack.Post(general, bob, h.mention("let me in"))
	h.waitTraced("denied", bob)
	eph := h.slack.Ephemerals(general, bob)
	if len(eph) != 1 || !strings.Contains(eph[0].Text, bob) || !strings.Contains(eph[0].Text, "slack.allowed_user_ids") {
		t.Errorf("ephemeral notes %+v", eph)
	}
	if n := len(h.ai.Requests()); n != 0 {
		t.Errorf("%d model requests, want 0", n)
	}
	if n := len(h.slack.BotMessages(general, m.TS)); n != 0 {
		t.Errorf("%d public replies, want 0", n)
	}
	h.answered(h.slack.Post(general, alice, h.mention("me?")))
}

func TestChannelAllowlist(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, func(c *Config) { c.AllowedChannelIDs = []string{general} })
	h.slack.AddChannel("C0OTHER")
	h.slack.Post("C0OTHER", alice, h.mention("here?"))
	h.slack.Post(aliceDM, alice, "or here?")
	eventually(t, "two denials", func() bool {
		return len(h.slack.Ephemerals("C0OTHER", alice)) == 1 && len(h.slack.Ephemerals(aliceDM, alice)) == 1
	})
	if got := h.slack.Ephemerals("C0OTHER", alice)[0].Text; !strings.Contains(got, "slack.allowed_channel_ids") {
		t.Errorf("note %q", got)
	}
	h.answered(h.slack.Post(general, alice, h.mention("and here?")))
	if n := len(h.ai.Requests()); n != 1 {
		t.Errorf("%d model requests, want 1", n)
	}
}

func TestSocketReconnects(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	eventually(t, "a connection", func() bool { return h.slack.Connections() == 1 })
	h.slack.Disconnect()
	eventually(t, "a reconnection", func() bool { return h.slack.Connections() == 2 })
	h.answered(h.slack.Post(general, alice, h.mention("after refresh")))
	h.slack.Drop()
	eventually(t, "a reconnection after a drop", func() bool { return h.slack.Connections() == 3 })
	h.answered(h.slack.Post(general, alice, h.mention("after drop")))
}
