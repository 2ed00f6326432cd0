package slack

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/chatbot-dev/chatbot/bots/slack/slackfake"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// Models, personas and the system prompt of the tests below.
const (
	mini         = "gpt-5.4-mini"
	nano         = "gpt-5.4-nano"
	systemPrompt = "You are a helpful assistant."
	piratePrompt = "Talk like a pirate."
	poetPrompt   = "Answer in verse."
)

// settingsConfig is an engine with two models and two personas.
func settingsConfig() conversation.Config {
	return conversation.Config{SystemPrompt: systemPrompt, Models: []string{mini, nano},
		Personas: map[string]string{"pirate": piratePrompt, "poet": poetPrompt}}
}

// newModelHarness starts the adapter with a tuned model client and engine; the
// fake OpenAI knows both models.
func newModelHarness(t *testing.T, edit func(*Config), mo openai.Options, ec conversation.Config) *harness {
	t.Helper()
	h := buildHarness(t, slackfake.Options{}, edit)
	h.ai.Models = []string{mini, nano}
	h.modelOpt, h.engineCfg = mo, ec
	h.start()
	t.Cleanup(h.shutdown)
	return h
}

// lastRequest returns the newest model call.
func (h *harness) lastRequest() openaitest.Request {
	h.t.Helper()
	reqs := h.ai.Requests()
	if len(reqs) == 0 {
		h.t.Fatal("no model call")
	}
	return reqs[len(reqs)-1]
}

// choicesMessage returns the bot's newest message with buttons in a thread.
func (h *harness) choicesMessage(channel, thread string) slackfake.Message {
	h.t.Helper()
	msgs := h.slack.BotMessages(channel, thread)
	for i := len(msgs) - 1; i >= 0; i-- {
		if len(msgs[i].Buttons()) > 0 {
			return msgs[i]
		}
	}
	h.t.Fatalf("no message with buttons among %q", h.lastTexts(channel, thread))
	return slackfake.Message{}
}

// press clicks the button labelled label (✓ or not) of message m as user, and
// waits until the press was handled.
func (h *harness) press(m slackfake.Message, user, label string) string {
	h.t.Helper()
	for _, b := range m.Buttons() {
		if strings.TrimPrefix(b.Text, currentMark) == label {
			trigger, err := h.slack.Press(m.Channel, m.TS, user, b.ActionID)
			if err != nil {
				h.t.Fatal(err)
			}
			return trigger
		}
	}
	h.t.Fatalf("no button %q among %+v", label, m.Buttons())
	return ""
}

