package slack

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/slack/slackfake"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

func eventsMode(c *Config) {
	c.Mode, c.SigningSecret, c.AppToken = ModeEvents, secret, ""
}

// eventsURL is the adapter's Request URL.
func (h *harness) eventsURL() string {
	return "http://" + h.adapter.cfg.EventsListener.Addr().String() + EventsPath
}

// postSigned posts body to the adapter as Slack would, with the signature of
// signSecret at time at.
func (h *harness) postSigned(body, signSecret string, at time.Time) int {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.eventsURL(), strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	if signSecret != "" {
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", slackfake.Sign(signSecret, ts, []byte(body)))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestEventsModeVerifiesRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, eventsMode)
	ok, err := h.slack.VerifyURL(h.eventsURL(), secret)
	if err != nil || !ok {
		t.Fatalf("url_verification: %v, %v", ok, err)
	}
	if ok, _ := h.slack.VerifyURL(h.eventsURL(), "another-secret"); ok {
		t.Errorf("url_verification passed with the wrong secret")
	}
	body := `{"type":"event_callback","team_id":"T0FAKE","event_id":"EvFORGED","event":{"type":"message",` +
		`"channel":"D0ALICE","channel_type":"im","user":"U0ALICE","text":"forged","ts":"1.000001"}}`
	tests := []struct {
		name   string
		secret string
		at     time.Time
	}{
		{"unsigned", "", time.Now()},
		{"wrong secret", "another-secret", time.Now()},
		{"replayed after 6 minutes", secret, time.Now().Add(-6 * time.Minute)},
		{"from the future", secret, time.Now().Add(6 * time.Minute)},
	}
	for _, tt := range tests {
		if got := h.postSigned(body, tt.secret, tt.at); got != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", tt.name, got)
		}
	}
	if n := len(h.ai.Requests()); n != 0 {
		t.Errorf("%d model requests from forged events, want 0", n)
	}
}

func TestEventsModeAnswers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, eventsMode)
	m := h.slack.Post(general, alice, h.mention("over http"))
	h.answered(m)
	h.waitTraced("duplicate", general+":"+m.TS)
	if got := h.lastTexts(general, m.TS); !equal(got, []string{"You said: Alice: over http"}) {
		t.Errorf("replies %q", got)
	}
	// A retry (X-Slack-Retry-Num) is answered once, and so is a slash command form.
	h.slack.Redeliver(m.Events[0])
	h.waitTraced("duplicate", m.Events[0])
	h.answered(h.slack.Post(aliceDM, alice, "dm"))
	h.slack.Slash(aliceDM, alice, "/reset", "")
	eventually(t, "the /reset answer", func() bool { return len(h.slack.Ephemerals(aliceDM, alice)) == 1 })
	if n := len(h.ai.Requests()); n != 2 {
		t.Errorf("%d model requests, want 2", n)
	}
}

func TestNativeStreaming(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, func(c *Config) { c.NativeStreaming = true })
	md := "Streaming **natively** to you with some more words to come"
	h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize(md), TokenDelay: 250 * time.Millisecond})
	m := h.slack.Post(general, alice, h.mention("stream"))
	h.answered(m)
	msgs := h.slack.BotMessages(general, m.TS)
	if len(msgs) != 1 || !msgs[0].Streamed || msgs[0].Streaming {
		t.Fatalf("messages %+v, want one stopped stream", msgs)
	}
	if msgs[0].Text != md {
		t.Errorf("streamed text %q, want the Markdown %q", msgs[0].Text, md)
	}
	if n := len(msgs[0].History); n < 3 {
		t.Errorf("%d states, want the stream to grow at least twice: %q", n, msgs[0].History)
	}
	if h.slack.Calls("chat.update") != 0 {
		t.Errorf("chat.update called while streaming natively")
	}
}

func TestNativeStreamingFallsBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, func(c *Config) { c.NativeStreaming = true })
	var b bytes.Buffer
	for i := range 30 {
		b.WriteString("Part " + itoa(i) + " " + strings.Repeat("streamed words ", 30) + "\n\n")
	}
	long := b.String() // over one stream's 12,000 characters
	h.ai.Enqueue(openaitest.Reply{Tokens: strings.SplitAfter(long, "\n\n"), TokenDelay: 20 * time.Millisecond})
	m := h.slack.Post(general, alice, h.mention("long stream"))
	h.answered(m)
	msgs := h.slack.BotMessages(general, m.TS)
	if len(msgs) < 2 {
		t.Fatalf("%d messages, want the reply continued after the stream", len(msgs))
	}
	all := strings.Join(h.lastTexts(general, m.TS), "\n")
	for i := range 30 {
		if !strings.Contains(all, "Part "+itoa(i)+" ") {
			t.Errorf("part %d lost", i)
		}
	}
	for _, msg := range msgs {
		if msg.Streaming {
			t.Errorf("a stream was left open")
		}
	}
}

func TestWrongAppTokenStopsRun(t *testing.T) {
	t.Parallel()
	fake := slackfake.NewServer(slackfake.Options{})
	defer fake.Close()
	a, err := New(t.Context(), Config{BotToken: fake.Options().BotToken, AppToken: "xapp-wrong",
		APIURL: fake.APIURL(), Logger: testLogger(t)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "slack.app_token") || !strings.Contains(err.Error(), "invalid_auth") {
		t.Errorf("Run: %v, want an error about slack.app_token", err)
	}
}

func TestThreadsNeedMentionsWhenConfigured(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, func(c *Config) { c.ReplyInThreadsWithoutMention = false })
	m := h.slack.Post(general, alice, h.mention("first"))
	h.answered(m)
	f := h.slack.PostInThread(general, m.TS, alice, "no mention")
	h.waitTraced("ignored", general+":"+f.TS)
	h.answered(h.slack.PostInThread(general, m.TS, alice, h.mention("with mention")))
	if n := len(h.ai.Requests()); n != 2 {
		t.Errorf("%d model requests, want 2", n)
	}
}
