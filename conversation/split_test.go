package conversation

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func maxLen(n int) func(string) bool {
	return func(s string) bool { return utf8.RuneCountInString(s) <= n }
}

func TestSplitMarkdown(t *testing.T) {
	para := strings.Repeat("word ", 15) + "end." // 79 characters
	tests := []struct {
		name string
		text string
		max  int
		want []string
	}{
		{"fits", "short", 10, []string{"short"}},
		{"paragraph break preferred", para + "\n\n" + para + "\nline three\n", 100,
			[]string{para + "\n\n", para + "\nline three\n"}},
		{"line break when no paragraph", "aaaa\nbbbb\ncccc\n", 10, []string{"aaaa\nbbbb\n", "cccc\n"}},
		{"long line cut at a space", "aaaa bbbb cccc dd", 10, []string{"aaaa bbbb ", "cccc dd"}},
		{"code block closed and reopened", "```go\nline1\nline2\nline3\n```\n", 21,
			[]string{"```go\nline1\nline2\n```", "```go\nline3\n```\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SplitMarkdown(tt.text, maxLen(tt.max))
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// checkSplit asserts the splitter's promises: every chunk fits, fences are balanced
// in every chunk, and no text is lost.
func checkSplit(t *testing.T, text string, limit int) {
	t.Helper()
	chunks := SplitMarkdown(text, maxLen(limit))
	// A line longer than a chunk is cut inside, which may change what it means
	// (a cut "    ```" starts a fence); fences are promised only for whole lines.
	wholeLines := true
	for _, l := range strings.Split(text, "\n") {
		wholeLines = wholeLines && utf8.RuneCountInString(l)+8 < limit
	}
	var joined strings.Builder
	for i, c := range chunks {
		if utf8.RuneCountInString(c) > limit && utf8.RuneCountInString(c) > 1 {
			if !(limit < 8 && utf8.RuneCountInString(c) <= 8) { // a fence pair alone may exceed tiny limits
				t.Fatalf("chunk %d has %d runes, limit %d: %q", i, utf8.RuneCountInString(c), limit, c)
			}
		}
		open := ""
		for _, l := range strings.SplitAfter(c, "\n") {
			open = fenceAfter(open, l)
		}
		if open != "" && wholeLines && i < len(chunks)-1 {
			t.Fatalf("chunk %d leaves fence %q open: %q", i, open, c)
		}
		joined.WriteString(c)
	}
	strip := func(s string) string {
		var b strings.Builder
		for _, r := range s {
			if r != '`' && r != '~' && !unicode.IsSpace(r) {
				b.WriteRune(r)
			}
		}
		return b.String()
	}
	// Fence lines may be added (with their language), so compare the text of the
	// original's non-fence characters as a subsequence of the joined chunks.
	want, got := strip(text), strip(joined.String())
	i := 0
	for _, r := range got {
		if i < len(want) && strings.HasPrefix(want[i:], string(r)) {
			i += utf8.RuneLen(r)
		}
	}
	if i != len(want) {
		t.Fatalf("text lost: got %q from %q", joined.String(), text)
	}
}

func TestSplitMarkdownLongReplyWithCode(t *testing.T) {
	var b strings.Builder
	b.WriteString("Intro paragraph.\n\n```python\n")
	for i := range 300 {
		b.WriteString("print('line ")
		b.WriteString(strings.Repeat("x", i%40))
		b.WriteString("')\n")
	}
	b.WriteString("```\n\nAfter the code, a closing paragraph with **bold** text.\n")
	chunks := SplitMarkdown(b.String(), maxLen(4096))
	if len(chunks) < 2 {
		t.Fatalf("got %d chunks, want a split", len(chunks))
	}
	for i, c := range chunks[1:] {
		if i+1 < len(chunks)-1 && !strings.HasPrefix(c, "```python\n") {
			t.Errorf("chunk %d does not reopen the code block: %q", i+1, c[:20])
		}
	}
	checkSplit(t, b.String(), 4096)
}

func FuzzSplitMarkdown(f *testing.F) {
	f.Add("hello\n\nworld", 5)
	f.Add("```go\nfunc main() {}\n```\ntext after", 12)
	f.Add("~~~\ncode\n~~~\n", 9)
	f.Add("ünïcødé text with spaces and a very long line that must be cut somewhere", 10)
	f.Add("    ```\nindented\n", 6)
	f.Fuzz(func(t *testing.T, text string, limit int) {
		if !utf8.ValidString(text) || limit < 1 || limit > 5000 {
			t.Skip()
		}
		checkSplit(t, text, limit)
	})
}
