package telegram_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chatbot-dev/chatbot/bots/telegram"
)

// echoPage answers setMyCommands as a filtering proxy's block page does: HTML
// that echoes the request URL, percent-encoded, in a long page.
type echoPage struct{ next http.RoundTripper }

func (e echoPage) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/setMyCommands") {
		return e.next.RoundTrip(r)
	}
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	u := r.URL.String()
	page := "<html><body><h1>Access denied</h1><p>Blocked: " + url.QueryEscape(u) +
		` <a href="/unblock?url=` + lowerHex(url.QueryEscape(u)) + `">ask</a></p>` +
		strings.Repeat("<p>padding</p>", 1000) + "</body></html>"
	return &http.Response{StatusCode: http.StatusForbidden, Status: "403 Forbidden", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"text/html"}}, Body: io.NopCloser(strings.NewReader(page)),
		ContentLength: int64(len(page)), Request: r}, nil
}

// lowerHex writes the hex digits of s's percent-escapes in lower case.
func lowerHex(s string) string {
	return regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(s, strings.ToLower)
}

// TestErrorPageEchoingTheTokenIsRedacted: an error answer that echoes the Bot
// API URL percent-encoded (upper- or lower-case) leaves no form of the token in
// the logs, and the page is cut short.
func TestErrorPageEchoingTheTokenIsRedacted(t *testing.T) {
	h := newHarness(t, adapter(func(o *telegram.Options) {
		o.HTTPClient = &http.Client{Transport: echoPage{next: http.DefaultTransport}}
	}))
	h.waitFor("the set commands warning", func() bool { return strings.Contains(h.logs.String(), "telegram: set commands") })
	logs := h.logs.String()
	escaped := url.QueryEscape(h.tg.Token)
	for _, form := range []string{h.tg.Token, escaped, lowerHex(escaped), url.PathEscape(h.tg.Token)} {
		if strings.Contains(logs, form) {
			t.Errorf("the logs hold the token as %q", form)
		}
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "telegram: set commands") {
			if !strings.Contains(line, "[redacted]") || !strings.Contains(line, "more bytes") || len(line) > 1000 {
				t.Errorf("want the token redacted and the page cut short, got %d bytes: %s", len(line), line)
			}
		}
	}
}
