package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/web"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/conversation/conversationtest"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// answer is the JSON of /send and the other POSTs.
type answer struct {
	Conversation string `json:"conversation"`
	Title        string `json:"title"`
	Turn         int64  `json:"turn"`
	Command      bool   `json:"command"`
	HTML         string `json:"html"`
	Error        string `json:"error"`
}

// send posts a message; it fails the test unless the answer is 200.
func (c *client) send(conv, text string) answer {
	c.t.Helper()
	form := url.Values{"message": {text}}
	if conv != "" {
		form.Set("conversation", conv)
	}
	resp, body := c.do("POST", "send", form)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("send %q: %s %s", text, resp.Status, body)
	}
	var a answer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		c.t.Fatalf("send answer %q: %v", body, err)
	}
	return a
}

// event is one server-sent event.
type event struct {
	ID, Name string
	Turn     struct {
		Turn   int64    `json:"turn"`
		From   int      `json:"from"`
		Blocks []string `json:"blocks"`
		Done   bool     `json:"done"`
		User   *struct {
			Text string `json:"text"`
		} `json:"user"`
	}
}

// stream is an open event stream of a conversation.
type stream struct {
	t      testing.TB
	resp   *http.Response
	events chan event
}

// stream opens the conversation's event stream; last is sent as Last-Event-ID.
func (c *client) stream(conv, last string) *stream {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", c.h.URL+"c/"+conv+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		c.t.Fatal(err)
	}
	s := &stream{t: c.t, resp: resp, events: make(chan event, 100)}
	c.t.Cleanup(func() { cancel(); resp.Body.Close() })
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Name != "" {
					s.events <- ev
				}
				ev = event{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Name = line[7:]
			case strings.HasPrefix(line, "data: "):
				json.Unmarshal([]byte(line[6:]), &ev.Turn)
			}
		}
	}()
	return s
}

// next returns the next event.
func (s *stream) next() event {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatal("stream ended")
		}
		return ev
	case <-time.After(wait):
		s.t.Fatal("no event")
	}
	return event{}
}

func (s *stream) close() { s.resp.Body.Close() }

// clock is a settable time for sessions, tokens and login limits.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func withClock(c *clock) func(*setup) {
	return func(s *setup) { s.web.Now = c.Now }
}

func TestLoggedOutHomeIsTheLoginForm(t *testing.T) {
	h := newHarness(t)
	resp, body := h.client(t).do("GET", "", nil, "Accept", "text/html")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %s", resp.Status)
	}
	for _, want := range []string{`name="username"`, `name="password"`, `type="password"`, `<button type="submit"`} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	if strings.Contains(body, `name="message"`) {
		t.Error("the login page shows the message box")
	}
}

func TestLoginWrongThenRight(t *testing.T) {
	h := newHarness(t)
	c := h.client(t)
	for _, tc := range []struct{ name, password string }{{"ana", "wrong"}, {"nobody", anaPassword}, {"ana", ""}} {
		resp, body := c.do("POST", "login", url.Values{"username": {tc.name}, "password": {tc.password}})
		if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
			t.Errorf("login %q/%q = %s with cookies %v", tc.name, tc.password, resp.Status, resp.Cookies())
		}
		if !strings.Contains(body, `name="password"`) {
			t.Errorf("a refused login does not show the form again")
		}
	}
	resp, _ := c.do("POST", "login", url.Values{"username": {"ana"}, "password": {anaPassword}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("right login = %s", resp.Status)
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "chatbot_session" {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" || session.Secure {
		t.Fatalf("session cookie = %+v", session)
	}
	if session.MaxAge != int(web.DefaultSessionTTL/time.Second) {
		t.Errorf("cookie max-age = %d", session.MaxAge)
	}
	_, body := c.do("GET", "", nil, "Accept", "text/html")
	if !strings.Contains(body, `name="message"`) || !strings.Contains(body, `aria-label="New chat"`) {
		t.Errorf("logged-in home lacks the chat: %.300s", body)
	}
}

func TestNoSessionNoModelCall(t *testing.T) {
	h := newHarness(t)
	ana := h.client(t)
	ana.login("ana", anaPassword)
	conv := ana.send("", "hello").Conversation
	waitRequests(t, h.fake, 1)

	for _, c := range []*client{h.client(t), withCookie(h.client(t), h, "chatbot_session", "forged")} {
		for _, tc := range []struct{ method, path string }{
			{"POST", "send"}, {"POST", "c/" + conv + "/stop"}, {"POST", "c/" + conv + "/regenerate"},
			{"POST", "c/" + conv + "/edit"}, {"POST", "c/" + conv + "/rename"}, {"POST", "c/" + conv + "/delete"},
			{"GET", "c/" + conv + "/events"}, {"GET", "c/" + conv + "/export"}, {"GET", "c/" + conv + "/older?before=5"},
		} {
			resp, _ := c.do(tc.method, tc.path, url.Values{"message": {"hi"}, "conversation": {conv}, "title": {"x"}})
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s without a session = %s, want 401", tc.method, tc.path, resp.Status)
			}
		}
		for _, path := range []string{"c/" + conv, "api/chat", "c/" + conv + "/file/" + strings.Repeat("0", 64)} {
			resp, _ := c.do("GET", path, nil, "Accept", "text/html")
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
				t.Errorf("GET %s without a session = %s to %q, want a redirect to the login page", path, resp.Status, resp.Header.Get("Location"))
			}
		}
		for _, path := range []string{"api/chat", "v1/chat/completions", "c/" + conv + "/messages"} {
			if resp, _ := c.do("POST", path, url.Values{"message": {"hi"}}); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("POST %s without a session = %s, want 401", path, resp.Status)
			}
		}
	}
	if n := len(h.fake.Requests()); n != 1 {
		t.Errorf("model calls = %d, want only ana's", n)
	}
}

