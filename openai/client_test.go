package openai_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

const secretKey = "sk-test-SECRET-0123456789"

func newClient(t *testing.T, fake *openaitest.Server, opt openai.Options) *openai.Client {
	t.Helper()
	opt.BaseURL = fake.BaseURL()
	opt.APIKey = secretKey
	if opt.Model == "" {
		opt.Model = "gpt-5.4-mini"
	}
	if opt.BackoffBase == 0 {
		opt.BackoffBase = time.Millisecond
	}
	return openai.New(opt)
}

func newFake(t *testing.T) *openaitest.Server {
	t.Helper()
	fake := openaitest.NewServer()
	fake.APIKey = secretKey
	t.Cleanup(fake.Close)
	return fake
}

func stream(t *testing.T, c *openai.Client, text string) (string, []string, error) {
	t.Helper()
	var deltas []string
	_, err := c.Stream(context.Background(), &conversation.ModelRequest{Messages: []conversation.Message{{Role: conversation.RoleUser, Content: text}}},
		conversation.ModelOutput{Text: func(d string) { deltas = append(deltas, d) }})
	return strings.Join(deltas, ""), deltas, err
}

func TestStreamDeliversTokensInOrder(t *testing.T) {
	fake := newFake(t)
	fake.Enqueue(openaitest.Text("Hello there, how are you today?"))
	got, deltas, err := stream(t, newClient(t, fake, openai.Options{}), "hi")
	if err != nil {
		t.Fatal(err)
	}
	if want := "Hello there, how are you today?"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if len(deltas) < 5 {
		t.Errorf("got %d deltas, want one per token", len(deltas))
	}
	if req := fake.Requests()[0]; req.Model != "gpt-5.4-mini" || req.LastUser() != "hi" {
		t.Errorf("request = %+v", req)
	}
}

