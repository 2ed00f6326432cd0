package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store"
)

// storeChats is how many chats fillStore writes; each gets pages of its own.
const storeChats = 6

func storeChat(i int) conversation.ChatID {
	return conversation.ChatID(fmt.Sprintf("telegram:%d", 500+i))
}

// fillStore writes storeChats chats of 200 messages into the store at path.
func fillStore(t *testing.T, path string) {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range storeChats {
		var msgs []conversation.Message
		for j := range 200 {
			msgs = append(msgs, conversation.Message{Role: conversation.RoleUser, Content: fmt.Sprintf("message %d of chat %d", j, i)})
		}
		if err := db.AppendTurn(context.Background(), storeChat(i), msgs...); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// scribbleChat overwrites the root page of chat's history with random bytes.
func scribbleChat(t *testing.T, path string, chat conversation.ChatID) {
	t.Helper()
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var root, size int64
	b.View(func(tx *bbolt.Tx) error {
		root = int64(tx.Bucket([]byte("chats")).Bucket([]byte(chat)).RootPage())
		return nil
	})
	size = int64(b.Info().PageSize)
	b.Close()
	if root == 0 {
		t.Fatalf("chat %s has no page of its own", chat)
	}
	junk := make([]byte, size)
	r := rand.New(rand.NewPCG(1, uint64(root)))
	for i := range junk {
		junk[i] = byte(r.Uint32())
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(junk, root*size); err != nil {
		t.Fatal(err)
	}
}

func storePath(t *testing.T, config string) string {
	t.Helper()
	cfg, err := (&Main{configPath: config, LookupEnv: env(nil)}).loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Store.Path
}

// TestServeRefusesDamagedStore: serve with a damaged store file exits 1 with a
// message that names the file and what to do, before it serves /healthz, and
// never with a panic or a fault.
func TestServeRefusesDamagedStore(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"truncated", func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"page overwritten", func(t *testing.T, path string) { scribbleChat(t, path, storeChat(2)) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tg := telegramtest.NewServer(telegramtest.Options{})
			defer tg.Close()
			ai := openaitest.NewServer()
			defer ai.Close()
			ops := freeAddr(t)
			config := writeConfig(t, ai, "telegram:\n  token: "+tg.Token+"\n  api_url: "+tg.URL+
				"\n  allowed_user_ids: [42]\nhttp:\n  listen: "+ops+"\n")
			path := storePath(t, config)
			fillStore(t, path)
			tt.damage(t, path)

			code, _, errOut := run(t, "", "serve", "-config", config)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			for _, want := range []string{
				"store file " + path + " is damaged: ",
				"restore the file from a backup",
				"chatbot store check -config " + config,
				"chatbot store repair -config " + config,
			} {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr lacks %q:\n%s", want, errOut)
				}
			}
			if strings.Contains(errOut, "goroutine") || strings.Contains(errOut, "panic") {
				t.Errorf("stderr holds a stack trace:\n%s", errOut)
			}
			if code, _ := httpGet("http://" + ops + "/healthz"); code != 0 {
				t.Errorf("/healthz answered %d with a damaged store", code)
			}
		})
	}
}

