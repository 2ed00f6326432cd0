package telegram

import (
	"strings"
	"testing"

	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
)

func TestReasoningIsCollapsed(t *testing.T) {
	tests := []struct {
		name, md string
		html     []string
	}{
		{"summary and answer", "> 💭 Thinking **hard**\n> about it\n\nThe answer.",
			[]string{"<blockquote expandable>💭 Thinking <b>hard</b>\nabout it</blockquote>\n\nThe answer."}},
		{"summary alone, while it streams", "> 💭 Thinking\n",
			[]string{"<blockquote expandable>💭 Thinking</blockquote>"}},
		{"paragraphs and a quote inside", "> 💭 One.\n>\n> > quoted\n\nAnswer.",
			[]string{"<blockquote expandable>💭 One.\n\nquoted</blockquote>\n\nAnswer."}},
		{"no summary: a quote stays a quote", "> just a quote\n\ntext",
			[]string{"<blockquote>just a quote</blockquote>\n\ntext"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks := renderChunks(tt.md, maxMessageLen)
			var got []string
			for _, c := range chunks {
				checkRendered(t, c)
				got = append(got, c.html)
			}
			if strings.Join(got, "|") != strings.Join(tt.html, "|") {
				t.Errorf("renderChunks(%q)\n got %q\nwant %q", tt.md, got, tt.html)
			}
		})
	}
}

// compose puts a reasoning summary before an answer as the engine does.
func compose(summary, answer string) string {
	var b strings.Builder
	for i, line := range strings.Split(strings.TrimSpace(summary), "\n") {
		switch {
		case i == 0:
			b.WriteString("> 💭 " + line + "\n")
		case line == "":
			b.WriteString(">\n")
		default:
			b.WriteString("> " + line + "\n")
		}
	}
	if answer != "" {
		b.WriteString("\n" + answer)
	}
	return b.String()
}

// streamed returns the texts the engine shows while a summary and then an answer
// stream, word by word.
func streamed(summary, answer string) []string {
	var out []string
	words := strings.SplitAfter(summary, " ")
	for i := range words {
		if s := strings.Join(words[:i+1], ""); strings.TrimSpace(s) != "" {
			out = append(out, compose(s, ""))
		}
	}
	words = strings.SplitAfter(answer, " ")
	for i := range words {
		out = append(out, compose(summary, strings.Join(words[:i+1], "")))
	}
	return out
}

func TestReasoningIsValidAtEveryPartialText(t *testing.T) {
	summary := "**Planning** the `answer`\n\nFirst I check [the docs](https://x.io) and then\n- a list\n- of steps"
	answer := "Here is *the* answer with ```go\ncode\n``` and more **bold text** at the end."
	for _, md := range streamed(summary, answer) {
		chunks := renderChunks(md, maxMessageLen)
		if len(chunks) != 1 {
			t.Fatalf("%q: %d chunks", md, len(chunks))
		}
		checkRendered(t, chunks[0])
		_, ents, _ := telegramtest.ParseHTML(chunks[0].html)
		if len(ents) == 0 || ents[0].Type != "expandable_blockquote" || ents[0].Offset != 0 {
			t.Errorf("%q: the summary is not a collapsed quote at the top: %+v", md, ents)
		}
	}
}

func TestReasoningWithLongAnswers(t *testing.T) {
	para := strings.Repeat("A sentence that goes on for a while. ", 20) + "\n\n"
	for _, tt := range []struct {
		name    string
		summary string
		ownMsgs bool // the summary fills messages of its own
	}{
		{"short summary", "Short thought.", false},
		{"long summary", strings.Repeat("I think about this and that. ", 100), true},
		{"summary over a message", strings.Repeat("I think about this and that.\n\n", 200), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			answer := strings.Repeat(para, 30)
			chunks := renderChunks(compose(tt.summary, answer), maxMessageLen)
			if len(chunks) < 3 {
				t.Fatalf("%d chunks, want several", len(chunks))
			}
			var joined strings.Builder
			for i, c := range chunks {
				checkRendered(t, c)
				if n := visibleLen(c.plain); n > maxMessageLen {
					t.Errorf("chunk %d is %d long", i, n)
				}
				joined.WriteString(c.plain)
			}
			if !strings.HasPrefix(chunks[0].html, "<blockquote expandable>💭 ") {
				t.Errorf("first message does not start with the summary: %.80q", chunks[0].html)
			}
			summaryOnly := strings.HasSuffix(chunks[0].html, "</blockquote>")
			if summaryOnly != tt.ownMsgs {
				t.Errorf("first message holds the summary alone: %v, want %v", summaryOnly, tt.ownMsgs)
			}
			if whole, got := letters(tt.summary+answer), letters(joined.String()); !isSubsequence(whole, got) {
				t.Error("text lost in the split")
			}
		})
	}
}

func TestSourcesAreLinks(t *testing.T) {
	md := "The answer.\n\nSources:\n1. [Go (programming language)](<https://en.wikipedia.org/wiki/Go_(programming_language)>)\n" +
		"2. [A & B <docs>](<https://x.io/a?b=1&c=2>)\n3. [https://plain.example/](<https://plain.example/>)"
	got := renderMarkdown(md)
	checkRendered(t, got)
	want := "The answer.\n\nSources:\n\n" +
		`1. <a href="https://en.wikipedia.org/wiki/Go_(programming_language)">Go (programming language)</a>` + "\n" +
		`2. <a href="https://x.io/a?b=1&amp;c=2">A &amp; B &lt;docs&gt;</a>` + "\n" +
		`3. <a href="https://plain.example/">https://plain.example/</a>`
	if got.html != want {
		t.Errorf("sources\n got %q\nwant %q", got.html, want)
	}
}
