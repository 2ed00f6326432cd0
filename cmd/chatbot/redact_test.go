package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestCheckHidesATokenEchoedByAnErrorPage: an HTML page that echoes the Bot API
// URL with lower-case percent-escapes shows no part of the token, and is cut short.
func TestCheckHidesATokenEchoedByAnErrorPage(t *testing.T) {
	fake := countingFake(t)
	lowerHex := regexp.MustCompile(`%[0-9A-F]{2}`)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		echoed := lowerHex.ReplaceAllStringFunc(url.QueryEscape("https://api.telegram.org"+r.URL.Path), strings.ToLower)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, "<html><body>Blocked: <a href=\"/unblock?u=%s\">%s</a>%s</body></html>",
			echoed, echoed, strings.Repeat("<p>padding</p>", 500))
	}))
	defer page.Close()
	code, out, _ := runCheck(t, map[string]string{"BASE": fake.BaseURL(), "KEY": testOpenAIKey, "TG": testTGToken, "PLATFORM_URL": page.URL})
	if code != 1 || !strings.Contains(out, "✗ telegram") || !strings.Contains(out, "[redacted]") {
		t.Errorf("exit %d\n%s", code, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) > 600 {
			t.Errorf("a line of %d bytes: %s", len(line), line)
		}
	}
}
