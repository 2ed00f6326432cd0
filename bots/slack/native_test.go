package slack

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/slack/slackfake"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// native turns native streaming on, as cmd/chatbot does by default.
func native(c *Config) { c.NativeStreaming = true }

// statusesOf returns the statuses set (not cleared) in a thread.
func (h *harness) statusesOf(channel, thread string) []string {
	var out []string
	for _, s := range h.slack.Statuses() {
		if s.Channel == channel && s.ThreadTS == thread && s.Status != "" {
			out = append(out, s.Status)
		}
	}
	return out
}

// firstTextNoEdit fails unless every bot message of the thread began with
// text: a stream or a message of its own, never a placeholder edited into it.
func firstTextNoEdit(t *testing.T, h *harness, channel, thread string) {
	t.Helper()
	for _, m := range h.slack.BotMessages(channel, thread) {
		if placeholder(m.History[0]) {
			t.Errorf("thread %s: a message began as the placeholder %q, then showed %q", thread, m.History[0], m.Text)
		}
	}
}

// Twenty answers begin at once in twenty channels of one workspace, against
// Slack's documented limits: each shows that it thinks with the thread status,
// and its first text is a native stream while chat.startStream's Tier 2 has
// room (19 a minute here) and a message of its own after, never an edit of a
// placeholder out of the workspace's few chat.update a minute. Nothing is
// ratelimited and every final is whole. (The time to the first text is a
// figure: bench/TestSlackFirstText measures it.)
func TestFirstTextAtTwentyStreams(t *testing.T) {
	t.Parallel()
	const n = 20
	h := newHarness(t, slackfake.Options{}, native)
	words := strings.Fields(strings.Repeat("lorem ipsum dolor sit amet ", 4))
	h.ai.SetHandler(func(openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Tokens: spaced(words), TokenDelay: 50 * time.Millisecond}
	})
	var posted []slackfake.UserMessage
	for i := range n {
		ch := fmt.Sprintf("C0CHAN%02d", i)
		h.slack.AddChannel(ch)
		posted = append(posted, h.slack.Post(ch, alice, h.mention(fmt.Sprintf("question %d", i))))
	}
	want := strings.Join(spaced(words), "")
	streams := 0
	for _, m := range posted {
		h.answered(m)
		msgs := h.slack.BotMessages(m.Channel, m.TS)
		if len(msgs) != 1 || msgs[0].Text != want || msgs[0].Streaming {
			t.Errorf("thread %s: %d messages, the last %+v", m.TS, len(msgs), msgs[len(msgs)-1])
			continue
		}
		if msgs[0].Streamed {
			streams++
		}
		firstTextNoEdit(t, h, m.Channel, m.TS)
		if got := h.statusesOf(m.Channel, m.TS); len(got) != 1 || got[0] != thinkingStatus {
			t.Errorf("thread %s: statuses %q, want the thinking status", m.TS, got)
		}
		if len(msgs[0].Feedback()) != 1 {
			t.Errorf("thread %s: no feedback buttons under the answer", m.TS)
		}
	}
	if streams != streamWindowCalls {
		t.Errorf("%d native streams, want %d (Tier 2 allows 20 a minute; the rest posted)", streams, streamWindowCalls)
	}
	if h.slack.RateLimited() != 0 || h.slack.Deleted() != 0 {
		t.Errorf("%d ratelimited answers, %d messages deleted", h.slack.RateLimited(), h.slack.Deleted())
	}
	if p := h.slack.Calls("chat.postMessage"); p != n-streamWindowCalls {
		t.Errorf("%d chat.postMessage calls, want one per reply that did not stream", p)
	}
}

