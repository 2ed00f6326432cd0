package slackfake_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"

	"github.com/chatbot-dev/chatbot/bots/slack/slackfake"
)

func newFake(t *testing.T, opt slackfake.Options) (*slackfake.Server, *slack.Client) {
	t.Helper()
	s := slackfake.NewServer(opt)
	t.Cleanup(s.Close)
	s.AddChannel("C1")
	o := s.Options()
	return s, slack.New(o.BotToken, slack.OptionAPIURL(s.APIURL()), slack.OptionAppLevelToken(o.AppToken))
}

var tsPattern = regexp.MustCompile(`^\d{10}\.\d{6}$`)

func TestTimestampsAreUniqueAndIncreasing(t *testing.T) {
	_, api := newFake(t, slackfake.Options{NoEcho: true, NoRateLimits: true})
	prev := ""
	for range 300 {
		_, ts, err := api.PostMessage("C1", slack.MsgOptionText("x", false))
		if err != nil {
			t.Fatal(err)
		}
		if !tsPattern.MatchString(ts) {
			t.Fatalf("ts %q is not seconds.microseconds", ts)
		}
		if ts <= prev {
			t.Fatalf("ts %q after %q", ts, prev)
		}
		prev = ts
	}
}

func TestErrorsHaveSlacksShapes(t *testing.T) {
	s, api := newFake(t, slackfake.Options{NoEcho: true, NoRateLimits: true})
	o := s.Options()
	userTS := s.Post("C1", "U1", "a user's message").TS
	_, botTS, err := api.PostMessage("C1", slack.MsgOptionText("mine", false))
	if err != nil {
		t.Fatal(err)
	}
	section := slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", strings.Repeat("s", 3001), false, false), nil, nil)
	markdown := slack.NewMarkdownBlock("", strings.Repeat("m", 12001))
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"no token", func() error {
			_, _, err := slack.New("", slack.OptionAPIURL(s.APIURL())).PostMessage("C1", slack.MsgOptionText("x", false))
			return err
		}, "not_authed"},
		{"bad token", func() error {
			_, err := slack.New("xoxb-wrong", slack.OptionAPIURL(s.APIURL())).AuthTest()
			return err
		}, "invalid_auth"},
		{"app token for a bot method", func() error {
			_, _, err := slack.New(o.AppToken, slack.OptionAPIURL(s.APIURL())).PostMessage("C1", slack.MsgOptionText("x", false))
			return err
		}, "not_allowed_token_type"},
		{"unknown channel", func() error {
			_, _, err := api.PostMessage("C404", slack.MsgOptionText("x", false))
			return err
		}, "channel_not_found"},
		{"no text", func() error {
			_, _, err := api.PostMessage("C1", slack.MsgOptionText("", false))
			return err
		}, "no_text"},
		{"text over 40,000", func() error {
			_, _, err := api.PostMessage("C1", slack.MsgOptionText(strings.Repeat("x", 40001), false))
			return err
		}, "msg_too_long"},
		{"section over 3,000", func() error {
			_, _, err := api.PostMessage("C1", slack.MsgOptionBlocks(section))
			return err
		}, "invalid_blocks"},
		{"markdown blocks over 12,000", func() error {
			_, _, err := api.PostMessage("C1", slack.MsgOptionBlocks(markdown))
			return err
		}, "msg_blocks_too_long"},
		{"update of no message", func() error {
			_, _, _, err := api.UpdateMessage("C1", "1.000001", slack.MsgOptionText("x", false))
			return err
		}, "message_not_found"},
		{"update of a user's message", func() error {
			_, _, _, err := api.UpdateMessage("C1", userTS, slack.MsgOptionText("x", false))
			return err
		}, "cant_update_message"},
		{"append to a message not streaming", func() error {
			_, _, err := api.AppendStream("C1", botTS, slack.MsgOptionMarkdownText("x"))
			return err
		}, "message_not_in_streaming_state"},
		{"stream in a channel without recipient", func() error {
			_, _, err := api.StartStream("C1", slack.MsgOptionTS(botTS), slack.MsgOptionMarkdownText("x"))
			return err
		}, "invalid_arguments"},
		{"unknown user", func() error {
			_, err := api.GetUserInfo("U404")
			return err
		}, "user_not_found"},
	}
	for _, tt := range tests {
		var se slack.SlackErrorResponse
		if err := tt.call(); !errors.As(err, &se) || se.Err != tt.want {
			t.Errorf("%s: error %v, want %s", tt.name, err, tt.want)
		}
	}
}