// current returns the label of the button marked current, checking that it is
// the only primary one.
func current(t *testing.T, m slackfake.Message) string {
	t.Helper()
	var got []string
	for _, b := range m.Buttons() {
		marked := strings.HasPrefix(b.Text, currentMark)
		if marked != (b.Style == "primary") {
			t.Errorf("button %+v: ✓ and the primary style disagree", b)
		}
		if marked {
			got = append(got, strings.TrimPrefix(b.Text, currentMark))
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d current buttons among %+v, want 1", len(got), m.Buttons())
	}
	return got[0]
}

func TestCommandWords(t *testing.T) {
	a := &Adapter{botUser: "U0BOT"}
	tests := []struct {
		text    string
		mention bool
		want    string
		cmd     string
	}{
		{"<@U0BOT> model", true, "/model", "model"},
		{"<@U0BOT> Model gpt-5.4-nano", true, "/model gpt-5.4-nano", "model"},
		{"<@U0BOT>   model   gpt-5.4-nano  ", true, "/model gpt-5.4-nano", "model"},
		{"<@U0BOT> persona", true, "/persona", "persona"},
		{"<@U0BOT> persona off", true, "/persona off", "persona"},
		{"<@U0BOT> persona code reviewer", true, "/persona code reviewer", "persona"},
		{"model", false, "/model", "model"},
		{"model gpt-5.4-nano", false, "/model gpt-5.4-nano", "model"},
		{"persona pirate", false, "/persona pirate", "persona"},
		{"!persona code reviewer", false, "/persona code reviewer", "persona"},
		{"/model", false, "/model", "model"},
		{"model trains are fun to build", false, "model trains are fun to build", ""},
		{"persona non grata, what does it mean?", false, "persona non grata, what does it mean?", ""},
		{"models", false, "models", ""},
		{"the model", false, "the model", ""},
		{"<@U0BOT> reset", true, "/reset", "reset"},
		{"reset", false, "/reset", "reset"},
		{"help", false, "help", ""},
		{"<@U0BOT>", true, "/help", "help"},
	}
	for _, tt := range tests {
		text, cmd := a.command(incoming{text: tt.text, mention: tt.mention})
		if text != tt.want || cmd != tt.cmd {
			t.Errorf("command(%q, mention %v) = %q, %q; want %q, %q", tt.text, tt.mention, text, cmd, tt.want, tt.cmd)
		}
	}
}

func TestChoiceBlocks(t *testing.T) {
	var choices []conversation.Choice
	for i := range 30 {
		choices = append(choices, conversation.Choice{Label: "m" + itoa(i), Command: "/model m" + itoa(i), Current: i == 3})
	}
	choices = append(choices,
		conversation.Choice{Label: strings.Repeat("long ", 30), Command: "/model long"},
		conversation.Choice{Label: "huge", Command: "/model " + strings.Repeat("x", 2000)})
	blocks := choiceBlocks("Pick one:", choices)
	// Post them to the fake, which checks Block Kit's limits as Slack does.
	fake := slackfake.NewServer(slackfake.Options{NoEcho: true})
	defer fake.Close()
	fake.AddChannel(general)
	r := &reply{api: mustClient(t, fake), channel: general, ws: newWorkspaces(Config{UpdatesPerMinute: 45, UpdateBurst: 3, PostEvery: time.Second, PostBurst: 3}).of("T")}
	ts, err := r.post(t.Context(), "Pick one:", blocks, true)
	if err != nil {
		t.Fatalf("Slack refused the buttons: %v", err)
	}
	m := fake.BotMessages(general, "")[0]
	if m.TS != ts || !equal(m.SectionTexts(), []string{"Pick one:"}) {
		t.Errorf("sections %q", m.SectionTexts())
	}
	bs := m.Buttons()
	if len(bs) != 31 {
		t.Fatalf("%d buttons, want 31 (the one whose command passes 2,000 characters left out)", len(bs))
	}
	if bs[0].BlockID == bs[25].BlockID {
		t.Errorf("31 buttons in one actions block")
	}
	if bs[3].Text != "✓ m3" || bs[3].Style != "primary" || bs[4].Style != "" || bs[4].Value != "/model m4" {
		t.Errorf("buttons 3 and 4: %+v %+v", bs[3], bs[4])
	}
	if n := len([]rune(bs[30].Text)); n != maxButtonTextChars || !strings.HasSuffix(bs[30].Text, "…") {
		t.Errorf("long label %q (%d characters)", bs[30].Text, n)
	}
	for i, b := range bs {
		if !strings.HasPrefix(b.ActionID, choiceActionPrefix) {
			t.Errorf("button %d: action_id %q", i, b.ActionID)
		}
	}
}

// TestModelButtons: "@bot model" answers with buttons; a press switches the
// conversation's model (and no other), posts the confirmation and marks the new
// choice on the buttons; a redelivered press applies once. In Socket Mode and
// with the Events API, in a channel thread, a DM and a thread in a DM.
func TestModelButtons(t *testing.T) {
	tests := []struct {
		name    string
		mode    func(*Config)
		channel string
		thread  bool // ask in a thread (of a DM)
	}{
		{"socket mode, channel thread", nil, general, false},
		{"native streaming, channel thread", func(c *Config) { c.NativeStreaming = true }, general, false},
		{"events API, channel thread", eventsMode, general, false},
		{"socket mode, DM", nil, aliceDM, false},
		{"events API, DM thread", eventsMode, aliceDM, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newModelHarness(t, tt.mode, openai.Options{}, settingsConfig())
			dm := tt.channel == aliceDM
			ask := "model"
			if !dm {
				ask = h.mention(ask)
			}
			var m slackfake.UserMessage
			thread := "" // where the bot answers
			switch {
			case tt.thread:
				top := h.slack.Post(tt.channel, alice, "hi")
				h.answered(top)
				m = h.slack.PostInThread(tt.channel, top.TS, alice, ask)
				thread = top.TS
			default:
				m = h.slack.Post(tt.channel, alice, ask)
				if !dm {
					thread = m.TS
				}
			}
			h.answered(m)
			calls := len(h.ai.Requests())
			buttons := h.choicesMessage(tt.channel, thread)
			if got := current(t, buttons); got != mini {
				t.Errorf("current model %q, want %s", got, mini)
			}
			if s := buttons.SectionTexts(); len(s) != 1 || !strings.Contains(s[0], "Model for this chat: "+mini) {
				t.Errorf("section %q", s)
			}
			for _, b := range buttons.Buttons() {
				if want := "/model " + strings.TrimPrefix(b.Text, currentMark); b.Value != want {
					t.Errorf("button %q has value %q, want %q", b.Text, b.Value, want)
				}
			}

			trigger := h.press(buttons, alice, nano)
			h.waitTraced("pressed", trigger)
			eventually(t, "the press acknowledged", func() bool { return h.slack.Acked(trigger) })
			texts := h.lastTexts(tt.channel, thread)
			if got := texts[len(texts)-1]; got != "Model for this chat: "+nano+"." {
				t.Errorf("confirmation %q", got)
			}
			updated := h.choicesMessage(tt.channel, thread)
			if updated.TS != buttons.TS || current(t, updated) != nano {
				t.Errorf("the buttons message %s shows %+v, want %s marked", updated.TS, updated.Buttons(), nano)
			}
			if s := updated.SectionTexts(); len(s) != 1 || !strings.Contains(s[0], "Model for this chat: "+nano) {
				t.Errorf("section after the press %q", s)
			}

			// Pressed again by a retried delivery: nothing more happens.
			posts := h.slack.Calls("chat.postMessage")
			h.slack.Redeliver(trigger)
			h.waitTraced("duplicate", trigger)
			if n := h.slack.Calls("chat.postMessage"); n != posts {
				t.Errorf("a redelivered press posted %d more messages", n-posts)
			}
			if n := len(h.ai.Requests()); n != calls {
				t.Errorf("the model was called for a button")
			}

			var next slackfake.UserMessage
			if thread == "" {
				next = h.slack.Post(tt.channel, alice, "and now?")
			} else {
				next = h.slack.PostInThread(tt.channel, thread, alice, "and now?")
			}
			h.answered(next)
			if got := h.lastRequest().Model; got != nano {
				t.Errorf("the conversation's next call used %q, want %s", got, nano)
			}
			// Another conversation keeps the default.
			other := h.slack.Post(general, bob, h.mention("elsewhere"))
			h.answered(other)
			if got := h.lastRequest().Model; got != mini {
				t.Errorf("another conversation used %q, want %s", got, mini)
			}
		})
	}
}

