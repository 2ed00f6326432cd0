package telegram

import (
	"bufio"
	"bytes"
	"fmt"
	stdhtml "html"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	gmhtml "github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/text"
)

// markdown is the Markdown parser: CommonMark with GitHub's ~~strikethrough~~.
// goldmark parsers are safe for concurrent use and this one is never reconfigured.
var markdown = goldmark.New(goldmark.WithExtensions(extension.Strikethrough)).Parser()

// rendered is one message's text: Telegram HTML and the visible text it shows,
// and the buttons under it, if any.
type rendered struct {
	html     string
	plain    string
	keyboard *inlineKeyboard
}

// renderMarkdown renders Markdown as Telegram HTML by walking goldmark's syntax
// tree: bold, italic, strike, inline code, code blocks with their language, links,
// lists as "• " and "1. " lines, quotes and headings (as bold). Every construct the
// tree holds is closed, so a prefix of a streaming reply renders as valid HTML too.
// Only & < > are escaped in text, and " in attributes.
func renderMarkdown(md string) rendered { return render(md, false) }

// renderQuoted renders Markdown that will stand inside a blockquote: quotes in it
// are shown as their text, since Telegram does not nest them.
func renderQuoted(md string) rendered { return render(md, true) }

func render(md string, quoted bool) rendered {
	src := []byte(cleanText(md))
	doc := markdown.Parse(text.NewReader(src))
	r := &htmlRenderer{src: src, quoted: quoted}
	r.blocks(doc, "\n\n")
	return rendered{html: r.html.String(), plain: r.plain.String()}
}

// collapsed puts a rendering inside an expandable blockquote, which Telegram
// shows collapsed to its first lines until tapped; mark goes first.
func collapsed(r rendered, mark string) rendered {
	return rendered{html: "<blockquote expandable>" + escapeHTML(mark) + r.html + "</blockquote>", plain: mark + r.plain}
}

// cleanText makes md valid UTF-8 without the control characters Telegram drops.
func cleanText(md string) string {
	md = strings.ToValidUTF8(md, "\uFFFD")
	md = strings.ReplaceAll(md, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || !unicode.IsControl(r) {
			return r
		}
		return -1
	}, md)
}

// htmlRenderer writes the HTML and the visible text side by side.
type htmlRenderer struct {
	src    []byte
	html   strings.Builder
	plain  strings.Builder
	lists  int  // list nesting depth
	quoted bool // inside a blockquote (Telegram does not nest them)
	linked bool // inside a link (Telegram puts no code or link in a link)
}

// text writes visible text.
func (r *htmlRenderer) text(s string) {
	r.plain.WriteString(s)
	r.html.WriteString(escapeHTML(s))
}

func (r *htmlRenderer) tag(s string) { r.html.WriteString(s) }

// atLineStart reports whether the visible text so far ends a line.
func (r *htmlRenderer) atLineStart() bool {
	return r.plain.Len() == 0 || strings.HasSuffix(r.plain.String(), "\n")
}

// blocks renders n's children, sep between each two.
func (r *htmlRenderer) blocks(n ast.Node, sep string) {
	first := true
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		if !first {
			r.text(sep)
		}
		first = false
		r.block(c)
	}
}

func (r *htmlRenderer) block(n ast.Node) {
	switch n := n.(type) {
	case *ast.Paragraph, *ast.TextBlock:
		r.inlines(n)
	case *ast.Heading:
		r.tag("<b>")
		r.inlines(n)
		r.tag("</b>")
	case *ast.ThematicBreak:
		r.text("———")
	case *ast.FencedCodeBlock:
		r.codeBlock(n, string(n.Language(r.src)))
	case *ast.CodeBlock:
		r.codeBlock(n, "")
	case *ast.Blockquote:
		r.quote(n)
	case *ast.List:
		r.list(n)
	case *ast.HTMLBlock:
		var b strings.Builder
		writeLines(&b, n.Lines(), r.src)
		if n.HasClosure() {
			b.Write(n.ClosureLine.Value(r.src))
		}
		r.text(strings.TrimRight(b.String(), "\n"))
	default:
		if n.Type() == ast.TypeInline {
			r.inline(n)
			return
		}
		r.blocks(n, "\n\n")
	}
}

func writeLines(b *strings.Builder, lines *text.Segments, src []byte) {
	for i := range lines.Len() {
		seg := lines.At(i)
		b.Write(seg.Value(src))
	}
}

func (r *htmlRenderer) codeBlock(n ast.Node, lang string) {
	var b strings.Builder
	writeLines(&b, n.Lines(), r.src)
	// Telegram shows a tab as one space: indent with spaces instead.
	code := strings.ReplaceAll(strings.TrimRight(b.String(), "\n"), "\t", "    ")
	lang = codeLanguage(lang)
	if lang == "" || r.linked {
		r.tag("<pre>")
		r.text(code)
		r.tag("</pre>")
		return
	}
	r.tag(`<pre><code class="language-` + lang + `">`)
	r.text(code)
	r.tag("</code></pre>")
}

