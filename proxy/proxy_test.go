package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/conversation/conversationtest"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store"
)

const (
	realKey    = "sk-real-key-kept-in-the-Worker-0123"
	proxyToken = "pt-proxy-token-for-go-tests-4567"
	// workerStart is generous: workerd can take seconds on a busy machine.
	workerStart = 45 * time.Second
)

// requireWorkerd skips the test when node or workerd is missing, except on CI
// (CI=true), which must run it.
func requireWorkerd(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node is not on PATH")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "workerd")); err != nil {
		missing = append(missing, "proxy/node_modules/workerd is missing (run npm ci in proxy/)")
	}
	if len(missing) == 0 {
		return
	}
	msg := "the Worker tests need workerd: " + strings.Join(missing, "; ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// syncBuffer collects a child's stderr while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// keyInWorker are the bindings of a Worker in key-in-Worker mode in front of upstream.
func keyInWorker(upstream string) map[string]string {
	return map[string]string{"UPSTREAM": upstream, "PROXY_TOKEN": proxyToken, "OPENAI_API_KEY": realKey}
}

// startWorker runs proxy/worker.js in workerd (test/serve.mjs) with bindings and
// returns its URL. It stops at the test's end.
func startWorker(t *testing.T, bindings map[string]string) string {
	t.Helper()
	requireWorkerd(t)
	cmd := exec.Command("node", "test/serve.mjs")
	// Only what node needs and the Worker's bindings: never the caller's own secrets.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range bindings {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe() // serve.mjs runs until its stdin closes
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() { stopWorker(t, cmd, stdin, drained, stderr) })
	select {
	case line := <-lines:
		url, ok := strings.CutPrefix(line, "listening on ")
		if !ok {
			t.Fatalf("serve.mjs said %q\n%s", line, stderr)
		}
		return url
	case <-drained:
		t.Fatalf("serve.mjs ended before listening\n%s", stderr)
	case <-time.After(workerStart):
		t.Fatalf("the Worker did not start within %v\n%s", workerStart, stderr)
	}
	return ""
}

// stopWorker closes serve.mjs's stdin, which stops it and workerd, and kills it
// if it does not exit in time.
func stopWorker(t *testing.T, cmd *exec.Cmd, stdin io.Closer, drained <-chan struct{}, stderr *syncBuffer) {
	stdin.Close()
	select {
	case <-drained:
	case <-time.After(15 * time.Second):
		t.Errorf("serve.mjs did not stop when its stdin closed; killing it\n%s", stderr)
		cmd.Process.Kill()
	}
	cmd.Wait()
}

// identifyingTransport adds the headers a Worker must never send on.
type identifyingTransport struct{}

func (identifyingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", "203.0.113.7")
	r.Header.Set("CF-Connecting-IP", "203.0.113.7")
	return http.DefaultTransport.RoundTrip(r)
}

// newEngine builds the real engine, store and model client, talking to workerURL.
func newEngine(t *testing.T, workerURL, key string) (*conversation.Engine, *openai.Client) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "chatbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tokens, err := openai.NewTokenCounter("gpt-5.4-mini")
	if err != nil {
		t.Fatal(err)
	}
	model := openai.New(openai.Options{BaseURL: workerURL + "/v1", APIKey: key, Model: "gpt-5.4-mini",
		MaxRetries: -1, HTTPClient: &http.Client{Transport: identifyingTransport{}}})
	engine := conversation.New(conversation.Config{TurnTimeout: time.Minute, Logger: slog.New(slog.DiscardHandler)},
		db, model, tokens)
	t.Cleanup(func() { engine.Shutdown(context.Background()) })
	return engine, model
}

func newFake(t *testing.T) *openaitest.Server {
	t.Helper()
	fake := openaitest.NewServer()
	fake.APIKey = realKey
	t.Cleanup(fake.Close)
	return fake
}

