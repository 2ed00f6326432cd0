package telegram

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf16"

	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
)

func TestRenderMarkdown(t *testing.T) {
	tests := []struct {
		name, md, html string
	}{
		{"plain", "just text", "just text"},
		{"escapes", "a < b && c > d \"q\"", "a &lt; b &amp;&amp; c &gt; d \"q\""},
		{"bold italic", "**bold** and *it* and ***both***", "<b>bold</b> and <i>it</i> and <i><b>both</b></i>"},
		{"strike", "~~gone~~", "<s>gone</s>"},
		{"inline code", "use `a<b>` here", "use <code>a&lt;b&gt;</code> here"},
		{"fenced code", "```go\nfmt.Println(\"<x>\")\n```", `<pre><code class="language-go">fmt.Println("&lt;x&gt;")</code></pre>`},
		{"code without language", "```\nx := 1\n```", "<pre>x := 1</pre>"},
		{"odd language dropped", "```a\"b\ncode\n```", "<pre>code</pre>"},
		{"tabs in code", "```\n\tx\n```", "<pre>    x</pre>"},
		{"indented code", "    indented", "<pre>indented</pre>"},
		{"link", `[site](https://example.com/?a=1&b="2")`, `<a href="https://example.com/?a=1&amp;b=&quot;2&quot;">site</a>`},
		{"unsafe link", "[x](javascript:alert(1))", "x"},
		{"relative link", "[x](/path)", "x"},
		{"code in link", "[`code`](https://x.io)", `<a href="https://x.io">code</a>`},
		{"autolink", "<https://x.io>", "https://x.io"},
		{"image", "![alt text](https://x.io/a.png)", `<a href="https://x.io/a.png">alt text</a>`},
		{"bullets", "- a\n- b", "• a\n• b"},
		{"numbers", "3. x\n4. y", "3. x\n4. y"},
		{"nested list", "- a\n  - b\n- c", "• a\n  • b\n• c"},
		{"quote", "> quoted **text**", "<blockquote>quoted <b>text</b></blockquote>"},
		{"nested quote", "> a\n>\n> > b", "<blockquote>a\n\nb</blockquote>"},
		{"heading", "# Title\n\ntext", "<b>Title</b>\n\ntext"},
		{"rule", "a\n\n---\n\nb", "a\n\n———\n\nb"},
		{"hard break", "line1  \nline2", "line1\nline2"},
		{"soft break", "line1\nline2", "line1\nline2"},
		{"entities", "&amp; &copy; &#65;", "&amp; © A"},
		{"backslash escapes", `\*not\* \<b\>`, "*not* &lt;b&gt;"},
		{"raw html", "a <span>b</span><br>c", "a &lt;span&gt;b&lt;/span&gt;\nc"},
		{"html block", "<div>\nhi\n</div>", "&lt;div&gt;\nhi\n&lt;/div&gt;"},
		{"unclosed bold", "**unclosed", "**unclosed"},
		{"unclosed fence", "```py\nprint(1)", `<pre><code class="language-py">print(1)</code></pre>`},
		{"unclosed link", "[text](https://x", "[text](https://x"},
		{"control chars", "a\x00b\x07c\r\nd", "abc\nd"},
		{"invalid utf8", "a\xffb", "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := renderMarkdown(tt.md)
			if got.html != tt.html {
				t.Errorf("renderMarkdown(%q)\n got %q\nwant %q", tt.md, got.html, tt.html)
			}
			checkRendered(t, got)
		})
	}
}

// checkRendered asserts that r.html is Telegram HTML that shows r.plain and loses
// no formatting.
func checkRendered(t *testing.T, r rendered) {
	t.Helper()
	text, ents, err := telegramtest.ParseHTML(r.html)
	if err != nil {
		t.Fatalf("invalid HTML %q: %v", r.html, err)
	}
	if text != r.plain {
		t.Errorf("visible text %q, renderer says %q", text, r.plain)
	}
	if err := telegramtest.CheckNesting(ents); err != nil {
		t.Errorf("%v in %q", err, r.html)
	}
}

// letters keeps the letters of s: what no rendering or splitting may lose.
func letters(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) {
			return r
		}
		return -1
	}, s)
}