func TestSpeakerNameGoesIntoText(t *testing.T) {
	fake := newFake(t)
	c := newClient(t, fake, openai.Options{})
	_, err := c.Stream(context.Background(), &conversation.ModelRequest{Messages: []conversation.Message{{Role: conversation.RoleUser, Name: "Ana María", Content: "hola"}}}, conversation.ModelOutput{Text: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fake.Requests()[0].LastUser(), "Ana María: hola"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRetriesBeforeFirstToken(t *testing.T) {
	tests := []struct {
		name  string
		fault openaitest.Reply
	}{
		{"429 with Retry-After", func() openaitest.Reply {
			r := openaitest.Error(http.StatusTooManyRequests, "rate_limit_exceeded", "Rate limit reached")
			r.RetryAfter = "0.05"
			return r
		}()},
		{"500", openaitest.Error(http.StatusInternalServerError, "", "The server had an error")},
		{"503", openaitest.Error(http.StatusServiceUnavailable, "", "overloaded")},
		{"cut before first token", openaitest.Reply{Tokens: []string{"x"}, Cut: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t)
			fake.Enqueue(tt.fault, openaitest.Text("fine now"))
			got, _, err := stream(t, newClient(t, fake, openai.Options{}), "hi")
			if err != nil {
				t.Fatal(err)
			}
			if got != "fine now" || len(fake.Requests()) != 2 {
				t.Errorf("got %q after %d calls, want the second call's reply", got, len(fake.Requests()))
			}
		})
	}
}

func TestNoRetryAfterFirstToken(t *testing.T) {
	fake := newFake(t)
	fake.Enqueue(openaitest.Reply{Tokens: []string{"Hello", " world", " again"}, Cut: true, CutAfter: 2}, openaitest.Text("second"))
	got, _, err := stream(t, newClient(t, fake, openai.Options{}), "hi")
	if openai.KindOf(errors.Unwrap(err)) != openai.KindCut {
		t.Fatalf("err = %v, want a cut stream", err)
	}
	if got != "Hello world" || len(fake.Requests()) != 1 {
		t.Errorf("got %q after %d calls, want the partial text and no retry", got, len(fake.Requests()))
	}
}

func TestGivesUpAfterMaxRetries(t *testing.T) {
	fake := newFake(t)
	fake.SetHandler(func(openaitest.Request) openaitest.Reply {
		return openaitest.Error(http.StatusInternalServerError, "", "boom")
	})
	_, _, err := stream(t, newClient(t, fake, openai.Options{MaxRetries: 2}), "hi")
	if err == nil || len(fake.Requests()) != 3 {
		t.Fatalf("err = %v after %d calls, want failure after 3", err, len(fake.Requests()))
	}
}

func TestRetryAfterTooLongFailsAtOnce(t *testing.T) {
	fake := newFake(t)
	r := openaitest.Error(http.StatusTooManyRequests, "rate_limit_exceeded", "slow down")
	r.RetryAfter = "3600"
	fake.Enqueue(r)
	_, _, err := stream(t, newClient(t, fake, openai.Options{}), "hi")
	if err == nil || len(fake.Requests()) != 1 {
		t.Fatalf("err = %v after %d calls, want one call", err, len(fake.Requests()))
	}
}

func TestWatchdogAbortsStalledStream(t *testing.T) {
	fake := newFake(t)
	fake.Enqueue(openaitest.Reply{Tokens: []string{"partial", " more"}, Stall: true, StallAfter: 1})
	got, _, err := stream(t, newClient(t, fake, openai.Options{StallTimeout: 200 * time.Millisecond}), "hi")
	if openai.KindOf(errors.Unwrap(err)) != openai.KindStalled {
		t.Fatalf("err = %v, want stalled", err)
	}
	if got != "partial" {
		t.Errorf("got %q, want the text before the stall", got)
	}
	if !strings.Contains(conversation.UserText(err), "stopped answering") {
		t.Errorf("user text %q does not explain the stall", conversation.UserText(err))
	}
	waitFor(t, func() bool { return fake.Canceled() == 1 })
}

func TestCancelClosesUpstream(t *testing.T) {
	fake := newFake(t)
	fake.Enqueue(openaitest.Reply{Tokens: []string{"a", "b", "c"}, TokenDelay: time.Hour})
	c := newClient(t, fake, openai.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	_, err := c.Stream(ctx, &conversation.ModelRequest{Messages: []conversation.Message{{Role: conversation.RoleUser, Content: "hi"}}}, conversation.ModelOutput{Text: func(string) { cancel() }})
	if err == nil {
		t.Fatal("want an error after cancel")
	}
	waitFor(t, func() bool { return fake.Canceled() == 1 })
}

func TestErrorTextsAreClearAndSecretFree(t *testing.T) {
	tests := []struct {
		name  string
		reply openaitest.Reply
		model string
		kind  openai.Kind
		want  string
	}{
		{"bad key", openaitest.Error(401, "invalid_api_key", "Incorrect API key provided: "+secretKey), "", openai.KindAuth, "openai.api_key"},
		{"proxy token", openaitest.Error(401, "invalid_proxy_token", "wrong proxy token"), "", openai.KindProxyAuth, "PROXY_TOKEN"},
		{"quota", openaitest.Error(429, "insufficient_quota", "You exceeded your current quota"), "", openai.KindQuota, "quota"},
		{"model", openaitest.Reply{}, "gpt-nope", openai.KindNotFound, "openai.model"},
		{"context", openaitest.Error(400, "context_length_exceeded", "This model's maximum context length is 128000 tokens"), "", openai.KindContext, "/reset"},
		{"mid-stream error", openaitest.Reply{Tokens: []string{"a"}, StreamError: "server overloaded"}, "", openai.KindServer, "trouble"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t)
			fake.Enqueue(tt.reply)
			c := newClient(t, fake, openai.Options{Model: tt.model, MaxRetries: -1})
			_, _, err := stream(t, c, "hi")
			if got := openai.KindOf(errors.Unwrap(err)); got != tt.kind {
				t.Errorf("kind = %s, want %s (err %v)", got, tt.kind, err)
			}
			text := conversation.UserText(err)
			if !strings.Contains(text, tt.want) {
				t.Errorf("user text %q does not mention %q", text, tt.want)
			}
			if strings.Contains(text, secretKey) || strings.Contains(err.Error(), secretKey) {
				t.Errorf("the key leaked: %q / %q", text, err)
			}
		})
	}
}

func TestProxyUnreachable(t *testing.T) {
	fake := newFake(t)
	url := fake.BaseURL()
	fake.Close()
	c := openai.New(openai.Options{BaseURL: url, APIKey: secretKey, Model: "gpt-5.4-mini", MaxRetries: 1, BackoffBase: time.Millisecond})
	_, err := c.Stream(context.Background(), &conversation.ModelRequest{Messages: []conversation.Message{{Role: conversation.RoleUser, Content: "hi"}}}, conversation.ModelOutput{Text: func(string) {}})
	if got := openai.KindOf(errors.Unwrap(err)); got != openai.KindUnreachable {
		t.Fatalf("kind = %s, want unreachable (err %v)", got, err)
	}
	if !strings.Contains(conversation.UserText(err), "can't reach") {
		t.Errorf("user text = %q", conversation.UserText(err))
	}
}

func TestTokenCounterIsOfflineAndReal(t *testing.T) {
	for _, model := range []string{"gpt-5.4-mini", "gpt-5", "some-local-model"} {
		tc, err := openai.NewTokenCounter(model)
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		if got := tc.Count("Hello, world!"); got != 4 {
			t.Errorf("%s: Count = %d, want 4 (o200k_base)", model, got)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not reached")
}

func TestWrongBaseURLIsNamed(t *testing.T) {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Path != "/chat/completions" { // the site's other pages do not exist
			w.WriteHeader(http.StatusNotFound)
		}
		io.WriteString(w, "<html><body>Welcome to my blog</body></html>")
	}))
	defer site.Close()
	for _, base := range []string{site.URL, site.URL + "/v1"} { // a web page, and a 404 page
		c := openai.New(openai.Options{BaseURL: base, APIKey: secretKey, Model: "gpt-5.4-mini", BackoffBase: time.Millisecond})
		_, err := c.Stream(context.Background(), &conversation.ModelRequest{Messages: []conversation.Message{{Role: conversation.RoleUser, Content: "hi"}}}, conversation.ModelOutput{Text: func(string) {}})
		if got := openai.KindOf(err); got != openai.KindBadProxy {
			t.Errorf("%s: kind %s (err %v), want bad_proxy", base, got, err)
		}
		if !strings.Contains(conversation.UserText(err), "openai.base_url") {
			t.Errorf("%s: user text %q does not name openai.base_url", base, conversation.UserText(err))
		}
	}
}

// protoRecorder notes the protocol of each answer.
type protoRecorder struct {
	next   http.RoundTripper
	protos []string
}

func (p *protoRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := p.next.RoundTrip(r)
	if err == nil {
		p.protos = append(p.protos, resp.Proto)
	}
	return resp, err
}

// Both APIs stream over HTTPS and HTTP/2, as OpenAI and the Worker serve them.
func TestStreamOverHTTP2(t *testing.T) {
	fake := openaitest.NewTLSServer()
	defer fake.Close()
	for _, api := range []openai.API{openai.APIResponses, openai.APIChat} {
		rec := &protoRecorder{next: fake.Client().Transport}
		fake.Enqueue(openaitest.Text("Over HTTP/2 and TLS."))
		c := newClient(t, fake, openai.Options{API: api, HTTPClient: &http.Client{Transport: rec}})
		got, _, err := stream(t, c, "hi")
		if err != nil || got != "Over HTTP/2 and TLS." || len(rec.protos) != 1 || rec.protos[0] != "HTTP/2.0" {
			t.Errorf("%s: got %q, %v over %q; want the reply over HTTP/2.0", api, got, err, rec.protos)
		}
	}
}
