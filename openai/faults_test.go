package openai_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
)

// rawAnswer is one answer of rawModel: a status, a content type and a body
// written as it is.
type rawAnswer struct {
	status int
	ctype  string
	body   string
}

// rawModel starts a server answering Chat Completions calls with answers, in order
// (the last one again once they run out), and returns a client for it and the
// count of calls.
func rawModel(t *testing.T, opt openai.Options, answers ...rawAnswer) (*openai.Client, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		a := answers[min(int(calls.Add(1))-1, len(answers)-1)]
		w.Header().Set("Content-Type", a.ctype)
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	opt.BaseURL, opt.APIKey, opt.Model = srv.URL+"/v1", secretKey, "gpt-5.4-mini"
	if opt.API == "" {
		opt.API = openai.APIChat // the bodies are Chat Completions chunks
	}
	if opt.BackoffBase == 0 {
		opt.BackoffBase = time.Millisecond
	}
	if opt.StallTimeout == 0 {
		opt.StallTimeout = 5 * time.Second
	}
	return openai.New(opt), &calls
}

// sse is a stream of data lines in OpenAI's chunk format: one chunk per token,
// the finish chunk, then [DONE].
func sse(tokens ...string) string {
	var b strings.Builder
	b.WriteString(`data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}` + "\n\n")
	for _, tok := range tokens {
		fmt.Fprintf(&b, `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":%q}}]}`+"\n\n", tok)
	}
	b.WriteString(`data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.String()
}

const eventStream = "text/event-stream"

// safeTexts are the texts a user may be shown for a failed call.
var safeTexts = []string{"try again", "openai.api_key", "openai.model", "billing", "/reset", "PROXY_TOKEN", "cancelled", "openai.base_url"}

// checkSafe fails the test unless err's user text is one short sentence or two
// from the client's list, without the key or anything from the answer.
func checkSafe(t *testing.T, err error) {
	t.Helper()
	text := conversation.UserText(err)
	ok := false
	for _, s := range safeTexts {
		ok = ok || strings.Contains(text, s)
	}
	if !ok || len(text) > 200 || strings.ContainsAny(text, "\n{}<>") {
		t.Errorf("user text %q is not one of the client's short notes", text)
	}
	if strings.Contains(text, secretKey) || strings.Contains(err.Error(), secretKey) {
		t.Errorf("the key leaked: %q / %v", text, err)
	}
}

// TestStreamSkipsLinesThatAreNotData: SSE comments, event and retry lines and
// CRLF endings do not disturb the reply.
func TestStreamSkipsLinesThatAreNotData(t *testing.T) {
	body := ": keep-alive comment\n\nevent: ping\ndata: " + sse("Hello", " there")[len("data: "):]
	body = strings.ReplaceAll(body, "data: [DONE]", ": still here\r\nretry: 100\r\ndata: [DONE]")
	c, _ := rawModel(t, openai.Options{MaxRetries: -1}, rawAnswer{200, eventStream, body})
	got, _, err := stream(t, c, "hi")
	if err != nil || got != "Hello there" {
		t.Errorf("got %q, %v; want the whole reply", got, err)
	}
}

// TestStreamWithBadDataLines: data lines that are not JSON or not chunks, a body
// that is not a stream, an empty one: the client returns the text so far and a
// short safe note, retrying only before the first token.
func TestStreamWithBadDataLines(t *testing.T) {
	start := sse("Hello", " world")
	start = start[:strings.Index(start, `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},`)]
	tests := []struct {
		name    string
		answers []rawAnswer
		partial string // the text delivered before the error
		calls   int32
	}{
		{"non-JSON data line mid-stream", []rawAnswer{{200, eventStream, start + "data: {not json\n\n"}}, "Hello world", 1},
		{"HTML in a data line mid-stream", []rawAnswer{{200, eventStream, start + "data: <html>502 Bad Gateway</html>\n\n"}}, "Hello world", 1},
		{"chunk of the wrong shape mid-stream", []rawAnswer{{200, eventStream, start + `data: {"choices":"none"}` + "\n\n"}}, "Hello world", 1},
		{"stream ends without finishing", []rawAnswer{{200, eventStream, start}}, "Hello world", 1},
		{"non-JSON data line first", []rawAnswer{{200, eventStream, "data: hello\n\n"}}, "", 3},
		{"a JSON completion instead of a stream", []rawAnswer{{200, "application/json",
			`{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"buffered"},"finish_reason":"stop"}]}`}}, "", 3},
		{"an HTML page with 200", []rawAnswer{{200, "text/html", "<html><body>Sign in to the Wi-Fi</body></html>"}}, "", 1},
		{"an empty answer", []rawAnswer{{200, eventStream, ""}}, "", 3},
		{"only [DONE]", []rawAnswer{{200, eventStream, "data: [DONE]\n\n"}}, "", 3},
		{"an error event with the key", []rawAnswer{{200, eventStream,
			`data: {"error":{"message":"Incorrect API key provided: ` + secretKey + `","type":"invalid_request_error","code":"invalid_api_key"}}` + "\n\n"}}, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, calls := rawModel(t, openai.Options{MaxRetries: 2}, tt.answers...)
			got, _, err := stream(t, c, "hi")
			if err == nil {
				t.Fatalf("no error; got %q", got)
			}
			if got != tt.partial {
				t.Errorf("delivered %q, want %q", got, tt.partial)
			}
			checkSafe(t, err)
			if n := calls.Load(); n > tt.calls {
				t.Errorf("%d calls, want at most %d (retries only before the first token)", n, tt.calls)
			}
		})
	}
}

// TestProxyErrorPagesAreRetried: a proxy's HTML error page (502, 503, 504) is
// retried like any 5xx.
func TestProxyErrorPagesAreRetried(t *testing.T) {
	for _, status := range []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			c, calls := rawModel(t, openai.Options{MaxRetries: 2},
				rawAnswer{status, "text/html", "<html><body><h1>" + http.StatusText(status) + "</h1>cloudflare</body></html>"},
				rawAnswer{200, eventStream, sse("fine", " now")})
			got, _, err := stream(t, c, "hi")
			if err != nil || got != "fine now" || calls.Load() != 2 {
				t.Errorf("got %q, %v after %d calls; want the second call's reply", got, err, calls.Load())
			}
		})
	}
}

// TestInvalidUTF8FromTheModel: raw invalid bytes in a chunk come out as valid
// UTF-8.
func TestInvalidUTF8FromTheModel(t *testing.T) {
	body := sse("caf\xe9", " ok")
	body = strings.Replace(body, `"caf\xe9"`, "\"caf\xe9\"", 1) // raw invalid bytes in the JSON string
	c, _ := rawModel(t, openai.Options{MaxRetries: -1}, rawAnswer{200, eventStream, body})
	got, _, err := stream(t, c, "hi")
	if err != nil || !utf8.ValidString(got) || !strings.HasSuffix(got, " ok") {
		t.Errorf("got %q, %v; want valid UTF-8 text", got, err)
	}
}

// FuzzStreamBody gives the client any body as a 200 event stream: it must
// return, without a panic, the text or a short safe note.
func FuzzStreamBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, body string) {
		c, _ := rawModel(t, openai.Options{MaxRetries: -1, StallTimeout: 2 * time.Second}, rawAnswer{200, eventStream, body})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := c.Stream(ctx, &conversation.ModelRequest{Messages: []conversation.Message{{Role: conversation.RoleUser, Content: "hi"}}}, conversation.ModelOutput{Text: func(string) {}})
		if err != nil {
			checkSafe(t, err)
		}
	})
}
