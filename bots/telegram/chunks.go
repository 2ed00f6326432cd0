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
func visibleLen(s string) int { return utf16Len(trimSpace(s)) }

// utf16Len is the length of s in UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// renderChunks renders a Markdown reply as the messages that show it: each at most
// limit long as Telegram counts, cut at a paragraph or line (a code block cut in two
// is closed and reopened). Chunks that show nothing are left out.
//
// A reasoning summary before the answer (conversation.ReasoningMark) is shown
// collapsed, in an expandable blockquote, at the top of the first message.
func renderChunks(md string, limit int) []rendered {
	md = cleanText(md)
	if summary, answer := conversation.SplitReasoning(md); summary != "" {
		return reasoningChunks(summary, answer, limit)
	}
	return cutChunks(md, limit, 0, renderMarkdown)
}

// reasoningChunks shows the summary collapsed, then the answer. The summary
// shares the first message with the start of the answer, whose messages are then
// all cut to the room the summary leaves (so a growing answer is cut at the same
// places while it streams); a summary longer than half a message has messages of
// its own.
func reasoningChunks(summary, answer string, limit int) []rendered {
	mark := conversation.ReasoningMark
	quote := collapsed(renderQuoted(summary), mark)
	if room := limit - visibleLen(quote.plain) - len("\n\n"); room >= limit/2 {
		parts := cutChunks(answer, room, 0, renderMarkdown)
		if len(parts) == 0 {
			return []rendered{quote}
		}
		parts[0] = rendered{html: quote.html + "\n\n" + parts[0].html, plain: quote.plain + "\n\n" + parts[0].plain}
		return parts
	}
	var out []rendered
	for i, part := range cutChunks(summary, limit-utf16Len(mark), 0, renderQuoted) {
		if i > 0 {
			mark = ""
		}
		out = append(out, collapsed(part, mark))
	}
	return append(out, cutChunks(answer, limit, 0, renderMarkdown)...)
}

// maxRecut bounds how often a chunk is cut again.
const maxRecut = 8

// cutChunks splits md with conversation.SplitMarkdown and renders the chunks with
// render. A
// chunk can come out longer than the text it was measured as part of: a link
// definition left in the next chunk no longer shortens "[text][ref]". Such a chunk
// is cut again on its own.
func cutChunks(md string, limit, depth int, render func(string) rendered) []rendered {
	fits := func(chunk string) bool {
		return maxVisibleLen(chunk) <= limit || visibleLen(render(chunk).plain) <= limit
	}
	var out []rendered
	for _, part := range conversation.SplitMarkdown(md, fits) {
		r := render(part)
		if visibleLen(r.plain) > limit && part != md && depth < maxRecut {
			out = append(out, cutChunks(part, limit, depth+1, render)...)
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
