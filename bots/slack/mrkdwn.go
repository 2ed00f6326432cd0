package slack

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/text"
)

// markdown parses the model's Markdown: CommonMark plus GFM strikethrough, tables
// and task lists. It holds no state between calls.
var markdown = goldmark.New(goldmark.WithExtensions(
	extension.Strikethrough, extension.Table, extension.TaskList))

// Marks used where mrkdwn has no equivalent.
const (
	ruleLine      = "──────────"
	backtickTwin  = "ˋ" // stands in for ` where a literal backtick would break code
	bulletTop     = "•"
	bulletNested  = "◦"
	checkedMark   = "☑"
	uncheckedMark = "☐"
)

// toMrkdwn renders Markdown as Slack mrkdwn: *bold*, _italic_, ~strike~, `code`,
// ``` blocks, <url|text> links, bulleted and numbered lists, headings in bold and
// > quotes, with &, < and > escaped everywhere else. It walks goldmark's syntax
// tree, so any prefix of a reply renders to balanced markup.
func toMrkdwn(src string) string {
	source := []byte(src)
	doc := markdown.Parser().Parse(text.NewReader(source))
	w := &mrkdwnWriter{src: source}
	return strings.Trim(w.blocks(doc, 0), "\n")
}

// mrkdwnWriter renders one document.
type mrkdwnWriter struct {
	src []byte
}

// blocks renders the block children of n, separated by blank lines (single line
// breaks in tight lists). depth is the list nesting depth.
func (w *mrkdwnWriter) blocks(n ast.Node, depth int) string {
	sep := "\n\n"
	if l, ok := n.Parent().(*ast.List); ok && l.IsTight {
		sep = "\n"
	}
	var b strings.Builder
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		s := w.block(c, depth)
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			// A list right under its paragraph ("Sources:\n1. …") stays there.
			_, list := c.(*ast.List)
			_, para := c.PreviousSibling().(*ast.Paragraph)
			if list && para && !c.HasBlankPreviousLines() {
				b.WriteString("\n")
			} else {
				b.WriteString(sep)
			}
		}
		b.WriteString(s)
	}
	return b.String()
}

// block renders one block node.
func (w *mrkdwnWriter) block(n ast.Node, depth int) string {
	switch n := n.(type) {
	case *ast.Paragraph, *ast.TextBlock:
		return w.inlines(n, false)
	case *ast.Heading:
		return wrap("*", w.inlines(n, true))
	case *ast.ThematicBreak:
		return ruleLine
	case *ast.CodeBlock, *ast.FencedCodeBlock:
		return codeBlock(w.lines(n))
	case *ast.HTMLBlock:
		return strings.TrimRight(escapeText(w.lines(n)), "\n")
	case *ast.Blockquote:
		return quote(w.blocks(n, depth))
	case *ast.List:
		return w.list(n, depth)
	case *east.Table:
		return w.table(n)
	default:
		return w.blocks(n, depth)
	}
}

// lines returns the raw source lines of a block, closing line included for HTML.
func (w *mrkdwnWriter) lines(n ast.Node) string {
	var b bytes.Buffer
	segs := n.Lines()
	for i := range segs.Len() {
		seg := segs.At(i)
		b.Write(seg.Value(w.src))
	}
	if h, ok := n.(*ast.HTMLBlock); ok && h.HasClosure() {
		b.Write(h.ClosureLine.Value(w.src))
	}
	return b.String()
}

// codeBlock fences code, escaping it and keeping it from closing its own fence.
func codeBlock(code string) string {
	code = strings.ReplaceAll(escapeCode(code), "```", strings.Repeat(backtickTwin, 3))
	if code != "" && !strings.HasSuffix(code, "\n") {
		code += "\n"
	}
	return "```\n" + code + "```"
}

// quote prefixes every line with "> ".
func quote(s string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight("> "+l, " ")
	}
	return strings.Join(lines, "\n")
}

// list renders a list's items with bullets or numbers, nested lists indented.
func (w *mrkdwnWriter) list(l *ast.List, depth int) string {
	sep := "\n"
	if !l.IsTight {
		sep = "\n\n"
	}
	indent := strings.Repeat("    ", depth)
	var items []string
	num := l.Start
	for item := l.FirstChild(); item != nil; item = item.NextSibling() {
		marker := bulletTop + " "
		if depth > 0 {
			marker = bulletNested + " "
		}
		if l.IsOrdered() {
			marker = strconv.Itoa(num) + ". "
			num++
		}
		// Continuation lines stay unindented: code and quotes must start their
		// lines; nested lists indent themselves.
		body := strings.TrimLeft(w.blocks(item, depth+1), " ")
		if strings.HasPrefix(body, ">") {
			body = "\n" + body // a quote must start its line
		}
		items = append(items, indent+strings.TrimRight(marker, " ")+sep0(body)+body)
	}
	return strings.Join(items, sep)
}

// sep0 is the space between a list marker and the item's body.
func sep0(body string) string {
	if strings.HasPrefix(body, "\n") || body == "" {
		return ""
	}
	return " "
}

