package web

import (
	"bytes"
	"fmt"
	"html"
	"net/url"
	"strings"

	"github.com/alecthomas/chroma/v2"
	chromahtml "github.com/alecthomas/chroma/v2/formatters/html"
	"github.com/alecthomas/chroma/v2/lexers"
	"github.com/alecthomas/chroma/v2/styles"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer"
	gmhtml "github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"

	"github.com/chatbot-dev/chatbot/conversation"
)

// markdown renders the model's Markdown as HTML that is safe to put in the
// page: raw HTML is shown as text, links go only to http, https and mailto
// URLs (and open in a new tab without a referrer), images become links (the
// page loads no image from elsewhere), and code blocks are highlighted with
// CSS classes (the CSP allows no inline style).
type markdown struct {
	md goldmark.Markdown
}

func newMarkdown() *markdown {
	md := goldmark.New(
		goldmark.WithExtensions(extension.GFM),
		goldmark.WithRendererOptions(
			renderer.WithNodeRenderers(util.Prioritized(safeRenderer{}, 100)),
		),
	)
	return &markdown{md: md}
}

// blocks renders text as a list of top-level blocks, each a piece of HTML. A
// streaming reply grows at its end, so a client that has the previous
// rendering needs only the blocks from the first one that changed.
func (m *markdown) blocks(text string) []string {
	summary, answer := conversation.SplitReasoning(text)
	var out []string
	if summary != "" {
		var b strings.Builder
		b.WriteString(`<details class="reasoning"><summary>Thinking</summary>`)
		for _, blk := range m.render(summary) {
			b.WriteString(blk)
		}
		b.WriteString(`</details>`)
		out = append(out, b.String())
	}
	return append(out, m.render(answer)...)
}

// render renders each top-level block of src on its own.
func (m *markdown) render(src string) []string {
	source := []byte(src)
	doc := m.md.Parser().Parse(text.NewReader(source))
	var out []string
	var buf bytes.Buffer
	for n := doc.FirstChild(); n != nil; n = n.NextSibling() {
		buf.Reset()
		if err := m.md.Renderer().Render(&buf, source, n); err != nil {
			buf.Reset()
			buf.WriteString("<p>" + html.EscapeString(string(n.Text(source))) + "</p>")
		}
		if buf.Len() > 0 {
			out = append(out, buf.String())
		}
	}
	return out
}

// html renders text (a whole reply) as one piece of HTML.
func (m *markdown) html(text string) string {
	return strings.Join(m.blocks(text), "")
}

// safeRenderer replaces goldmark's renderers of the nodes that could carry
// markup or a script: raw HTML, links, images; and of code blocks, which it
// highlights.
type safeRenderer struct{}

func (safeRenderer) RegisterFuncs(reg renderer.NodeRendererFuncRegisterer) {
	reg.Register(ast.KindRawHTML, renderRawHTML)
	reg.Register(ast.KindHTMLBlock, renderHTMLBlock)
	reg.Register(ast.KindLink, renderLink)
	reg.Register(ast.KindAutoLink, renderAutoLink)
	reg.Register(ast.KindImage, renderImage)
	reg.Register(ast.KindFencedCodeBlock, renderCode)
	reg.Register(ast.KindCodeBlock, renderCode)
}

// renderRawHTML shows inline HTML as the text it is.
func renderRawHTML(w util.BufWriter, source []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkSkipChildren, nil
	}
	n := node.(*ast.RawHTML)
	for i := 0; i < n.Segments.Len(); i++ {
		seg := n.Segments.At(i)
		w.WriteString(html.EscapeString(string(seg.Value(source))))
	}
	return ast.WalkSkipChildren, nil
}

// renderHTMLBlock shows an HTML block as a paragraph of its text.
func renderHTMLBlock(w util.BufWriter, source []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkContinue, nil
	}
	n := node.(*ast.HTMLBlock)
	var b strings.Builder
	for i := 0; i < n.Lines().Len(); i++ {
		line := n.Lines().At(i)
		b.Write(line.Value(source))
	}
	if n.HasClosure() {
		b.Write(n.ClosureLine.Value(source))
	}
	w.WriteString(`<p class="raw">`)
	w.WriteString(html.EscapeString(strings.TrimRight(b.String(), "\n")))
	w.WriteString("</p>\n")
	return ast.WalkContinue, nil
}

// linkAttrs open a model's links in a new tab, without telling the page there
// where the user came from.
const linkAttrs = ` target="_blank" rel="noopener noreferrer nofollow"`

func renderLink(w util.BufWriter, source []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	n := node.(*ast.Link)
	href, ok := safeURL(string(n.Destination))
	if !ok {
		// A link to a script or an unknown scheme keeps its text only.
		return ast.WalkContinue, nil
	}
	if !entering {
		w.WriteString("</a>")
		return ast.WalkContinue, nil
	}
	w.WriteString(`<a href="` + html.EscapeString(href) + `"` + linkAttrs)
	if n.Title != nil {
		w.WriteString(` title="`)
		gmhtml.DefaultWriter.Write(w, n.Title) // backslash escapes and entities resolved, then escaped
		w.WriteString(`"`)
	}
	w.WriteString(">")
	return ast.WalkContinue, nil
}

