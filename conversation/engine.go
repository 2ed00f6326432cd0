package conversation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Config tunes the Engine. Zero values take the defaults noted.
type Config struct {
	// SystemPrompt starts every context (optional); a chat's persona replaces it.
	SystemPrompt string
	// Models lists the models a chat may pick with /model; empty means just the
	// Model's default.
	Models []string
	// Personas maps a persona's name to its system prompt, for /persona.
	Personas map[string]string
	// Settings keeps each chat's model and persona; default in memory.
	Settings Settings
	// Transcriber turns voice messages into text; nil refuses them.
	Transcriber Transcriber
	// Images draws pictures for /image; nil refuses it.
	Images ImageMaker
	// MaxTextFileBytes bounds a text file put into a message. Default 1 MB.
	MaxTextFileBytes int
	// DailyImagesPerUser bounds /image per user a day (UTC); zero means no limit.
	// It needs Usage.
	DailyImagesPerUser int
	// Tools, when set, are offered to the model in private conversations.
	Tools Tools
	// ToolsInGroups offers Tools in groups and channels too.
	ToolsInGroups bool
	// MaxToolRounds bounds the rounds of tool calls in one turn. Default 8.
	MaxToolRounds int
	// ToolCallTimeout bounds one tool call. Default 60 s.
	ToolCallTimeout time.Duration
	// MaxToolOutputBytes caps a tool's output before it reaches the model.
	// Default 16 KiB.
	MaxToolOutputBytes int
	// ShowToolCalls keeps the "🔧 tool" lines in the final message.
	ShowToolCalls bool
	// WebLinks, when set, answers /web with a one-time login link.
	WebLinks LoginLinks
	// Locker, when set, also holds each chat's turn across processes (replicas
	// sharing a PostgreSQL store); within one process the engine's own queue does.
	Locker ChatLocker
	// MaxContextTokens bounds system prompt + history + the new message + ReplyTokens.
	// Default 16000.
	MaxContextTokens int
	// ReplyTokens is kept free in the context for the reply. Default 1024.
	ReplyTokens int
	// HistoryWindow is how many stored messages are read per turn, at most. Default 200.
	HistoryWindow int
	// MaxConcurrent is the upper bound of the adaptive limit on model calls running
	// at once over all chats (see limiter). Default 256.
	MaxConcurrent int
	// InitialConcurrent is where that limit starts. Default 64, or MaxConcurrent
	// if lower.
	InitialConcurrent int
	// TurnTimeout bounds one whole turn. Default 5 minutes.
	TurnTimeout time.Duration
	// Clock drives the pacer; default the system clock.
	Clock Clock
	// Logger receives one line per turn; default slog.Default().
	Logger *slog.Logger
	// LogContent adds message texts to the logs (off by default).
	LogContent bool
	// Usage, when set, counts each user's tokens a day; /usage shows them.
	Usage UsageLog
	// DailyTokensPerUser refuses turns to a user who spent this many tokens
	// today (UTC). Zero means no limit; it needs Usage.
	DailyTokensPerUser int
	// Observer, when set, is told about every finished turn.
	Observer Observer
	// Pending, when set, marks each chat while its reply is being written.
	Pending PendingLog
}

