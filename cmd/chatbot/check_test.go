package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// Secrets of the check tests; none of them may ever be printed.
const (
	testOpenAIKey  = "sk-check-SECRET-1234567890"
	testProxyToken = "proxy-check-SECRET-abcdef"
	testTGToken    = "123456:TG-check-SECRET-xyz"
	testSlackBot   = "xoxb-check-SECRET-bot"
	testSlackApp   = "xapp-check-SECRET-app"
)

const checkConfig = `openai:
  base_url: ${BASE}
  api_key: ${KEY}
  model: ${MODEL}
telegram:
  token: ${TG}
  api_url: ${PLATFORM_URL}
slack:
  bot_token: ${SLACK}
  app_token: ${SLACK_APP}
  api_url: ${SLACK_URL}
store:
  path: ${STORE}
`

// runCheck runs `chatbot check` with a config expanded from env.
func runCheck(t *testing.T, env map[string]string) (code int, stdout, stderr string) {
	t.Helper()
	return runCheckConfig(t, checkConfig, env)
}

// runCheckConfig runs `chatbot check` with config expanded from env.
func runCheckConfig(t *testing.T, config string, env map[string]string) (code int, stdout, stderr string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if env["MODEL"] == "" {
		env["MODEL"] = "gpt-5.4-mini"
	}
	if env["STORE"] == "" {
		env["STORE"] = filepath.Join(t.TempDir(), "data", "bot.db")
	}
	if u := env["PLATFORM_URL"]; u != "" {
		env["SLACK_URL"] = u + "/api/"
	}
	var out, errOut bytes.Buffer
	m := NewMain(strings.NewReader(""), &out, &errOut)
	m.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	code = m.Main(ctx, []string{"check", "-config", path})
	if d := time.Since(start); d > 70*time.Second {
		t.Errorf("check took %v", d)
	}
	stdout, stderr = out.String(), errOut.String()
	t.Logf("exit %d\n%s%s", code, stdout, stderr)
	for _, secret := range []string{testOpenAIKey, testProxyToken, testTGToken, "TG-check-SECRET", testSlackBot, testSlackApp} {
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("output shows the secret %q:\n%s%s", secret, stdout, stderr)
		}
	}
	return code, stdout, stderr
}

// countingFake is a fake OpenAI that answers the check's prompt in 20 chunks, 10 ms apart.
func countingFake(t *testing.T) *openaitest.Server {
	t.Helper()
	fake := openaitest.NewServer()
	fake.APIKey = testOpenAIKey
	fake.Models = []string{"gpt-4o", "gpt-5.4-mini", "gpt-5"}
	fake.SetHandler(func(openaitest.Request) openaitest.Reply {
		r := openaitest.Text("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20")
		r.TokenDelay = 10 * time.Millisecond
		return r
	})
	t.Cleanup(fake.Close)
	return fake
}

// fakeWorker behaves like proxy/worker.js in key-in-Worker mode in front of
// upstream: /v1 only, the proxy token checked, the real key sent on, x-proxy set.
// misconfigured mimics a Worker with only PROXY_TOKEN set.
func fakeWorker(t *testing.T, upstream *openaitest.Server, misconfigured bool) *httptest.Server {
	t.Helper()
	target, _ := url.Parse(upstream.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proxy", "chatbot-worker")
		switch {
		case misconfigured:
			workerError(w, 500, "proxy_misconfigured", "Proxy misconfigured: the secret PROXY_TOKEN is set but OPENAI_API_KEY is not.")
		case r.URL.Path != "/v1" && !strings.HasPrefix(r.URL.Path, "/v1/"):
			workerError(w, 404, "not_found", "Invalid URL ("+r.Method+" "+r.URL.Path+"): this proxy only forwards paths under /v1/.")
		case r.Header.Get("Authorization") != "Bearer "+testProxyToken:
			workerError(w, 401, "invalid_proxy_token", "Incorrect proxy token.")
		default:
			r.Header.Set("Authorization", "Bearer "+upstream.APIKey)
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func workerError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"message": msg, "type": "invalid_request_error", "param": nil, "code": code}})
}

// bufferingProxy is openaitest's buffering proxy in front of target, closed
// when the test ends.
func bufferingProxy(t *testing.T, target string) *httptest.Server {
	t.Helper()
	s := openaitest.NewBufferingProxy(target)
	t.Cleanup(s.Close)
	return s
}

