package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatbot-dev/chatbot/store"
)

func TestCheckTriesTheStore(t *testing.T) {
	fake := countingFake(t)
	t.Run("new", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "data", "bot.db")
		code, out, _ := runCheck(t, map[string]string{"BASE": fake.BaseURL(), "KEY": testOpenAIKey, "STORE": path})
		if code != 0 || !strings.Contains(out, "✓ store      "+path+" can be created") {
			t.Errorf("exit %d\n%s", code, out)
		}
		if _, err := os.Stat(path); err == nil {
			t.Errorf("check left the store it created behind")
		}
	})
	t.Run("locked by a running bot", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bot.db")
		db, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		code, out, _ := runCheck(t, map[string]string{"BASE": fake.BaseURL(), "KEY": testOpenAIKey, "STORE": path})
		if code != 0 || !strings.Contains(out, "⚠ store      "+path+" is locked by another process, most likely a running bot") {
			t.Errorf("exit %d, want 0 and a warning\n%s", code, out)
		}
	})
	t.Run("not writable", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "a-file")
		os.WriteFile(file, nil, 0o600)
		code, out, _ := runCheck(t, map[string]string{"BASE": fake.BaseURL(), "KEY": testOpenAIKey, "STORE": filepath.Join(file, "bot.db")})
		if code != 1 || !strings.Contains(out, "✗ store      store.path:") {
			t.Errorf("exit %d, want 1\n%s", code, out)
		}
	})
}

func TestCheckTriesHTTPListen(t *testing.T) {
	fake := countingFake(t)
	cfg := checkConfig + "http:\n  listen: ${LISTEN}\n"
	free := closedPort(t)
	code, out, _ := runCheckConfig(t, cfg, map[string]string{"BASE": fake.BaseURL(), "KEY": testOpenAIKey, "LISTEN": free})
	if code != 0 || !strings.Contains(out, "✓ http       http.listen "+free+" is free") {
		t.Errorf("exit %d\n%s", code, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, out, _ = runCheckConfig(t, cfg, map[string]string{"BASE": fake.BaseURL(), "KEY": testOpenAIKey, "LISTEN": ln.Addr().String()})
	if code != 0 || !strings.Contains(out, "⚠ http       http.listen "+ln.Addr().String()+" is in use") {
		t.Errorf("exit %d, want 0 and a warning\n%s", code, out)
	}
}