func (c *Config) setDefaults() {
	if c.MaxContextTokens <= 0 {
		c.MaxContextTokens = 16000
	}
	if c.ReplyTokens <= 0 {
		c.ReplyTokens = 1024
	}
	if c.HistoryWindow <= 0 {
		c.HistoryWindow = 200
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = 256
	}
	if c.TurnTimeout <= 0 {
		c.TurnTimeout = 5 * time.Minute
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Settings == nil {
		c.Settings = &memorySettings{}
	}
	if c.MaxToolRounds <= 0 {
		c.MaxToolRounds = 8
	}
	if c.ToolCallTimeout <= 0 {
		c.ToolCallTimeout = 60 * time.Second
	}
	if c.MaxToolOutputBytes <= 0 {
		c.MaxToolOutputBytes = 16 << 10
	}
}

// Texts the engine answers with.
const (
	busyText       = "Still answering your previous message, please wait."
	resetText      = "Context cleared. Let's start over."
	stopIdleText   = "Nothing to stop."
	stoppedMark    = "\n\n_(stopped)_"
	resetMark      = "\n\n_(cancelled: context cleared)_"
	shutdownText   = "The bot is restarting, so this answer was cut off. Please send your message again in a minute."
	emptyReplyText = "The model sent an empty reply. Please try again."
	closingText    = "The bot is restarting; please send that again in a minute."
)

// Causes of a cancelled turn.
var (
	errStopped  = errors.New("stopped by /stop")
	errReset    = errors.New("cancelled by /reset")
	errShutdown = errors.New("cancelled by shutdown")
)

// Engine runs conversations: one turn at a time per chat, chats in parallel, with an
// adaptive bound on the model calls at once. It is safe for concurrent use.
type Engine struct {
	cfg      Config
	history  History
	settings Settings
	model    Model
	tokens   TokenCounter
	log      *slog.Logger
	calls    *limiter // the adaptive limit on concurrent model calls

	mu      sync.Mutex
	chats   map[ChatID]*chatState
	closing bool
	turns   sync.WaitGroup
	base    context.Context // parent of every turn; cancelled by Shutdown
	cancel  context.CancelCauseFunc
	// delivery is the parent of every write to a platform; Shutdown ends it a
	// little after the turns, so that cut replies still get their final text.
	delivery     context.Context
	stopDelivery context.CancelFunc
}

// chatState is one chat's turn queue: at most one turn running and one waiting.
type chatState struct {
	running bool
	waiting bool
	noticed bool                    // a busy notice went out during the running turn
	ctx     context.Context         // the running turn's context
	cancel  context.CancelCauseFunc // cancels the running turn
	done    chan struct{}           // closed when the running turn ends; made by ended
}

// ended returns what is closed when the running turn ends, made now if no
// one waited for it yet (most turns have no waiter); e.mu is held.
func (st *chatState) ended() <-chan struct{} {
	if st.done == nil {
		st.done = make(chan struct{})
	}
	return st.done
}

// New returns an Engine.
func New(cfg Config, h History, m Model, tc TokenCounter) *Engine {
	cfg.setDefaults()
	base, cancel := context.WithCancelCause(context.Background())
	delivery, stopDelivery := context.WithCancel(context.Background())
	return &Engine{
		cfg:      cfg,
		history:  h,
		settings: cfg.Settings,
		model:    m,
		tokens:   tc,
		log:      cfg.Logger,
		calls:    newLimiter(cfg.InitialConcurrent, cfg.MaxConcurrent),
		chats:    make(map[ChatID]*chatState),
		base:     base,
		cancel:   cancel,

		delivery:     delivery,
		stopDelivery: stopDelivery,
	}
}

// Handle answers one request and returns when its reply is finished. Commands are
// answered at once; a message waits while its chat is busy (one at most: a further
// one is told to wait). It returns ErrClosed once Shutdown has begun.
func (e *Engine) Handle(ctx context.Context, req Request) error {
	cmd, arg, isCmd := parseCommand(req.Text)
	if isCmd && cmd != CommandImage {
		return e.command(ctx, &req, cmd, arg)
	}
	st, err := e.enter(ctx, &req)
	if st == nil || err != nil {
		return err
	}
	defer e.leave(req.Chat, st)
	unlock, err := e.lockChat(ctx, &req, st)
	if err != nil {
		return err
	}
	defer unlock()
	if isCmd {
		return e.imageTurn(&req, st, arg)
	}
	return e.turn(&req, st)
}

// enter waits for the chat's turn. It returns nil when the request was answered
// without a turn (busy, closing).
func (e *Engine) enter(ctx context.Context, req *Request) (*chatState, error) {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return nil, errors.Join(ErrClosed, e.notice(ctx, req.Reply, closingText))
	}
	st := e.chats[req.Chat]
	if st == nil {
		st = &chatState{}
		e.chats[req.Chat] = st
	}
	for st.running {
		if st.waiting {
			first := !st.noticed
			st.noticed = true
			e.mu.Unlock()
			if !first { // one busy notice per running turn is enough
				return nil, nil
			}
			return nil, e.notice(ctx, req.Reply, busyText)
		}
		st.waiting = true
		done := st.ended()
		e.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			e.mu.Lock()
			st.waiting = false
			if !st.running && e.chats[req.Chat] == st {
				delete(e.chats, req.Chat)
			}
			e.mu.Unlock()
			return nil, ctx.Err()
		}
		e.mu.Lock()
		st.waiting = false
		if e.closing {
			e.mu.Unlock()
			return nil, errors.Join(ErrClosed, e.notice(ctx, req.Reply, closingText))
		}
	}
	st.running, st.noticed = true, false
	st.done = nil
	st.ctx, st.cancel = context.WithCancelCause(e.base)
	e.turns.Add(1)
	e.mu.Unlock()
	return st, nil
}

