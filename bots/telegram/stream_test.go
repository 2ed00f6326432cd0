package telegram_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/chatbot-dev/chatbot/bots/telegram"
	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// letters keeps the letters of s: what no rendering or splitting may lose.
func letters(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) {
			return r
		}
		return -1
	}, s)
}

func TestLongReplyIsSplitWithCodeBlockReopened(t *testing.T) {
	h := newHarness(t)
	var code strings.Builder
	for i := range 150 {
		fmt.Fprintf(&code, "\tfmt.Println(\"line %03d: <ok> & fine\") // 😀 padding\n", i)
	}
	para := strings.Repeat("Прose with émoji 🎉 and words. ", 30)
	reply := "Intro: " + para + "\n\n" + para + "\n\n```go\n" + code.String() + "```\n\n" + para + "\n\nThe end."
	if n := len([]rune(reply)); n < 10000 {
		t.Fatalf("reply has %d characters, want 10,000 or more", n)
	}
	h.ai.Enqueue(openaitest.Text(reply))
	h.say(alice, telegramtest.Chat{}, "long please")
	h.waitReply(alice.ID, 3, "The end.")
	h.waitFor("the reply to settle", func() bool {
		msgs := live(h.tg.BotMessages(alice.ID))
		return strings.HasSuffix(msgs[len(msgs)-1].Last().Text, "The end.")
	})
	msgs := live(h.tg.BotMessages(alice.ID))
	checkHTML(t, msgs)

	// The code is whole, split in parts that each keep the language, with tabs
	// shown as four spaces. (Telegram trims the white space that starts a message,
	// so a part's first line may lose its indentation.)
	var visible strings.Builder
	parts := 0
	var codeLines []string
	for _, m := range msgs {
		last := m.Last()
		visible.WriteString(last.Text)
		for _, e := range last.Entities {
			if e.Type != "pre" {
				continue
			}
			parts++
			if e.Language != "go" {
				t.Errorf("message %d: code block without its language: %+v", m.ID, e)
			}
			codeLines = append(codeLines, strings.Split(utf16Slice(last.Text, e.Offset, e.Length), "\n")...)
		}
	}
	wantLines := strings.Split(strings.TrimSuffix(strings.ReplaceAll(code.String(), "\t", "    "), "\n"), "\n")
	if parts < 2 || len(codeLines) != len(wantLines) {
		t.Fatalf("code shown in %d parts with %d lines, want 2 or more parts with %d lines", parts, len(codeLines), len(wantLines))
	}
	for i, line := range codeLines {
		if line != wantLines[i] && line != strings.TrimLeft(wantLines[i], " ") {
			t.Errorf("code line %d = %q, want %q", i, line, wantLines[i])
		}
	}
	if got, want := letters(visible.String()), letters(strings.ReplaceAll(reply, "```go", "")); got != want {
		t.Errorf("visible text lost letters:\ngot  %q\nwant %q", got, want)
	}
}

func utf16Slice(s string, off, n int) string {
	var out []rune
	pos := 0
	for _, r := range s {
		w := 1
		if r >= 0x10000 {
			w = 2
		}
		if pos >= off && pos < off+n {
			out = append(out, r)
		}
		pos += w
	}
	return string(out)
}

func TestFloodControlLosesNothing(t *testing.T) {
	h := newHarness(t)
	h.tg.SetFlood(telegramtest.FloodLimits{Private: telegramtest.Limit{Max: 1, Per: 400 * time.Millisecond}})
	reply := strings.TrimSpace(strings.Repeat("tokens flow faster than edits may go ", 8))
	h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize(reply), TokenDelay: 25 * time.Millisecond})
	h.say(alice, telegramtest.Chat{}, "go")
	h.waitFor("the final text", func() bool {
		msgs := h.tg.BotMessages(alice.ID)
		return len(msgs) == 1 && msgs[0].Last().Text == reply
	})
	if h.tg.Limited(alice.ID) == 0 {
		t.Error("flood control never answered 429: the test proves nothing")
	}
	checkHTML(t, h.tg.BotMessages(alice.ID))
}

func TestLongRetryAfterSkipsToFinalText(t *testing.T) {
	h := newHarness(t)
	var edits atomic.Int32
	h.tg.SetFault(func(c telegramtest.Call) *telegramtest.APIError {
		if c.Method == "editMessageText" && edits.Add(1) == 1 {
			return telegramtest.TooManyRequests(2)
		}
		return nil
	})
	reply := strings.TrimSpace(strings.Repeat("a reply that ends while the bot must wait ", 6))
	h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize(reply), TokenDelay: 10 * time.Millisecond})
	h.say(alice, telegramtest.Chat{}, "go")
	h.waitFor("the final text", func() bool {
		msgs := h.tg.BotMessages(alice.ID)
		return len(msgs) == 1 && msgs[0].Last().Text == reply
	})
	if v := h.tg.BotMessages(alice.ID)[0].Versions; len(v) != 2 {
		t.Errorf("got %d states, want 2: the first text, then after the wait the final one", len(v))
	}
	if n := edits.Load(); n != 2 {
		t.Errorf("got %d edit calls, want 2: the refused one and the final one", n)
	}
}