func TestUpdateRateLimit(t *testing.T) {
	s, api := newFake(t, slackfake.Options{NoEcho: true, UpdateLimit: 3, UpdateWindow: time.Hour})
	_, ts, err := api.PostMessage("C1", slack.MsgOptionText("x", false))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, _, _, err := api.UpdateMessage("C1", ts, slack.MsgOptionText(strconv.Itoa(i), false)); err != nil {
			t.Fatal(err)
		}
	}
	_, _, _, err = api.UpdateMessage("C1", ts, slack.MsgOptionText("over", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter < time.Second {
		t.Fatalf("fourth update: %v, want ratelimited with a Retry-After", err)
	}
	// The raw answer: HTTP 429, Retry-After in seconds, Slack's JSON.
	resp, err := http.PostForm(s.APIURL()+"chat.update", url.Values{
		"token": {s.Options().BotToken}, "channel": {"C1"}, "ts": {ts}, "text": {"raw"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		strings.TrimSpace(string(body)) != `{"error":"ratelimited","ok":false}` {
		t.Errorf("got %d, Retry-After %q, %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if s.RateLimited() != 2 {
		t.Errorf("RateLimited() = %d, want 2", s.RateLimited())
	}
	if got := s.BotMessages("C1", "")[0].History; len(got) != 4 {
		t.Errorf("history %q, want the post and 3 updates", got)
	}
}

func TestSignatureMatchesSlackGo(t *testing.T) {
	body := []byte(`{"type":"event_callback"}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", ts)
	h.Set("X-Slack-Signature", slackfake.Sign("s3cret", ts, body))
	sv, err := slack.NewSecretsVerifier(h, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	sv.Write(body)
	if err := sv.Ensure(); err != nil {
		t.Errorf("slack-go rejects the fake's signature: %v", err)
	}
}

// dial opens a Socket Mode connection by hand and reads the hello.
func dial(t *testing.T, api *slack.Client) *websocket.Conn {
	t.Helper()
	_, wsURL, err := api.StartSocketModeContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	var hello struct{ Type string }
	if err := ws.ReadJSON(&hello); err != nil || hello.Type != "hello" {
		t.Fatalf("first message %+v, %v; want hello", hello, err)
	}
	return ws
}

type envelope struct {
	EnvelopeID   string          `json:"envelope_id"`
	Type         string          `json:"type"`
	RetryAttempt int             `json:"retry_attempt"`
	RetryReason  string          `json:"retry_reason"`
	Payload      json.RawMessage `json:"payload"`
	Reason       string          `json:"reason"`
}

func read(t *testing.T, ws *websocket.Conn) envelope {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	var e envelope
	if err := ws.ReadJSON(&e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestSocketModeRedeliversUntilAcknowledged(t *testing.T) {
	s, api := newFake(t, slackfake.Options{AckTimeout: 200 * time.Millisecond})
	ws := dial(t, api)
	m := s.Post("D1", "U1", "hello")
	first := read(t, ws)
	if first.Type != "events_api" || first.RetryAttempt != 0 {
		t.Fatalf("first envelope %+v", first)
	}
	again := read(t, ws) // not acknowledged: sent again
	if again.EnvelopeID != first.EnvelopeID || again.RetryAttempt != 1 || again.RetryReason != "timeout" {
		t.Fatalf("redelivery %+v", again)
	}
	if err := ws.WriteJSON(map[string]string{"envelope_id": again.EnvelopeID}); err != nil {
		t.Fatal(err)
	}
	for !s.Acked(m.Events[0]) {
		time.Sleep(5 * time.Millisecond)
	}
	var p struct {
		EventID string `json:"event_id"`
		Event   struct{ Type, Text, ChannelType string }
	}
	if err := json.Unmarshal(again.Payload, &p); err != nil || p.EventID != m.Events[0] || p.Event.Text != "hello" {
		t.Errorf("payload %s: %v", again.Payload, err)
	}
}

func TestSocketModeSlashCommandAndDisconnect(t *testing.T) {
	s, api := newFake(t, slackfake.Options{})
	ws := dial(t, api)
	s.Slash("D1", "U1", "/reset", "")
	e := read(t, ws)
	var cmd slack.SlashCommand
	if err := json.Unmarshal(e.Payload, &cmd); e.Type != "slash_commands" || err != nil || cmd.Command != "/reset" || cmd.ChannelID != "D1" {
		t.Fatalf("envelope %+v (%v)", e, err)
	}
	if err := ws.WriteJSON(map[string]string{"envelope_id": e.EnvelopeID}); err != nil {
		t.Fatal(err)
	}
	s.Disconnect()
	if d := read(t, ws); d.Type != "disconnect" || d.Reason != "refresh_requested" {
		t.Errorf("disconnect message %+v", d)
	}
}

func TestEventsAPIDelivery(t *testing.T) {
	got := make(chan http.Header, 10)
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		if r.Header.Get("X-Slack-Retry-Num") == "" {
			w.WriteHeader(http.StatusInternalServerError) // fail the first attempt
		}
	})
	srv := &http.Server{Handler: app}
	s, _ := newFake(t, slackfake.Options{})
	ln := listen(t)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	s.SetEventsURL("http://"+ln.Addr().String()+"/slack/events", "s3cret")
	m := s.Post("D1", "U1", "hi")
	first, retry := <-got, <-got
	if first.Get("X-Slack-Signature") == "" || first.Get("X-Slack-Retry-Num") != "" {
		t.Errorf("first post headers %v", first)
	}
	if retry.Get("X-Slack-Retry-Num") != "1" || retry.Get("X-Slack-Retry-Reason") != "http_error" {
		t.Errorf("retry headers %v", retry)
	}
	for !s.Acked(m.Events[0]) {
		time.Sleep(5 * time.Millisecond)
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// buttons is an actions block of n buttons.
func buttons(n int, edit func(i int, b *slack.ButtonBlockElement)) *slack.ActionBlock {
	var elems []slack.BlockElement
	for i := range n {
		b := slack.NewButtonBlockElement("b"+strconv.Itoa(i), "v"+strconv.Itoa(i),
			slack.NewTextBlockObject("plain_text", "B"+strconv.Itoa(i), false, false))
		if edit != nil {
			edit(i, b)
		}
		elems = append(elems, b)
	}
	return slack.NewActionBlock("actions", elems...)
}

func TestBlockKitLimits(t *testing.T) {
	_, api := newFake(t, slackfake.Options{NoEcho: true, NoRateLimits: true})
	tests := []struct {
		name   string
		blocks []slack.Block
		want   string
	}{
		{"25 buttons", []slack.Block{buttons(25, nil)}, ""},
		{"26 buttons in one block", []slack.Block{buttons(26, nil)}, "invalid_blocks"},
		{"no buttons", []slack.Block{slack.NewActionBlock("a")}, "invalid_blocks"},
		{"label over 75", []slack.Block{buttons(1, func(_ int, b *slack.ButtonBlockElement) {
			b.Text.Text = strings.Repeat("l", 76)
		})}, "invalid_blocks"},
		{"mrkdwn label", []slack.Block{buttons(1, func(_ int, b *slack.ButtonBlockElement) {
			b.Text.Type = "mrkdwn"
		})}, "invalid_blocks"},
		{"value of 2,000", []slack.Block{buttons(1, func(_ int, b *slack.ButtonBlockElement) {
			b.Value = strings.Repeat("v", 2000)
		})}, ""},
		{"value over 2,000", []slack.Block{buttons(1, func(_ int, b *slack.ButtonBlockElement) {
			b.Value = strings.Repeat("v", 2001)
		})}, "invalid_blocks"},
		{"same action_id twice in a block", []slack.Block{buttons(2, func(_ int, b *slack.ButtonBlockElement) {
			b.ActionID = "same"
		})}, "invalid_blocks"},
		{"unknown style", []slack.Block{buttons(1, func(_ int, b *slack.ButtonBlockElement) {
			b.Style = "green"
		})}, "invalid_blocks"},
		{"primary style", []slack.Block{buttons(2, func(i int, b *slack.ButtonBlockElement) {
			if i == 0 {
				b.Style = slack.StylePrimary
			}
		})}, ""},
		{"same block_id twice", []slack.Block{buttons(1, nil), buttons(1, nil)}, "invalid_blocks"},
	}
	for _, tt := range tests {
		_, _, err := api.PostMessage("C1", slack.MsgOptionText("fallback", false), slack.MsgOptionBlocks(tt.blocks...))
		var se slack.SlackErrorResponse
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v, want ok", tt.name, err)
		case tt.want != "" && (!errors.As(err, &se) || se.Err != tt.want):
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
}

func TestUpdateKeepsOrRemovesBlocks(t *testing.T) {
	s, api := newFake(t, slackfake.Options{NoEcho: true})
	_, ts, err := api.PostMessage("C1", slack.MsgOptionText("pick", false), slack.MsgOptionBlocks(buttons(2, nil)))
	if err != nil {
		t.Fatal(err)
	}
	msg := func() slackfake.Message { return s.BotMessages("C1", "")[0] }
	if got := msg().Buttons(); len(got) != 2 || got[1].Value != "v1" || got[1].Text != "B1" {
		t.Fatalf("buttons %+v", got)
	}
	// Text alone keeps the blocks, as chat.update documents; [] removes them.
	if _, _, _, err := api.UpdateMessage("C1", ts, slack.MsgOptionText("new text", false)); err != nil {
		t.Fatal(err)
	}
	if n := len(msg().Buttons()); n != 2 {
		t.Errorf("%d buttons after a text update, want the 2 kept", n)
	}
	if _, _, _, err := api.UpdateMessage("C1", ts, slack.MsgOptionText("done", false), slack.MsgOptionBlocks()); err != nil {
		t.Fatal(err)
	}
	if m := msg(); m.Blocks != "" || m.Text != "done" {
		t.Errorf("after blocks=[]: blocks %q, text %q", m.Blocks, m.Text)
	}
}

func TestPressOverSocketMode(t *testing.T) {
	s, api := newFake(t, slackfake.Options{AckTimeout: 200 * time.Millisecond})
	s.AddUser("U1", "Ann")
	ws := dial(t, api)
	parent := s.Post("C1", "U1", "hi")
	read(t, ws) // the message event, left unacknowledged: it comes again
	_, ts, err := api.PostMessage("C1", slack.MsgOptionText("pick", false), slack.MsgOptionTS(parent.TS),
		slack.MsgOptionBlocks(buttons(2, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Press("C1", ts, "U1", "nope"); err == nil {
		t.Errorf("pressing a button that does not exist worked")
	}
	trigger, err := s.Press("C1", ts, "U1", "b1")
	if err != nil {
		t.Fatal(err)
	}
	var e envelope
	for e.Type != "interactive" {
		e = read(t, ws)
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal(e.Payload, &cb); err != nil {
		t.Fatal(err)
	}
	a := cb.ActionCallback.BlockActions
	if cb.Type != slack.InteractionTypeBlockActions || cb.TriggerID != trigger || cb.User.ID != "U1" ||
		cb.Container.ChannelID != "C1" || cb.Container.MessageTs != ts || cb.Container.ThreadTs != parent.TS ||
		cb.Message.ThreadTimestamp != parent.TS || len(a) != 1 || a[0].ActionID != "b1" || a[0].Value != "v1" ||
		a[0].ActionTs == "" || cb.ResponseURL == "" {
		t.Fatalf("payload %s", e.Payload)
	}
	// Not acknowledged: Slack tells the user, and does not send it again.
	for !s.Failed(trigger) {
		time.Sleep(5 * time.Millisecond)
	}
	if s.Acked(trigger) || s.Sends(trigger) != 1 {
		t.Errorf("acked %v, sends %d", s.Acked(trigger), s.Sends(trigger))
	}
}

func TestPressOverEventsAPI(t *testing.T) {
	type post struct {
		header http.Header
		form   url.Values
		raw    []byte
	}
	got := make(chan post, 10)
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw))
		got <- post{r.Header.Clone(), form, raw}
	})
	srv := &http.Server{Handler: app}
	s, api := newFake(t, slackfake.Options{NoEcho: true})
	ln := listen(t)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	s.SetEventsURL("http://"+ln.Addr().String()+"/slack/events", "s3cret")
	s.AddChannel("D1")
	_, ts, err := api.PostMessage("D1", slack.MsgOptionText("pick", false), slack.MsgOptionBlocks(buttons(1, nil)))
	if err != nil {
		t.Fatal(err)
	}
	trigger, err := s.Press("D1", ts, "U1", "b0")
	if err != nil {
		t.Fatal(err)
	}
	p := <-got
	if ct := p.header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("content type %q", ct)
	}
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", p.header.Get("X-Slack-Request-Timestamp"))
	h.Set("X-Slack-Signature", p.header.Get("X-Slack-Signature"))
	sv, err := slack.NewSecretsVerifier(h, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	sv.Write(p.raw)
	if err := sv.Ensure(); err != nil {
		t.Errorf("signature: %v", err)
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(p.form.Get("payload")), &cb); err != nil || cb.TriggerID != trigger ||
		cb.Container.ChannelID != "D1" || cb.Container.ThreadTs != "" || cb.Channel.Name != "directmessage" {
		t.Errorf("payload %q: %v", p.form.Get("payload"), err)
	}
	for !s.Acked(trigger) {
		time.Sleep(5 * time.Millisecond)
	}
	s.Redeliver(trigger)
	if again := <-got; again.form.Get("payload") != p.form.Get("payload") || again.header.Get("X-Slack-Retry-Num") != "" {
		t.Errorf("redelivery %v %q", again.header, again.form.Get("payload"))
	}
}