// TestPersonaButtons: the persona buttons include "off"; pressing one changes
// the instructions of the conversation's next model call.
func TestPersonaButtons(t *testing.T) {
	t.Parallel()
	h := newModelHarness(t, nil, openai.Options{}, settingsConfig())
	m := h.slack.Post(general, alice, h.mention("persona"))
	h.answered(m)
	buttons := h.choicesMessage(general, m.TS)
	var labels []string
	for _, b := range buttons.Buttons() {
		labels = append(labels, strings.TrimPrefix(b.Text, currentMark))
	}
	if !equal(labels, []string{"pirate", "poet", "off"}) || current(t, buttons) != "off" {
		t.Fatalf("persona buttons %+v", buttons.Buttons())
	}
	h.waitTraced("pressed", h.press(buttons, alice, "poet"))
	if got := current(t, h.choicesMessage(general, m.TS)); got != "poet" {
		t.Errorf("current persona %q after the press", got)
	}
	h.answered(h.slack.PostInThread(general, m.TS, alice, "a poem please"))
	if got := h.lastRequest().Instructions; got != poetPrompt {
		t.Errorf("instructions %q, want the poet's", got)
	}
	h.waitTraced("pressed", h.press(h.choicesMessage(general, m.TS), alice, "off"))
	h.answered(h.slack.PostInThread(general, m.TS, alice, "plain again"))
	if got := h.lastRequest().Instructions; got != systemPrompt {
		t.Errorf("instructions %q, want the system prompt", got)
	}
}