const richReply = "# Plan\n\nSome **bold**, *italic*, ~~old~~ and `a<b && c>d` text.\n\n" +
	"1. first step\n2. second with [a link](https://example.com/?q=1&r=\"x\")\n   - nested point\n\n" +
	"> A quote with **bold**\n\n```python\nif a < b:\n    print(\"<tag> & more\")\n```\n\nDone & dusted."

const richVisible = "Plan\n\nSome bold, italic, old and a<b && c>d text.\n\n" +
	"1. first step\n2. second with a link\n  • nested point\n\n" +
	"A quote with bold\n\nif a < b:\n    print(\"<tag> & more\")\n\nDone & dusted."

// tokens3 cuts s into three-byte tokens, so that every prefix is seen.
func tokens3(s string) []string {
	var out []string
	for len(s) > 3 {
		out = append(out, s[:3])
		s = s[3:]
	}
	return append(out, s)
}

func TestFormattingValidAtEveryEdit(t *testing.T) {
	h := newHarness(t, adapter(func(o *telegram.Options) { o.EditEvery = 5 * time.Millisecond }))
	h.ai.Enqueue(openaitest.Reply{Tokens: tokens3(richReply), TokenDelay: 3 * time.Millisecond})
	h.say(alice, telegramtest.Chat{}, "format something")
	h.waitFor("the final text", func() bool {
		msgs := h.tg.BotMessages(alice.ID)
		return len(msgs) == 1 && msgs[0].Last().Text == richVisible
	})
	msgs := h.tg.BotMessages(alice.ID)
	if len(msgs[0].Versions) < 5 {
		t.Errorf("only %d states: the test wants many partial edits", len(msgs[0].Versions))
	}
	checkHTML(t, msgs)
	types := map[string]bool{}
	for _, e := range msgs[0].Last().Entities {
		types[e.Type] = true
	}
	for _, want := range []string{"bold", "italic", "strikethrough", "code", "pre", "text_link", "blockquote"} {
		if !types[want] {
			t.Errorf("final message has no %s entity: %+v", want, msgs[0].Last().Entities)
		}
	}
	for _, c := range h.tg.Calls() {
		if c.ErrorCode != 0 && !strings.Contains(c.Description, "not modified") {
			t.Errorf("%s failed: %s", c.Method, c.Description)
		}
	}
}

func TestRefusedHTMLFallsBackToPlainText(t *testing.T) {
	h := newHarness(t)
	h.tg.SetFault(func(c telegramtest.Call) *telegramtest.APIError {
		if c.Params["parse_mode"] == "HTML" && c.ChatID == alice.ID {
			return telegramtest.BadRequest(telegramtest.ParseFailed + `Unsupported start tag "foo" at byte offset 12`)
		}
		return nil
	})
	h.ai.Enqueue(openaitest.Text(richReply))
	h.say(alice, telegramtest.Chat{}, "format something")
	h.waitFor("the final text", func() bool {
		msgs := h.tg.BotMessages(alice.ID)
		return len(msgs) == 1 && msgs[0].Last().Text == richVisible
	})
	if v := h.tg.BotMessages(alice.ID)[0].Last(); v.ParseMode != "" {
		t.Errorf("final state sent with parse_mode %q, want plain text", v.ParseMode)
	}
}

func TestFiftyChatsAtOnce(t *testing.T) {
	const n = 50
	users := make([]telegramtest.User, n)
	ids := make([]int64, n)
	for i := range users {
		users[i] = telegramtest.User{ID: int64(5000 + i), FirstName: fmt.Sprintf("User%d", i)}
		ids[i] = users[i].ID
	}
	h := newHarness(t, adapter(func(o *telegram.Options) { o.AllowedUserIDs = ids }))
	h.ai.SetHandler(func(r openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Tokens: openaitest.Tokenize("Answer for " + r.LastUser() + " with a few more words"),
			TokenDelay: 20 * time.Millisecond}
	})
	for i, u := range users {
		h.say(u, telegramtest.Chat{}, fmt.Sprintf("question %d", i))
	}
	for i, u := range users {
		want := fmt.Sprintf("Answer for question %d with a few more words", i)
		h.waitFor(want, func() bool {
			msgs := h.tg.BotMessages(u.ID)
			return len(msgs) == 1 && msgs[0].Last().Text == want
		})
	}
	if got := len(h.ai.Requests()); got != n {
		t.Errorf("model called %d times, want %d", got, n)
	}
}
