package slack

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestToMrkdwn(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "Hello, world.", "Hello, world."},
		{"bold", "a **bold** b", "a *bold* b"},
		{"bold underscores", "a __bold__ b", "a *bold* b"},
		{"italic", "an *italic* word", "an _italic_ word"},
		{"bold italic", "***both***", "_*both*_"},
		{"strike", "~~gone~~", "~gone~"},
		{"code span", "run `go test` now", "run `go test` now"},
		{"code span escapes", "`a<b && c>d`", "`a&lt;b &amp;&amp; c&gt;d`"},
		{"escapes", "1 < 2 & 3 > 2", "1 &lt; 2 &amp; 3 &gt; 2"},
		{"no pings", "hi <!channel> and <@U123>", "hi &lt;!channel&gt; and &lt;@U123&gt;"},
		{"link", "see [the docs](https://example.com/a?b=1&c=2)", "see <https://example.com/a?b=1&amp;c=2|the docs>"},
		{"link bold label", "[**x**](https://e.com)", "<https://e.com|x>"},
		{"autolink", "<https://example.com>", "<https://example.com|https://example.com>"},
		{"email autolink", "<me@example.com>", "<mailto:me@example.com|me@example.com>"},
		{"relative link", "[here](/local)", "here"},
		{"link with pipe", "[a](https://e.com/x|y)", "<https://e.com/x%7Cy|a>"},
		{"heading", "# Title\n\ntext", "*Title*\n\ntext"},
		{"heading with bold", "## A **b** c", "*A b c*"},
		{"bullets", "- one\n- two", "• one\n• two"},
		{"numbers", "3. three\n4. four", "3. three\n4. four"},
		{"nested", "- a\n  - b\n- c", "• a\n    ◦ b\n• c"},
		{"tasks", "- [x] done\n- [ ] todo", "• ☑ done\n• ☐ todo"},
		{"quote", "> wise\n> words", "> wise\n> words"},
		{"fence", "```go\nfmt.Println(\"<hi>\")\n```", "```\nfmt.Println(\"&lt;hi&gt;\")\n```"},
		{"unclosed fence", "```\ncode still coming", "```\ncode still coming\n```"},
		{"fence in fence", "````\n```\n````", "```\nˋˋˋ\n```"},
		{"rule", "a\n\n---\n\nb", "a\n\n──────────\n\nb"},
		{"unclosed bold", "so **bo", "so **bo"},
		{"table", "| a | bb |\n|---|---|\n| 1 | 2 |", "```\na | bb\n--+---\n1 | 2\n```"},
		{"html", "<b>x</b>", "&lt;b&gt;x&lt;/b&gt;"},
		{"backticks in text", "a ``` b", "a ˋˋˋ b"},
		{"hard break", "a  \nb", "a\nb"},
		{"empty", "", ""},
		{"angle link", "[t](<https://e.com/a b>)", "<https://e.com/a%20b|t>"},
		{"angle link with parentheses", "[t (x)](<https://e.com/p(1)?q=a&r=b>)", "<https://e.com/p(1)?q=a&amp;r=b|t (x)>"},
		{"sources", "Done.\n\nSources:\n1. [Go](<https://go.dev/>)\n2. [A & B](<https://e.com/%3Cx%3E>)",
			"Done.\n\nSources:\n1. <https://go.dev/|Go>\n2. <https://e.com/%3Cx%3E|A &amp; B>"},
		{"list after a blank line", "Items:\n\n- a\n- b", "Items:\n\n• a\n• b"},
		{"reasoning", "> 💭 Thinking **hard**.\n>\n> 1 < 2\n\nAnswer.", "> 💭 Thinking *hard*.\n>\n> 1 &lt; 2\n\nAnswer."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := toMrkdwn(tt.in)
			if got != tt.want {
				t.Errorf("toMrkdwn(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if err := checkMrkdwn(got); err != nil {
				t.Errorf("invalid mrkdwn %q: %v", got, err)
			}
		})
	}
}

// TestEveryPrefixIsValid renders every prefix of a reply, as streaming does.
func TestEveryPrefixIsValid(t *testing.T) {
	reply := "# Plan\n\nHere is **bold**, _it_, ~~no~~ and `x < y`.\n\n" +
		"1. first [link](https://example.com)\n2. second\n   - nested & more\n\n" +
		"> quoted\n\n```python\nif a < b:\n    print(\"```\")\n```\n\n| h | i |\n|---|---|\n| 1 | 2 |\n"
	for i := range len(reply) + 1 {
		if !utf8.ValidString(reply[:i]) {
			continue
		}
		if err := checkMrkdwn(toMrkdwn(reply[:i])); err != nil {
			t.Fatalf("prefix %q: %v\nrendered %q", reply[:i], err, toMrkdwn(reply[:i]))
		}
	}
}

// linkToken is a link the renderer emits.
var linkToken = regexp.MustCompile(`<(?:https?://|mailto:)[^\s<>|]+(?:\|[^<>\n]*)?>`)

// entity is the escaping Slack understands.
var entity = regexp.MustCompile(`&(?:amp|lt|gt);`)

// checkMrkdwn reports what would make Slack misread s: an odd number of ```
// fences, a < or > that is not one of our links or quote marks, or a bare &.
func checkMrkdwn(s string) error {
	if n := strings.Count(s, "```"); n%2 != 0 {
		return fmt.Errorf("%d code fences", n)
	}
	if strings.Contains(entity.ReplaceAllString(s, ""), "&") {
		return fmt.Errorf("bare &")
	}
	for i, part := range strings.Split(s, "```") {
		if i%2 == 0 {
			part = linkToken.ReplaceAllString(part, "")
		}
		for _, line := range strings.Split(part, "\n") {
			rest := strings.TrimLeft(line, " ")
			for strings.HasPrefix(rest, ">") {
				rest = strings.TrimPrefix(strings.TrimPrefix(rest, ">"), " ")
			}
			if strings.ContainsAny(rest, "<>") {
				return fmt.Errorf("raw < or > in %q", line)
			}
		}
	}
	return nil
}

func FuzzToMrkdwn(f *testing.F) {
	f.Add("**bold** _it_ `code` [l](https://x.y) <b>&")
	f.Fuzz(func(t *testing.T, md string) {
		if !utf8.ValidString(md) {
			t.Skip()
		}
		out := toMrkdwn(md)
		if err := checkMrkdwn(out); err != nil {
			t.Fatalf("toMrkdwn(%q) = %q: %v", md, out, err)
		}
		if again := toMrkdwn(md); again != out {
			t.Fatalf("not deterministic: %q then %q", out, again)
		}
	})
}

func FuzzChunks(f *testing.F) {
	f.Add("para one\n\n```go\ncode\n```\n\npara two", 80)
	f.Fuzz(func(t *testing.T, md string, limit int) {
		if !utf8.ValidString(md) || limit < 80 || limit > 4000 {
			t.Skip()
		}
		r := &reply{limit: limit}
		for _, c := range r.chunks(md, r.limit) {
			if n := utf8.RuneCountInString(c); n > limit {
				t.Fatalf("chunk of %d runes over limit %d: %q", n, limit, c)
			}
			if strings.TrimSpace(c) == "" {
				t.Fatalf("blank chunk")
			}
			if err := checkMrkdwn(c); err != nil {
				t.Fatalf("chunk %q: %v", c, err)
			}
		}
	})
}