// lockChat takes the chat's turn over all processes, waiting while another
// process runs one there (its /stop, a shutdown or ctx end the wait).
func (e *Engine) lockChat(ctx context.Context, req *Request, st *chatState) (func(), error) {
	if e.cfg.Locker == nil {
		return func() {}, nil
	}
	wait, stop := context.WithCancel(st.ctx)
	defer stop()
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-wait.Done():
		}
	}()
	unlock, err := e.cfg.Locker.LockChat(wait, req.Chat)
	if err != nil {
		err = fmt.Errorf("lock chat: %w", err)
		return nil, errors.Join(err, e.finishNow(ctx, req.Reply, "I could not take this conversation's turn. Please try again."))
	}
	return unlock, nil
}

// leave ends the chat's running turn and lets the waiting one in.
func (e *Engine) leave(chat ChatID, st *chatState) {
	e.mu.Lock()
	st.running = false
	st.cancel(nil)
	st.ctx, st.cancel = nil, nil
	if st.done != nil {
		close(st.done)
	}
	if !st.waiting {
		delete(e.chats, chat)
	}
	e.mu.Unlock()
	e.turns.Done()
}

// cancelTurn cancels the chat's running turn with cause and waits until it ends.
// It reports whether a turn was running.
func (e *Engine) cancelTurn(ctx context.Context, chat ChatID, cause error) bool {
	e.mu.Lock()
	st := e.chats[chat]
	if st == nil || !st.running {
		e.mu.Unlock()
		return false
	}
	st.cancel(cause)
	done := st.ended()
	e.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return true
}

// finishNow writes a one-off answer (commands, errors); the shutdown ends it.
func (e *Engine) finishNow(ctx context.Context, r Reply, text string) error {
	ctx, cancel := e.deliveryContext(ctx)
	defer cancel()
	return newPacer(ctx, r, time.Second, e.cfg.Clock, e.log, nil).Finish(text)
}

// Shutdown stops taking messages, lets running turns finish until ctx ends, then
// cancels them and waits for them to write their final text.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
	idle := make(chan struct{})
	go func() { e.turns.Wait(); close(idle) }()
	select {
	case <-idle:
		e.cancel(errShutdown)
		e.stopDelivery()
		return nil
	case <-ctx.Done():
	}
	e.cancel(errShutdown)
	select { // the cut replies' final texts, if the platform takes them soon
	case <-idle:
	case <-time.After(finalGrace):
	}
	e.stopDelivery()
	<-idle
	return ctx.Err()
}

// finalGrace is how long Shutdown lets cut replies deliver their final text.
const finalGrace = 10 * time.Second

// HelpText is the platform-neutral help for chat, with its model and persona;
// adapters may add their own lines.
func (e *Engine) HelpText(ctx context.Context, chat ChatID) string {
	cs, err := e.setup(ctx, chat)
	if err != nil {
		cs = chatSetup{model: e.model.Name()}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "I answer with the model %s and remember this conversation.", cs.model)
	if cs.persona != "" {
		fmt.Fprintf(&b, " Persona: %s.", cs.persona)
	}
	b.WriteString("\n\nSend a message and watch the answer grow.\n" +
		"/reset: forget this conversation and start over\n" +
		"/stop: stop the answer in progress\n" +
		"/model: show or switch this chat's model\n")
	if e.cfg.Images != nil {
		b.WriteString("/image PROMPT: draw a picture\n")
	}
	if e.cfg.WebLinks != nil {
		b.WriteString("/web: a login link to the web chat (in a private chat)\n")
	}
	if len(e.cfg.Personas) > 0 {
		b.WriteString("/persona: show or switch this chat's persona\n")
	}
	b.WriteString("/usage: the tokens you used today\n" +
		"/help: show this help")
	return b.String()
}

// turnDone logs one line per turn, without message text unless configured, and
// tells the observer.
func (e *Engine) turnDone(req Request, st TurnStats, reply string) {
	attrs := []any{
		"chat", string(req.Chat), "user", req.UserID, "model", st.Model, "outcome", st.Outcome,
		"tokens_in", st.Usage.PromptTokens, "tokens_out", st.Usage.CompletionTokens,
		"first_token", st.FirstToken, "duration", st.Duration,
	}
	if e.cfg.LogContent {
		attrs = append(attrs, "text", req.Text, "reply", reply)
	}
	if st.Err != nil {
		e.log.Warn("turn", append(attrs, "err", st.Err)...)
	} else {
		e.log.Info("turn", attrs...)
	}
	if e.cfg.Observer != nil {
		e.cfg.Observer.TurnDone(st)
	}
}
