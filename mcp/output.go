package mcp

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// resultText joins a tool result's text content, one block a line; other
// content (images, audio, resources) becomes a short note in brackets. A
// result with structured content only is given as its JSON.
func resultText(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		switch c := c.(type) {
		case *sdk.TextContent:
			b.WriteString(c.Text)
		case *sdk.ImageContent:
			fmt.Fprintf(&b, "[image: %s, %s, not shown]", orUnknown(c.MIMEType), size(len(c.Data)))
		case *sdk.AudioContent:
			fmt.Fprintf(&b, "[audio: %s, %s, not shown]", orUnknown(c.MIMEType), size(len(c.Data)))
		case *sdk.ResourceLink:
			fmt.Fprintf(&b, "[resource link: %s %s]", c.Name, c.URI)
		case *sdk.EmbeddedResource:
			r := c.Resource
			switch {
			case r == nil:
				b.WriteString("[empty resource]")
			case r.Blob != nil:
				fmt.Fprintf(&b, "[resource %s: %s, %s, not shown]", r.URI, orUnknown(r.MIMEType), size(len(r.Blob)))
			default:
				fmt.Fprintf(&b, "[resource %s]\n%s", r.URI, r.Text)
			}
		default:
			fmt.Fprintf(&b, "[%T content, not shown]", c)
		}
	}
	if b.Len() == 0 && res.StructuredContent != nil {
		if j, err := json.Marshal(res.StructuredContent); err == nil {
			b.Write(j)
		}
	}
	return b.String()
}

func orUnknown(mime string) string {
	if mime == "" {
		return "unknown type"
	}
	return mime
}

// size writes a byte count for people.
func size(n int) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}

// capText cuts s to at most max bytes at a rune boundary and says so, in the
// engine's words.
func capText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + fmt.Sprintf("\n[output cut at %d of %d bytes]", n, len(s))
}
