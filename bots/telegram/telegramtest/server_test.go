package telegramtest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

func TestParseHTML(t *testing.T) {
	tests := []struct {
		html, text, err string
		ents            []MessageEntity
	}{
		{html: "plain", text: "plain"},
		{html: "<b>bold</b> &amp; &lt;i&gt; &quot;q&quot; &#65;&#x1F600;", text: "bold & <i> \"q\" A😀",
			ents: []MessageEntity{{Type: "bold", Offset: 0, Length: 4}}},
		{html: `<a href="https://x.io/?a=1&amp;b=2">link</a>`, text: "link",
			ents: []MessageEntity{{Type: "text_link", Offset: 0, Length: 4, URL: "https://x.io/?a=1&b=2"}}},
		{html: `<pre><code class="language-go">x</code></pre>`, text: "x",
			ents: []MessageEntity{{Type: "pre", Offset: 0, Length: 1, Language: "go"}}},
		{html: "😀<i>é</i>", text: "😀é", ents: []MessageEntity{{Type: "italic", Offset: 2, Length: 1}}},
		{html: `<span class="tg-spoiler">s</span><blockquote expandable>q</blockquote>`, text: "sq",
			ents: []MessageEntity{{Type: "spoiler", Offset: 0, Length: 1}, {Type: "expandable_blockquote", Offset: 1, Length: 1}}},
		{html: "hello world <foo>", err: `Unsupported start tag "foo" at byte offset 12`},
		{html: "<b>x</i>", err: `Unmatched end tag at byte offset 4, expected "</b>", found "</i>"`},
		{html: "<b>x", err: `Can't find end tag corresponding to start tag "b"`},
		{html: "x</b>", err: "Unexpected end tag at byte offset 1"},
		{html: "a <b", err: "Unclosed start tag at byte offset 2"},
		{html: "a & b", err: `Character '&' is reserved and must be escaped as "&amp;" at byte offset 2`},
		{html: "a &nbsp; b", err: `Unsupported HTML entity "&nbsp;" at byte offset 2`},
		{html: "a > b", err: `Character '>' is reserved and must be escaped as "&gt;" at byte offset 2`},
		{html: `<span class="x">a</span>`, err: `Tag "span" must have class "tg-spoiler" at byte offset 0`},
	}
	for _, tt := range tests {
		text, ents, err := ParseHTML(tt.html)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseHTML(%q) error = %v, want %q", tt.html, err, tt.err)
			}
			continue
		}
		if err != nil || text != tt.text || !sameEntities(ents, tt.ents) {
			t.Errorf("ParseHTML(%q) = %q, %+v, %v; want %q, %+v", tt.html, text, ents, err, tt.text, tt.ents)
		}
	}
}

func TestFinishTextTrimsLikeTelegram(t *testing.T) {
	text, ents := finishText("\n  <tab>\tend \r\n ", nil)
	if text != "<tab> end" || len(ents) != 0 {
		t.Errorf("got %q %+v", text, ents)
	}
	// An entity starts after its white space, which is then trimmed from the start.
	text, ents = finishText("  code\n ", []MessageEntity{{Type: "pre", Offset: 0, Length: 8}})
	if text != "code" || len(ents) != 1 || ents[0].Offset != 0 || ents[0].Length != 4 {
		t.Errorf("got %q %+v", text, ents)
	}
}

func TestCheckNesting(t *testing.T) {
	ok := []MessageEntity{{Type: "bold", Offset: 0, Length: 5}, {Type: "text_link", Offset: 1, Length: 2, URL: "https://x"}}
	if err := CheckNesting(ok); err != nil {
		t.Error(err)
	}
	bad := []MessageEntity{{Type: "text_link", Offset: 0, Length: 5}, {Type: "code", Offset: 1, Length: 2}}
	if err := CheckNesting(bad); err == nil {
		t.Error("code inside a link passed")
	}
}

// call posts form values to a method and decodes the answer.
func call(t *testing.T, s *Server, method string, form url.Values) (status int, a struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}) {
	t.Helper()
	resp, err := http.PostForm(s.URL+"/bot"+s.Token+"/"+method, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("%s: %v in %s", method, err, body)
	}
	return resp.StatusCode, a
}

func TestErrorsAsTelegramWordsThem(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	u := User{ID: 7, FirstName: "U"}
	s.AddChat(PrivateChat(u))

	resp, _ := http.Get(s.URL + "/bot123:wrong/getMe")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || strings.TrimSpace(string(body)) != `{"ok":false,"error_code":401,"description":"Unauthorized"}` {
		t.Errorf("wrong token: %d %s", resp.StatusCode, body)
	}
	if st, a := call(t, s, "noSuchMethod", nil); st != 404 || a.Description != "Not Found" {
		t.Errorf("unknown method: %d %+v", st, a)
	}
	if _, a := call(t, s, "sendMessage", url.Values{"chat_id": {"99"}, "text": {"x"}}); a.Description != "Bad Request: chat not found" {
		t.Errorf("unknown chat: %+v", a)
	}
	_, a := call(t, s, "sendMessage", url.Values{"chat_id": {"7"}, "text": {"hello world <foo>"}, "parse_mode": {"HTML"}})
	if a.Description != `Bad Request: can't parse entities: Unsupported start tag "foo" at byte offset 12` {
		t.Errorf("bad HTML: %+v", a)
	}
	if _, a := call(t, s, "sendMessage", url.Values{"chat_id": {"7"}, "text": {strings.Repeat("😀", 2049)}}); a.Description != "Bad Request: message is too long" {
		t.Errorf("4098 UTF-16 units: %+v", a)
	}
	_, a = call(t, s, "sendMessage", url.Values{"chat_id": {"7"}, "text": {strings.Repeat("😀", 2048)}})
	if !a.OK {
		t.Fatalf("4096 UTF-16 units refused: %+v", a)
	}
	var m Message
	_ = json.Unmarshal(a.Result, &m)
	edit := url.Values{"chat_id": {"7"}, "message_id": {"1"}, "text": {"<b>x</b>"}, "parse_mode": {"HTML"}}
	if _, a := call(t, s, "editMessageText", edit); !a.OK {
		t.Fatalf("edit: %+v", a)
	}
	if _, a := call(t, s, "editMessageText", edit); a.Description != "Bad Request: "+NotModified {
		t.Errorf("same edit: %+v", a)
	}
	s.SetFlood(FloodLimits{Private: Limit{Max: 1, Per: time.Hour}})
	edit.Set("text", "y")
	st, a := call(t, s, "editMessageText", edit)
	if st != 429 || a.Description != "Too Many Requests: retry after 3600" || a.Parameters.RetryAfter != 3600 {
		t.Errorf("flood: %d %+v", st, a)
	}
	if got := s.BotMessages(7)[0]; got.ID != m.MessageID || len(got.Versions) != 2 || got.Last().Text != "x" {
		t.Errorf("history: %+v", got)
	}
}