// Many threads in one channel, natively streamed or not: their first texts
// queue behind chat.postMessage's one a second per channel, none ratelimited,
// every final whole.
func TestManyThreadsInOneChannel(t *testing.T) {
	t.Parallel()
	const n = 8
	for _, streaming := range []bool{false, true} {
		t.Run(fmt.Sprintf("native %v", streaming), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, slackfake.Options{}, func(c *Config) { c.NativeStreaming = streaming })
			var posted []slackfake.UserMessage
			for i := range n {
				posted = append(posted, h.slack.Post(general, alice, h.mention(fmt.Sprintf("q%d", i))))
			}
			for i, m := range posted {
				h.answered(m)
				if got := h.lastTexts(general, m.TS); len(got) != 1 || got[0] != fmt.Sprintf("You said: Alice: q%d", i) {
					t.Errorf("thread %d: %q", i, got)
				}
				firstTextNoEdit(t, h, general, m.TS)
			}
			if h.slack.RateLimited() != 0 {
				t.Errorf("%d ratelimited answers", h.slack.RateLimited())
			}
		})
	}
}

// A native stream: markdown_text as the model wrote it, to the recipient in a
// channel, appended to as the text grows, ended with the feedback buttons,
// whose presses are counted once each.
func TestNativeStreamWithFeedback(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	counted := map[string]int{}
	h := newHarness(t, slackfake.Options{}, func(c *Config) {
		native(c)
		c.Feedback = func(kind string) { mu.Lock(); counted[kind]++; mu.Unlock() }
	})
	md := "A **bold** claim with `code` and a [link](https://example.com) in it"
	h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize(md), TokenDelay: 150 * time.Millisecond})
	m := h.slack.Post(general, alice, h.mention("stream"))
	h.answered(m)
	msgs := h.slack.BotMessages(general, m.TS)
	if len(msgs) != 1 || !msgs[0].Streamed || msgs[0].Streaming || msgs[0].Text != md {
		t.Fatalf("messages %+v, want one stopped stream of the Markdown", msgs)
	}
	if len(msgs[0].History) < 3 || h.slack.Calls("chat.appendStream") < 1 || h.slack.Calls("chat.update") != 0 {
		t.Errorf("history %q, %d appends, %d chat.update", msgs[0].History, h.slack.Calls("chat.appendStream"),
			h.slack.Calls("chat.update"))
	}
	fb := msgs[0].Feedback()
	if len(fb) != 1 || fb[0].PositiveValue != feedbackPositive || fb[0].NegativeValue != feedbackNegative {
		t.Fatalf("feedback buttons %+v", fb)
	}
	up, err := h.slack.PressFeedback(general, msgs[0].TS, alice, true)
	if err != nil {
		t.Fatal(err)
	}
	h.waitTraced("feedback", feedbackPositive)
	h.slack.Redeliver(up)
	h.waitTraced("duplicate", up)
	down, _ := h.slack.PressFeedback(general, msgs[0].TS, bob, false)
	h.waitTraced("feedback", feedbackNegative)
	mu.Lock()
	defer mu.Unlock()
	if counted[feedbackPositive] != 1 || counted[feedbackNegative] != 1 {
		t.Errorf("counted %v, want one of each (press %s, %s)", counted, up, down)
	}
}

// An answer edited in place ends with the feedback buttons too.
func TestFeedbackOnEditedAnswer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	m := h.slack.Post(general, alice, h.mention("plain"))
	h.answered(m)
	msgs := h.slack.BotMessages(general, m.TS)
	if len(msgs) != 1 || len(msgs[0].Feedback()) != 1 || !equal(msgs[0].SectionTexts(), []string{msgs[0].Text}) {
		t.Errorf("message %+v, want the text in a section and the feedback buttons", msgs)
	}
	// Commands' answers have none.
	r := h.slack.PostInThread(general, m.TS, alice, h.mention("help"))
	h.answered(r)
	for _, msg := range h.slack.BotMessages(general, m.TS)[1:] {
		if len(msg.Feedback()) != 0 {
			t.Errorf("feedback buttons under %q", msg.Text)
		}
	}
}