func renderAutoLink(w util.BufWriter, source []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkContinue, nil
	}
	n := node.(*ast.AutoLink)
	label := string(n.Label(source))
	dest := string(n.URL(source))
	if n.AutoLinkType == ast.AutoLinkEmail && !strings.HasPrefix(strings.ToLower(dest), "mailto:") {
		dest = "mailto:" + dest
	}
	if href, ok := safeURL(dest); ok {
		w.WriteString(`<a href="` + html.EscapeString(href) + `"` + linkAttrs + ">" + html.EscapeString(label) + "</a>")
	} else {
		w.WriteString(html.EscapeString(label))
	}
	return ast.WalkContinue, nil
}

// renderImage turns an image into a link to it, its alt text as the label: the
// page shows no picture from elsewhere (the CSP would block it anyway, and it
// would tell that server who reads the reply).
func renderImage(w util.BufWriter, source []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	n := node.(*ast.Image)
	href, ok := safeURL(string(n.Destination))
	if entering {
		if ok {
			w.WriteString(`<a class="image-link" href="` + html.EscapeString(href) + `"` + linkAttrs + ">🖼 ")
		}
		if n.FirstChild() == nil {
			w.WriteString(html.EscapeString(href))
		}
		return ast.WalkContinue, nil
	}
	if ok {
		w.WriteString("</a>")
	}
	return ast.WalkContinue, nil
}

// safeURL returns u, trimmed, when it is an absolute http, https or mailto URL.
// Browsers drop tabs and newlines inside a URL and spaces and control
// characters around it, so those cannot hide a scheme from the check.
func safeURL(u string) (string, bool) {
	u = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, u)
	u = strings.TrimFunc(u, func(r rune) bool { return r <= ' ' })
	p, err := url.Parse(u)
	if err != nil {
		return "", false
	}
	switch strings.ToLower(p.Scheme) {
	case "http", "https":
		return u, p.Host != ""
	case "mailto":
		return u, true
	}
	return "", false
}

// Code highlighting: the light and dark styles, written as CSS classes.
var (
	codeFormatter = chromahtml.New(chromahtml.WithClasses(true), chromahtml.PreventSurroundingPre(true), chromahtml.TabWidth(4))
	codeStyle     = styles.Get("github")
	codeStyleDark = styles.Get("github-dark")
)

// renderCode renders a code block with its language, a copy button and
// highlighting. An unknown language is shown plain.
func renderCode(w util.BufWriter, source []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkSkipChildren, nil
	}
	var lang string
	if fc, ok := node.(*ast.FencedCodeBlock); ok && fc.Info != nil {
		lang = string(fc.Language(source))
	}
	var code strings.Builder
	lines := node.Lines()
	for i := 0; i < lines.Len(); i++ {
		seg := lines.At(i)
		code.Write(seg.Value(source))
	}
	// The label and the button's word come from the style sheet, so that the
	// message's text is the reply's text alone.
	w.WriteString(`<div class="code"><div class="code-bar"><span class="lang" data-lang="`)
	w.WriteString(html.EscapeString(lang))
	w.WriteString(`"></span><button type="button" class="copy" aria-label="Copy code"></button></div><pre class="chroma"><code>`)
	w.WriteString(highlight(lang, code.String()))
	w.WriteString("</code></pre></div>\n")
	return ast.WalkSkipChildren, nil
}

// highlight returns code as HTML, highlighted when its language is known.
func highlight(lang, code string) string {
	var lexer chroma.Lexer
	if lang != "" {
		lexer = lexers.Get(lang)
	}
	if lexer == nil {
		return html.EscapeString(code)
	}
	it, err := chroma.Coalesce(lexer).Tokenise(nil, code)
	if err != nil {
		return html.EscapeString(code)
	}
	var b strings.Builder
	if err := codeFormatter.Format(&b, codeStyle, it); err != nil {
		return html.EscapeString(code)
	}
	return b.String()
}

// codeCSS is the highlighting's style sheet: light, or dark when the system
// is dark (each in its own media query, so that no rule of one leaks into
// the other).
func codeCSS() []byte {
	var b bytes.Buffer
	for _, part := range []struct {
		media string
		style *chroma.Style
	}{{"not all and (prefers-color-scheme: dark)", codeStyle}, {"(prefers-color-scheme: dark)", codeStyleDark}} {
		b.WriteString("@media " + part.media + " {\n")
		if err := codeFormatter.WriteCSS(&b, part.style); err != nil {
			panic(fmt.Sprintf("chroma css: %v", err))
		}
		b.WriteString("}\n")
	}
	return b.Bytes()
}
