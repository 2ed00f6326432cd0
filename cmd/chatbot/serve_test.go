package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store"
)

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// eventually polls cond for up to 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func httpGet(url string) (int, string) {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeTelegramWithHealthAndMetrics runs `chatbot serve` against the fake
// Telegram and the fake model: /healthz turns ready once polling works, a message
// is answered, /metrics counts the turn and the platform calls, and a cancelled
// context (the signal) ends serve with exit code 0.
func TestServeTelegramWithHealthAndMetrics(t *testing.T) {
	tg := telegramtest.NewServer(telegramtest.Options{})
	defer tg.Close()
	ai := openaitest.NewServer()
	defer ai.Close()
	ops := freeAddr(t)
	path := writeConfig(t, ai, "telegram:\n  token: "+tg.Token+"\n  api_url: "+tg.URL+
		"\n  allowed_user_ids: [42]\nhttp:\n  listen: "+ops+"\n")

	var out, errOut bytes.Buffer
	m := NewMain(strings.NewReader(""), &out, &errOut)
	m.LookupEnv = env(map[string]string{"TEST_KEY": "sk-test-key"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exit := make(chan int, 1)
	go func() { exit <- m.Main(ctx, []string{"serve", "-config", path}) }()

	eventually(t, "/healthz to be ready", func() bool { code, _ := httpGet("http://" + ops + "/healthz"); return code == 200 })
	user := telegramtest.User{ID: 42, FirstName: "Ana"}
	tg.Inject(telegramtest.Incoming{From: user, Text: "hello bot"})
	eventually(t, "the reply", func() bool {
		msgs := tg.BotMessages(42)
		return len(msgs) == 1 && msgs[0].Last().Text == "You said: hello bot"
	})
	eventually(t, "the turn in /metrics", func() bool {
		_, body := httpGet("http://" + ops + "/metrics")
		return strings.Contains(body, `chatbot_turns_total{outcome="ok"} 1`) &&
			strings.Contains(body, `chatbot_platform_calls_total{method="sendMessage",platform="telegram",status="200"}`) &&
			strings.Contains(body, `method="getUpdates"`) &&
			strings.Contains(body, "chatbot_model_concurrency_limit 64") // the adaptive limit's start
	})
	if _, body := httpGet("http://" + ops + "/metrics"); strings.Contains(body, tg.Token) {
		t.Error("/metrics shows the bot token")
	}
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit %d: %s", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop after the signal")
	}
	if strings.Contains(errOut.String(), tg.Token) || strings.Contains(errOut.String(), "sk-test-key") {
		t.Error("a secret reached the logs")
	}
}

// TestServeTellsChatsTheirReplyWasInterrupted: a reply mark left in the store by
// a crash makes the next start send the chat a note, once.
func TestServeTellsChatsTheirReplyWasInterrupted(t *testing.T) {
	tg := telegramtest.NewServer(telegramtest.Options{})
	defer tg.Close()
	ai := openaitest.NewServer()
	defer ai.Close()
	path := writeConfig(t, ai, "telegram:\n  token: "+tg.Token+"\n  api_url: "+tg.URL+"\n  allowed_user_ids: [42]\n")
	cfg, err := (&Main{configPath: path, LookupEnv: env(nil)}).loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(cfg.Store.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tg.AddChat(telegramtest.PrivateChat(telegramtest.User{ID: 42, FirstName: "Ana"})) // they talked before
	db.MarkPending(context.Background(), "telegram:42")                               // as a crash mid-reply leaves it
	db.Close()

	serveFor := func(starts int) {
		ctx, cancel := context.WithCancel(context.Background())
		exit := make(chan int, 1)
		var errOut bytes.Buffer
		m := NewMain(strings.NewReader(""), &bytes.Buffer{}, &errOut)
		m.LookupEnv = env(map[string]string{"TEST_KEY": "k"})
		go func() { exit <- m.Main(ctx, []string{"serve", "-config", path}) }()
		// Run registers the commands after the start-up notes went out.
		eventually(t, "the start", func() bool { return len(tg.CallsTo("setMyCommands")) >= starts })
		cancel()
		if code := <-exit; code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
	}
	serveFor(1)
	serveFor(2) // a second start must not repeat the note
	msgs := tg.BotMessages(42)
	if len(msgs) != 1 || msgs[0].Last().Text != conversation.InterruptedText {
		t.Errorf("chat 42 got %+v, want the interrupted note once", msgs)
	}
}
