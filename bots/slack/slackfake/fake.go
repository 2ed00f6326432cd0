// Package slackfake is a fake Slack for tests, in the manner of net/http/httptest:
// a loopback server with the Web API methods the bot calls (auth.test,
// apps.connections.open, chat.postMessage, chat.update, chat.postEphemeral,
// chat.startStream/appendStream/stopStream, assistant.threads.setStatus,
// setSuggestedPrompts and setTitle, agents.sessions.setStatus, users.info,
// chat.delete, files.info, files.getUploadURLExternal and
// files.completeUploadExternal) in Slack's response shapes, files shared by
// users served at their url_private_download on the fake's own host (the bot
// token required: without it, a redirect to an HTML sign-in page, as Slack
// does), the upload URLs of the external upload flow, Block Kit validation
// (sections, actions blocks, buttons, context_actions with feedback buttons)
// with chat.update's rules for blocks, and event delivery over Socket Mode (a
// WebSocket with hello, events_api and slash_commands envelopes that must be
// acknowledged within the ack timeout or are redelivered with retry_attempt
// incremented, and interactive envelopes for button presses; disconnect and
// reconnect) or over the Events API (signed HTTP posts with X-Slack-Retry-Num
// on retries; button presses as signed forms with a payload field).
//
// It keeps Slack's documented rate limits, answered with HTTP 429 +
// Retry-After: chat.update per workspace (Tier 3, about 50 a minute),
// chat.postMessage one a second per channel after a short burst and several
// hundred a minute per workspace, assistant.threads.setStatus alike per
// channel, chat.startStream and chat.stopStream at Tier 2 (20 a minute),
// chat.appendStream at Tier 4 (100), and the other methods at their tiers. It
// plays the AI-app surface: the rules of suggested prompts in the agent and the
// legacy assistant experiences, agent sessions with the stop button (Stop
// halts the streams and sends agent_session_stopped), app_home_opened and
// assistant_thread_started.
//
// Tests post user messages, mentions, messages with files and slash commands,
// press buttons and feedback buttons, open the app's home, stop sessions, and
// read each thread's messages with the full history of their texts and their
// blocks, the files the app uploaded, and how the app downloaded.
package slackfake

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultTeamID    = "T0FAKE"
	DefaultBotUserID = "U0BOT"
	DefaultBotID     = "B0BOT"
	DefaultAppID     = "A0APP"
	DefaultBotName   = "chatbot"
	DefaultBotToken  = "xoxb-fake-bot-token"
	DefaultAppToken  = "xapp-fake-app-token"
)

// Options tune the fake. Zero values take the defaults noted.
type Options struct {
	TeamID, BotUserID, BotID, AppID, BotName string
	BotToken, AppToken                       string

	// UpdateLimit chat.update calls are allowed per UpdateWindow in the workspace
	// (Slack's Tier 3: about 50 a minute). Default 50 per minute.
	UpdateLimit  int
	UpdateWindow time.Duration
	// AckTimeout is how long an envelope or an Events API post may wait for its
	// acknowledgement before it is sent again. Default 3 s, as Slack.
	AckTimeout time.Duration
	// MaxRetries is how often an unacknowledged event is sent again. Default 3.
	MaxRetries int
	// RetryDelays are the waits before each Events API retry. Default none.
	RetryDelays []time.Duration
	// PingInterval is how often the WebSocket is pinged. Default 10 s.
	PingInterval time.Duration
	// NoEcho turns off the message and message_changed events Slack sends for the
	// bot's own posts and edits.
	NoEcho bool

	// NoFilesRead plays an app without the files:read scope: downloads of
	// url_private_download land on the sign-in page even with the bot token.
	NoFilesRead bool
	// SignInWithoutRedirect answers a download without access with the sign-in
	// page itself (HTTP 200, HTML) instead of a redirect to it.
	SignInWithoutRedirect bool
	// DownloadDelay holds each file download this long before its bytes, so that
	// concurrent downloads overlap (MaxConcurrentDownloads).
	DownloadDelay time.Duration

	// PostEvery and PostBurst are chat.postMessage's limit per channel (one
	// message a second after a short burst; default 1 s and 3), which
	// assistant.threads.setStatus shares in form (a bucket of its own per
	// channel). PostWorkspaceLimit is chat.postMessage's limit per RateWindow
	// over the workspace (several hundred a minute; default 300).
	PostEvery          time.Duration
	PostBurst          int
	PostWorkspaceLimit int
	// RateWindow is the window of the tiers' per-minute limits (Tier 2: 20,
	// Tier 3: 50, Tier 4: 100 calls of a method). Default a minute.
	RateWindow time.Duration
	// TierLimits overrides the calls per RateWindow of some methods.
	TierLimits map[string]int
	// NoRateLimits turns off every limit but chat.update's.
	NoRateLimits bool

	// AssistantView plays an app still on the legacy assistant messaging
	// experience (assistant_view): suggested prompts need the thread_ts of the
	// assistant thread. Without it the app is an agent (agent_view), and a
	// thread_ts makes assistant.threads.setSuggestedPrompts silently do nothing,
	// as Slack documents.
	AssistantView bool
	// NotAgent plays an app not declared as an agent (no assistant:write):
	// suggested prompts, thread titles and agent sessions are refused with
	// missing_scope.
	NotAgent bool
}

