package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckNamesAnEmptyKey: an empty openai.api_key is a failed check that
// names the key and the variable the example config reads it from, unless
// base_url is on this machine or the local network.
func TestCheckNamesAnEmptyKey(t *testing.T) {
	code, out, _ := runCheck(t, map[string]string{"BASE": "https://ai-proxy.invalid/v1", "KEY": ""})
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"✗ api key", "openai.api_key is empty", "${OPENAI_API_KEY}", "– proxy"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	fake := countingFake(t)
	fake.APIKey = "" // a local server that needs no key
	if code, out, _ := runCheck(t, map[string]string{"BASE": fake.BaseURL(), "KEY": ""}); code != 0 || strings.Contains(out, "api key") {
		t.Errorf("a loopback base_url without a key: exit %d\n%s", code, out)
	}
}

func TestLocalHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:11434": true, "localhost:11434": true, "[::1]:8000": true, "192.168.1.20:11434": true,
		"10.0.0.5": true, "ollama:11434": true, "host.docker.internal:11434": true, "gpu.lan": true,
		"api.openai.com": false, "ai-proxy.example.workers.dev": false, "8.8.8.8:443": false, "": false,
		"evil-localhost.example.com": false,
	} {
		if got := localHost(host); got != want {
			t.Errorf("localHost(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestChatNamesAnEmptyKey: with openai.api_key empty and a remote base_url,
// chat stops at once, naming the key and the variable the example config reads.
func TestChatNamesAnEmptyKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	cfg := "openai:\n  base_url: https://ai-proxy.invalid/v1\n  api_key: ${OPENAI_API_KEY}\n" +
		"store:\n  path: " + filepath.Join(dir, "bot.db") + "\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut lockedBuffer
	m := NewMain(strings.NewReader("hi\n"), &out, &errOut)
	m.LookupEnv = env(nil) // TEST_KEY unset: api_key is empty
	if code := m.Main(context.Background(), []string{"chat", "-config", path}); code == 0 {
		t.Errorf("exit 0 with an empty key, want a failure")
	}
	for _, want := range []string{"openai.api_key is empty", "${OPENAI_API_KEY}"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr %q lacks %q", errOut.String(), want)
		}
	}
	if out.String() != "" {
		t.Errorf("chat started: %q", out.String())
	}
}