// table renders a GFM table as aligned plain text in a code block, where mrkdwn
// has no tables.
func (w *mrkdwnWriter) table(t *east.Table) string {
	var rows [][]string
	var widths []int
	for row := t.FirstChild(); row != nil; row = row.NextSibling() {
		var cells []string
		for cell := row.FirstChild(); cell != nil; cell = cell.NextSibling() {
			c := w.inlines(cell, true)
			c = strings.ReplaceAll(c, "\n", " ")
			if len(widths) <= len(cells) {
				widths = append(widths, 0)
			}
			widths[len(cells)] = max(widths[len(cells)], len([]rune(c)))
			cells = append(cells, c)
		}
		rows = append(rows, cells)
	}
	var b strings.Builder
	for i, cells := range rows {
		for j, c := range cells {
			if j > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(c)
			if j < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[j]-len([]rune(c))))
			}
		}
		b.WriteString("\n")
		if i == 0 && len(rows) > 1 {
			for j, wd := range widths {
				if j > 0 {
					b.WriteString("-+-")
				}
				b.WriteString(strings.Repeat("-", wd))
			}
			b.WriteString("\n")
		}
	}
	// The cells are already escaped; only keep them from closing the fence.
	body := strings.ReplaceAll(b.String(), "```", strings.Repeat(backtickTwin, 3))
	return "```\n" + body + "```"
}

// inlines renders the inline children of n. plain drops the markup (headings,
// table cells, link labels), keeping the text.
func (w *mrkdwnWriter) inlines(n ast.Node, plain bool) string {
	var b strings.Builder
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		b.WriteString(w.inline(c, plain))
	}
	return b.String()
}

// inline renders one inline node.
func (w *mrkdwnWriter) inline(n ast.Node, plain bool) string {
	switch n := n.(type) {
	case *ast.Text:
		s := escapeText(string(n.Value(w.src)))
		if n.SoftLineBreak() || n.HardLineBreak() {
			s += "\n"
		}
		return s
	case *ast.String:
		return escapeText(string(n.Value))
	case *ast.CodeSpan:
		code := strings.ReplaceAll(escapeCode(w.rawText(n)), "`", backtickTwin)
		if plain || strings.TrimSpace(code) == "" {
			return code
		}
		return "`" + code + "`"
	case *ast.Emphasis:
		mark := "_"
		if n.Level >= 2 {
			mark = "*"
		}
		return w.styled(n, mark, plain)
	case *east.Strikethrough:
		return w.styled(n, "~", plain)
	case *ast.Link:
		return link(string(n.Destination), w.inlines(n, true), plain)
	case *ast.Image:
		return link(string(n.Destination), w.inlines(n, true), plain)
	case *ast.AutoLink:
		url := string(n.URL(w.src))
		if n.AutoLinkType == ast.AutoLinkEmail {
			url = "mailto:" + url
		}
		return link(url, escapeText(string(n.Label(w.src))), plain)
	case *ast.RawHTML:
		var b strings.Builder
		for i := range n.Segments.Len() {
			seg := n.Segments.At(i)
			b.Write(seg.Value(w.src))
		}
		return escapeText(b.String())
	case *east.TaskCheckBox:
		if n.IsChecked {
			return checkedMark + " "
		}
		return uncheckedMark + " "
	default:
		return w.inlines(n, plain)
	}
}

// styled wraps n's content in mark, unless plain or the content is blank.
func (w *mrkdwnWriter) styled(n ast.Node, mark string, plain bool) string {
	inner := w.inlines(n, plain)
	if plain {
		return inner
	}
	return wrap(mark, inner)
}

// wrap puts mark around s, outside any leading or trailing spaces, which would
// keep Slack from seeing the markup.
func wrap(mark, s string) string {
	core := strings.TrimSpace(s)
	if core == "" {
		return s
	}
	start := strings.Index(s, core)
	return s[:start] + mark + core + mark + s[start+len(core):]
}

// rawText concatenates the text below n without escaping or markup.
func (w *mrkdwnWriter) rawText(n ast.Node) string {
	var b strings.Builder
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		switch c := c.(type) {
		case *ast.Text:
			b.Write(c.Value(w.src))
			if c.SoftLineBreak() || c.HardLineBreak() {
				b.WriteByte(' ')
			}
		case *ast.String:
			b.Write(c.Value)
		default:
			b.WriteString(w.rawText(c))
		}
	}
	return b.String()
}

// link renders a link as <url|label>, or the label alone when the destination is
// not a web or mail address. label is already rendered.
func link(dest, label string, plain bool) string {
	dest = strings.TrimSpace(dest)
	if !linkable(dest) {
		if label == "" {
			return escapeText(dest)
		}
		return label
	}
	url := escapeURL(dest)
	label = strings.ReplaceAll(label, "\n", " ")
	if plain {
		if label == "" || label == escapeText(dest) {
			return escapeText(dest)
		}
		return label + " (" + escapeText(dest) + ")"
	}
	if label == "" {
		return "<" + url + ">"
	}
	return "<" + url + "|" + label + ">"
}

// linkable reports whether dest is a URL Slack links: http(s) or mailto.
func linkable(dest string) bool {
	l := strings.ToLower(dest)
	for _, p := range []string{"http://", "https://", "mailto:"} {
		if strings.HasPrefix(l, p) && len(dest) > len(p) {
			return true
		}
	}
	return false
}

// escapeURL makes dest safe inside <…|…>: & < > escaped, | and spaces encoded.
func escapeURL(dest string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "%3C", ">", "%3E", "|", "%7C", " ", "%20",
		"\n", "", "\r", "", "\t", "%09")
	return r.Replace(dest)
}

// escapeText escapes Slack's control characters and keeps runs of backticks from
// opening a code block.
func escapeText(s string) string {
	return strings.ReplaceAll(escapeCode(s), "```", strings.Repeat(backtickTwin, 3))
}

// escapeCode escapes &, < and >, the three characters Slack always needs escaped.
func escapeCode(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