func (o *Options) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.TeamID, DefaultTeamID)
	def(&o.BotUserID, DefaultBotUserID)
	def(&o.BotID, DefaultBotID)
	def(&o.AppID, DefaultAppID)
	def(&o.BotName, DefaultBotName)
	def(&o.BotToken, DefaultBotToken)
	def(&o.AppToken, DefaultAppToken)
	if o.UpdateLimit <= 0 {
		o.UpdateLimit = 50
	}
	if o.UpdateWindow <= 0 {
		o.UpdateWindow = time.Minute
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 3 * time.Second
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 3
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 10 * time.Second
	}
	if o.PostEvery <= 0 {
		o.PostEvery = defaultPostEvery
	}
	if o.PostBurst <= 0 {
		o.PostBurst = defaultPostBurst
	}
	if o.PostWorkspaceLimit <= 0 {
		o.PostWorkspaceLimit = defaultPostWorkspaceLimit
	}
	if o.RateWindow <= 0 {
		o.RateWindow = time.Minute
	}
}

// Message is a message in a channel, as the fake holds it.
type Message struct {
	Channel  string
	TS       string
	ThreadTS string // "" for a top-level message
	User     string
	BotID    string // set for the bot's messages
	Text     string // the current text (Markdown for streamed messages)
	// Blocks is the message's Block Kit blocks as JSON, "" when it has none.
	Blocks string
	// History is every text the message has shown, oldest first; the last is Text.
	History []string
	// At is when the message showed each text of History.
	At        []time.Time
	Streaming bool // a native stream not stopped yet
	Streamed  bool // posted with chat.startStream
	// Halted marks a stream that Slack stopped for the user (the stop button),
	// not the app.
	Halted bool
	// Files are the ids of the files the message shares (the app's uploads).
	Files []string
}

// Ephemeral is a chat.postEphemeral message.
type Ephemeral struct {
	Channel, User, ThreadTS, Text string
}

// Status is an assistant.threads.setStatus call.
type Status struct {
	Channel, ThreadTS, Status string
}

// UserMessage is a message a test posted as a user, with the events it caused.
type UserMessage struct {
	Channel, TS, ThreadTS string
	// Events are the event ids: the message event, then app_mention if any.
	Events []string
}

// Server is the fake Slack. Create it with NewServer and Close it when done.
type Server struct {
	*httptest.Server
	opt Options

	mu            sync.Mutex
	users         map[string]string // id → name
	channels      map[string][]*Message
	deleted       int // messages the bot deleted (chat.delete)
	ephemerals    []Ephemeral
	statuses      []Status
	calls         map[string]int
	limited       int            // 429s sent
	limitedBy     map[string]int // 429s sent, by method
	updates       []time.Time    // chat.update calls within the window
	windows       map[string]*slidingWindow
	postBuckets   map[string]*bucket // chat.postMessage, per channel
	statusBuckets map[string]*bucket // assistant.threads.setStatus, per channel
	prompts       []Prompts
	titles        []Title
	sessions      map[string]*Session // channel:thread → session
	lastTS        int64               // microseconds of the last ts issued
	seq           int                 // ids of events, envelopes, tickets
	events        map[string]*delivery
	tickets       map[string]bool
	conns         []*wsConn
	connects      int
	eventsURL     string
	secret        string
	done          chan struct{}
	workers       sync.WaitGroup
	closeOnce     sync.Once
	deliveries    []*delivery
	fault         func(method string, args url.Values) *Fault

	files         map[string]*storedFile    // id → file
	pending       map[string]*pendingUpload // upload URL key → upload
	uploads       []Upload
	downloads     map[string]int // file id → downloads served
	failDownloads map[string]int // file id → downloads still to fail
	inflight      int            // downloads being served
	maxInflight   int
}

