// Package slack is the bot's Slack adapter, built on github.com/slack-go/slack.
//
// It receives events over Socket Mode (default, no public URL) or the Events API
// (signed HTTP posts to /slack/events), decides which messages to answer (mentions
// in channels, answered in a thread that is one conversation; follow-ups in such a
// thread; every DM), drops redelivered events with keys kept in the store, checks
// the allowlists, maps Slack's forms of the commands onto the engine's ("@bot
// reset", "@bot model NAME"), shows the engine's choices as Block Kit buttons
// whose presses (interactive payloads) run as the user's commands, and writes
// the engine's streaming reply into Slack: the assistant thread status while the
// model thinks (a placeholder message where Slack allows none), then the first
// text as a native stream (chat.startStream, appended to within its rate tier,
// markdown_text as the model wrote it) or as a message of its own, never as an
// edit of the placeholder: edits (chat.update) come from a budget that all the
// workspace's replies share, a few a minute. Long replies continue in new
// messages of the thread; answers end with feedback buttons, whose presses are
// counted.
//
// It is Slack's AI app: the agent view's suggested prompts when someone opens
// the app's conversation (app_home_opened) or starts an assistant thread,
// thread titles from their first message, agent sessions processing while an
// answer is written, so that Slack shows its stop button, and that button
// (agent_session_stopped, or a stream Slack halted) stops the answer as /stop
// does.
//
// Files shared with a message (images, PDFs, text files, audio clips) are
// checked against the size limit by the size Slack reports, downloaded from
// url_private_download with the bot token into a bounded buffer, a few messages
// at a time, and handed to the engine; "@bot image PROMPT" posts the engine's
// picture into the thread with Slack's external upload flow.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	slackgo "github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/chatbot-dev/chatbot/conversation"
)

// Modes of receiving events.
const (
	ModeSocket = "socket"
	ModeEvents = "events"
)

// EventsPath is where the Events API mode takes events and slash commands.
const EventsPath = "/slack/events"

// Defaults of Config.
const (
	DefaultAPIURL           = "https://slack.com/api/"
	DefaultUpdatesPerMinute = 45
	DefaultUpdateBurst      = 3
	DefaultMaxMessageChars  = 3500
	DefaultPostEvery        = time.Second
	DefaultPostBurst        = 3
	// seenTTL is how long event ids and message timestamps are remembered. Slack
	// retries an event for about 5 minutes; an hour leaves room for restarts.
	seenTTL = time.Hour
)

// Config configures the adapter. Zero values take the defaults noted.
type Config struct {
	BotToken string // xoxb-…
	AppToken string // xapp-…, for Socket Mode
	APIURL   string // default DefaultAPIURL
	Mode     string // ModeSocket (default) or ModeEvents

	SigningSecret  string       // Events API mode: verifies every request
	EventsListen   string       // Events API mode: address of the HTTP server
	EventsListener net.Listener // Events API mode: used instead of EventsListen if set

	AllowedUserIDs    []string // empty: every member of the workspace
	AllowedChannelIDs []string // empty: every channel the bot is in
	// ReplyInThreadsWithoutMention answers follow-ups in threads where the bot was
	// mentioned without a new mention.
	ReplyInThreadsWithoutMention bool
	// NativeStreaming streams replies in threads with chat.startStream/appendStream/
	// stopStream while the workspace's Tier 2 budget of new streams has room,
	// falling back to messages edited in place (chat.update) otherwise and on
	// errors (cmd/chatbot turns it on unless slack.native_streaming is false).
	NativeStreaming bool
	// SuggestedPrompts are offered when someone opens the app's conversation
	// (agent view) or starts an assistant thread; Slack shows up to four.
	// SuggestedPromptsTitle heads them (optional).
	SuggestedPrompts      []SuggestedPrompt
	SuggestedPromptsTitle string
	// Feedback is told of each press of the feedback buttons under an answer,
	// with "positive" or "negative" (metrics). Optional.
	Feedback func(kind string)

	// UpdatesPerMinute and UpdateBurst are the workspace's chat.update budget,
	// shared by all streams (Slack allows about 50 a minute). Default 45 and 3.
	UpdatesPerMinute float64
	UpdateBurst      int
	// UpdateEvery is the least time between two edits of one reply. Default 1 s.
	UpdateEvery time.Duration
	// PostEvery and PostBurst pace the messages the bot posts in one channel
	// (and its thread statuses): chat.postMessage allows about one a second
	// per channel after a short burst. Default a second, and 3.
	PostEvery time.Duration
	PostBurst int
	// MaxMessageChars is the most mrkdwn characters per message before the reply
	// continues in a new one. Default 3500.
	MaxMessageChars int

	// MaxFileBytes is the largest file the bot downloads (limits.max_file_bytes);
	// a larger one is refused by its size in the event, before any download.
	// Default 20 MB.
	MaxFileBytes int
	// MaxDownloads is how many messages with files the process takes in at once:
	// a message holds its slot from the first download until the engine has
	// answered it, so that many large files at once cannot exhaust memory.
	// Default 4.
	MaxDownloads int
	// DownloadTimeout bounds one download or upload call. Default 2 minutes.
	DownloadTimeout time.Duration

	HTTPClient *http.Client // default one with a 30 s timeout
	Logger     *slog.Logger // default slog.Default()
}

