package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// writeConfig writes a config for the fake OpenAI server and returns its path.
func writeConfig(t *testing.T, fake *openaitest.Server, extra string) string {
	t.Helper()
	return writeConfigOpenAI(t, fake, "store:\n  path: "+filepath.Join(t.TempDir(), "data", "bot.db")+"\n"+extra)
}

// writeConfigOpenAI writes a config whose openai section goes on with rest (keys
// indented by two spaces, then other sections).
func writeConfigOpenAI(t *testing.T, fake *openaitest.Server, rest string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := "openai:\n  base_url: " + fake.BaseURL() + "\n  api_key: ${TEST_KEY}\n  model: gpt-5.4-mini\n" + rest
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs chatbot with args and stdin, returning the exit code and outputs.
func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	m := NewMain(strings.NewReader(stdin), &out, &errOut)
	m.LookupEnv = env(map[string]string{"TEST_KEY": "sk-test-key"})
	code = m.Main(context.Background(), args)
	return code, out.String(), errOut.String()
}

func TestChatStreamsRepliesAndKeepsHistory(t *testing.T) {
	fake := openaitest.NewServer()
	defer fake.Close()
	fake.APIKey = "sk-test-key"
	path := writeConfig(t, fake, "")

	code, out, errOut := run(t, "my number is 7\n/reset\nhello\n", "chat", "-config", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"You said: my number is 7", "Context cleared", "You said: hello"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, "sk-test-key") {
		t.Error("the key was printed")
	}

	// A second session continues the stored conversation.
	code, _, errOut = run(t, "what was it?\n", "chat", "-config", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	reqs := fake.Requests()
	last := reqs[len(reqs)-1]
	if len(last.Messages) != 3 || last.Messages[0].Content != "hello" {
		t.Errorf("second session sent %+v, want the stored turn after /reset", last.Messages)
	}
}

func TestChatModelErrorIsShortAndClear(t *testing.T) {
	fake := openaitest.NewServer()
	defer fake.Close()
	fake.APIKey = "another-key"
	code, out, errOut := run(t, "hi\n", "chat", "-config", writeConfig(t, fake, ""))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "openai.api_key") || strings.Contains(out, "goroutine") {
		t.Errorf("stdout = %q, want a short note about the key", out)
	}
}

func TestServeNeedsAPlatform(t *testing.T) {
	fake := openaitest.NewServer()
	defer fake.Close()
	code, _, errOut := run(t, "", "serve", "-config", writeConfig(t, fake, ""))
	if code != 1 || !strings.Contains(errOut, "telegram.token") || !strings.Contains(errOut, "slack.bot_token") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestCommandLine(t *testing.T) {
	fake := openaitest.NewServer()
	defer fake.Close()
	path := writeConfig(t, fake, "")
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{"-config", path}, 1, "no platform configured"}, // no command: serve
		{[]string{"serve", "-config", filepath.Join(t.TempDir(), "missing.yaml")}, 1, "missing.yaml"},
		{[]string{"dance", "-config", path}, 2, `unknown command "dance"`},
		{[]string{"chat", "-config", path, "extra"}, 2, "unexpected argument"},
		{[]string{"chat", "-verbose"}, 2, "flag provided but not defined"},
		{[]string{"-h"}, 0, ""},
	}
	for _, tt := range tests {
		code, _, errOut := run(t, "", tt.args...)
		if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
			t.Errorf("%v: exit %d stderr %q, want %d and %q", tt.args, code, errOut, tt.wantCode, tt.wantErr)
		}
	}
}

func TestStoreLockedByAnotherOpenIsClear(t *testing.T) {
	fake := openaitest.NewServer()
	defer fake.Close()
	path := writeConfig(t, fake, "")
	cfg, err := (&Main{configPath: path, LookupEnv: env(nil)}).loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	c, err := openCore(context.Background(), cfg, newLogger(cfg.Log, &bytes.Buffer{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close(0)
	if _, err := openCore(context.Background(), cfg, newLogger(cfg.Log, &bytes.Buffer{}), nil); err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("second open: %v", err)
	}
}