// withCookie sets a cookie on a client.
func withCookie(c *client, h *harness, name, value string) *client {
	u, _ := url.Parse(h.URL)
	c.http.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value}})
	return c
}

func waitRequests(t *testing.T, fake *openaitest.Server, n int) []openaitest.Request {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		reqs := fake.Requests()
		if len(reqs) >= n {
			return reqs
		}
		if time.Now().After(deadline) {
			t.Fatalf("model calls = %d, want %d", len(reqs), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOtherUsersConversationsAreNotFound(t *testing.T) {
	h := newHarness(t)
	ana, bob := h.client(t), h.client(t)
	ana.login("ana", anaPassword)
	bob.login("bob", bobPassword)
	conv := ana.send("", "ana's secret").Conversation
	waitRequests(t, h.fake, 1)
	for _, path := range []string{"c/" + conv + "/events", "c/" + conv + "/export"} {
		if resp, body := bob.do("GET", path, nil); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "secret") {
			t.Errorf("bob GET %s = %s %q", path, resp.Status, body)
		}
	}
	if resp, _ := bob.do("POST", "send", url.Values{"conversation": {conv}, "message": {"hi"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("bob sends to ana's conversation: %s", resp.Status)
	}
	if resp, body := bob.do("GET", "c/"+conv, nil, "Accept", "text/html"); resp.StatusCode == http.StatusOK || strings.Contains(body, "secret") {
		t.Errorf("bob opens ana's conversation: %s", resp.Status)
	}
	if _, body := bob.do("GET", "", nil, "Accept", "text/html"); strings.Contains(body, "secret") {
		t.Error("bob's list shows ana's conversation")
	}
	if n := len(h.fake.Requests()); n != 1 {
		t.Errorf("model calls = %d, want 1", n)
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	h := newHarness(t)
	c := h.client(t)
	c.login("ana", anaPassword)
	for _, hdr := range [][]string{
		{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"},
		{"Origin", "https://evil.example", "Sec-Fetch-Site", ""},
	} {
		resp, _ := c.do("POST", "send", url.Values{"message": {"transfer all"}}, hdr...)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST with %v = %s, want 403", hdr, resp.Status)
		}
	}
	// A login form posted from elsewhere (login CSRF) is refused too.
	resp, _ := h.client(t).do("POST", "login", url.Values{"username": {"ana"}, "password": {anaPassword}}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site login = %s, want 403", resp.Status)
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Errorf("model calls = %d", n)
	}
}

// inlineCode finds script elements without src or with content, event
// handler attributes and style attributes: the CSP forbids them all.
func inlineCode(page string) string {
	for _, m := range regexp.MustCompile(`<script[^>]*>[^<]*`).FindAllString(page, -1) {
		if !strings.Contains(m, " src=") || !strings.HasSuffix(m, ">") {
			return m
		}
	}
	return regexp.MustCompile(`<[^>]*\s(on[a-z]+|style)\s*=[^>]*>`).FindString(page)
}

func TestSecurityHeadersAndNoInlineScript(t *testing.T) {
	h := newHarness(t)
	c := h.client(t)
	resp, body := c.do("GET", "", nil, "Accept", "text/html")
	check := func(what string, resp *http.Response, body string) {
		t.Helper()
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "require-trusted-types-for 'script'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %s", what, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows inline code: %q", what, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", what)
		}
		if m := inlineCode(body); m != "" {
			t.Errorf("%s: inline script or style: %q", what, m)
		}
	}
	check("login page", resp, body)
	c.login("ana", anaPassword)
	h.fake.Enqueue(openaitest.Text("hi"))
	conv := c.send("", "hello").Conversation
	waitRequests(t, h.fake, 1)
	resp, body = c.do("GET", "c/"+conv, nil, "Accept", "text/html")
	check("chat page", resp, body)
	resp, body = c.do("GET", "static/app.js", nil)
	if resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("app.js served as %q", resp.Header.Get("Content-Type"))
	}
	if strings.Contains(body, "eval(") || strings.Contains(body, "new Function") {
		t.Error("app.js evaluates strings")
	}
}

func TestSecureCookieAndSubPath(t *testing.T) {
	st := &fakeSessions{}
	w, err := web.New(web.Options{
		PublicURL: "https://chat.example.com/bot/",
		Users:     []web.User{{Name: "ana", PasswordHash: hash(t, anaPassword)}},
		Logger:    slog.New(slog.DiscardHandler),
	}, nil, st)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, path := range []string{"/bot/login", "/login"} { // with the sub-path, or taken off by the proxy
		req := httptest.NewRequest("POST", "https://chat.example.com"+path, strings.NewReader(url.Values{"username": {"ana"}, "password": {anaPassword}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://chat.example.com")
		rec := httptest.NewRecorder()
		w.ServeHTTP(rec, req)
		resp := rec.Result()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/bot/" {
			t.Fatalf("POST %s = %s to %q", path, resp.Status, resp.Header.Get("Location"))
		}
		ck := resp.Cookies()[0]
		if !ck.Secure || ck.Path != "/bot/" || !ck.HttpOnly {
			t.Errorf("cookie = %+v, want Secure, HttpOnly, Path=/bot/", ck)
		}
		if resp.Header.Get("Strict-Transport-Security") == "" {
			t.Error("no HSTS behind an https public_url")
		}
	}
	req := httptest.NewRequest("GET", "https://chat.example.com/bot/", nil)
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, req)
	body := rec.Body.String()
	for _, want := range []string{`action="/bot/login"`, `href="/bot/static/style.css?v=`, `data-base="/bot"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page at a sub-path lacks %s", want)
		}
	}
}

// fakeSessions is a web.Store that keeps sessions only.
type fakeSessions struct {
	web.Store
	mu       sync.Mutex
	sessions map[string]string
}

func (f *fakeSessions) CreateWebSession(_ context.Context, token, user string, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sessions == nil {
		f.sessions = map[string]string{}
	}
	f.sessions[token] = user
	return nil
}

func (f *fakeSessions) WebSession(_ context.Context, token string, now time.Time) (string, time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions[token], now.Add(web.DefaultSessionTTL), nil
}

func TestLoginRateLimit(t *testing.T) {
	clk := &clock{now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	h := newHarness(t, withClock(clk))
	c := h.client(t)
	login := func(name, password, addr string) int {
		resp, _ := c.do("POST", "login", url.Values{"username": {name}, "password": {password}}, "X-Forwarded-For", addr)
		return resp.StatusCode
	}
	// A right password does not count against the limit.
	for range 10 {
		if got := login("ana", anaPassword, "10.0.0.1"); got != http.StatusSeeOther {
			t.Fatalf("right login = %d", got)
		}
	}
	// Five wrong passwords for a name, then it is refused, even with the right one.
	for i := range 5 {
		if got := login("ana", "guess", fmt.Sprint("10.0.1.", i)); got != http.StatusUnauthorized {
			t.Fatalf("wrong attempt %d = %d", i+1, got)
		}
	}
	if got := login("ana", anaPassword, "10.0.2.1"); got != http.StatusTooManyRequests {
		t.Fatalf("6th attempt for ana = %d, want 429", got)
	}
	if got := login("bob", bobPassword, "10.0.2.1"); got != http.StatusSeeOther {
		t.Fatalf("bob is refused because of ana's attempts: %d", got)
	}
	clk.Add(time.Minute)
	if got := login("ana", anaPassword, "10.0.2.1"); got != http.StatusSeeOther {
		t.Fatalf("a minute later = %d, want a login", got)
	}
	// From one address: 20 attempts over many names, then refused.
	for i := range 20 {
		if got := login(fmt.Sprint("user", i), "guess", "10.9.9.9"); got != http.StatusUnauthorized {
			t.Fatalf("attempt %d from one address = %d", i+1, got)
		}
	}
	if got := login("bob", bobPassword, "10.9.9.9"); got != http.StatusTooManyRequests {
		t.Fatalf("21st attempt from one address = %d, want 429", got)
	}
}

func TestSessionSlidesExpiresAndLogsOut(t *testing.T) {
	clk := &clock{now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	h := newHarness(t, withClock(clk))
	c := h.client(t)
	c.login("ana", anaPassword)
	loggedIn := func() bool {
		_, body := c.do("GET", "", nil, "Accept", "text/html")
		return strings.Contains(body, `name="message"`)
	}
	for range 3 { // used every 29 days, it lasts
		clk.Add(29 * 24 * time.Hour)
		if !loggedIn() {
			t.Fatal("session used within 30 days ended")
		}
	}
	clk.Add(30*24*time.Hour + time.Minute)
	if loggedIn() {
		t.Fatal("session unused for 30 days still works")
	}
	c.login("ana", anaPassword)
	u, _ := url.Parse(h.URL)
	old := c.http.Jar.Cookies(u)
	if resp, _ := c.do("POST", "logout", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout = %s", resp.Status)
	}
	if loggedIn() {
		t.Fatal("logged in after logout")
	}
	c.http.Jar.SetCookies(u, old) // the old cookie is dead on the server too
	if loggedIn() {
		t.Fatal("the cookie of a logged-out session still works")
	}
}

func TestUserRemovedFromConfigIsLoggedOut(t *testing.T) {
	h := newHarness(t)
	c := h.client(t)
	c.login("ana", anaPassword)
	w, err := web.New(web.Options{PublicURL: h.URL, Users: []web.User{{Name: "bob", PasswordHash: hash(t, bobPassword)}},
		Logger: slog.New(slog.DiscardHandler)}, h.engine, h.db)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	u, _ := url.Parse(h.URL)
	req := httptest.NewRequest("GET", h.URL, nil)
	for _, ck := range c.http.Jar.Cookies(u) {
		req.AddCookie(ck)
	}
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, req)
	if strings.Contains(rec.Body.String(), `name="message"`) {
		t.Error("a user no longer in web.users is still logged in")
	}
}

// telegramSay sends text in the Telegram private chat of user 1001 through
// the engine, as the Telegram adapter does, and returns the final reply.
func telegramSay(t *testing.T, h *harness, text string) string {
	t.Helper()
	r := conversationtest.NewReply()
	err := h.engine.Handle(context.Background(), conversation.Request{
		Chat: "telegram:1001", UserID: "telegram:1001", Text: text, Private: true, Reply: r, UpdateEvery: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	final, ok := r.WaitFinal(wait)
	if !ok {
		t.Fatal("no final reply")
	}
	return final
}

var linkRE = regexp.MustCompile(`http://\S+/link/\S+`)

func TestLoginLinkWorksOnceAndBringsTheTelegramChat(t *testing.T) {
	clk := &clock{now: time.Now()}
	h := newHarness(t, withClock(clk))
	telegramSay(t, h, "my name is Ana")
	reply := telegramSay(t, h, "/web")
	link := linkRE.FindString(reply)
	if link == "" || !strings.HasPrefix(link, h.URL+"link/") {
		t.Fatalf("/web answered %q", reply)
	}
	c := h.client(t)
	// Fetching the link (as a link preview does) does not use it up.
	resp, body := c.do("GET", strings.TrimPrefix(link, h.URL), nil, "Accept", "text/html")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="link-form"`) {
		t.Fatalf("GET link = %s", resp.Status)
	}
	token := link[strings.LastIndex(link, "/")+1:]
	resp, _ = c.do("POST", "link", url.Values{"token": {token}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/c/") {
		t.Fatalf("POST link = %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	page := resp.Header.Get("Location")
	_, body = c.do("GET", page, nil, "Accept", "text/html")
	if !strings.Contains(body, "my name is Ana") || !strings.Contains(body, "You said: my name is Ana") || !strings.Contains(body, "Telegram chat") {
		t.Errorf("the Telegram chat's page lacks its history: %.500s", body)
	}
	// Continue it on the web: the model sees the Telegram history.
	conv := strings.TrimPrefix(page, "/c/")
	h.fake.Enqueue(openaitest.Text("Your name is Ana."))
	c.send(conv, "what is my name?")
	reqs := waitRequests(t, h.fake, 2)
	if got := contents(reqs[1]); !strings.Contains(got, "user:my name is Ana|assistant:You said: my name is Ana|user:what is my name?") {
		t.Errorf("web turn's context = %s", got)
	}
	waitStored(t, h, "telegram:1001", 4)
	// And the next Telegram message has the web turn in its context.
	telegramSay(t, h, "and now?")
	reqs = waitRequests(t, h.fake, 3)
	if got := contents(reqs[2]); !strings.Contains(got, "user:what is my name?|assistant:Your name is Ana.|user:and now?") {
		t.Errorf("Telegram turn's context = %s", got)
	}
	// The link works once.
	c2 := h.client(t)
	if resp, _ := c2.do("POST", "link", url.Values{"token": {token}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("second use of the link = %s, want 403", resp.Status)
	}
	// And for 10 minutes.
	reply = telegramSay(t, h, "/web")
	token2 := linkRE.FindString(reply)
	token2 = token2[strings.LastIndex(token2, "/")+1:]
	clk.Add(web.LinkTTL + time.Second)
	if resp, _ := c2.do("POST", "link", url.Values{"token": {token2}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("expired link = %s, want 403", resp.Status)
	}
	// Logging in again with a new link lists the chat once.
	clk.Add(-web.LinkTTL)
	reply = telegramSay(t, h, "/web")
	token3 := linkRE.FindString(reply)
	token3 = token3[strings.LastIndex(token3, "/")+1:]
	if resp, _ := c2.do("POST", "link", url.Values{"token": {token3}}); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != page {
		t.Errorf("a second link opens %q, want %q", resp.Header.Get("Location"), page)
	}
	_, body = c2.do("GET", "", nil, "Accept", "text/html")
	if n := strings.Count(body, "data-conversation="); n != 1 {
		t.Errorf("conversation list has %d entries, want 1", n)
	}
}

func TestLinkUserNoLongerAllowed(t *testing.T) {
	allowed := true
	h := newHarness(t, func(s *setup) { s.web.Allowed = func(string) bool { return allowed } })
	link, err := h.links.LoginLink(context.Background(), "telegram:7", "telegram:7")
	if err != nil {
		t.Fatal(err)
	}
	c := h.client(t)
	if resp, _ := c.do("POST", "link", url.Values{"token": {link[strings.LastIndex(link, "/")+1:]}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("link login = %s", resp.Status)
	}
	allowed = false
	if resp, _ := c.do("POST", "send", url.Values{"message": {"hi"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a user the platform no longer allows sends: %s", resp.Status)
	}
}

// contents lists a call's messages as "role:text|…".
func contents(req openaitest.Request) string {
	var out []string
	for _, m := range req.Messages {
		out = append(out, m.Role+":"+m.Content)
	}
	return strings.Join(out, "|")
}

// waitStored waits until chat's history holds n messages.
func waitStored(t *testing.T, h *harness, chat conversation.ChatID, n int) []conversation.Message {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		msgs, err := h.db.Recent(context.Background(), chat, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d messages, want %d", chat, len(msgs), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitDone waits until the conversation's reply is finished, as its stream
// tells the page (the engine stores a turn just before its final text).
func (c *client) waitDone(conv string) {
	c.t.Helper()
	s := c.stream(conv, "")
	defer s.close()
	for !s.next().Turn.Done {
	}
}

// chatOf finds the chat of ana's conversation id.
func chatOf(t *testing.T, h *harness, user, id string) conversation.ChatID {
	chat, _, err := h.db.WebConversation(context.Background(), user, id)
	if err != nil || chat == "" {
		t.Fatalf("conversation %s: %q %v", id, chat, err)
	}
	return chat
}

func TestStreamResumesFromLastEventID(t *testing.T) {
	h := newHarness(t)
	c := h.client(t)
	c.login("ana", anaPassword)
	words := strings.Fields("one two three four five six seven eight nine ten eleven twelve")
	release := make(chan struct{})
	h.fake.SetHandler(func(openaitest.Request) openaitest.Reply {
		<-release // the reply starts once the stream is open
		return openaitest.Reply{Tokens: openaitest.Tokenize(strings.Join(words, " ")), TokenDelay: 20 * time.Millisecond}
	})
	a := c.send("", "count")
	s := c.stream(a.Conversation, "")
	if s.resp.Header.Get("Content-Type") != "text/event-stream" || s.resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Errorf("stream headers: %v", s.resp.Header)
	}
	first := s.next()
	if first.Turn.Turn != a.Turn || first.Turn.User == nil || first.Turn.User.Text != "count" {
		t.Fatalf("first event = %+v", first)
	}
	close(release)
	var got event
	for got = s.next(); len(got.Turn.Blocks) == 0; got = s.next() {
	}
	s.close() // the connection drops mid-reply
	// Reconnecting with the last id gets the reply so far, whole, then the rest.
	s2 := c.stream(a.Conversation, got.ID)
	ev := s2.next()
	if ev.Turn.From != 0 || ev.ID == got.ID {
		t.Errorf("resumed event = %+v after %s", ev, got.ID)
	}
	var blocks []string // each event has the blocks from From on; the reply is one paragraph
	for ; ; ev = s2.next() {
		if ev.Turn.From > len(blocks) {
			t.Fatalf("an event from block %d with %d blocks shown", ev.Turn.From, len(blocks))
		}
		blocks = append(blocks[:ev.Turn.From], ev.Turn.Blocks...)
		if len(blocks) != 1 {
			t.Fatalf("one paragraph shows as %d blocks: %q", len(blocks), blocks)
		}
		if ev.Turn.Done {
			break
		}
	}
	if want := "<p>" + strings.Join(words, " ") + "</p>"; strings.TrimSpace(blocks[0]) != want {
		t.Errorf("final = %q, want %q", blocks[0], want)
	}
	// A stream that opens with the final id sends nothing more for that turn.
	s3 := c.stream(a.Conversation, ev.ID)
	select {
	case ev := <-s3.events:
		t.Errorf("stream resumed at the end sent %+v", ev)
	case <-time.After(50 * time.Millisecond):
	}
	// Without an id, a new stream gets the finished turn whole.
	if ev := c.stream(a.Conversation, "").next(); !ev.Turn.Done || ev.Turn.User == nil {
		t.Errorf("fresh stream = %+v", ev)
	}
}

func TestStreamSendsOnlyTheBlocksThatChanged(t *testing.T) {
	h := newHarness(t)
	c := h.client(t)
	c.login("ana", anaPassword)
	release := make(chan struct{})
	reply := "First paragraph.\n\nSecond paragraph.\n\nThird paragraph is longer."
	h.fake.SetHandler(func(openaitest.Request) openaitest.Reply {
		<-release
		return openaitest.Reply{Tokens: openaitest.Tokenize(reply), TokenDelay: 15 * time.Millisecond}
	})
	a := c.send("", "paragraphs")
	s := c.stream(a.Conversation, "")
	s.next()
	close(release)
	var blocks []string
	maxFrom := 0
	for {
		ev := s.next()
		if ev.Turn.From > len(blocks) {
			t.Fatalf("event from %d with %d blocks known", ev.Turn.From, len(blocks))
		}
		blocks = append(blocks[:ev.Turn.From], ev.Turn.Blocks...)
		maxFrom = max(maxFrom, ev.Turn.From)
		if ev.Turn.Done {
			break
		}
	}
	if len(blocks) != 3 || !strings.Contains(blocks[2], "Third paragraph is longer.") {
		t.Errorf("final blocks = %q", blocks)
	}
	if maxFrom == 0 {
		t.Error("every event resent the whole reply")
	}
}

// multipartSend posts a message with files.
func (c *client) multipartSend(conv, text string, files map[string][]byte) (*http.Response, string) {
	c.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("message", text)
	if conv != "" {
		mw.WriteField("conversation", conv)
	}
	for name, data := range files {
		hd := textproto.MIMEHeader{}
		hd.Set("Content-Disposition", fmt.Sprintf(`form-data; name="files"; filename=%q`, name))
		hd.Set("Content-Type", "application/octet-stream")
		w, _ := mw.CreatePart(hd)
		w.Write(data)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", c.h.URL+"send", &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", strings.TrimSuffix(c.h.srv.URL, "/"))
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// png1x1 is a one-pixel PNG.
var png1x1 = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")

func TestAttachments(t *testing.T) {
	h := newHarness(t, func(s *setup) { s.web.MaxFileBytes = 2000 })
	c := h.client(t)
	c.login("ana", anaPassword)
	resp, body := c.multipartSend("", "too big", map[string][]byte{"big.txt": bytes.Repeat([]byte("a"), 2001)})
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "big.txt") {
		t.Errorf("a file over the limit = %s %s", resp.Status, body)
	}
	resp, body = c.multipartSend("", "what is this?", map[string][]byte{"dot.png": png1x1, "notes.txt": []byte("remember the milk")})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("send with files = %s %s", resp.Status, body)
	}
	var a answer
	json.Unmarshal([]byte(body), &a)
	reqs := waitRequests(t, h.fake, 1)
	last := reqs[0].Messages[len(reqs[0].Messages)-1]
	if len(last.Images) != 1 || !strings.Contains(last.Content, "remember the milk") {
		t.Errorf("model got %+v", last)
	}
	msgs := waitStored(t, h, chatOf(t, h, "web:ana", a.Conversation), 2)
	sha := msgs[0].Attachments[0].SHA256
	resp, body = c.do("GET", "c/"+a.Conversation+"/file/"+sha, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" || body != string(png1x1) {
		t.Errorf("file = %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "sandbox") {
		t.Errorf("file CSP = %q", csp)
	}
	_, page := c.do("GET", "c/"+a.Conversation, nil, "Accept", "text/html")
	if !strings.Contains(page, "/file/"+sha) {
		t.Error("the page does not show the picture")
	}
	if n := len(h.fake.Requests()); n != 1 {
		t.Errorf("model calls = %d: the refused file reached the model", n)
	}
}

func TestRenameExportDelete(t *testing.T) {
	h := newHarness(t)
	c := h.client(t)
	c.login("ana", anaPassword)
	a := c.send("", "First question\nwith a second line")
	if a.Title != "First question" {
		t.Errorf("title = %q", a.Title)
	}
	chat := chatOf(t, h, "web:ana", a.Conversation)
	waitStored(t, h, chat, 2)
	if resp, body := c.do("POST", "c/"+a.Conversation+"/rename", url.Values{"title": {"Renamed <b>chat</b>"}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("rename = %s %s", resp.Status, body)
	}
	_, page := c.do("GET", "", nil, "Accept", "text/html")
	if !strings.Contains(page, "Renamed &lt;b&gt;chat&lt;/b&gt;") {
		t.Error("the list does not show the new title, escaped")
	}
	resp, md := c.do("GET", "c/"+a.Conversation+"/export", nil)
	if !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") || !strings.Contains(md, "# Renamed <b>chat</b>") ||
		!strings.Contains(md, "First question\nwith a second line") || !strings.Contains(md, "You said: First question") {
		t.Errorf("export = %s\n%s", resp.Header.Get("Content-Disposition"), md)
	}
	if resp, _ := c.do("POST", "c/"+a.Conversation+"/delete", url.Values{}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete = %s", resp.Status)
	}
	if msgs, _ := h.db.Recent(context.Background(), chat, 10); len(msgs) != 0 {
		t.Errorf("history after delete = %d messages", len(msgs))
	}
	if resp, _ := c.do("GET", "c/"+a.Conversation, nil, "Accept", "text/html"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("deleted conversation = %s", resp.Status)
	}
}

func TestRegenerateAndEdit(t *testing.T) {
	h := newHarness(t)
	c := h.client(t)
	c.login("ana", anaPassword)
	a := c.send("", "first")
	chat := chatOf(t, h, "web:ana", a.Conversation)
	c.waitDone(a.Conversation)
	c.send(a.Conversation, "second")
	c.waitDone(a.Conversation)
	h.fake.Enqueue(openaitest.Text("another answer"))
	if resp, body := c.do("POST", "c/"+a.Conversation+"/regenerate", url.Values{}); resp.StatusCode != http.StatusOK {
		t.Fatalf("regenerate = %s %s", resp.Status, body)
	}
	reqs := waitRequests(t, h.fake, 3)
	if got := contents(reqs[2]); got != "user:first|assistant:You said: first|user:second" {
		t.Errorf("regenerate's context = %s", got)
	}
	c.waitDone(a.Conversation)
	if msgs, _ := h.db.Recent(context.Background(), chat, 10); len(msgs) != 4 || msgs[3].Content != "another answer" {
		t.Fatalf("after regenerate the history is %+v", msgs)
	}
	if resp, body := c.do("POST", "c/"+a.Conversation+"/edit", url.Values{"message": {"second, edited"}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("edit = %s %s", resp.Status, body)
	}
	reqs = waitRequests(t, h.fake, 4)
	if got := contents(reqs[3]); got != "user:first|assistant:You said: first|user:second, edited" {
		t.Errorf("edit's context = %s", got)
	}
	waitFor(t, func() bool {
		msgs, _ := h.db.Recent(context.Background(), chat, 10)
		return len(msgs) == 4 && msgs[3].Content == "You said: second, edited"
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBusyConversationRefusesASecondMessage(t *testing.T) {
	h := newHarness(t)
	c := h.client(t)
	c.login("ana", anaPassword)
	h.fake.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize("slow reply here"), Stall: true, StallAfter: 1})
	a := c.send("", "first")
	waitRequests(t, h.fake, 1)
	resp, body := c.do("POST", "send", url.Values{"conversation": {a.Conversation}, "message": {"second"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "Still answering") {
		t.Errorf("second message while answering = %s %s", resp.Status, body)
	}
	// Commands are answered at once; /stop ends the reply.
	if got := c.send(a.Conversation, "/stop"); !got.Command || !strings.Contains(got.HTML, "Stopped") {
		t.Errorf("/stop = %+v", got)
	}
	waitFor(t, func() bool { return h.fake.Canceled() == 1 })
}

func TestCommandsAnswerAtOnce(t *testing.T) {
	h := newHarness(t, func(s *setup) {
		s.web.Models = []string{"gpt-5.4-mini", "gpt-5.5"}
		s.engine.Models = s.web.Models
	})
	h.fake.Models = append(h.fake.Models, "gpt-5.5")
	c := h.client(t)
	c.login("ana", anaPassword)
	if a := c.send("", "/help"); !a.Command || a.Conversation != "" || !strings.Contains(a.HTML, "/reset") {
		t.Errorf("/help in a new chat = %+v", a)
	}
	a := c.send("", "hi")
	c.waitDone(a.Conversation)
	if got := c.send(a.Conversation, "/model gpt-5.5"); !strings.Contains(got.HTML, "gpt-5.5") {
		t.Errorf("/model = %+v", got)
	}
	_, page := c.do("GET", "c/"+a.Conversation, nil, "Accept", "text/html")
	if !regexp.MustCompile(`<option value="gpt-5.5" selected>`).MatchString(page) {
		t.Error("the model picker does not show the conversation's model")
	}
	c.send(a.Conversation, "next")
	if reqs := waitRequests(t, h.fake, 2); reqs[1].Model != "gpt-5.5" {
		t.Errorf("model = %q", reqs[1].Model)
	}
	// A new chat takes the model picked before its first message.
	form := url.Values{"message": {"hello"}, "model": {"gpt-5.5"}}
	if resp, body := c.do("POST", "send", form); resp.StatusCode != http.StatusOK {
		t.Fatalf("send = %s %s", resp.Status, body)
	}
	if reqs := waitRequests(t, h.fake, 3); reqs[2].Model != "gpt-5.5" {
		t.Errorf("new chat's model = %q", reqs[2].Model)
	}
}

func TestOlderMessagesLoadInPages(t *testing.T) {
	h := newHarness(t)
	c := h.client(t)
	c.login("ana", anaPassword)
	a := c.send("", "message 0")
	chat := chatOf(t, h, "web:ana", a.Conversation)
	c.waitDone(a.Conversation)
	for i := 1; i < 250; i++ { // 500 messages
		h.db.AppendTurn(context.Background(), chat,
			conversation.Message{Role: conversation.RoleUser, Content: fmt.Sprint("message ", i)},
			conversation.Message{Role: conversation.RoleAssistant, Content: fmt.Sprint("answer ", i)})
	}
	_, page := c.do("GET", "c/"+a.Conversation, nil, "Accept", "text/html")
	if n := strings.Count(page, `data-role=`); n != 40 {
		t.Errorf("first page shows %d messages, want 40", n)
	}
	if !strings.Contains(page, "answer 249") || strings.Contains(page, ">message 229<") {
		t.Error("first page is not the newest 40")
	}
	before := regexp.MustCompile(`data-before="(\d+)"`).FindStringSubmatch(page)
	seen := 40
	for before != nil {
		_, body := c.do("GET", "c/"+a.Conversation+"/older?before="+before[1], nil)
		var older struct {
			HTML   string `json:"html"`
			Before uint64 `json:"before"`
		}
		json.Unmarshal([]byte(body), &older)
		seen += strings.Count(older.HTML, `data-role=`)
		if older.Before == 0 {
			if !strings.Contains(older.HTML, ">message 0<") {
				t.Error("the last page lacks the first message")
			}
			break
		}
		before[1] = fmt.Sprint(older.Before)
	}
	if seen != 500 {
		t.Errorf("pages showed %d messages, want 500", seen)
	}
}

func TestPasswordHash(t *testing.T) {
	h, err := web.HashPassword("s3cret pass")
	if err != nil {
		t.Fatal(err)
	}
	if err := web.CheckHash(h); err != nil {
		t.Errorf("CheckHash(%q) = %v", h, err)
	}
	for _, bad := range []string{"", "s3cret pass", "$2a$10$short"} {
		if web.CheckHash(bad) == nil {
			t.Errorf("CheckHash(%q) accepted", bad)
		}
	}
	if _, err := web.HashPassword(""); err == nil {
		t.Error("empty password hashed")
	}
	if _, err := web.HashPassword(strings.Repeat("x", 73)); err == nil {
		t.Error("a password bcrypt would cut was hashed")
	}
}

// syncBuffer is a log sink safe for concurrent writes.
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

// TestOwnerLinkOnFirstRun: with no web.users, Serve logs a one-time login
// link for the owner; with users, it logs none and that identity is refused.
func TestOwnerLinkOnFirstRun(t *testing.T) {
	h := newHarness(t)
	for _, users := range [][]web.User{nil, {{Name: "ana", PasswordHash: hash(t, anaPassword)}}} {
		var logs syncBuffer
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		public := "http://" + ln.Addr().String() + "/"
		w, err := web.New(web.Options{PublicURL: public, Users: users, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, h.engine, h.db)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Serve(ctx, ln) }()
		waitFor(t, w.Ready)
		link := regexp.MustCompile(`url=(\S+/link/\S+)`).FindStringSubmatch(logs.String())
		c := &client{t: t, h: &harness{URL: public, srv: &httptest.Server{URL: strings.TrimSuffix(public, "/")}}, http: h.client(t).http}
		if users != nil {
			if link != nil {
				t.Errorf("with users, the log shows a login link: %s", logs.String())
			}
		} else {
			if link == nil {
				t.Fatalf("no login link in the log: %s", logs.String())
			}
			resp, _ := c.do("POST", "link", url.Values{"token": {link[1][strings.LastIndex(link[1], "/")+1:]}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("owner's link = %s", resp.Status)
			}
			if _, body := c.do("GET", "", nil, "Accept", "text/html"); !strings.Contains(body, `name="message"`) {
				t.Error("the owner's link does not log in")
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	}
}

func TestDrawnPictureStaysAfterReload(t *testing.T) {
	h := newHarness(t)
	c := h.client(t)
	c.login("ana", anaPassword)
	a := c.send("", "/image a red square")
	if a.Command || a.Turn == 0 {
		t.Fatalf("/image is a turn: %+v", a)
	}
	c.waitDone(a.Conversation)
	_, page := c.do("GET", "c/"+a.Conversation, nil, "Accept", "text/html")
	src := regexp.MustCompile(`<figure class="drawn"><a href="([^"]+)"`).FindStringSubmatch(page)
	if src == nil {
		t.Fatalf("the page does not show the picture: %.2000s", page)
	}
	resp, body := c.do("GET", strings.TrimPrefix(src[1], "/"), nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" || len(body) == 0 {
		t.Errorf("picture = %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	if imgs := h.fake.ImageCalls(); len(imgs) != 1 || imgs[0].Prompt != "a red square" {
		t.Errorf("image calls = %+v", imgs)
	}
}
