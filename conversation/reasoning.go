package conversation

import (
	"fmt"
	"strings"
)

// ReasoningMark starts the first line of a reply's reasoning summary. The engine
// shows the summary as a Markdown quote before the answer; adapters that can
// collapse it (Telegram's expandable blockquote) find it with SplitReasoning.
// The summary is never stored in the history.
const ReasoningMark = "💭 "

// composeReasoning puts the reasoning summary, quoted, before the answer.
func composeReasoning(summary, answer string) string {
	summary = strings.TrimSpace(summary)
	if summary == "" {
		return answer
	}
	var b strings.Builder
	b.Grow(len(summary) + len(answer) + 16)
	for i, line := range strings.Split(summary, "\n") {
		b.WriteString(">")
		if i == 0 {
			b.WriteString(" " + ReasoningMark)
		} else if line != "" {
			b.WriteString(" ")
		}
		b.WriteString(line)
		b.WriteString("\n")
	}
	if answer == "" {
		return b.String()
	}
	b.WriteString("\n")
	b.WriteString(answer)
	return b.String()
}

// SplitReasoning splits a reply text into its reasoning summary (unquoted,
// without the mark) and the answer. A text without a summary is all answer.
func SplitReasoning(text string) (summary, answer string) {
	if !strings.HasPrefix(text, "> "+ReasoningMark) {
		return "", text
	}
	var lines []string
	rest := text
	for rest != "" {
		line, after, _ := strings.Cut(rest, "\n")
		if !strings.HasPrefix(line, ">") {
			break
		}
		lines = append(lines, strings.TrimPrefix(strings.TrimPrefix(line, ">"), " "))
		rest = after
	}
	lines[0] = strings.TrimPrefix(lines[0], ReasoningMark)
	return strings.Join(lines, "\n"), strings.TrimPrefix(rest, "\n")
}

// linkEscaper keeps a URL inside a Markdown <…> link destination.
var linkEscaper = strings.NewReplacer(" ", "%20", "<", "%3C", ">", "%3E", "\n", "")

// sourcesText is the list of a web search's sources, as Markdown links.
func sourcesText(sources []Source) string {
	if len(sources) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n\nSources:")
	for i, s := range sources {
		title := strings.TrimSpace(s.Title)
		if title == "" {
			title = s.URL
		}
		title = strings.NewReplacer("[", "(", "]", ")", "\n", " ").Replace(title)
		fmt.Fprintf(&b, "\n%d. [%s](<%s>)", i+1, title, linkEscaper.Replace(s.URL))
	}
	return b.String()
}
