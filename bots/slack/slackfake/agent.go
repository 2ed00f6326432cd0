package slackfake

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of Slack's AI-app methods (their reference pages).
const (
	maxSuggestedPrompts = 4   // assistant.threads.setSuggestedPrompts: "up to four"
	maxSessionTitle     = 200 // agents.sessions.setStatus: title
)

// Prompts is an assistant.threads.setSuggestedPrompts call that took effect.
type Prompts struct {
	Channel  string
	ThreadTS string // "" for an agent app (the latest message of the channel)
	Title    string
	Prompts  []Prompt
}

// Prompt is one suggested prompt.
type Prompt struct {
	Title   string `json:"title"`
	Message string `json:"message"`
}

// Title is an assistant.threads.setTitle call.
type Title struct {
	Channel, ThreadTS, Title string
}

// Session is an agent session (agents.sessions.setStatus): a thread's
// lifecycle status, its title, and whether Slack shows the stop button
// (while it is processing).
type Session struct {
	Channel, ThreadTS string
	Status            string // processing, active, suspended or closed
	Title             string
	Initiator         string
	// Statuses is every status set, oldest first.
	Statuses []string
}

// sessionStatuses are the statuses agents.sessions.setStatus takes.
var sessionStatuses = []string{"active", "processing", "suspended", "closed"}

func (s *Server) setSuggestedPrompts(p url.Values) response {
	channel, thread := p.Get("channel_id"), p.Get("thread_ts")
	var prompts []Prompt
	if err := json.Unmarshal([]byte(p.Get("prompts")), &prompts); err != nil {
		return fail("invalid_arguments")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opt.NotAgent {
		return fail("missing_scope")
	}
	if _, known := s.channels[channel]; !known {
		return fail("channel_not_found")
	}
	if len(prompts) == 0 || len(prompts) > maxSuggestedPrompts {
		return fail("invalid_arguments")
	}
	for _, pr := range prompts {
		if strings.TrimSpace(pr.Title) == "" || strings.TrimSpace(pr.Message) == "" {
			return fail("invalid_arguments")
		}
	}
	switch {
	case s.opt.AssistantView && thread == "":
		return fail("invalid_arguments")
	case thread != "" && s.message(channel, thread) == nil:
		return fail("invalid_thread_ts")
	case !s.opt.AssistantView && thread != "":
		// "Including it in a call for an agent app will cause the call to
		// silently fail."
		return ok(nil)
	}
	s.prompts = append(s.prompts, Prompts{Channel: channel, ThreadTS: thread, Title: p.Get("title"), Prompts: prompts})
	return ok(nil)
}

func (s *Server) setTitle(p url.Values) response {
	channel, thread, title := p.Get("channel_id"), p.Get("thread_ts"), p.Get("title")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opt.NotAgent {
		return fail("missing_scope")
	}
	if _, known := s.channels[channel]; !known {
		return fail("channel_not_found")
	}
	if thread == "" || s.message(channel, thread) == nil {
		return fail("invalid_thread_ts")
	}
	if strings.TrimSpace(title) == "" {
		return fail("invalid_arguments")
	}
	s.titles = append(s.titles, Title{Channel: channel, ThreadTS: thread, Title: title})
	return ok(nil)
}

// setSessionStatus is agents.sessions.setStatus: it creates the thread's
// session if needed (its title and initiator only then) and sets its status.
func (s *Server) setSessionStatus(p url.Values) response {
	channel, thread, status, title := p.Get("channel_id"), p.Get("thread_ts"), p.Get("status"), p.Get("title")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opt.NotAgent {
		return fail("missing_scope") // only apps declared as agents have sessions
	}
	if _, known := s.channels[channel]; !known {
		return fail("channel_not_found")
	}
	if !slices.Contains(sessionStatuses, status) || thread == "" || utf8.RuneCountInString(title) > maxSessionTitle {
		return fail("invalid_arguments")
	}
	if s.message(channel, thread) == nil {
		return fail("invalid_thread_ts")
	}
	key := channel + ":" + thread
	se := s.sessions[key]
	if se == nil {
		se = &Session{Channel: channel, ThreadTS: thread, Title: title, Initiator: p.Get("initiator_user_id")}
		s.sessions[key] = se
	}
	se.Status = status
	se.Statuses = append(se.Statuses, status)
	return ok(map[string]any{"status": status, "agent_status": status, "title": se.Title})
}

// SuggestedPrompts returns the suggested prompts that took effect, oldest
// first.
func (s *Server) SuggestedPrompts() []Prompts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.prompts)
}

