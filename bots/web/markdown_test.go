package web

import (
	"regexp"
	"strings"
	"testing"
)

// unsafeIn returns what must never come out of the renderer, if it finds it:
// an element that runs or loads something, an event handler or style
// attribute, or a link with a scheme other than http, https and mailto.
func unsafeIn(html string) string {
	for _, tag := range regexp.MustCompile(`<[a-zA-Z][^>]*>`).FindAllString(html, -1) {
		name := strings.ToLower(regexp.MustCompile(`^<([a-zA-Z0-9]+)`).FindStringSubmatch(tag)[1])
		switch name {
		case "script", "iframe", "object", "embed", "svg", "math", "img", "style", "link", "meta", "base", "form", "input", "textarea", "video", "audio", "source":
			return tag
		}
		for _, attr := range regexp.MustCompile(`\s([a-zA-Z-]+)\s*=\s*("[^"]*"|'[^']*'|[^\s>]*)`).FindAllStringSubmatch(tag, -1) {
			key, val := strings.ToLower(attr[1]), strings.Trim(attr[2], `"'`)
			switch {
			case strings.HasPrefix(key, "on"), key == "style", key == "srcdoc", key == "formaction":
				return tag
			case key == "href" || key == "src" || key == "action":
				if !strings.HasPrefix(val, "https://") && !strings.HasPrefix(val, "http://") && !strings.HasPrefix(val, "mailto:") {
					return tag
				}
			}
		}
	}
	return ""
}

func TestMarkdownIsSafe(t *testing.T) {
	md := newMarkdown()
	for _, tc := range []struct{ name, in, want string }{
		{"script", "<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{"inline html", "hi <img src=x onerror=alert(1)> there", "hi &lt;img src=x onerror=alert(1)&gt; there"},
		{"svg block", "<svg onload=alert(1)>\n</svg>", "&lt;svg onload=alert(1)&gt;"},
		{"iframe", "<iframe src=\"https://evil.example\"></iframe>", "&lt;iframe"},
		{"javascript link", "[click](javascript:alert(1))", "<p>click</p>"},
		{"javascript link, upper case", "[click](JaVaScRiPt:alert(1))", "<p>click</p>"},
		{"javascript link with a tab", "[click](java&#9;script:alert(1))", "<p>click</p>"},
		{"javascript link with entities", "[click](&#106;avascript:alert(1))", "<p>click</p>"},
		{"data link", "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)", "<p>click</p>"},
		{"vbscript autolink", "<vbscript:msgbox>", "<p>vbscript:msgbox</p>"},
		{"relative link", "[x](/logout)", "<p>x</p>"},
		{"link ok", "[docs](https://go.dev/doc?a=1&b=2)", `<a href="https://go.dev/doc?a=1&amp;b=2" target="_blank" rel="noopener noreferrer nofollow">docs</a>`},
		{"mailto", "<ana@example.com>", `href="mailto:ana@example.com"`},
		{"image becomes a link", "![cat](https://example.com/cat.png)", `<a class="image-link" href="https://example.com/cat.png"`},
		{"javascript image", "![x](javascript:alert(1))", "<p>x</p>"},
		{"quote in a title", `[a](https://x.org "t\" onmouseover=\"alert(1)")`, `title="t&quot; onmouseover=&quot;alert(1)"`},
		{"code keeps text", "```html\n<script>alert(1)</script>\n```", "&lt;"},
		{"language name", "```\"><script>\nx\n```", `<span class="lang" data-lang="&#34;&gt;&lt;script&gt;"></span>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := md.html(tc.in)
			if m := unsafeIn(got); m != "" {
				t.Errorf("unsafe %q in %s", m, got)
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("got %s\nwant it to contain %s", got, tc.want)
			}
		})
	}
}

func TestMarkdownRendersTheUsualThings(t *testing.T) {
	md := newMarkdown()
	got := md.html("## Title\n\n- one\n- two\n\n**bold** `code` ~~gone~~\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```go\nfunc main() {}\n```\n")
	for _, want := range []string{"<h2>Title</h2>", "<li>one</li>", "<strong>bold</strong>", "<code>code</code>", "<del>gone</del>",
		"<td>1</td>", `<span class="kd">func</span>`, `<button type="button" class="copy" aria-label="Copy code"></button>`} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in\n%s", want, got)
		}
	}
}

func TestMarkdownBlocks(t *testing.T) {
	md := newMarkdown()
	blocks := md.blocks("> 💭 Let me think\n> about it\n\nFirst.\n\n```py\nprint(1)\n")
	if len(blocks) != 3 {
		t.Fatalf("blocks = %q", blocks)
	}
	if !strings.HasPrefix(blocks[0], `<details class="reasoning"><summary>Thinking</summary>`) || !strings.Contains(blocks[0], "about it") {
		t.Errorf("reasoning block = %s", blocks[0])
	}
	if !strings.Contains(blocks[2], `<span class="nb">print</span>`) {
		t.Errorf("an unclosed fence is not highlighted: %s", blocks[2])
	}
	// A growing reply changes only its last block.
	a := md.blocks("One.\n\nTwo and")
	b := md.blocks("One.\n\nTwo and three.")
	if a[0] != b[0] || a[1] == b[1] {
		t.Errorf("blocks %q then %q", a, b)
	}
}

func FuzzMarkdownIsSafe(f *testing.F) {
	for _, s := range []string{
		"<script>alert(1)</script>", "[a](javascript:alert(1))", "![a](x onerror=alert(1))", "<a href=\"javascript:x\">x</a>",
		"```\n<script>\n```", "<details open ontoggle=alert(1)>", "[a](<javascript:alert(1)>)", "<<script>script>",
		"[a]: javascript:alert(1)\n\n[a]", "> 💭 <img src=x onerror=alert(1)>\n\nok", "| <b> | x |\n|---|---|\n| <i> | y |",
	} {
		f.Add(s)
	}
	md := newMarkdown()
	f.Fuzz(func(t *testing.T, s string) {
		for _, b := range md.blocks(s) {
			if m := unsafeIn(b); m != "" {
				t.Fatalf("unsafe %q in %s", m, b)
			}
		}
	})
}