// TestPressByOutsider: a user the allowlist leaves out gets an ephemeral note
// for a press, and nothing changes.
func TestPressByOutsider(t *testing.T) {
	t.Parallel()
	h := newModelHarness(t, func(c *Config) { c.AllowedUserIDs = []string{alice} }, openai.Options{}, settingsConfig())
	m := h.slack.Post(general, alice, h.mention("model"))
	h.answered(m)
	buttons := h.choicesMessage(general, m.TS)
	h.press(buttons, bob, nano)
	h.waitTraced("denied", bob)
	eph := h.slack.Ephemerals(general, bob)
	if len(eph) != 1 || !strings.Contains(eph[0].Text, "slack.allowed_user_ids") || eph[0].ThreadTS != m.TS {
		t.Errorf("notes to bob %+v", eph)
	}
	if got := h.choicesMessage(general, m.TS); got.Text != buttons.Text || current(t, got) != mini || len(got.History) != 1 {
		t.Errorf("the buttons changed: %+v", got)
	}
	h.answered(h.slack.PostInThread(general, m.TS, alice, "still mini?"))
	if got := h.lastRequest().Model; got != mini {
		t.Errorf("model %q after an outsider's press, want %s", got, mini)
	}
}

// TestForgedPressRefused: a press posted to the events URL without Slack's
// signature is refused and changes nothing.
func TestForgedPressRefused(t *testing.T) {
	t.Parallel()
	h := newModelHarness(t, eventsMode, openai.Options{}, settingsConfig())
	m := h.slack.Post(aliceDM, alice, "model")
	h.answered(m)
	buttons := h.choicesMessage(aliceDM, "")
	payload := `{"type":"block_actions","trigger_id":"1.2.forged","user":{"id":"U0ALICE"},` +
		`"team":{"id":"T0FAKE"},"container":{"type":"message","channel_id":"D0ALICE","message_ts":"` + buttons.TS + `"},` +
		`"actions":[{"type":"button","block_id":"b1","action_id":"chatbot_choice_1","value":"/model gpt-5.4-nano","action_ts":"1.1"}]}`
	body := url.Values{"payload": {payload}}.Encode()
	for _, signSecret := range []string{"", "another-secret"} {
		req, _ := http.NewRequest(http.MethodPost, h.eventsURL(), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if signSecret != "" {
			ts := itoa(int(time.Now().Unix()))
			req.Header.Set("X-Slack-Request-Timestamp", ts)
			req.Header.Set("X-Slack-Signature", slackfake.Sign(signSecret, ts, []byte(body)))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("forged press (secret %q): status %d, want 401", signSecret, resp.StatusCode)
		}
	}
	// Signed, the same payload works: the forged ones were refused for their signature.
	if code := h.postSignedBody(body, "application/x-www-form-urlencoded"); code != http.StatusOK {
		t.Fatalf("signed press: status %d", code)
	}
	h.waitTraced("pressed", "1.2.forged")
	if got := current(t, h.choicesMessage(aliceDM, "")); got != nano {
		t.Errorf("current %q after the signed press", got)
	}
}

// TestSettingsByWordsPersist: the words switch the model and the persona, the
// Responses calls carry them (store false, instructions, reasoning.effort), and
// they survive a restart on the same store file and a reset.
func TestSettingsByWordsPersist(t *testing.T) {
	t.Parallel()
	h := newModelHarness(t, nil, openai.Options{ReasoningEffort: "low"}, settingsConfig())
	h.answered(h.slack.Post(aliceDM, alice, "hello"))
	first := h.lastRequest()
	if first.API != "responses" || first.Field("store") != false || first.Instructions != systemPrompt ||
		first.Field("reasoning.effort") != "low" || first.Model != mini {
		t.Errorf("first call: API %q, store %v, instructions %q, reasoning.effort %v, model %q",
			first.API, first.Field("store"), first.Instructions, first.Field("reasoning.effort"), first.Model)
	}
	for _, w := range []struct{ say, answer string }{
		{"model " + nano, "Model for this chat: " + nano + "."},
		{"persona pirate", "Persona for this chat: pirate."},
	} {
		h.answered(h.slack.Post(aliceDM, alice, w.say))
		if got := h.lastTexts(aliceDM, ""); got[len(got)-1] != w.answer {
			t.Errorf("%q answered %q, want %q", w.say, got[len(got)-1], w.answer)
		}
	}
	// In a channel thread, the words need the mention the first time, then the thread follows.
	th := h.slack.Post(general, alice, h.mention("persona poet"))
	h.answered(th)
	h.answered(h.slack.PostInThread(general, th.TS, alice, "model "+nano))
	h.answered(h.slack.PostInThread(general, th.TS, alice, "verse?"))
	if r := h.lastRequest(); r.Instructions != poetPrompt || r.Model != nano {
		t.Errorf("thread call: instructions %q, model %q", r.Instructions, r.Model)
	}

	// Help names the conversation's own model and persona, and the words.
	h.answered(h.slack.Post(aliceDM, alice, "!help"))
	dmHelp := h.lastTexts(aliceDM, "")
	h.answered(h.slack.PostInThread(general, th.TS, alice, h.mention("help")))
	threadHelp := h.lastTexts(general, th.TS)
	for _, tt := range []struct{ help, model, persona string }{
		{dmHelp[len(dmHelp)-1], nano, "pirate"},
		{threadHelp[len(threadHelp)-1], nano, "poet"},
	} {
		for _, want := range []string{tt.model, "Persona: " + tt.persona, "@chatbot model NAME", "@chatbot persona off"} {
			if !strings.Contains(tt.help, want) {
				t.Errorf("help lacks %q: %q", want, tt.help)
			}
		}
	}

	check := func(when string) {
		t.Helper()
		h.answered(h.slack.Post(aliceDM, alice, "ahoy "+when))
		r := h.lastRequest()
		if r.Model != nano || r.Instructions != piratePrompt || r.Field("store") != false || r.Field("reasoning.effort") != "low" {
			t.Errorf("%s: model %q, instructions %q, store %v, effort %v", when, r.Model, r.Instructions,
				r.Field("store"), r.Field("reasoning.effort"))
		}
	}
	check("before the restart")
	h.restart()
	check("after the restart")
	h.answered(h.slack.Post(aliceDM, alice, "reset"))
	check("after a reset")
	if got := h.userTexts(len(h.ai.Requests()) - 1); !equal(got, []string{"ahoy after a reset"}) {
		t.Errorf("the reset kept %q", got)
	}
	h.answered(h.slack.Post(aliceDM, alice, "persona off"))
	h.answered(h.slack.Post(aliceDM, alice, "plain"))
	if got := h.lastRequest().Instructions; got != systemPrompt {
		t.Errorf("instructions after persona off %q", got)
	}
}

// TestUnknownModelRefused: a model not in the list gets an answer naming the
// allowed ones, and no model call.
func TestUnknownModelRefused(t *testing.T) {
	t.Parallel()
	h := newModelHarness(t, nil, openai.Options{}, settingsConfig())
	m := h.slack.Post(general, alice, h.mention("model gpt-9-ultra"))
	h.answered(m)
	got := h.lastTexts(general, m.TS)
	if len(got) != 1 || !strings.Contains(got[0], "gpt-9-ultra") || !strings.Contains(got[0], mini+", "+nano) {
		t.Errorf("answer %q", got)
	}
	if n := len(h.ai.Requests()); n != 0 {
		t.Errorf("%d model calls, want none", n)
	}
	h.answered(h.slack.PostInThread(general, m.TS, alice, "which model?"))
	if got := h.lastRequest().Model; got != mini {
		t.Errorf("model %q, want the default", got)
	}
}

// TestFallbackToChatCompletions: a server without /responses answers 404 once;
// the client switches to Chat Completions and the chat goes on.
func TestFallbackToChatCompletions(t *testing.T) {
	t.Parallel()
	h := buildHarness(t, slackfake.Options{}, nil)
	h.ai.NoResponses = true
	var responses atomic.Int32
	target, _ := url.Parse(h.ai.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/responses") {
			responses.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(counting.Close)
	h.modelURL = counting.URL + "/v1"
	h.engineCfg = conversation.Config{SystemPrompt: systemPrompt}
	h.start()
	t.Cleanup(h.shutdown)

	m := h.slack.Post(general, alice, h.mention("first"))
	h.answered(m)
	h.answered(h.slack.PostInThread(general, m.TS, alice, "second"))
	if got := h.lastTexts(general, m.TS); !equal(got, []string{"You said: Alice: first", "You said: Alice: second"}) {
		t.Errorf("replies %q", got)
	}
	for i, r := range h.ai.Requests() {
		if r.API != "chat" || r.Messages[0].Role != "system" || r.Messages[0].Content != systemPrompt {
			t.Errorf("call %d: API %q, first message %+v", i, r.API, r.Messages[0])
		}
	}
	if n := responses.Load(); n != 1 {
		t.Errorf("/responses tried %d times, want once", n)
	}
}

// TestSourcesAsLinks: web-search sources end the reply as mrkdwn links.
func TestSourcesAsLinks(t *testing.T) {
	t.Parallel()
	h := newModelHarness(t, nil, openai.Options{WebSearch: true}, conversation.Config{})
	h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize("Go 1.26 is out."), Citations: []openaitest.Citation{
		{URL: "https://go.dev/doc/go1.26?x=1&y=2", Title: "Go 1.26 <Release> Notes"},
		{URL: "https://example.com/a b"},
	}})
	m := h.slack.Post(general, alice, h.mention("news?"))
	h.answered(m)
	want := "Go 1.26 is out.\n\nSources:\n" +
		"1. <https://go.dev/doc/go1.26?x=1&amp;y=2|Go 1.26 &lt;Release&gt; Notes>\n" +
		"2. <https://example.com/a%20b|https://example.com/a b>"
	msgs := h.slack.BotMessages(general, m.TS)
	if len(msgs) != 1 || msgs[0].Text != want {
		t.Fatalf("reply %q\nwant %q", h.lastTexts(general, m.TS), want)
	}
	for _, s := range msgs[0].History {
		if err := checkMrkdwn(s); err != nil {
			t.Errorf("state %q: %v", s, err)
		}
	}
	if tools := h.lastRequest().Field("tools"); tools == nil {
		t.Errorf("no tools in the call: web_search not offered")
	}
}