// codeLanguage keeps a fence's language if it is a plain name ("go", "c++", "objective-c").
func codeLanguage(info string) string {
	lang, _, _ := strings.Cut(strings.TrimSpace(info), " ")
	if len(lang) > 32 {
		return ""
	}
	for _, c := range lang {
		if !(c < utf8.RuneSelf && (unicode.IsLetter(c) || unicode.IsDigit(c) || strings.ContainsRune("+#._-", c))) {
			return ""
		}
	}
	return lang
}

func (r *htmlRenderer) quote(n *ast.Blockquote) {
	if r.quoted {
		r.blocks(n, "\n\n")
		return
	}
	r.quoted = true
	r.tag("<blockquote>")
	r.blocks(n, "\n\n")
	r.tag("</blockquote>")
	r.quoted = false
}

func (r *htmlRenderer) list(l *ast.List) {
	num := l.Start
	indent := strings.Repeat("  ", r.lists)
	r.lists++
	for item := l.FirstChild(); item != nil; item = item.NextSibling() {
		if item != l.FirstChild() {
			r.text("\n")
		}
		marker := "• "
		if l.IsOrdered() {
			marker = fmt.Sprintf("%d. ", num)
			num++
		}
		if item.FirstChild() == nil {
			marker = strings.TrimSuffix(marker, " ") // an empty item
		}
		if r.atLineStart() {
			r.text(indent + marker)
		} else {
			r.text(marker) // "- - x": an outer marker starts the line
		}
		r.blocks(item, "\n")
	}
	r.lists--
}

func (r *htmlRenderer) inlines(n ast.Node) {
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		r.inline(c)
	}
}

func (r *htmlRenderer) inline(n ast.Node) {
	switch n := n.(type) {
	case *ast.Text:
		r.textNode(n)
	case *ast.String:
		if n.IsCode() || n.IsRaw() {
			r.text(string(n.Value))
		} else {
			r.text(unescape(n.Value))
		}
	case *ast.CodeSpan:
		r.codeSpan(n)
	case *ast.Emphasis:
		tag := "i"
		if n.Level >= 2 {
			tag = "b"
		}
		r.wrap(n, tag)
	case *east.Strikethrough:
		r.wrap(n, "s")
	case *ast.Link:
		r.link(n, string(n.Destination))
	case *ast.Image:
		r.link(n, string(n.Destination))
	case *ast.AutoLink:
		r.text(string(n.Label(r.src)))
	case *ast.RawHTML:
		r.rawHTML(n)
	default:
		r.inlines(n)
	}
}

func (r *htmlRenderer) textNode(n *ast.Text) {
	v := n.Segment.Value(r.src)
	if n.IsRaw() {
		r.text(string(v))
	} else {
		r.text(unescape(v))
	}
	if n.SoftLineBreak() || n.HardLineBreak() {
		r.text("\n")
	}
}

func (r *htmlRenderer) wrap(n ast.Node, tag string) {
	r.tag("<" + tag + ">")
	r.inlines(n)
	r.tag("</" + tag + ">")
}

func (r *htmlRenderer) codeSpan(n *ast.CodeSpan) {
	var b strings.Builder
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		if t, ok := c.(*ast.Text); ok {
			b.WriteString(strings.ReplaceAll(string(t.Segment.Value(r.src)), "\n", " "))
		}
	}
	if r.linked {
		r.text(b.String())
		return
	}
	r.tag("<code>")
	r.text(b.String())
	r.tag("</code>")
}

func (r *htmlRenderer) link(n ast.Node, dest string) {
	href, ok := linkURL(dest)
	if !ok || r.linked {
		r.inlines(n)
		return
	}
	r.linked = true
	r.tag(`<a href="` + escapeAttr(href) + `">`)
	r.inlines(n)
	r.tag("</a>")
	r.linked = false
}

// linkURL accepts the absolute links Telegram makes clickable.
func linkURL(dest string) (string, bool) {
	dest = unescape([]byte(dest))
	u, err := url.Parse(dest)
	if err != nil {
		return "", false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return dest, u.Host != ""
	case "tg", "mailto":
		return dest, u.Opaque != "" || u.Host != ""
	}
	return "", false
}

// rawHTML shows inline HTML as the text it is, but for line breaks.
func (r *htmlRenderer) rawHTML(n *ast.RawHTML) {
	var b strings.Builder
	for i := range n.Segments.Len() {
		seg := n.Segments.At(i)
		b.Write(seg.Value(r.src))
	}
	s := b.String()
	switch strings.ToLower(strings.ReplaceAll(s, " ", "")) {
	case "<br>", "<br/>":
		r.text("\n")
	default:
		r.text(s)
	}
}

// unescape resolves Markdown backslash escapes and entity references in v the
// way goldmark's own HTML renderer does.
func unescape(v []byte) string {
	if bytes.IndexAny(v, "\\&\x00") < 0 {
		return string(v) // nothing to resolve
	}
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	gmhtml.DefaultWriter.Write(w, v)
	_ = w.Flush()
	return stdhtml.UnescapeString(buf.String())
}

var (
	htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	attrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
)

// escapeHTML escapes text for Telegram's HTML: & < > only.
func escapeHTML(s string) string { return htmlEscaper.Replace(s) }

func escapeAttr(s string) string { return attrEscaper.Replace(s) }