func (c *Config) setDefaults() {
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	if !strings.HasSuffix(c.APIURL, "/") {
		c.APIURL += "/"
	}
	if c.Mode == "" {
		c.Mode = ModeSocket
	}
	if c.UpdatesPerMinute <= 0 {
		c.UpdatesPerMinute = DefaultUpdatesPerMinute
	}
	if c.UpdateBurst <= 0 {
		c.UpdateBurst = DefaultUpdateBurst
	}
	if c.UpdateEvery <= 0 {
		c.UpdateEvery = time.Second
	}
	if c.PostEvery <= 0 {
		c.PostEvery = DefaultPostEvery
	}
	if c.PostBurst <= 0 {
		c.PostBurst = DefaultPostBurst
	}
	if c.MaxMessageChars <= 0 {
		c.MaxMessageChars = DefaultMaxMessageChars
	}
	if c.MaxFileBytes <= 0 {
		c.MaxFileBytes = DefaultMaxFileBytes
	}
	if c.MaxDownloads <= 0 {
		c.MaxDownloads = DefaultMaxDownloads
	}
	if c.DownloadTimeout <= 0 {
		c.DownloadTimeout = DefaultDownloadTimeout
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if len(c.SuggestedPrompts) > MaxSuggestedPrompts {
		c.SuggestedPrompts = c.SuggestedPrompts[:MaxSuggestedPrompts]
	}
	if c.Feedback == nil {
		c.Feedback = func(string) {}
	}
}

// SuggestedPrompt is one prompt offered in the app's conversation: its title,
// and the message it sends.
type SuggestedPrompt struct {
	Title   string
	Message string
}

// MaxSuggestedPrompts is how many suggested prompts Slack shows.
const MaxSuggestedPrompts = 4

// Engine is what the adapter needs of conversation.Engine.
type Engine interface {
	Handle(ctx context.Context, req conversation.Request) error
	HelpText(ctx context.Context, chat conversation.ChatID) string
}

var _ Engine = (*conversation.Engine)(nil)

// stateStore is what the adapter keeps in the bot's store (store.DB): the keys of
// events already answered, and markers of the threads the bot was mentioned in.
type stateStore interface {
	FirstSeen(ctx context.Context, key string, ttl time.Duration) (bool, error)
	Cursor(ctx context.Context, name string) (int64, error)
	SetCursor(ctx context.Context, name string, v int64) error
}

// Adapter connects one Slack workspace to the engine.
type Adapter struct {
	cfg     Config
	engine  Engine
	store   stateStore
	log     *slog.Logger
	client  *slackgo.Client // for Socket Mode
	api     slackAPI
	files   fileAPI       // downloads and uploads
	slots   chan struct{} // messages with files being taken in (Config.MaxDownloads)
	botUser string        // the bot's user id, e.g. U0BOT
	botName string        // the bot's user name, for help texts
	team    string        // the workspace id, e.g. T0TEAM
	users   *userNames
	spaces  *workspaces
	notes   *rate.Limiter // the cap on best-effort notes

	handlers   sync.WaitGroup // in-flight event handlers
	refreshing keyedMutex     // button messages being shown again
	trace      func(event, detail string)
	connected  atomic.Bool // Socket Mode connected, or the events server listening
}

// Ready reports whether the adapter receives events: its Socket Mode connection
// is up, or its Events API server listens.
func (a *Adapter) Ready() bool { return a.connected.Load() }

// New checks the bot token with auth.test and returns an adapter ready to Run.
func New(ctx context.Context, cfg Config, engine Engine, st stateStore) (*Adapter, error) {
	cfg.setDefaults()
	if cfg.BotToken == "" {
		return nil, errors.New("slack: no bot token")
	}
	if cfg.Mode != ModeSocket && cfg.Mode != ModeEvents {
		return nil, fmt.Errorf("slack: unknown mode %q", cfg.Mode)
	}
	client := slackgo.New(cfg.BotToken,
		slackgo.OptionAppLevelToken(cfg.AppToken),
		slackgo.OptionAPIURL(cfg.APIURL),
		slackgo.OptionHTTPClient(cfg.HTTPClient))
	// Files move on a client without the HTTP client's overall time limit: a
	// 20 MB download may take longer than an API call; each call has
	// DownloadTimeout instead.
	filesHTTP := *cfg.HTTPClient
	filesHTTP.Timeout = 0
	files := slackgo.New(cfg.BotToken, slackgo.OptionAPIURL(cfg.APIURL), slackgo.OptionHTTPClient(&filesHTTP))
	a := &Adapter{
		cfg: cfg, engine: engine, store: st, log: cfg.Logger,
		client: client, api: client, files: files,
		slots: make(chan struct{}, cfg.MaxDownloads),
		trace: func(string, string) {},
	}
	if err := a.authenticate(ctx); err != nil {
		return nil, err
	}
	a.users = newUserNames(a.api)
	a.spaces = newWorkspaces(cfg)
	a.notes = newNoteLimiter()
	return a, nil
}

// authenticate learns the bot's identity; a bad token is an error here, at start.
func (a *Adapter) authenticate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	auth, err := a.api.AuthTestContext(ctx)
	if err != nil {
		return fmt.Errorf("slack: check slack.bot_token with auth.test: %w", err)
	}
	a.botUser, a.botName, a.team = auth.UserID, auth.User, auth.TeamID
	a.log.Info("slack connected", "team", auth.Team, "team_id", auth.TeamID, "bot_user", auth.UserID)
	return nil
}

// Run serves events until ctx ends, then stops taking events, waits for the
// handlers in flight and returns.
func (a *Adapter) Run(ctx context.Context) error {
	var err error
	if a.cfg.Mode == ModeEvents {
		err = a.serveEvents(ctx)
	} else {
		err = a.serveSocket(ctx)
	}
	a.handlers.Wait()
	return err
}

// spawn runs an event's handler in its own goroutine, with a context that the
// shutdown does not cancel (the engine's Shutdown bounds the turns).
func (a *Adapter) spawn(ctx context.Context, f func(ctx context.Context)) {
	hctx := context.WithoutCancel(ctx)
	a.handlers.Go(func() { f(hctx) })
}