// TestReasoningSummaryQuoted: the reasoning summary shows as a quote before the
// answer at every state, and the next call's history lacks it.
func TestReasoningSummaryQuoted(t *testing.T) {
	for _, native := range []bool{false, true} {
		name := "edited in place"
		if native {
			name = "native stream"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newModelHarness(t, func(c *Config) { fastEdits(c); c.NativeStreaming = native },
				openai.Options{ReasoningSummary: true}, conversation.Config{})
			h.ai.Enqueue(openaitest.Reply{
				Reasoning:  []string{"The user wants a **sum**. Two and two.", "Check: 2 + 2 < 5."},
				Tokens:     openaitest.Tokenize("The answer is 4."),
				TokenDelay: 30 * time.Millisecond,
			})
			m := h.slack.Post(general, alice, h.mention("2+2?"))
			h.answered(m)
			msgs := h.slack.BotMessages(general, m.TS)
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want 1: %q", len(msgs), h.lastTexts(general, m.TS))
			}
			final := msgs[0].Text
			quote := "> " + conversation.ReasoningMark
			if !strings.HasPrefix(final, quote+"The user wants a ") || !strings.HasSuffix(final, "\n\nThe answer is 4.") {
				t.Errorf("final %q", final)
			}
			summary, answer := conversation.SplitReasoning(final)
			if answer != "The answer is 4." || !strings.Contains(summary, "Check: 2 + 2") {
				t.Errorf("split: summary %q, answer %q", summary, answer)
			}
			states := 0
			for _, s := range msgs[0].History {
				if s == thinkingText {
					continue
				}
				states++
				if !strings.HasPrefix(s, quote) {
					t.Errorf("state %q does not start with the quoted summary", s)
				}
				if native {
					if !strings.HasPrefix(final, s) {
						t.Errorf("streamed state %q is not a prefix of the final Markdown", s)
					}
				} else if err := checkMrkdwn(s); err != nil {
					t.Errorf("state %q: %v", s, err)
				}
			}
			if states < 2 {
				t.Errorf("%d states, want the reply to grow: %q", states, msgs[0].History)
			}
			if native && (!msgs[0].Streamed || h.slack.Calls("chat.update") != 0) {
				t.Errorf("streamed %v, %d chat.update calls: the stream fell back", msgs[0].Streamed, h.slack.Calls("chat.update"))
			}
			if !native && !strings.Contains(final, "&lt; 5") {
				t.Errorf("the summary is not escaped: %q", final)
			}

			h.answered(h.slack.PostInThread(general, m.TS, alice, "thanks"))
			var assistant []string
			for _, msg := range h.lastRequest().Messages {
				if msg.Role == "assistant" {
					assistant = append(assistant, msg.Content)
				}
			}
			if !equal(assistant, []string{"The answer is 4."}) {
				t.Errorf("history sent to the model %q, want the answer alone", assistant)
			}
		})
	}
}

