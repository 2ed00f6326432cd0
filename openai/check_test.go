package openai_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// countReply is what a model answers to the check's prompt, one chunk per number.
func countReply(delay time.Duration) openaitest.Reply {
	nums := make([]string, 20)
	for i := range nums {
		nums[i] = strings.Repeat(" ", min(i, 1)) + string(rune('a'+i))
	}
	return openaitest.Reply{Tokens: nums, TokenDelay: delay}
}

func newChecker(baseURL, model string) *openai.Checker {
	return openai.NewChecker(openai.Options{BaseURL: baseURL, APIKey: secretKey, Model: model})
}

// markAsWorker serves next with the chatbot Worker's marker header.
func markAsWorker(next http.Handler) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(openai.ProxyHeader, openai.ProxyName)
		next.ServeHTTP(w, r)
	}))
}

// bufferingProxy is openaitest's buffering proxy in front of target, closed
// when the test ends.
func bufferingProxy(t *testing.T, target string) *httptest.Server {
	t.Helper()
	s := openaitest.NewBufferingProxy(target)
	t.Cleanup(s.Close)
	return s
}

func TestCheckerModelsListsAndSeesTheWorker(t *testing.T) {
	fake := newFake(t)
	fake.Models = []string{"gpt-5.4-mini", "gpt-4o", "gpt-5"}
	worker := markAsWorker(fake.Config.Handler)
	defer worker.Close()
	for _, tt := range []struct {
		name, base, proxy string
	}{
		{"direct", fake.BaseURL(), ""},
		{"through the Worker", worker.URL + "/v1", openai.ProxyName},
	} {
		t.Run(tt.name, func(t *testing.T) {
			list, err := newChecker(tt.base, "gpt-4o").Models(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := strings.Join(list.IDs, ","), "gpt-4o,gpt-5,gpt-5.4-mini"; got != want {
				t.Errorf("IDs = %s, want %s", got, want)
			}
			if !list.Has("gpt-5") || list.Has("gpt-6") {
				t.Errorf("Has is wrong for %v", list.IDs)
			}
			if list.Proxy != tt.proxy {
				t.Errorf("Proxy = %q, want %q", list.Proxy, tt.proxy)
			}
		})
	}
}

func TestCheckerStreamMeasuresChunks(t *testing.T) {
	fake := newFake(t)
	fake.Enqueue(countReply(10 * time.Millisecond))
	p, err := newChecker(fake.BaseURL(), "gpt-5.4-mini").Stream(context.Background(), "count")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Arrivals) != 20 || !strings.HasPrefix(p.Reply, "a b c") || p.API != openai.APIResponses {
		t.Errorf("probe = %+v", p)
	}
	if p.FirstToken <= 0 || p.FirstToken != p.Arrivals[0] {
		t.Errorf("FirstToken = %v, arrivals %v", p.FirstToken, p.Arrivals)
	}
	// 19 gaps of 10 ms each: at least 190 ms, whatever the machine's load.
	if p.Spread() < 150*time.Millisecond || p.Buffered() {
		t.Errorf("spread %v, buffered %v: want a stream", p.Spread(), p.Buffered())
	}
	if got := fake.Requests()[0].LastUser(); got != "count" {
		t.Errorf("prompt = %q", got)
	}
}

func TestCheckerStreamFallsBackToChat(t *testing.T) {
	fake := newFake(t)
	fake.NoResponses = true
	fake.Enqueue(countReply(time.Millisecond))
	p, err := newChecker(fake.BaseURL(), "gpt-5.4-mini").Stream(context.Background(), "count")
	if err != nil {
		t.Fatal(err)
	}
	if p.API != openai.APIChat || len(p.Arrivals) != 20 {
		t.Errorf("probe = %+v, want 20 chunks on Chat Completions", p)
	}
}

func TestCheckerStreamSeesBuffering(t *testing.T) {
	fake := newFake(t)
	fake.Enqueue(countReply(10 * time.Millisecond))
	proxy := bufferingProxy(t, fake.URL)
	p, err := newChecker(proxy.URL+"/v1", "gpt-5.4-mini").Stream(context.Background(), "count")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Buffered() {
		t.Errorf("Buffered() = false with %d chunks over %v after %v", len(p.Arrivals), p.Spread(), p.FirstToken)
	}
	if p.FirstToken < 150*time.Millisecond {
		t.Errorf("FirstToken = %v, want the whole generation time", p.FirstToken)
	}
}

func TestCheckerErrors(t *testing.T) {
	fake := newFake(t)
	worker := markAsWorker(fake.Config.Handler)
	defer worker.Close()
	tests := []struct {
		name      string
		base, key string
		reply     *openaitest.Reply
		kind      openai.Kind
		status    int
		proxy     string
		message   string
	}{
		{"wrong key", fake.BaseURL(), "sk-wrong", nil, openai.KindAuth, 401, "", "Incorrect API key"},
		{"wrong key through the Worker", worker.URL + "/v1", "sk-wrong", nil, openai.KindAuth, 401, openai.ProxyName, "Incorrect API key"},
		{"quota", fake.BaseURL(), secretKey, &openaitest.Reply{Status: 429, Code: "insufficient_quota", Type: "insufficient_quota", Message: "You exceeded your current quota"},
			openai.KindQuota, 429, "", "exceeded your current quota"},
		{"cut", fake.BaseURL(), secretKey, &openaitest.Reply{Tokens: []string{"a", "b"}, Cut: true, CutAfter: 1}, openai.KindCut, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.reply != nil {
				fake.Enqueue(*tt.reply)
			}
			k := openai.NewChecker(openai.Options{BaseURL: tt.base, APIKey: tt.key, Model: "gpt-5.4-mini"})
			_, err := k.Stream(context.Background(), "hi")
			var ce *openai.CheckError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *CheckError", err)
			}
			if openai.KindOf(err) != tt.kind || ce.Err.Status != tt.status || ce.Proxy != tt.proxy {
				t.Errorf("kind %s status %d proxy %q, want %s %d %q", openai.KindOf(err), ce.Err.Status, ce.Proxy, tt.kind, tt.status, tt.proxy)
			}
			if !strings.Contains(ce.Message, tt.message) {
				t.Errorf("Message = %q, want it to contain %q", ce.Message, tt.message)
			}
			if strings.Contains(err.Error(), tt.key) {
				t.Errorf("error shows the key: %v", err)
			}
		})
	}
}

func TestCheckerErrorKeepsTheNetworkCause(t *testing.T) {
	_, err := newChecker("http://chatbot-check.invalid/v1", "gpt-5.4-mini").Models(context.Background())
	if openai.KindOf(err) != openai.KindUnreachable {
		t.Fatalf("kind %s, want unreachable: %v", openai.KindOf(err), err)
	}
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) {
		t.Errorf("the cause is lost: %v", err)
	}
}