// NewServer starts a fake Slack on loopback.
func NewServer(opt Options) *Server {
	opt.setDefaults()
	s := &Server{
		opt:      opt,
		users:    map[string]string{},
		channels: map[string][]*Message{},
		calls:    map[string]int{},
		events:   map[string]*delivery{},

		limitedBy:     map[string]int{},
		windows:       map[string]*slidingWindow{},
		postBuckets:   map[string]*bucket{},
		statusBuckets: map[string]*bucket{},
		sessions:      map[string]*Session{},
		tickets:       map[string]bool{},
		done:          make(chan struct{}),

		files:         map[string]*storedFile{},
		pending:       map[string]*pendingUpload{},
		downloads:     map[string]int{},
		failDownloads: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.serveAPI)
	mux.HandleFunc("GET /link/", s.serveSocket)
	mux.HandleFunc("GET /files-pri/", s.serveFile)
	mux.HandleFunc("GET "+signInPath, s.serveSignIn)
	mux.HandleFunc("POST /upload/v1/{key}", s.serveUpload)
	s.Server = httptest.NewServer(mux)
	return s
}

// Options returns the fake's options, defaults filled in.
func (s *Server) Options() Options { return s.opt }

// APIURL is the value for slack.api_url.
func (s *Server) APIURL() string { return s.URL + "/api/" }

// Close stops deliveries, closes the WebSockets and shuts the server down.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.mu.Lock()
		conns := slices.Clone(s.conns)
		s.mu.Unlock()
		for _, c := range conns {
			c.close()
		}
		s.Server.Close()
		s.workers.Wait()
	})
}

// AddUser registers a workspace member for users.info.
func (s *Server) AddUser(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id] = name
}

// AddChannel registers a channel the bot is in; its kind follows its id's first
// letter (C public, G private, D direct message). Posting as a user adds it too.
func (s *Server) AddChannel(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.channels[id]; !ok {
		s.channels[id] = nil
	}
}

// SetEventsURL switches delivery to the Events API: events are posted to url,
// signed with secret. An empty url switches back to Socket Mode.
func (s *Server) SetEventsURL(url, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eventsURL, s.secret = url, secret
}

// nextTS returns a new message timestamp, unique and increasing, with its
// microseconds as Slack's have.
func (s *Server) nextTS() string {
	us := time.Now().UnixMicro()
	if us <= s.lastTS {
		us = s.lastTS + 1
	}
	s.lastTS = us
	return fmt.Sprintf("%d.%06d", us/1e6, us%1e6)
}

// nextID returns a new id with prefix.
func (s *Server) nextID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%010d", prefix, s.seq)
}

// channelType is the channel_type of events in the channel.
func channelType(id string) string {
	switch {
	case strings.HasPrefix(id, "D"):
		return "im"
	case strings.HasPrefix(id, "G"):
		return "group"
	default:
		return "channel"
	}
}

// message finds a message by channel and ts.
func (s *Server) message(channel, ts string) *Message {
	for _, m := range s.channels[channel] {
		if m.TS == ts {
			return m
		}
	}
	return nil
}

// copyMessage returns a copy safe to hand to a test.
func copyMessage(m *Message) Message {
	c := *m
	c.History = slices.Clone(m.History)
	c.Files = slices.Clone(m.Files)
	c.At = slices.Clone(m.At)
	return c
}

// Thread returns a thread's messages, the parent first, oldest first.
func (s *Server) Thread(channel, threadTS string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.channels[channel] {
		if m.TS == threadTS || m.ThreadTS == threadTS {
			out = append(out, copyMessage(m))
		}
	}
	return out
}

// BotMessages returns the bot's messages in a thread, oldest first; threadTS ""
// means the channel's top level.
func (s *Server) BotMessages(channel, threadTS string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.channels[channel] {
		if m.BotID != "" && m.ThreadTS == threadTS {
			out = append(out, copyMessage(m))
		}
	}
	return out
}

// Deleted counts the messages the bot deleted with chat.delete.
func (s *Server) Deleted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleted
}

// Ephemerals returns the ephemeral messages shown to user in channel.
func (s *Server) Ephemerals(channel, user string) []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Ephemeral
	for _, e := range s.ephemerals {
		if e.Channel == channel && e.User == user {
			out = append(out, e)
		}
	}
	return out
}

// Statuses returns the assistant thread statuses set so far.
func (s *Server) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.statuses)
}

// Calls returns how often a Web API method was called.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// RateLimited returns how many ratelimited (429) answers were sent.
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limited
}

// Connections returns how many Socket Mode connections were opened so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connects
}