// Errors of native streaming: a workspace where chat.startStream is refused
// edits in place from then on (no more stream calls); a stream whose append
// fails goes on as an edited message; both finals whole.
func TestNativeStreamFallback(t *testing.T) {
	t.Parallel()
	t.Run("refused start turns the workspace off", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, slackfake.Options{}, native)
		h.slack.SetFault(func(method string, _ url.Values) *slackfake.Fault {
			if method == "chat.startStream" {
				return &slackfake.Fault{Error: "not_allowed"}
			}
			return nil
		})
		first := h.slack.Post(general, alice, h.mention("one"))
		h.answered(first)
		second := h.slack.Post(general, alice, h.mention("two"))
		h.answered(second)
		if got := h.lastTexts(general, second.TS); len(got) != 1 || got[0] != "You said: Alice: two" {
			t.Errorf("second reply %q", got)
		}
		if n := h.slack.Calls("chat.startStream"); n != 1 {
			t.Errorf("%d chat.startStream calls, want 1: the workspace falls back to the edit path", n)
		}
		firstTextNoEdit(t, h, general, first.TS)
	})
	t.Run("failed append", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, slackfake.Options{}, native)
		h.slack.SetFault(func(method string, _ url.Values) *slackfake.Fault {
			if method == "chat.appendStream" {
				return &slackfake.Fault{Error: "invalid_arguments"}
			}
			return nil
		})
		md := "streamed then **edited** in place until the end"
		h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize(md), TokenDelay: 300 * time.Millisecond})
		m := h.slack.Post(general, alice, h.mention("x"))
		h.answered(m)
		msgs := h.slack.BotMessages(general, m.TS)
		if len(msgs) != 1 || !msgs[0].Streamed || msgs[0].Streaming || msgs[0].Text != toMrkdwn(md) ||
			h.slack.Calls("chat.appendStream") != 1 {
			t.Errorf("messages %+v, %d appends, want the stream stopped at the failed append and edited to the whole text",
				msgs, h.slack.Calls("chat.appendStream"))
		}
		if len(msgs) == 1 && len(msgs[0].Feedback()) != 1 {
			t.Errorf("no feedback buttons after the fallback")
		}
	})
}

// Where Slack refuses the thread status, the reply falls back to a
// placeholder as before, and still posts its first text as a message of its
// own, deleting the placeholder; the workspace stops asking for statuses.
func TestStatusRefusedFallsBackToPlaceholder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	h.slack.SetFault(func(method string, _ url.Values) *slackfake.Fault {
		if method == "assistant.threads.setStatus" {
			return &slackfake.Fault{Error: "missing_scope"}
		}
		return nil
	})
	m := h.slack.Post(general, alice, h.mention("hi"))
	h.answered(m)
	if got := h.lastTexts(general, m.TS); len(got) != 1 || got[0] != "You said: Alice: hi" {
		t.Errorf("reply %q", got)
	}
	firstTextNoEdit(t, h, general, m.TS)
	if d := h.slack.Deleted(); d != 1 {
		t.Errorf("%d deleted, want the placeholder", d)
	}
	h.answered(h.slack.Post(general, alice, h.mention("again")))
	if n := h.slack.Calls("assistant.threads.setStatus"); n != 1 {
		t.Errorf("%d setStatus calls, want 1", n)
	}
}

// The agent view: opening the app's conversation or starting an assistant
// thread offers the configured prompts, by each experience's rule.
func TestSuggestedPrompts(t *testing.T) {
	t.Parallel()
	prompts := []SuggestedPrompt{{Title: "Summarize", Message: "Summarize this for me"}, {Title: "Explain", Message: "Explain it simply"}}
	t.Run("agent view", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, slackfake.Options{}, func(c *Config) { c.SuggestedPrompts = prompts; c.AllowedUserIDs = []string{alice} })
		h.slack.OpenAppHome(aliceDM, alice, "messages")
		h.waitTraced("prompts", aliceDM+":")
		h.slack.OpenAppHome(aliceDM, alice, "home") // the home tab: no conversation
		h.slack.OpenAppHome("D0BOB", bob, "messages")
		h.waitTraced("denied", bob)
		got := h.slack.SuggestedPrompts()
		if len(got) != 1 || got[0].Channel != aliceDM || got[0].ThreadTS != "" || len(got[0].Prompts) != 2 ||
			got[0].Prompts[0].Title != "Summarize" || got[0].Prompts[1].Message != "Explain it simply" {
			t.Errorf("prompts %+v", got)
		}
	})
	t.Run("assistant view", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, slackfake.Options{AssistantView: true}, func(c *Config) { c.SuggestedPrompts = prompts })
		thread, _ := h.slack.StartAssistantThread(aliceDM, alice)
		h.waitTraced("prompts", aliceDM+":"+thread)
		if got := h.slack.SuggestedPrompts(); len(got) != 1 || got[0].ThreadTS != thread {
			t.Errorf("prompts %+v", got)
		}
	})
	t.Run("none configured", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, slackfake.Options{}, nil)
		h.slack.OpenAppHome(aliceDM, alice, "messages")
		h.answered(h.slack.Post(aliceDM, alice, "hi"))
		if n := h.slack.Calls("assistant.threads.setSuggestedPrompts"); n != 0 {
			t.Errorf("%d calls", n)
		}
	})
}