func FuzzRenderMarkdown(f *testing.F) {
	f.Add("**bold** _it_ `code` [l](https://x.io) ~~s~~\n\n- a\n- b\n\n> q\n\n```go\nx\n```")
	f.Fuzz(func(t *testing.T, md string) {
		r := renderMarkdown(md)
		checkRendered(t, r)
		if n, bound := visibleLen(r.plain), maxVisibleLen(cleanText(md)); n > bound {
			t.Errorf("rendering is %d long, over the bound %d the splitter trusts", n, bound)
		}
		if isPlainProse(md) {
			if got, want := strings.Join(strings.Fields(r.plain), " "), strings.Join(strings.Fields(md), " "); got != want {
				t.Errorf("plain prose changed: %q → %q", want, got)
			}
		}
	})
}

// isPlainProse reports whether md holds nothing Markdown could read as syntax.
func isPlainProse(md string) bool {
	for i, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") || (i > 0 && strings.Trim(line, "=- ") == "" && line != "") {
			return false
		}
	}
	return strings.IndexFunc(md, func(r rune) bool {
		return !(unicode.IsLetter(r) || r == ' ' || r == '\n' || r == ',' || r == '?')
	}) < 0
}

func FuzzRenderChunks(f *testing.F) {
	f.Add("para one\n\n```go\nline\nline\nline\n```\n\npara two", 64)
	f.Add("> 💭 thinking **hard**\n>\n> > more\n\nanswer `code`\n\n- a\n- b", 64)
	f.Fuzz(func(t *testing.T, md string, limit int) {
		limit = 64 + abs(limit)%4033 // 64..4096
		chunks := renderChunks(md, limit)
		var joined strings.Builder
		for i, c := range chunks {
			checkRendered(t, c)
			if n := visibleLen(c.plain); n > limit {
				t.Fatalf("chunk %d is %d long, limit %d: %q", i, n, limit, c.html)
			}
			if trimSpace(c.plain) == "" {
				t.Errorf("chunk %d shows nothing", i)
			}
			joined.WriteString(c.plain)
		}
		if strings.Contains(md, "]:") {
			return // a link definition cut off from its paragraph can vanish; not a loss of text
		}
		if whole, got := letters(renderMarkdown(md).plain), letters(joined.String()); !isSubsequence(whole, got) {
			t.Errorf("split lost text:\nwhole  %q\nchunks %q", whole, got)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -(n + 1)
	}
	return n
}

// isSubsequence reports whether the runes of a appear in b in order.
func isSubsequence(a, b string) bool {
	rb := []rune(b)
	j := 0
	for _, r := range a {
		for j < len(rb) && rb[j] != r {
			j++
		}
		if j == len(rb) {
			return false
		}
		j++
	}
	return true
}

func TestVisibleLenCountsUTF16(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want int
	}{
		{"abc", 3}, {"  abc \n", 3}, {"é", 1}, {"😀", 2}, {"a😀b", 4}, {"漢字", 2},
	} {
		if got := visibleLen(tt.s); got != tt.want {
			t.Errorf("visibleLen(%q) = %d, want %d", tt.s, got, tt.want)
		}
		if got := len(utf16.Encode([]rune(trimSpace(tt.s)))); got != tt.want {
			t.Errorf("test table wrong for %q", tt.s)
		}
	}
}

func TestRenderChunksSplitsLongCode(t *testing.T) {
	var b strings.Builder
	b.WriteString("Intro.\n\n```python\n")
	for range 400 {
		b.WriteString("print('a line of code that is long enough') # 😀\n")
	}
	b.WriteString("```\n\nOutro.")
	chunks := renderChunks(b.String(), maxMessageLen)
	if len(chunks) < 3 {
		t.Fatalf("got %d chunks, want 3 or more", len(chunks))
	}
	for i, c := range chunks {
		checkRendered(t, c)
		if n := visibleLen(c.plain); n > maxMessageLen {
			t.Errorf("chunk %d: %d long", i, n)
		}
		if i > 0 && i < len(chunks)-1 && !strings.HasPrefix(c.html, `<pre><code class="language-python">`) {
			t.Errorf("chunk %d does not reopen the code block: %.60q", i, c.html)
		}
	}
}

// BenchmarkRenderChunks renders and cuts a 12,000-character reply, as every edit of
// a long reply does.
func BenchmarkRenderChunks(b *testing.B) {
	var md strings.Builder
	for md.Len() < 12000 {
		md.WriteString("Some **bold** text with `code` and a [link](https://x.io).\n\n```go\nfmt.Println(1)\nfmt.Println(2)\n```\n\n- a\n- b\n\n")
	}
	for b.Loop() {
		renderChunks(md.String(), maxMessageLen)
	}
}
