package conversation

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Redacted is what RedactSecret puts in place of a secret.
const Redacted = "[redacted]"

// escapedByte matches one percent-encoded byte.
var escapedByte = regexp.MustCompile(`%[0-9A-Fa-f]{2}`)

// RedactSecret replaces every occurrence of secret in text with Redacted: as it
// is, URL query-escaped (url.QueryEscape) and path-escaped (url.PathEscape), each
// escaped form with upper- or lower-case hex digits. Error texts echo request URLs
// in any of these forms, and a Telegram token is part of every Bot API URL. An
// empty secret leaves text as it is.
func RedactSecret(text, secret string) string {
	if secret == "" {
		return text
	}
	forms := []string{secret}
	for _, escaped := range []string{url.QueryEscape(secret), url.PathEscape(secret)} {
		lower := escapedByte.ReplaceAllStringFunc(escaped, strings.ToLower)
		forms = append(forms, escaped, lower)
	}
	// Longest first, so that no shorter form leaves part of a longer one behind.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	forms = slices.Compact(forms)
	for _, f := range forms {
		text = strings.ReplaceAll(text, f, Redacted)
	}
	return text
}

// ClipText cuts text to at most max bytes (at a character boundary), saying how
// much was left out: error texts may echo a whole response body, such as a
// gateway's HTML error page.
func ClipText(text string, max int) string {
	if len(text) <= max {
		return text
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d more bytes)", text[:cut], len(text)-cut)
}