// Titles returns the thread titles set, oldest first.
func (s *Server) Titles() []Title {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.titles)
}

// SessionOf returns the agent session of a thread, if any.
func (s *Server) SessionOf(channel, thread string) (Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.sessions[channel+":"+thread]
	if se == nil {
		return Session{}, false
	}
	c := *se
	c.Statuses = slices.Clone(se.Statuses)
	return c, true
}

// OpenAppHome plays user opening a tab of the app's home ("messages" for the
// DM with the app, "home" for its home tab), and delivers app_home_opened: how
// an agent app (agent_view) learns that someone opened its conversation.
func (s *Server) OpenAppHome(channel, user, tab string) string {
	s.AddChannel(channel)
	s.mu.Lock()
	ts := s.nextTS()
	s.mu.Unlock()
	return s.sendEvent(map[string]any{"type": "app_home_opened", "user": user, "channel": channel,
		"tab": tab, "event_ts": ts})
}

// StartAssistantThread plays user starting a new chat with an app on the
// legacy assistant experience: Slack posts the thread's root message
// (subtype assistant_app_thread) and delivers assistant_thread_started. It
// returns the thread's ts and the event id.
func (s *Server) StartAssistantThread(channel, user string) (string, string) {
	s.mu.Lock()
	if _, ok := s.channels[channel]; !ok {
		s.channels[channel] = nil
	}
	ts := s.nextTS()
	text := "Chat with the app"
	s.channels[channel] = append(s.channels[channel], &Message{Channel: channel, TS: ts, User: user,
		Text: text, History: []string{text}, At: []time.Time{time.Now()}})
	s.mu.Unlock()
	id := s.sendEvent(map[string]any{"type": "assistant_thread_started", "event_ts": ts,
		"assistant_thread": map[string]any{"user_id": user, "channel_id": channel, "thread_ts": ts,
			"context": map[string]any{"channel_id": "", "team_id": s.opt.TeamID, "enterprise_id": ""}}})
	return ts, id
}

// Stop plays user clicking the stop button Slack shows while the thread's
// agent session is processing: the app's streams in progress in the thread
// are halted, and agent_session_stopped lists them. The session stays
// processing: the app must move it on (agents.sessions.setStatus or
// chat.stopStream). It returns the event id; it fails when no stop button is
// shown (no session processing).
func (s *Server) Stop(channel, thread, user string) (string, error) {
	s.mu.Lock()
	se := s.sessions[channel+":"+thread]
	if se == nil || se.Status != "processing" {
		s.mu.Unlock()
		return "", errors.New("slackfake: no stop button: the thread has no agent session processing")
	}
	halted := []string{}
	for _, m := range s.channels[channel] {
		if m.ThreadTS == thread && m.Streaming {
			m.Streaming, m.Halted = false, true
			halted = append(halted, m.TS)
		}
	}
	ts := s.nextTS()
	s.mu.Unlock()
	return s.sendEvent(map[string]any{"type": "agent_session_stopped", "channel": channel, "thread_ts": thread,
		"user": user, "streaming_message_ts": halted, "event_ts": ts}), nil
}

// HaltStream plays Slack stopping the app's stream ts for the user without
// the app hearing of it (the event lost): its next chat.appendStream or
// chat.stopStream is refused with message_not_in_streaming_state.
func (s *Server) HaltStream(channel, ts string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.message(channel, ts)
	if m == nil || !m.Streaming {
		return false
	}
	m.Streaming, m.Halted = false, true
	return true
}
