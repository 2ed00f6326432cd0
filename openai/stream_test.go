package openai

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/chatbot-dev/chatbot/conversation"
)

// keepRequest answers with a short Chat Completions stream and keeps the
// request, as a transport may for the stream's life.
type keepRequest struct{ req *http.Request }

func (k *keepRequest) RoundTrip(r *http.Request) (*http.Response, error) {
	k.req = r
	io.Copy(io.Discard, r.Body)
	body := `data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}` + "\n\n" +
		`data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n"
	return &http.Response{StatusCode: 200, Status: "200 OK", Request: r,
		Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: io.NopCloser(strings.NewReader(body))}, nil
}

// While the answer streams, the request's JSON is no longer held.
func TestRequestBodyIsReleasedOnceSent(t *testing.T) {
	rt := &keepRequest{}
	c := New(Options{BaseURL: "http://model.test/v1", APIKey: "k", Model: "m", API: APIChat,
		HTTPClient: &http.Client{Transport: rt}})
	held := -1
	_, err := c.Stream(context.Background(), &conversation.ModelRequest{
		Messages: []conversation.Message{{Role: conversation.RoleUser, Content: strings.Repeat("history ", 1000)}},
	}, conversation.ModelOutput{Text: func(string) {
		held = len(rt.req.Body.(*onceReader).rest)
		if _, err := rt.req.GetBody(); err == nil {
			t.Error("GetBody still gives the request's JSON while the answer streams")
		}
	}})
	if err != nil || held != 0 {
		t.Errorf("err %v; the request body holds %d bytes while the answer streams, want 0", err, held)
	}
}

// Stream calls share their URL and headers, which are the same for every
// call: a call in flight holds no copy of them. A client with a cookie jar
// (which adds to the headers) gives each call its own.
func TestStreamRequestsShareTheirConstantParts(t *testing.T) {
	for _, tt := range []struct {
		name   string
		jar    http.CookieJar
		shared bool
	}{{"no jar", nil, true}, {"cookie jar", &noCookies{}, false}} {
		rt := &keepRequest{}
		c := New(Options{BaseURL: "http://model.test/v1", APIKey: "k", Model: "m", API: APIChat,
			HTTPClient: &http.Client{Transport: rt, Jar: tt.jar}})
		var reqs []*http.Request
		for range 2 {
			if _, err := c.Stream(context.Background(), &conversation.ModelRequest{}, conversation.ModelOutput{Text: func(string) {}}); err != nil {
				t.Fatal(err)
			}
			reqs = append(reqs, rt.req)
		}
		if got := reqs[0].Header.Get("Authorization"); got != "Bearer k" || reqs[0].URL.String() != "http://model.test/v1/chat/completions" {
			t.Errorf("%s: request to %s with Authorization %q", tt.name, reqs[0].URL, got)
		}
		sameURL := reqs[0].URL == reqs[1].URL
		sameHeader := reflect.ValueOf(reqs[0].Header).UnsafePointer() == reflect.ValueOf(reqs[1].Header).UnsafePointer()
		if !sameURL || sameHeader != tt.shared {
			t.Errorf("%s: same URL %v, same headers %v; want true, %v", tt.name, sameURL, sameHeader, tt.shared)
		}
	}
}

// noCookies is a cookie jar without cookies.
type noCookies struct{}

func (noCookies) SetCookies(*url.URL, []*http.Cookie) {}
func (noCookies) Cookies(*url.URL) []*http.Cookie     { return nil }
