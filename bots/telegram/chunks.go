package telegram

import (
	"strings"
	"unicode/utf16"

	"github.com/chatbot-dev/chatbot/conversation"
)

// maxMessageLen is Telegram's limit on a message: 4096 characters of the visible
// text (after entity parsing, without surrounding white space), counted in UTF-16
// code units.
const maxMessageLen = 4096

// trimSpace removes the white space Telegram strips from both ends of a message.
func trimSpace(s string) string { return strings.Trim(s, " \t\r\n") }

// visibleLen is the length Telegram measures for a message whose visible text is s.
func visibleLen(s string) int {
	n := 0
	for _, r := range trimSpace(s) {
		n += utf16.RuneLen(r)
	}
	return n
}

// renderChunks renders a Markdown reply as the messages that show it: each at most
// limit long as Telegram counts, cut at a paragraph or line (a code block cut in two
// is closed and reopened). Chunks that show nothing are left out.
func renderChunks(md string, limit int) []rendered {
	return cutChunks(cleanText(md), limit, 0)
}

// maxRecut bounds how often a chunk is cut again.
const maxRecut = 8

// cutChunks splits md with conversation.SplitMarkdown and renders the chunks. A
// chunk can come out longer than the text it was measured as part of: a link
// definition left in the next chunk no longer shortens "[text][ref]". Such a chunk
// is cut again on its own.
func cutChunks(md string, limit, depth int) []rendered {
	fits := func(chunk string) bool {
		return maxVisibleLen(chunk) <= limit || visibleLen(renderMarkdown(chunk).plain) <= limit
	}
	var out []rendered
	for _, part := range conversation.SplitMarkdown(md, fits) {
		r := renderMarkdown(part)
		if visibleLen(r.plain) > limit && part != md && depth < maxRecut {
			out = append(out, cutChunks(part, limit, depth+1)...)
			continue
		}
		if trimSpace(r.plain) != "" {
			out = append(out, r)
		}
	}
	return out
}

// maxVisibleLen bounds the length of md's rendering without rendering it, so that
// most of the splitter's questions are answered at once. A rendering is never
// longer than its source but for: a tab in code (four spaces), a line starting a
// block after another without a blank line ("\n\n" for "\n"), list markers ("*"
// shown as "• ") and list numbers (items numbered "1." throughout are shown 1, 2,
// 3...).
func maxVisibleLen(md string) int {
	n := 0
	for _, r := range md {
		n += utf16.RuneLen(r)
	}
	n += 3 * strings.Count(md, "\t")
	for line := range strings.Lines(md) {
		n++
		switch t := strings.TrimLeft(line, " \t>"); {
		case t == "":
		case t[0] >= '0' && t[0] <= '9':
			n += 10
		case t[0] == '-' || t[0] == '+' || t[0] == '*':
			n++
		}
	}
	return n
}

// plainChunks shows text as it is, without formatting, cut to fit.
func plainChunks(text string, limit int) []rendered {
	var out []rendered
	for _, part := range conversation.SplitMarkdown(cleanText(text), func(c string) bool { return visibleLen(c) <= limit }) {
		if trimSpace(part) != "" {
			out = append(out, rendered{html: escapeHTML(part), plain: part})
		}
	}
	return out
}
