package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/bots/web"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/conversation/conversationtest"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

func TestPasswd(t *testing.T) {
	for _, in := range []string{"correct horse\n", "correct horse\r\n", "correct horse"} {
		code, out, errOut := run(t, in, "passwd")
		if code != 0 {
			t.Fatalf("passwd %q: exit %d: %s", in, code, errOut)
		}
		hash := strings.TrimSuffix(out, "\n")
		if strings.Contains(hash, "\n") || errOut != "" {
			t.Errorf("passwd printed more than the hash: %q, stderr %q", out, errOut)
		}
		if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse")); err != nil {
			t.Errorf("hash of %q does not match: %v", in, err)
		}
	}
	if code, out, errOut := run(t, "\n", "passwd"); code == 0 || out != "" || !strings.Contains(errOut, "empty") {
		t.Errorf("empty password: exit %d, %q, %q", code, out, errOut)
	}
}

func TestWebConfig(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	cfg, err := parseConfig([]byte("web:\n  listen: 127.0.0.1:8080\n  public_url: https://chat.example.com/bot\n  users:\n    - name: ana\n      password_hash: '"+string(hash)+"'\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Web.Listen != "127.0.0.1:8080" || cfg.Web.PublicURL != "https://chat.example.com/bot" || len(cfg.Web.Users) != 1 || cfg.Web.Users[0].Name != "ana" {
		t.Errorf("web = %+v", cfg.Web)
	}
	for _, tc := range []struct{ yaml, key string }{
		{"web:\n  listen: :8080\n  public_url: ftp://x\n", "web.public_url"},
		{"web:\n  listen: nonsense\n", "web.listen"},
		{"web:\n  users:\n    - name: ana\n      password_hash: plain\n", "web.users[0].password_hash"},
		{"web:\n  users:\n    - name: 'a:b'\n      password_hash: '" + string(hash) + "'\n", "web.users[0].name"},
		{"web:\n  users:\n    - name: a\n      password_hash: '" + string(hash) + "'\n    - name: a\n      password_hash: '" + string(hash) + "'\n", "web.users[1].name"},
		{"web:\n  port: 1\n", "web.port"},
	} {
		if _, err := parseConfig([]byte(tc.yaml), env(nil)); err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: err = %v, want it to name %s", tc.yaml, err, tc.key)
		}
	}
}

// TestServeWebChat runs `chatbot serve` with the web chat alongside
// Telegram: the page logs a user in and answers.
func TestServeWebChat(t *testing.T) {
	tg := telegramtest.NewServer(telegramtest.Options{})
	defer tg.Close()
	ai := openaitest.NewServer()
	defer ai.Close()
	addr := freeAddr(t)
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	path := writeConfig(t, ai, "telegram:\n  token: "+tg.Token+"\n  api_url: "+tg.URL+"\n  allowed_user_ids: [42]\n"+
		"web:\n  listen: "+addr+"\n  users:\n    - name: ana\n      password_hash: '"+string(hash)+"'\n")
	m := NewMain(strings.NewReader(""), io.Discard, io.Discard)
	m.LookupEnv = env(map[string]string{"TEST_KEY": "sk-test-key"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exit := make(chan int, 1)
	go func() { exit <- m.Main(ctx, []string{"serve", "-config", path}) }()

	base := "http://" + addr + "/"
	eventually(t, "the page", func() bool {
		code, body := httpGet(base)
		return code == 200 && strings.Contains(body, `name="password"`)
	})
	c := newWebClient()
	if resp := c.post(t, base+"login", url.Values{"username": {"ana"}, "password": {"pw"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login = %s", resp.Status)
	}
	resp := c.post(t, base+"send", url.Values{"message": {"hello web"}})
	var sent struct{ Conversation string }
	json.NewDecoder(resp.Body).Decode(&sent)
	eventually(t, "the reply on the page", func() bool {
		return strings.Contains(c.get(t, base+"c/"+sent.Conversation), "You said: hello web")
	})
	cancel()
	if code := <-exit; code != 0 {
		t.Errorf("exit = %d", code)
	}
}

// TestWebLinksWired: with the web chat on, the engine answers /web in a
// private chat with a link to web.public_url that logs the user in with
// their chat.
func TestWebLinksWired(t *testing.T) {
	ai := openaitest.NewServer()
	defer ai.Close()
	path := writeConfig(t, ai, "telegram:\n  token: 1:x\n  allowed_user_ids: [42]\nweb:\n  listen: 127.0.0.1:0\n  public_url: https://chat.example.com/bot/\n")
	m := NewMain(strings.NewReader(""), io.Discard, io.Discard)
	m.configPath = path
	m.LookupEnv = env(map[string]string{"TEST_KEY": "sk-test-key"})
	cfg, err := m.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close(time.Second)
	r := conversationtest.NewReply()
	err = c.engine.Handle(context.Background(), conversation.Request{Chat: "telegram:42", UserID: "telegram:42", Text: "/web", Private: true, Reply: r})
	if err != nil {
		t.Fatal(err)
	}
	final, _ := r.WaitFinal(10 * time.Second)
	link := regexp.MustCompile(`https://chat.example.com/bot/link/\S+`).FindString(final)
	if link == "" {
		t.Fatalf("/web answered %q", final)
	}
	user, chat, err := c.db.(web.Store).TakeWebLoginToken(context.Background(), link[strings.LastIndex(link, "/")+1:], time.Now())
	if err != nil || user != "telegram:42" || chat != "telegram:42" {
		t.Errorf("token = %q %q %v", user, chat, err)
	}
	if allows := platformAllows(cfg); !allows("telegram:42") || allows("telegram:43") || allows("slack:U1") || allows("web:x") {
		t.Error("platformAllows does not follow the allowlists")
	}
}

func TestServeWebAloneIsEnough(t *testing.T) {
	ai := openaitest.NewServer()
	defer ai.Close()
	addr := freeAddr(t)
	path := writeConfig(t, ai, "web:\n  listen: "+addr+"\n")
	var errOut bytes.Buffer
	m := NewMain(strings.NewReader(""), io.Discard, &errOut)
	m.LookupEnv = env(map[string]string{"TEST_KEY": "sk-test-key"})
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	go func() { exit <- m.Main(ctx, []string{"-config", path}) }()
	eventually(t, "the page", func() bool { code, _ := httpGet("http://" + addr + "/"); return code == 200 })
	cancel()
	if code := <-exit; code != 0 {
		t.Errorf("exit = %d: %s", code, errOut.String())
	}
}

// webClient is a browser without a page.
type webClient struct{ http *http.Client }

func newWebClient() *webClient {
	jar, _ := cookiejar.New(nil)
	return &webClient{http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *webClient) post(t *testing.T, u string, form url.Values) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (c *webClient) get(t *testing.T, u string) string {
	t.Helper()
	resp, err := c.http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