func TestEncodings(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.AddChat(PrivateChat(User{ID: 7}))
	// JSON body.
	resp, err := http.Post(s.URL+"/bot"+s.Token+"/sendMessage", "application/json",
		strings.NewReader(`{"chat_id": 7, "text": "json", "reply_parameters": {"message_id": 5, "allow_sending_without_reply": true}}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("JSON: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	// Query string.
	resp, err = http.Get(s.URL + "/bot" + s.Token + "/sendMessage?chat_id=7&text=query")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("query: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	// Multipart, through go-telegram/bot.
	b, err := bot.New(s.Token, bot.WithServerURL(s.URL), bot.WithSkipGetMe())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: 7, Text: "<i>multipart</i>", ParseMode: models.ParseModeHTML}); err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range s.BotMessages(7) {
		texts = append(texts, m.Last().Text)
	}
	if strings.Join(texts, ",") != "json,query,multipart" {
		t.Errorf("messages: %q", texts)
	}
	s.SetFault(func(c Call) *APIError { return TooManyRequests(7) })
	_, err = b.SendMessage(ctx, &bot.SendMessageParams{ChatID: 7, Text: "x"})
	var tm *bot.TooManyRequestsError
	if !errors.As(err, &tm) || tm.RetryAfter != 7 {
		t.Errorf("429 through the library: %v", err)
	}
}

func TestGetUpdates(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	u := User{ID: 7, FirstName: "U"}
	poll := func(offset string, timeout string) []Update {
		_, a := call(t, s, "getUpdates", url.Values{"offset": {offset}, "timeout": {timeout}})
		var ups []Update
		if err := json.Unmarshal(a.Result, &ups); err != nil || !a.OK {
			t.Fatalf("getUpdates: %+v %v", a, err)
		}
		return ups
	}
	if got := poll("", "0"); len(got) != 0 {
		t.Fatalf("empty queue gave %d updates", len(got))
	}
	s.Inject(Incoming{From: u, Text: "one"})
	s.Inject(Incoming{From: u, Text: "two"})
	got := poll("", "0")
	if len(got) != 2 || got[0].Message.Text != "one" || got[1].UpdateID != got[0].UpdateID+1 {
		t.Fatalf("got %+v", got)
	}
	if again := poll("", "0"); len(again) != 2 {
		t.Errorf("unconfirmed updates must come again, got %d", len(again))
	}
	next := got[1].UpdateID + 1
	if rest := poll(itoa(got[1].UpdateID), "0"); len(rest) != 1 || rest[0].Message.Text != "two" {
		t.Errorf("offset = last id must confirm the first only: %+v", rest)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		s.Inject(Incoming{From: u, Text: "three"})
	}()
	if woke := poll(itoa(next), "10"); len(woke) != 1 || woke[0].Message.Text != "three" {
		t.Errorf("long poll: %+v", woke)
	}
	if s.Pending() != 1 {
		t.Errorf("pending = %d, want 1", s.Pending())
	}
	// A webhook forbids polling.
	call(t, s, "setWebhook", url.Values{"url": {"https://example.com/hook"}})
	if st, a := call(t, s, "getUpdates", nil); st != 409 || !strings.HasPrefix(a.Description, "Conflict: can't use getUpdates method while webhook is active") {
		t.Errorf("getUpdates with a webhook: %d %+v", st, a)
	}
}

func TestConcurrentPollsConflict(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	first := make(chan string, 1)
	go func() {
		resp, err := http.PostForm(s.URL+"/bot"+s.Token+"/getUpdates", url.Values{"timeout": {"10"}})
		if err != nil {
			first <- err.Error()
			return
		}
		defer resp.Body.Close()
		var a struct{ Description string }
		_ = json.NewDecoder(resp.Body).Decode(&a)
		first <- a.Description
	}()
	for polling := false; !polling; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		polling = s.poller != nil
		s.mu.Unlock()
	}
	go func() {
		resp, err := http.PostForm(s.URL+"/bot"+s.Token+"/getUpdates", url.Values{"timeout": {"1"}})
		if err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case d := <-first:
		if !strings.HasPrefix(d, "Conflict: terminated by other getUpdates request") {
			t.Errorf("first poll: %q", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first poll was not terminated")
	}
	if n := s.PollConflicts(); n != 1 {
		t.Errorf("PollConflicts() = %d, want 1", n)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