// ask sends text to the engine as a private message and waits for the whole reply.
func ask(t *testing.T, engine *conversation.Engine, text string) *conversationtest.Reply {
	t.Helper()
	reply := conversationtest.NewReply()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := engine.Handle(ctx, conversation.Request{Chat: "test:1", UserID: "1", Text: text,
		Reply: reply, UpdateEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return reply
}

func TestEngineStreamsThroughTheWorker(t *testing.T) {
	fake := newFake(t)
	want := "One two three four five six seven eight nine ten."
	r := openaitest.Text(want)
	r.TokenDelay = 40 * time.Millisecond
	fake.Enqueue(r)
	engine, _ := newEngine(t, startWorker(t, keyInWorker(fake.URL)), proxyToken)

	reply := ask(t, engine, "count to ten")
	if got := reply.Final(); got != want {
		t.Fatalf("final reply %q, want %q (calls %+v)", got, want, reply.Calls())
	}
	updates := reply.Updates()
	if len(updates) < 2 {
		t.Errorf("got %d updates %q, want the reply to grow at least twice while it streams", len(updates), updates)
	}
	for i := 1; i < len(updates); i++ {
		if len(updates[i]) <= len(updates[i-1]) || !strings.HasPrefix(updates[i], updates[i-1]) {
			t.Errorf("update %d %q does not grow %q", i, updates[i], updates[i-1])
		}
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("the fake saw %d calls, want 1", len(reqs))
	}
	if reqs[0].API != "responses" || reqs[0].Field("store") != false {
		t.Errorf("the call reached upstream on %s with store %v, want the Responses API with store false",
			reqs[0].API, reqs[0].Field("store"))
	}
	h := reqs[0].Header
	if got := h.Get("Authorization"); got != "Bearer "+realKey {
		t.Errorf("upstream Authorization %q, want the Worker's key, not the proxy token", got)
	}
	for _, name := range []string{"X-Forwarded-For", "CF-Connecting-IP"} {
		if v := h.Get(name); v != "" {
			t.Errorf("upstream saw %s: %s", name, v)
		}
	}
}

func TestEngineFallsBackToChatThroughTheWorker(t *testing.T) {
	fake := newFake(t)
	fake.NoResponses = true
	engine, _ := newEngine(t, startWorker(t, keyInWorker(fake.URL)), proxyToken)
	for _, text := range []string{"one", "two"} {
		if got := ask(t, engine, text).Final(); got != "You said: "+text {
			t.Fatalf("reply %q to %q", got, text)
		}
	}
	for _, r := range fake.Requests() {
		if r.API != "chat" {
			t.Errorf("a call went to %s; want Chat Completions after the Worker passed the 404 through", r.API)
		}
	}
}

func TestWrongProxyTokenTellsTheOwner(t *testing.T) {
	fake := newFake(t)
	engine, model := newEngine(t, startWorker(t, keyInWorker(fake.URL)), "sk-an-openai-key-by-mistake")

	_, err := model.Stream(context.Background(), &conversation.ModelRequest{Messages: []conversation.Message{{Role: conversation.RoleUser, Content: "hi"}}}, conversation.ModelOutput{Text: func(string) {}})
	if kind := openai.KindOf(err); kind != openai.KindProxyAuth {
		t.Fatalf("kind %s, want %s: %v", kind, openai.KindProxyAuth, err)
	}
	want := conversation.UserText(err)
	if !strings.Contains(want, "PROXY_TOKEN") {
		t.Errorf("user text %q does not name PROXY_TOKEN", want)
	}
	if got := ask(t, engine, "hello").Final(); got != want {
		t.Errorf("the user got %q, want %q", got, want)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("the Worker forwarded %d calls with a wrong token", n)
	}
}

// buildChatbot compiles cmd/chatbot into the test's temporary folder.
func buildChatbot(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command to build cmd/chatbot")
	}
	bin := filepath.Join(t.TempDir(), "chatbot")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/chatbot-dev/chatbot/cmd/chatbot").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/chatbot: %v\n%s", err, out)
	}
	return bin
}

// runCheck runs `chatbot check` (the binary bin) with openai.base_url and openai.api_key.
func runCheck(t *testing.T, bin, baseURL, key string) (int, string) {
	t.Helper()
	dir := t.TempDir()
	config := fmt.Sprintf("openai:\n  base_url: %s\n  api_key: %s\n  model: gpt-5.4-mini\nstore:\n  path: %s\n",
		baseURL, key, filepath.Join(dir, "chatbot.db"))
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "check", "-config", path).CombinedOutput()
	t.Logf("chatbot check:\n%s", out)
	if strings.Contains(string(out), key) {
		t.Errorf("chatbot check printed the key")
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatal(err)
	return 0, ""
}

func TestCheckThroughTheWorker(t *testing.T) {
	fake := newFake(t)
	fake.SetHandler(func(openaitest.Request) openaitest.Reply {
		r := openaitest.Text("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20")
		r.TokenDelay = 15 * time.Millisecond
		return r
	})
	worker := startWorker(t, keyInWorker(fake.URL))
	halfSet := startWorker(t, map[string]string{"UPSTREAM": fake.URL, "PROXY_TOKEN": proxyToken})
	bin := buildChatbot(t)
	tests := []struct {
		name string
		base string
		key  string
		code int
		want []string
	}{
		{"the proxy token", worker + "/v1", proxyToken, 0,
			[]string{"✓ proxy", "through the chatbot Worker", "first token after", "✓ streaming", "all checks passed"}},
		{"an OpenAI key instead", worker + "/v1", "sk-an-openai-key-by-mistake", 1,
			[]string{"✗ proxy", "the Worker rejected openai.api_key", "PROXY_TOKEN", "check failed: 1 problem"}},
		{"base_url without /v1", worker, proxyToken, 1,
			[]string{"✗ proxy", "the Worker answered HTTP 404 not_found", "must end in /v1"}},
		{"only PROXY_TOKEN set", halfSet + "/v1", proxyToken, 1,
			[]string{"✗ proxy", "the Worker is misconfigured", "PROXY_TOKEN is set but OPENAI_API_KEY is not"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := runCheck(t, bin, tt.base, tt.key)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
		})
	}
}