// A DM thread (a conversation in the app's view) is titled after its first
// message, once; a channel thread's agent session takes that title.
func TestThreadTitles(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	root := h.slack.Seed(aliceDM, alice, "earlier")
	first := h.slack.PostInThread(aliceDM, root, alice, "Plan a trip to Lisbon\nwith two kids in May")
	h.answered(first)
	h.waitTraced("titled", aliceDM+":"+root)
	h.answered(h.slack.PostInThread(aliceDM, root, alice, "and a day in Sintra"))
	if got := h.slack.Titles(); len(got) != 1 || got[0].ThreadTS != root || got[0].Title != "Plan a trip to Lisbon" {
		t.Errorf("titles %+v", got)
	}
	m := h.slack.Post(general, alice, h.mention("Why is the sky blue?"))
	h.answered(m)
	se, ok := h.slack.SessionOf(general, m.TS)
	if !ok || se.Title != "Why is the sky blue?" || se.Initiator != alice {
		t.Errorf("session %+v", se)
	}
	eventually(t, "the session out of processing", func() bool {
		se, _ := h.slack.SessionOf(general, m.TS)
		return se.Status == "active"
	})
	if long := threadTitle(strings.Repeat("word ", 40)); len([]rune(long)) != maxTitleChars || !strings.HasSuffix(long, "…") {
		t.Errorf("title %q", long)
	}
}

// Slack's stop button (agent_session_stopped) stops the answer: the model
// call is cancelled, the reply says it stopped, whole, and the session leaves
// processing. A stream Slack halted without the event does the same.
func TestSlackStopCancelsTheModelCall(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"stop button", "halted stream"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, slackfake.Options{}, native)
			words := strings.Fields(strings.Repeat("slowly ", 400))
			h.ai.Enqueue(openaitest.Reply{Tokens: spaced(words), TokenDelay: 50 * time.Millisecond})
			m := h.slack.Post(general, alice, h.mention("tell me everything"))
			var stream slackfake.Message
			eventually(t, "the stream to grow", func() bool {
				msgs := h.slack.BotMessages(general, m.TS)
				if len(msgs) == 1 && msgs[0].Streaming && len(msgs[0].History) > 1 {
					stream = msgs[0]
					return true
				}
				return false
			})
			if how == "stop button" {
				if _, err := h.slack.Stop(general, m.TS, alice); err != nil {
					t.Fatal(err)
				}
				h.waitTraced("stopped", general+":"+m.TS)
			} else if !h.slack.HaltStream(general, stream.TS) {
				t.Fatal("no stream to halt")
			}
			h.answered(m)
			if h.ai.Canceled() != 1 {
				t.Errorf("%d model calls cancelled, want 1", h.ai.Canceled())
			}
			msgs := h.slack.BotMessages(general, m.TS)
			if len(msgs) != 1 || !strings.HasSuffix(msgs[0].Text, "_(stopped)_") || msgs[0].Streaming {
				t.Errorf("messages %+v, want the stream ending with the stopped mark", msgs)
			}
			eventually(t, "the session out of processing", func() bool {
				se, _ := h.slack.SessionOf(general, m.TS)
				return se.Status == "active"
			})
		})
	}
}
