package slackfake_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/chatbot-dev/chatbot/bots/slack/slackfake"
)

// slackError returns Slack's error code of err, "ratelimited" for a 429.
func slackError(err error) string {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return "ratelimited"
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// The per-channel limit of chat.postMessage: a short burst, then one a
// second, channel by channel; slack-go sees a RateLimitedError.
func TestPostMessageLimitPerChannel(t *testing.T) {
	s, api := newFake(t, slackfake.Options{NoEcho: true, PostBurst: 3, PostEvery: time.Hour})
	s.AddChannel("C2")
	for i := range 3 {
		if _, _, err := api.PostMessage("C1", slack.MsgOptionText("burst", false)); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	_, _, err := api.PostMessage("C1", slack.MsgOptionText("over", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter < time.Second {
		t.Fatalf("fourth post in C1: %v, want ratelimited with a Retry-After", err)
	}
	if _, _, err := api.PostMessage("C2", slack.MsgOptionText("other channel", false)); err != nil {
		t.Errorf("post in C2: %v: the limit is per channel", err)
	}
	// The thread status has a bucket of its own per channel, alike.
	for i := range 3 {
		err := api.SetAssistantThreadsStatus(slack.AssistantThreadsSetStatusParameters{
			ChannelID: "C2", ThreadTS: s.Seed("C2", "U1", "q"), Status: "is thinking…"})
		if err != nil {
			t.Fatalf("status %d: %v", i, err)
		}
	}
	err = api.SetAssistantThreadsStatus(slack.AssistantThreadsSetStatusParameters{
		ChannelID: "C2", ThreadTS: s.Seed("C2", "U1", "q"), Status: "is thinking…"})
	if slackError(err) != "ratelimited" {
		t.Errorf("fourth status in C2: %v, want ratelimited", err)
	}
	if s.RateLimitedBy("chat.postMessage") != 1 || s.RateLimitedBy("assistant.threads.setStatus") != 1 {
		t.Errorf("ratelimited: posts %d, statuses %d", s.RateLimitedBy("chat.postMessage"),
			s.RateLimitedBy("assistant.threads.setStatus"))
	}
	// The workspace's own limit on posts, over all channels.
	w, wapi := newFake(t, slackfake.Options{NoEcho: true, PostWorkspaceLimit: 2, RateWindow: time.Hour})
	w.AddChannel("C2")
	w.AddChannel("C3")
	for _, ch := range []string{"C1", "C2"} {
		if _, _, err := wapi.PostMessage(ch, slack.MsgOptionText("x", false)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := wapi.PostMessage("C3", slack.MsgOptionText("x", false)); slackError(err) != "ratelimited" {
		t.Errorf("third post in the workspace: %v, want ratelimited", err)
	}
}

// The stream methods' tiers: chat.startStream and chat.stopStream are Tier 2
// (20 a minute), chat.appendStream Tier 4 (100).
func TestStreamTiers(t *testing.T) {
	s, api := newFake(t, slackfake.Options{NoEcho: true, TierLimits: map[string]int{"chat.appendStream": 3}})
	var streams []string
	for i := range 21 {
		parent := s.Seed("C1", "U1", "question")
		_, ts, err := api.StartStream("C1", slack.MsgOptionTS(parent), slack.MsgOptionMarkdownText("**a**"),
			slack.MsgOptionRecipientUserID("U1"), slack.MsgOptionRecipientTeamID(s.Options().TeamID))
		if i == 20 {
			if slackError(err) != "ratelimited" {
				t.Errorf("21st stream: %v, want ratelimited", err)
			}
			break
		}
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		streams = append(streams, ts)
	}
	for i := range 4 {
		_, _, err := api.AppendStream("C1", streams[0], slack.MsgOptionMarkdownText(" more"))
		if got := slackError(err); (i < 3 && got != "") || (i == 3 && got != "ratelimited") {
			t.Errorf("append %d: %v", i, err)
		}
	}
	if got := s.BotMessages("C1", s.Thread("C1", "")[0].TS); len(got) != 1 || got[0].Text != "**a** more more more" {
		t.Errorf("first stream %+v", got)
	}
}

// A stream's end carries blocks under the streamed Markdown, such as the
// feedback buttons; a press of one comes back as slack-go reads it.
func TestStopStreamWithFeedbackButtons(t *testing.T) {
	s, api := newFake(t, slackfake.Options{AckTimeout: time.Hour})
	ws := dial(t, api)
	parent := s.Seed("C1", "U1", "question")
	_, ts, err := api.StartStream("C1", slack.MsgOptionTS(parent), slack.MsgOptionMarkdownText("An **answer**"),
		slack.MsgOptionRecipientUserID("U1"), slack.MsgOptionRecipientTeamID(s.Options().TeamID))
	if err != nil {
		t.Fatal(err)
	}
	feedback := slack.NewContextActionsBlock("", slack.NewFeedbackButtonsBlockElement("fb",
		slack.NewFeedbackButton(slack.NewTextBlockObject("plain_text", "👍", true, false), "good"),
		slack.NewFeedbackButton(slack.NewTextBlockObject("plain_text", "👎", true, false), "bad")))
	if _, _, err := api.StopStream("C1", ts, slack.MsgOptionMarkdownText("."), slack.MsgOptionBlocks(feedback)); err != nil {
		t.Fatal(err)
	}
	m := s.BotMessages("C1", parent)[0]
	if m.Streaming || m.Text != "An **answer**." {
		t.Errorf("message %+v", m)
	}
	fb := m.Feedback()
	if len(fb) != 1 || fb[0].ActionID != "fb" || fb[0].PositiveValue != "good" || fb[0].NegativeValue != "bad" {
		t.Fatalf("feedback %+v in blocks %s", fb, m.Blocks)
	}
	if _, _, err := api.AppendStream("C1", ts, slack.MsgOptionMarkdownText("late")); slackError(err) != "message_not_in_streaming_state" {
		t.Errorf("append after the stop: %v", err)
	}
	trigger, err := s.PressFeedback("C1", ts, "U1", false)
	if err != nil {
		t.Fatal(err)
	}
	var cb slack.InteractionCallback
	for cb.TriggerID == "" {
		e := read(t, ws)
		ack(t, ws, e)
		if e.Type == "interactive" {
			if err := json.Unmarshal(e.Payload, &cb); err != nil {
				t.Fatal(err)
			}
		}
	}
	a := cb.ActionCallback.BlockActions
	if cb.TriggerID != trigger || len(a) != 1 || a[0].Type != "feedback_buttons" || a[0].ActionID != "fb" ||
		a[0].Value != "bad" || cb.Container.MessageTs != ts || cb.Container.ThreadTs != parent {
		t.Errorf("payload %+v", cb)
	}
	// Malformed feedback buttons are refused as Slack refuses them.
	bad := slack.NewContextActionsBlock("", slack.NewFeedbackButtonsBlockElement("fb",
		slack.NewFeedbackButton(slack.NewTextBlockObject("mrkdwn", "*up*", false, false), "good"), nil))
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("x", false), slack.MsgOptionBlocks(bad)); slackError(err) != "invalid_blocks" {
		t.Errorf("feedback buttons without a negative one: %v", err)
	}
}

// ack acknowledges an envelope.
func ack(t *testing.T, ws *websocket.Conn, e envelope) {
	t.Helper()
	if err := ws.WriteJSON(map[string]string{"envelope_id": e.EnvelopeID}); err != nil {
		t.Fatal(err)
	}
}

// innerEvent reads envelopes until one with an event of type kind, and
// returns it as slackevents parses it.
func innerEvent(t *testing.T, ws *websocket.Conn, kind string) any {
	t.Helper()
	for {
		e := read(t, ws)
		ack(t, ws, e)
		if e.Type != "events_api" {
			continue
		}
		ev, err := slackevents.ParseEvent(e.Payload, slackevents.OptionNoVerifyToken())
		if err != nil {
			t.Fatal(err)
		}
		if ev.InnerEvent.Type == kind {
			return ev.InnerEvent.Data
		}
	}
}

// The AI-app surface: suggested prompts by the rules of each messaging
// experience, thread titles, agent sessions and the stop button.
func TestAgentMethods(t *testing.T) {
	s, api := newFake(t, slackfake.Options{AckTimeout: time.Hour})
	ws := dial(t, api)
	s.AddChannel("D1")
	prompts := func(thread string, n int) slack.AssistantThreadsSetSuggestedPromptsParameters {
		p := slack.AssistantThreadsSetSuggestedPromptsParameters{ChannelID: "D1", ThreadTS: thread, Title: "Try"}
		for i := range n {
			p.AddPrompt("Prompt "+strings.Repeat("x", i+1), "Say "+strings.Repeat("x", i+1))
		}
		return p
	}
	// An agent app: opening its DM comes as app_home_opened (tab messages).
	s.OpenAppHome("D1", "U1", "messages")
	if e, ok := innerEvent(t, ws, "app_home_opened").(*slackevents.AppHomeOpenedEvent); !ok || e.Tab != "messages" || e.Channel != "D1" || e.User != "U1" {
		t.Fatalf("app_home_opened %+v", e)
	}
	if err := api.SetAssistantThreadsSuggestedPrompts(prompts("", 4)); err != nil {
		t.Fatal(err)
	}
	root := s.Seed("D1", "U1", "hello")
	if err := api.SetAssistantThreadsSuggestedPrompts(prompts(root, 2)); err != nil {
		t.Fatal(err) // accepted, and silently does nothing
	}
	if err := api.SetAssistantThreadsSuggestedPrompts(prompts("", 5)); slackError(err) != "invalid_arguments" {
		t.Errorf("five prompts: %v", err)
	}
	if got := s.SuggestedPrompts(); len(got) != 1 || got[0].ThreadTS != "" || len(got[0].Prompts) != 4 || got[0].Title != "Try" {
		t.Errorf("prompts %+v, want the four set without thread_ts only", got)
	}
	// Titles of threads that exist.
	if err := api.SetAssistantThreadsTitle(slack.AssistantThreadsSetTitleParameters{ChannelID: "D1", ThreadTS: root, Title: "Hello"}); err != nil {
		t.Fatal(err)
	}
	if err := api.SetAssistantThreadsTitle(slack.AssistantThreadsSetTitleParameters{ChannelID: "D1", ThreadTS: "1.000001", Title: "x"}); slackError(err) != "invalid_thread_ts" {
		t.Errorf("title of no thread: %v", err)
	}
	if got := s.Titles(); len(got) != 1 || got[0].Title != "Hello" {
		t.Errorf("titles %+v", got)
	}
	// A session processing shows the stop button; a press halts the streams
	// and comes as agent_session_stopped.
	q := s.Seed("C1", "U1", "question")
	res, err := api.SetAgentSessionStatus(slack.AgentSessionSetStatusParameters{Status: slack.AgentSessionStatusProcessing,
		ChannelID: "C1", ThreadTS: q, Title: "Question"})
	if err != nil || res.Status != "processing" {
		t.Fatalf("session: %+v %v", res, err)
	}
	if _, err := api.SetAgentSessionStatus(slack.AgentSessionSetStatusParameters{Status: "thinking", ChannelID: "C1", ThreadTS: q}); slackError(err) != "invalid_arguments" {
		t.Errorf("unknown status: %v", err)
	}
	_, ts, err := api.StartStream("C1", slack.MsgOptionTS(q), slack.MsgOptionMarkdownText("Part"),
		slack.MsgOptionRecipientUserID("U1"), slack.MsgOptionRecipientTeamID(s.Options().TeamID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stop("C1", s.Seed("C1", "U1", "other"), "U1"); err == nil {
		t.Errorf("stop where no session processes worked")
	}
	if _, err := s.Stop("C1", q, "U1"); err != nil {
		t.Fatal(err)
	}
	e, ok := innerEvent(t, ws, "agent_session_stopped").(*slackevents.AgentSessionStoppedEvent)
	if !ok || e.Channel != "C1" || e.ThreadTimestamp != q || e.User != "U1" ||
		len(e.StreamingMessageTimestamps) != 1 || e.StreamingMessageTimestamps[0] != ts {
		t.Fatalf("agent_session_stopped %+v", e)
	}
	if _, _, err := api.AppendStream("C1", ts, slack.MsgOptionMarkdownText(" more")); slackError(err) != "message_not_in_streaming_state" {
		t.Errorf("append to a halted stream: %v", err)
	}
	if se, _ := s.SessionOf("C1", q); se.Status != "processing" {
		t.Errorf("session %+v: the stop does not move it on by itself", se)
	}
	if _, err := api.SetAgentSessionStatus(slack.AgentSessionSetStatusParameters{Status: slack.AgentSessionStatusActive, ChannelID: "C1", ThreadTS: q}); err != nil {
		t.Fatal(err)
	}
	if se, _ := s.SessionOf("C1", q); se.Title != "Question" || strings.Join(se.Statuses, ",") != "processing,active" {
		t.Errorf("session %+v", se)
	}
}

func TestAssistantViewAndNotAgent(t *testing.T) {
	s, api := newFake(t, slackfake.Options{AssistantView: true, AckTimeout: time.Hour})
	ws := dial(t, api)
	thread, _ := s.StartAssistantThread("D1", "U1")
	e, ok := innerEvent(t, ws, "assistant_thread_started").(*slackevents.AssistantThreadStartedEvent)
	if !ok || e.AssistantThread.ChannelID != "D1" || e.AssistantThread.ThreadTimeStamp != thread || e.AssistantThread.UserID != "U1" {
		t.Fatalf("assistant_thread_started %+v", e)
	}
	p := slack.AssistantThreadsSetSuggestedPromptsParameters{ChannelID: "D1"}
	p.AddPrompt("Hi", "Say hi")
	if err := api.SetAssistantThreadsSuggestedPrompts(p); slackError(err) != "invalid_arguments" {
		t.Errorf("legacy prompts without thread_ts: %v", err)
	}
	p.ThreadTS = thread
	if err := api.SetAssistantThreadsSuggestedPrompts(p); err != nil {
		t.Fatal(err)
	}
	if got := s.SuggestedPrompts(); len(got) != 1 || got[0].ThreadTS != thread {
		t.Errorf("prompts %+v", got)
	}

	n, napi := newFake(t, slackfake.Options{NotAgent: true})
	q := n.Seed("C1", "U1", "q")
	if _, err := napi.SetAgentSessionStatus(slack.AgentSessionSetStatusParameters{Status: "processing", ChannelID: "C1", ThreadTS: q}); slackError(err) != "missing_scope" {
		t.Errorf("session of an app that is no agent: %v", err)
	}
	if err := napi.SetAssistantThreadsTitle(slack.AssistantThreadsSetTitleParameters{ChannelID: "C1", ThreadTS: q, Title: "x"}); slackError(err) != "missing_scope" {
		t.Errorf("title of an app that is no agent: %v", err)
	}
	// The thread status needs only chat:write, in channels too, of a thread
	// that exists.
	if err := napi.SetAssistantThreadsStatus(slack.AssistantThreadsSetStatusParameters{ChannelID: "C1", ThreadTS: q, Status: "is thinking…"}); err != nil {
		t.Errorf("status in a channel: %v", err)
	}
	if err := napi.SetAssistantThreadsStatus(slack.AssistantThreadsSetStatusParameters{ChannelID: "C1", ThreadTS: "1.000001", Status: "x"}); slackError(err) != "invalid_thread_ts" {
		t.Errorf("status of no thread: %v", err)
	}
}