// TestThinkingBeforeFirstToken: while the model has sent nothing, the reply
// shows that it is thinking: a placeholder message, or the thread status.
func TestThinkingBeforeFirstToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	release := make(chan struct{})
	h.ai.SetHandler(func(r openaitest.Request) openaitest.Reply {
		<-release
		return openaitest.Text("Done thinking.")
	})
	top := h.slack.Post(aliceDM, alice, "think hard")
	eventually(t, "the placeholder", func() bool {
		got := h.lastTexts(aliceDM, "")
		return len(got) == 1 && got[0] == thinkingText
	})
	inThread := h.slack.PostInThread(aliceDM, top.TS, alice, "and here?")
	eventually(t, "the thread status", func() bool {
		for _, s := range h.slack.Statuses() {
			if s.Channel == aliceDM && s.ThreadTS == top.TS && s.Status == thinkingStatus {
				return true
			}
		}
		return false
	})
	if n := len(h.slack.BotMessages(aliceDM, top.TS)); n != 0 {
		t.Errorf("%d messages in the thread before the first token, want the status alone", n)
	}
	close(release)
	h.answered(top)
	h.answered(inThread)
	if got := h.lastTexts(aliceDM, ""); !equal(got, []string{"Done thinking."}) {
		t.Errorf("DM replies %q", got)
	}
	if got := h.lastTexts(aliceDM, top.TS); !equal(got, []string{"Done thinking."}) {
		t.Errorf("thread replies %q", got)
	}
}

// TestRejectedParameterNamesKey: a model that refuses reasoning.effort gets an
// answer naming the config key to change.
func TestRejectedParameterNamesKey(t *testing.T) {
	t.Parallel()
	h := newModelHarness(t, nil, openai.Options{ReasoningEffort: "high"}, conversation.Config{})
	h.ai.Enqueue(openaitest.Error(http.StatusBadRequest, "unsupported_parameter",
		"Unsupported parameter: 'reasoning.effort' is not supported with this model."))
	m := h.slack.Post(general, alice, h.mention("think"))
	h.answered(m)
	got := h.lastTexts(general, m.TS)
	if len(got) != 1 || !strings.Contains(got[0], "openai.reasoning_effort") {
		t.Errorf("answer %q, want it to name openai.reasoning_effort", got)
	}
	checkClearSlack(t, h, general, m.TS)
}

// mustClient is a slack-go client of the fake's bot.
func mustClient(t *testing.T, fake *slackfake.Server) *slackgo.Client {
	t.Helper()
	return slackgo.New(fake.Options().BotToken, slackgo.OptionAPIURL(fake.APIURL()))
}
