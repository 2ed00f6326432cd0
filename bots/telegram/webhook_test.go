package telegram_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram"
	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

const webhookSecret = "s3cret_Token-42"

func TestWebhookChecksTheSecret(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hook := "http://" + ln.Addr().String() + "/telegram/hook"
	h := newHarness(t, adapter(func(o *telegram.Options) {
		o.Mode, o.WebhookURL, o.WebhookSecret, o.WebhookListener = telegram.ModeWebhook, hook, webhookSecret, ln
	}))
	h.waitFor("setWebhook", func() bool { return h.tg.WebhookInfo().URL == hook })

	update := `{"update_id": 1, "message": {"message_id": 99, "date": 1, "chat": {"id": 1001, "type": "private"},
		"from": {"id": 1001, "is_bot": false, "first_name": "Alice"}, "text": "forged"}}`
	for _, tc := range []struct {
		name, path, secret string
		want               int
	}{
		{"no secret", "/telegram/hook", "", http.StatusUnauthorized},
		{"wrong secret", "/telegram/hook", "s3cret_Token-43", http.StatusUnauthorized},
		{"secret prefix", "/telegram/hook", "s3cret", http.StatusUnauthorized},
		{"other path", "/other", webhookSecret, http.StatusNotFound},
	} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+tc.path, strings.NewReader(update))
		req.Header.Set("Content-Type", "application/json")
		if tc.secret != "" {
			req.Header.Set("X-Telegram-Bot-Api-Secret-Token", tc.secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}

	h.ai.Enqueue(openaitest.Text("Webhook works."))
	h.say(alice, telegramtest.Chat{}, "via webhook")
	h.waitReply(alice.ID, 1, "Webhook works.")
	if got := h.ai.Requests(); len(got) != 1 || got[0].LastUser() != "via webhook" {
		t.Errorf("model calls: %+v, want one for the delivered update only", got)
	}
	if n := len(h.tg.CallsTo("getUpdates")); n != 0 {
		t.Errorf("webhook mode polled %d times", n)
	}
	for _, d := range h.tg.Deliveries() {
		if d.Status != http.StatusOK {
			t.Errorf("delivery of update %d answered %d", d.UpdateID, d.Status)
		}
	}
}

// TestWebhookRefusesBeforeReadingTheBody: a request without the secret is
// answered 401 at once, while its body is still being sent, and its connection
// is closed instead of being drained (a trickled body would otherwise hold it).
func TestWebhookRefusesBeforeReadingTheBody(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hook := "http://" + ln.Addr().String() + "/telegram/hook"
	h := newHarness(t, adapter(func(o *telegram.Options) {
		o.Mode, o.WebhookURL, o.WebhookSecret, o.WebhookListener = telegram.ModeWebhook, hook, webhookSecret, ln
	}))
	h.waitFor("setWebhook", func() bool { return h.tg.WebhookInfo().URL == hook })

	for _, tc := range []struct{ name, header string }{
		{"declared length", "Content-Length: 100000\r\n"},
		{"chunked", "Transfer-Encoding: chunked\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Not a measure of speed: a bound on the wait, so that a server that
			// waits for the body fails the test instead of hanging it.
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			// The headers and no body: the rest would trickle in, or never come.
			io.WriteString(conn, "POST /telegram/hook HTTP/1.1\r\nHost: bot.example.com\r\n"+
				"Content-Type: application/json\r\n"+tc.header+"\r\n")
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer while the body is unsent: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
				t.Errorf("status %d, Connection %q; want 401 and close", resp.StatusCode, resp.Header.Get("Connection"))
			}
			if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
				t.Errorf("after the 401 the connection is still open (%v), want it closed", err)
			}
		})
	}
}

func TestWebhookServerHasTimeouts(t *testing.T) {
	srv := telegram.NewWebhookServer(http.NotFoundHandler())
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.IdleTimeout <= 0 {
		t.Errorf("read header %v, read %v, idle %v: want deadlines on every read", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout)
	}
	if srv.WriteTimeout < 10*time.Second {
		t.Errorf("write timeout %v: want one, long enough for the handler", srv.WriteTimeout)
	}
}

func TestDraftsStreamPrivateReplies(t *testing.T) {
	h := newHarness(t, adapter(func(o *telegram.Options) { o.Drafts = true }))
	reply := strings.TrimSpace(strings.Repeat("drafts animate while the model writes ", 8))
	h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize(reply), TokenDelay: 15 * time.Millisecond})
	h.say(alice, telegramtest.Chat{}, "draft it")
	msgs := h.waitReply(alice.ID, 1, "model writes")
	h.waitFor("the final message", func() bool { return h.tg.BotMessages(alice.ID)[0].Last().Text == reply })

	drafts := h.tg.Drafts(alice.ID)
	if len(drafts) < 2 {
		t.Fatalf("got %d drafts, want the reply streamed as drafts", len(drafts))
	}
	for i, d := range drafts {
		if d.DraftID != drafts[0].DraftID || d.ParseMode != "HTML" {
			t.Errorf("draft %d: %+v, want the same draft id and HTML throughout", i, d)
		}
		if i > 0 && !strings.HasPrefix(d.Text, drafts[i-1].Text) {
			t.Errorf("draft %d %q does not grow %q", i, d.Text, drafts[i-1].Text)
		}
	}
	msgs = h.tg.BotMessages(alice.ID)
	if len(msgs) != 1 || len(msgs[0].Versions) != 1 {
		t.Errorf("want one message sent once at the end, got %d messages, %d states", len(msgs), len(msgs[0].Versions))
	}

	// In a group, no drafts.
	h.say(alice, club, "@"+h.tg.Bot.Username+" in the group")
	h.waitReply(club.ID, 1, "in the group")
	if n := len(h.tg.Drafts(club.ID)); n != 0 {
		t.Errorf("%d drafts in a group", n)
	}
}

func TestDraftErrorFallsBackToEdits(t *testing.T) {
	h := newHarness(t, adapter(func(o *telegram.Options) { o.Drafts = true }))
	h.tg.SetFault(func(c telegramtest.Call) *telegramtest.APIError {
		if c.Method == "sendMessageDraft" {
			return &telegramtest.APIError{Code: 404, Description: "Not Found"} // a Bot API server before 9.3
		}
		return nil
	})
	reply := strings.TrimSpace(strings.Repeat("no drafts here so edits it is ", 8))
	h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize(reply), TokenDelay: 15 * time.Millisecond})
	h.say(alice, telegramtest.Chat{}, "draft it")
	h.waitFor("the final message", func() bool {
		msgs := h.tg.BotMessages(alice.ID)
		return len(msgs) == 1 && msgs[0].Last().Text == reply
	})
	if n := len(h.tg.CallsTo("sendMessageDraft")); n != 1 {
		t.Errorf("sendMessageDraft tried %d times, want once", n)
	}
	if v := h.tg.BotMessages(alice.ID)[0].Versions; len(v) < 2 {
		t.Errorf("got %d states, want the reply to grow by edits", len(v))
	}
}