// platformsFake answers Telegram's getMe and Slack's auth.test and
// apps.connections.open for the test tokens, with the APIs' own error answers.
func platformsFake(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{bot}/getMe", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("bot") != "bot"+testTGToken {
			w.WriteHeader(http.StatusUnauthorized)
			writeJSON(w, map[string]any{"ok": false, "error_code": 401, "description": "Unauthorized"})
			return
		}
		writeJSON(w, map[string]any{"ok": true, "result": map[string]any{
			"id": 123456, "is_bot": true, "first_name": "Check", "username": "check_bot"}})
	})
	mux.HandleFunc("POST /api/auth.test", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("token") != testSlackBot && r.Header.Get("Authorization") != "Bearer "+testSlackBot {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		writeJSON(w, map[string]any{"ok": true, "url": "https://acme.slack.com/", "team": "Acme",
			"user": "chatbot", "team_id": "T0001", "user_id": "U0001", "bot_id": "B0001"})
	})
	mux.HandleFunc("POST /api/apps.connections.open", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testSlackApp {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		writeJSON(w, map[string]any{"ok": true, "url": "wss://wss.example.invalid/link/?ticket=1"})
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestCheckAllGood(t *testing.T) {
	fake := countingFake(t)
	worker := fakeWorker(t, fake, false)
	platforms := platformsFake(t)
	code, out, errOut := runCheck(t, map[string]string{
		"BASE": worker.URL + "/v1", "KEY": testProxyToken,
		"TG": testTGToken, "SLACK": testSlackBot, "SLACK_APP": testSlackApp, "PLATFORM_URL": platforms.URL,
	})
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"✓ proxy", "through the chatbot Worker", "3 models listed",
		"✓ model      gpt-5.4-mini is available",
		`✓ completion gpt-5.4-mini replied "1 2 3 4 5`, "first token after", "20 chunks",
		"✓ streaming", "@check_bot (id 123456)", "@chatbot (U0001) in team Acme (T0001)",
		"✓ slack app", "all checks passed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "✗") || strings.Contains(out, "⚠") {
		t.Errorf("a check failed or warned:\n%s", out)
	}
	if got := fake.Requests()[0].LastUser(); got != probePrompt {
		t.Errorf("prompt %q, want %q", got, probePrompt)
	}
}

func TestCheckDirectWithoutPlatforms(t *testing.T) {
	fake := countingFake(t)
	code, out, errOut := runCheck(t, map[string]string{"BASE": fake.BaseURL(), "KEY": testOpenAIKey})
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"answers directly, not through the chatbot Worker", "⚠ platforms", "all checks passed, with 1 warning"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// checkCase is one broken set-up and what the check must say about it.
type checkCase struct {
	name     string
	env      map[string]string
	code     int
	want     []string
	problems string // the last line of stderr
}

func TestCheckNamesTheProblem(t *testing.T) {
	fake := countingFake(t)
	worker := fakeWorker(t, fake, false)
	broken := fakeWorker(t, fake, true)
	passThrough := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proxy", "chatbot-worker")
		fake.Config.Handler.ServeHTTP(w, r)
	}))
	defer passThrough.Close()
	tlsServer := httptest.NewUnstartedServer(fake.Config.Handler)
	tlsServer.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	tlsServer.StartTLS()
	defer tlsServer.Close()
	tests := []checkCase{
		{name: "connection refused", env: map[string]string{"BASE": "http://" + closedPort(t) + "/v1"},
			want: []string{"✗ proxy", "connection refused", "workers.dev is unreachable", "custom domain"}},
		{name: "DNS", env: map[string]string{"BASE": "http://chatbot-check.invalid/v1"},
			want: []string{"cannot resolve chatbot-check.invalid", "mainland China", "custom domain"}},
		{name: "TLS", env: map[string]string{"BASE": tlsServer.URL + "/v1"},
			want: []string{"TLS failed", "certificate", "not trusted"}},
		{name: "the Worker rejects the proxy token", env: map[string]string{"BASE": worker.URL + "/v1", "KEY": "sk-an-openai-key"},
			want: []string{"the Worker rejected openai.api_key", "invalid_proxy_token", "must equal the Worker's PROXY_TOKEN"}},
		{name: "OpenAI rejects the key", env: map[string]string{"BASE": fake.BaseURL(), "KEY": "sk-wrong"},
			want: []string{"OpenAI rejected the API key (HTTP 401 invalid_api_key)", "check openai.api_key"}},
		{name: "OpenAI rejects the key the Worker passes on", env: map[string]string{"BASE": passThrough.URL + "/v1", "KEY": "sk-wrong"},
			want: []string{"OpenAI rejected the API key the Worker sent on (HTTP 401 invalid_api_key)", "OPENAI_API_KEY secret"}},
		{name: "the Worker has one secret", env: map[string]string{"BASE": broken.URL + "/v1"},
			want: []string{"the Worker is misconfigured", "PROXY_TOKEN is set but OPENAI_API_KEY is not"}},
		{name: "Worker URL without /v1", env: map[string]string{"BASE": worker.URL, "KEY": testProxyToken},
			want: []string{"the Worker answered HTTP 404 not_found", "must end in /v1"}},
		{name: "OpenAI URL without /v1", env: map[string]string{"BASE": fake.URL},
			want: []string{"does not point at an OpenAI API", "must end in /v1"}},
		{name: "model not listed", env: map[string]string{"BASE": fake.BaseURL(), "MODEL": "gpt-5.4-mni"},
			want: []string{`✗ model      model "gpt-5.4-mni" not found`, "listed models like it: gpt-5.4-mini", "model_not_found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t) })
	}
}

func (tt checkCase) run(t *testing.T) {
	if tt.env["KEY"] == "" {
		tt.env["KEY"] = testOpenAIKey
	}
	if tt.code == 0 {
		tt.code = 1
	}
	if tt.problems == "" {
		tt.problems = "chatbot: check failed: 1 problem\n"
	}
	code, out, errOut := runCheck(t, tt.env)
	if code != tt.code {
		t.Errorf("exit %d, want %d", code, tt.code)
	}
	for _, want := range tt.want {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if tt.code != 0 && !strings.HasSuffix(errOut, tt.problems) {
		t.Errorf("stderr %q, want it to end in %q", errOut, tt.problems)
	}
}

func TestCheckCompletionFailures(t *testing.T) {
	tests := []struct {
		name  string
		reply openaitest.Reply
		want  []string
	}{
		{"quota", openaitest.Reply{Status: 429, Code: "insufficient_quota", Type: "insufficient_quota", Message: "You exceeded your current quota."},
			[]string{"✗ completion", "run out of quota (HTTP 429 insufficient_quota)", "billing"}},
		{"rate limit", openaitest.Error(429, "rate_limit_exceeded", "Rate limit reached for requests"),
			[]string{"✗ completion", "rate limited (HTTP 429 rate_limit_exceeded)", "try again in a minute"}},
		{"bad request", openaitest.Error(400, "unsupported_parameter", "Unsupported parameter: 'max_completion_tokens'."),
			[]string{"✗ completion", "refused the check's request (HTTP 400 unsupported_parameter): Unsupported parameter"}},
		{"region", openaitest.Error(403, "unsupported_country_region_territory", "Country, region, or territory not supported"),
			[]string{"✗ completion", "OpenAI refuses the region", "send the calls through the Worker"}},
		{"model gone", openaitest.Error(404, "model_not_found", "The model `gpt-5.4-mini` does not exist or you do not have access to it."),
			[]string{"✓ proxy", "✗ completion", "the model was not found (HTTP 404 model_not_found)", "check openai.model"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := countingFake(t)
			fake.Enqueue(tt.reply)
			checkCase{env: map[string]string{"BASE": fake.BaseURL()}, want: tt.want}.run(t)
		})
	}
}

func TestCheckWarnsOfABufferedStream(t *testing.T) {
	fake := countingFake(t)
	proxy := bufferingProxy(t, fake.URL)
	code, out, errOut := runCheck(t, map[string]string{"BASE": proxy.URL + "/v1", "KEY": testOpenAIKey})
	if code != 0 {
		t.Errorf("exit %d, want 0 (a warning)\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"✓ completion", "⚠ streaming", "WARNING: the reply arrived all at once", "proxy_buffering off"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckPlatformTokens(t *testing.T) {
	fake := countingFake(t)
	platforms := platformsFake(t)
	tests := []checkCase{
		{name: "Telegram rejects the token", env: map[string]string{"TG": "123456:TG-check-SECRET-wrong"},
			want: []string{"✗ telegram", "Telegram rejected telegram.token (401 Unauthorized)", "@BotFather"}},
		{name: "Slack rejects the bot token", env: map[string]string{"SLACK": "xoxb-check-SECRET-wrong", "SLACK_APP": testSlackApp},
			want: []string{"✗ slack", "Slack rejected slack.bot_token (invalid_auth)", "✓ slack app"}},
		{name: "Slack rejects the app token", env: map[string]string{"SLACK": testSlackBot, "SLACK_APP": "xapp-check-SECRET-wrong"},
			want: []string{"✓ slack ", "✗ slack app", "Slack rejected slack.app_token (invalid_auth)", "connections:write"}},
		{name: "both platforms wrong", env: map[string]string{"TG": "1:x", "SLACK": "xoxb-1", "SLACK_APP": "xapp-1"},
			want: []string{"✗ telegram", "✗ slack", "✗ slack app"}, problems: "chatbot: check failed: 3 problems\n"},
	}
	for _, tt := range tests {
		tt.env["BASE"] = fake.BaseURL()
		tt.env["PLATFORM_URL"] = platforms.URL
		t.Run(tt.name, func(t *testing.T) { tt.run(t) })
	}
}

func TestCheckTelegramUnreachableHidesTheToken(t *testing.T) {
	fake := countingFake(t)
	addr := closedPort(t)
	checkCase{env: map[string]string{"BASE": fake.BaseURL(), "TG": testTGToken, "PLATFORM_URL": "http://" + addr},
		want: []string{"✗ telegram", "cannot connect to " + addr, "api.telegram.org is blocked in some networks"}}.run(t)
}
