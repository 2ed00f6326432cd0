package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/chatbot-dev/chatbot/bots/web"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store"
)

// wait bounds what a test waits for; nothing a test checks depends on it.
const wait = 20 * time.Second

// The test users and their passwords.
const (
	anaPassword = "correct horse battery"
	bobPassword = "bob's secret"
)

// harness is the web chat on the real engine, store and OpenAI client,
// talking to the fake OpenAI, served on loopback.
type harness struct {
	fake   *openaitest.Server
	db     *store.DB
	engine *conversation.Engine
	web    *web.Server
	links  *web.Links
	srv    *httptest.Server
	// URL is the page's address, ending in a slash.
	URL string
}

// setup tunes a harness before it starts.
type setup struct {
	web    web.Options
	engine conversation.Config
	base   string // the sub-path, e.g. "/chat"
	// modelHTTP, when set, is the model client's transport.
	modelHTTP *http.Client
}

func hash(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func newHarness(t testing.TB, tune ...func(*setup)) *harness {
	t.Helper()
	fake := openaitest.NewServer()
	t.Cleanup(fake.Close)
	db, err := store.Open(filepath.Join(t.TempDir(), "chat.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tokens, err := openai.NewTokenCounter("gpt-5.4-mini")
	if err != nil {
		t.Fatal(err)
	}
	st := &setup{
		web: web.Options{
			Users:  []web.User{{Name: "ana", PasswordHash: hash(t, anaPassword)}, {Name: "bob", PasswordHash: hash(t, bobPassword)}},
			Logger: slog.New(slog.DiscardHandler),
		},
		engine: conversation.Config{Logger: slog.New(slog.DiscardHandler)},
	}
	for _, f := range tune {
		f(st)
	}

	model := openai.New(openai.Options{BaseURL: fake.BaseURL(), APIKey: "k", Model: "gpt-5.4-mini", BackoffBase: time.Millisecond, HTTPClient: st.modelHTTP})
	var handler http.Handler = http.NotFoundHandler()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	public := "http://" + srv.Listener.Addr().String() + st.base + "/"
	st.web.PublicURL = public
	links := web.NewLinks(public, db)
	st.engine.Settings, st.engine.Images, st.engine.Transcriber = db, model, model
	st.engine.WebLinks = links
	engine := conversation.New(st.engine, db, model, tokens)
	w, err := web.New(st.web, engine, db)
	if err != nil {
		t.Fatal(err)
	}
	handler = w
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		engine.Shutdown(ctx)
		w.Close()
		srv.Close()
	})
	return &harness{fake: fake, db: db, engine: engine, web: w, links: links, srv: srv, URL: public}
}

// client is a browser without a page: a cookie jar and an Origin header on
// POSTs, as a browser sends them.
type client struct {
	t    testing.TB
	h    *harness
	http *http.Client
}

func (h *harness) client(t testing.TB) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, h: h, http: &http.Client{
		Jar: jar, Timeout: wait,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends a request to path (relative to the page) and returns the answer
// with its body read.
func (c *client) do(method, path string, form url.Values, header ...string) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.h.URL+strings.TrimPrefix(path, "/"), body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method == http.MethodPost {
		req.Header.Set("Origin", strings.TrimSuffix(c.h.srv.URL, "/"))
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// login logs in with a password and fails the test unless it works.
func (c *client) login(name, password string) {
	c.t.Helper()
	resp, body := c.do("POST", "login", url.Values{"username": {name}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("login %s: %s %s", name, resp.Status, body)
	}
}