// TestStoreCheckAndRepair runs `chatbot store check` and `chatbot store
// repair` on a store with one damaged chat: check names it and fails, repair
// copies the other chats and keeps the damaged file, and the bot then opens
// the store.
func TestStoreCheckAndRepair(t *testing.T) {
	ai := openaitest.NewServer()
	defer ai.Close()
	config := writeConfig(t, ai, "")
	path := storePath(t, config)
	fillStore(t, path)

	code, out, errOut := run(t, "", "store", "check", "-config", config)
	if code != 0 || !strings.Contains(out, "sound") || !strings.Contains(out, "6 chats, 1200 messages") {
		t.Errorf("check of a sound store: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run(t, "", "store", "repair", "-config", config)
	if code != 0 || !strings.Contains(out, "nothing to repair") {
		t.Errorf("repair of a sound store: exit %d\n%s", code, out)
	}

	scribbleChat(t, path, storeChat(4))
	code, out, errOut = run(t, "", "store", "check", "-config", config)
	if code != 1 || !strings.Contains(out, "DAMAGED") || !strings.Contains(out, "damaged chats:\n  telegram:504: ") ||
		!strings.Contains(errOut, "chatbot store repair -config "+config) {
		t.Errorf("check of a damaged store: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	code, out, errOut = run(t, "", "store", "repair", "-config", config)
	if code != 0 {
		t.Fatalf("repair: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"5 chats copied whole (1000 messages", "chats lost (nothing could be read):\n  telegram:504", "kept, unchanged, at " + path + ".damaged-"} {
		if !strings.Contains(out, want) {
			t.Errorf("repair output lacks %q:\n%s", want, out)
		}
	}
	if kept, _ := filepath.Glob(path + ".damaged-*"); len(kept) != 1 {
		t.Errorf("damaged files kept: %q, want one", kept)
	}
	code, out, _ = run(t, "", "store", "check", "-config", config)
	if code != 0 || !strings.Contains(out, "5 chats, 1000 messages") {
		t.Errorf("check after the repair: exit %d\n%s", code, out)
	}
	ai.APIKey = "sk-test-key"
	if code, out, errOut := run(t, "hello\n", "chat", "-config", config); code != 0 || !strings.Contains(out, "You said: hello") {
		t.Errorf("chat after the repair: exit %d\n%s%s", code, out, errOut)
	}
}

// TestStoreCommandsNeedTheBotStopped: with the store open (a running bot),
// check and repair refuse and say why.
func TestStoreCommandsNeedTheBotStopped(t *testing.T) {
	ai := openaitest.NewServer()
	defer ai.Close()
	config := writeConfig(t, ai, "")
	path := storePath(t, config)
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, cmd := range []string{"check", "repair"} {
		code, _, errOut := run(t, "", "store", cmd, "-config", config)
		if code != 1 || !strings.Contains(errOut, "locked by another process") || !strings.Contains(errOut, "stop the bot first") {
			t.Errorf("store %s: exit %d, stderr %q", cmd, code, errOut)
		}
	}
}

func TestStoreCommandLine(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		command string
		wantErr string
	}{
		{args: []string{"store", "check", "-config", "x.yaml"}, command: "store check"},
		{args: []string{"store", "repair"}, command: "store repair"},
		{args: []string{"store"}, wantErr: `unknown command "store": use one of serve, check, chat, health, passwd, store check, store repair`},
		{args: []string{"store", "fix"}, wantErr: `unknown command "store fix"`},
		{args: []string{"store", "-config", "x.yaml"}, wantErr: `unknown command "store"`},
	} {
		m := NewMain(strings.NewReader(""), &strings.Builder{}, &strings.Builder{})
		err := m.ParseFlags(tt.args)
		switch {
		case tt.wantErr == "" && (err != nil || m.command != tt.command):
			t.Errorf("%q: command %q, err %v; want %q", tt.args, m.command, err, tt.command)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%q: err %v, want %q", tt.args, err, tt.wantErr)
		}
	}
}

// writeErrStub is a store whose write health the test sets.
type writeErrStub struct {
	mu  sync.Mutex
	err error
}

func (s *writeErrStub) WriteErr() error { s.mu.Lock(); defer s.mu.Unlock(); return s.err }
func (s *writeErrStub) set(err error)   { s.mu.Lock(); s.err = err; s.mu.Unlock() }

// TestHealthzFailsWhileStoreWritesFail: /healthz is 503 while the store's last
// write failed and 200 again once one succeeds.
func TestHealthzFailsWhileStoreWritesFail(t *testing.T) {
	s := &writeErrStub{}
	r := &readiness{store: s}
	r.storeOpen.Store(true)
	h := opsHandler(r, newMetrics())
	if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
		t.Fatalf("healthy store: %d", code)
	}
	s.set(errors.New("write data/chatbot.db: no space left on device"))
	if code, body := get(t, h, "/healthz"); code != http.StatusServiceUnavailable ||
		!strings.Contains(body, "store writes failing: write data/chatbot.db: no space left on device") {
		t.Errorf("failing writes: %d %q", code, body)
	}
	s.set(nil)
	if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("after a write succeeded: %d", code)
	}
}

// TestStoreFailuresInHealthAndMetrics uses a real store whose file is closed
// under it: the failed write makes /healthz fail and is counted in
// chatbot_store_errors_total, by operation.
func TestStoreFailuresInHealthAndMetrics(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "chatbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	met := newMetrics()
	met.watchStore(db)
	r := &readiness{store: db}
	r.storeOpen.Store(true)
	h := opsHandler(r, met)
	if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
		t.Fatalf("healthy store: %d", code)
	}
	_, body := get(t, h, "/metrics")
	if !strings.Contains(body, `chatbot_store_errors_total{op="append_turn"} 0`) {
		t.Errorf("/metrics lacks the store's error counts at zero:\n%s", body)
	}

	db.Close()
	ctx := context.Background()
	if err := db.AppendTurn(ctx, "c", conversation.Message{Role: conversation.RoleUser, Content: "hi"}); err == nil {
		t.Fatal("AppendTurn on a closed file succeeded")
	}
	db.Recent(ctx, "c", 10)
	if code, body := get(t, h, "/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "store writes failing") {
		t.Errorf("/healthz with the file closed: %d %q", code, body)
	}
	_, body = get(t, h, "/metrics")
	for _, want := range []string{
		`chatbot_store_errors_total{op="append_turn"} 1`,
		`chatbot_store_errors_total{op="read_history"} 1`,
		`chatbot_store_errors_total{op="reset"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
