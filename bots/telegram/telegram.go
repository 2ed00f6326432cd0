// Package telegram connects the conversation engine to Telegram through the Bot API
// (github.com/go-telegram/bot), pointed at any server: Telegram, a self-hosted Bot
// API server, or the fake in telegramtest.
//
// It receives updates by long polling (the offset is kept in the store, so that a
// restart neither skips nor re-answers an update; with several processes on one
// store, one polls at a time) or by webhook (with a secret token checked before
// anything else), answers each update id once over all processes that share the
// store, decides which messages are for the bot (every message in a private
// chat; in groups a mention, a reply to the bot or a command), enforces the
// allowlists, and answers through the engine with a reply that renders the
// model's Markdown as Telegram HTML, streams as a native draft with a stop
// button in private chats (or grows in place at Telegram's pace), and continues
// in new messages past 4096 characters.
//
// Photos, voice and audio messages, video notes and documents are downloaded
// (getFile, then {api_url}/file/bot{token}/{file_path}) within a size limit and a
// bound on the bytes held at once, and handed to the engine as attachments; the
// engine's /image posts its picture with sendPhoto.
package telegram

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
	"golang.org/x/sync/semaphore"

	"github.com/chatbot-dev/chatbot/conversation"
)

// Modes of receiving updates.
const (
	ModePolling = "polling"
	ModeWebhook = "webhook"
)

// offsetCursor is the store's name for the next getUpdates offset.
const offsetCursor = "telegram.offset"

// Options configure the adapter. Zero values take the defaults noted.
type Options struct {
	// Token is the bot's token from @BotFather.
	Token string
	// APIURL is the Bot API server. Default https://api.telegram.org.
	APIURL string
	// AllowedUserIDs may use the bot anywhere; AllowedChatIDs are chats (groups)
	// where every member may. Everyone else is told their id and refused.
	AllowedUserIDs []int64
	AllowedChatIDs []int64
	// Mode is ModePolling (default) or ModeWebhook.
	Mode string
	// WebhookURL is the public https URL Telegram posts updates to; its path is
	// served on WebhookListen. WebhookSecret is the secret_token Telegram sends back
	// in X-Telegram-Bot-Api-Secret-Token.
	WebhookURL    string
	WebhookSecret string
	WebhookListen string
	// WebhookListener, when set, is used instead of listening on WebhookListen.
	WebhookListener net.Listener
	// Drafts streams private replies as native drafts (sendMessageDraft, with
	// the stop button of Bot API 10.3), finished by one sendMessage; a chat
	// whose draft fails edits in place instead for a while. Off by default
	// here; cmd/chatbot turns it on unless telegram.drafts is false.
	Drafts bool
	// DraftRefresh is how long a draft may go unchanged before it is sent
	// again, well inside its 30-second life. Default 15 s.
	DraftRefresh time.Duration
	// Clock times the draft refreshes; default the system clock.
	Clock conversation.Clock
	// EditEvery is the least time between two edits of a reply in a private chat
	// (default 1 s); GroupEditEvery in a group (default 3 s: 20 per minute).
	EditEvery      time.Duration
	GroupEditEvery time.Duration
	// TypingEvery is how often "typing" is sent until the first text. Default 4.5 s
	// (Telegram shows it for 5 s).
	TypingEvery time.Duration
	// PollTimeout is the long-poll length. Default 50 s.
	PollTimeout time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
	// HTTPClient makes the Bot API calls; default a client with a timeout a little
	// longer than PollTimeout.
	HTTPClient *http.Client
	// MaxFileBytes is the largest file the bot downloads (limits.max_file_bytes):
	// a larger one is refused, before any download when Telegram tells its size.
	// Default 20 MB, the most Telegram lets a bot download.
	MaxFileBytes int64
	// FileMemory bounds the bytes of the files the bot holds at once, from
	// before their download to the end of their answer: a file waits for room
	// before it is downloaded. Answering a file takes several times its size
	// (its base64 for the model, the request), so this bounds the memory that
	// files take however many arrive at once. Default twice MaxFileBytes (two
	// files of the largest size, four 10 MB photos, many ordinary ones); never
	// less than MaxFileBytes.
	FileMemory int64
	// DownloadClient downloads files; default HTTPClient.
	DownloadClient *http.Client
}

func (o *Options) setDefaults() {
	if o.APIURL == "" {
		o.APIURL = "https://api.telegram.org"
	}
	o.APIURL = strings.TrimRight(o.APIURL, "/")
	if o.Mode == "" {
		o.Mode = ModePolling
	}
	if o.EditEvery <= 0 {
		o.EditEvery = time.Second
	}
	if o.GroupEditEvery <= 0 {
		o.GroupEditEvery = 3 * time.Second
	}
	if o.DraftRefresh <= 0 {
		o.DraftRefresh = 15 * time.Second
	}
	if o.Clock == nil {
		o.Clock = conversation.SystemClock{}
	}
	if o.TypingEvery <= 0 {
		o.TypingEvery = 4500 * time.Millisecond
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = 50 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: o.PollTimeout + 15*time.Second}
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.FileMemory <= 0 {
		o.FileMemory = largestFilesAtOnce * o.MaxFileBytes
	}
	o.FileMemory = max(o.FileMemory, o.MaxFileBytes)
	if o.DownloadClient == nil {
		o.DownloadClient = o.HTTPClient
	}
}

func (o *Options) validate() error {
	switch {
	case strings.TrimSpace(o.Token) == "":
		return errors.New("telegram: no token")
	case o.Mode != ModePolling && o.Mode != ModeWebhook:
		return fmt.Errorf("telegram: unknown mode %q (want %s or %s)", o.Mode, ModePolling, ModeWebhook)
	case o.Mode == ModeWebhook && o.WebhookSecret == "":
		return errors.New("telegram: webhook mode needs a webhook secret")
	case o.Mode == ModeWebhook && o.WebhookListen == "" && o.WebhookListener == nil:
		return errors.New("telegram: webhook mode needs an address to listen on")
	}
	if o.Mode == ModeWebhook {
		if u, err := url.Parse(o.WebhookURL); err != nil || u.Host == "" {
			return fmt.Errorf("telegram: bad webhook URL %q", o.WebhookURL)
		}
	}
	return nil
}

// Handler answers requests; *conversation.Engine is one.
type Handler interface {
	Handle(ctx context.Context, req conversation.Request) error
}

// cursorStore keeps the polling offset; *store.DB and *postgres.Store are
// ones. A store that is also a leader and a seenStore (both are) lets several
// processes share the bot.
type cursorStore interface {
	Cursor(ctx context.Context, name string) (int64, error)
	SetCursor(ctx context.Context, name string, v int64) error
}

// leader runs fn while this process leads name over all processes that share
// the store, with a context that ends when it stops leading; a cursor written
// with that context (or one derived from it) is written only while it leads.
// *postgres.Store leads over replicas, *store.DB within its process.
type leader interface {
	Lead(ctx context.Context, name string, fn func(ctx context.Context) error) error
}

// seenStore remembers keys for a while and tells whether one is new, over all
// processes that share the store.
type seenStore interface {
	FirstSeen(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// botAPI lists the SDK calls the adapter makes.
type botAPI interface {
	messenger
	uploader
	GetMe(ctx context.Context) (*models.User, error)
	GetFile(ctx context.Context, params *bot.GetFileParams) (*models.File, error)
	SetMyCommands(ctx context.Context, params *bot.SetMyCommandsParams) (bool, error)
	GetWebhookInfo(ctx context.Context) (*models.WebhookInfo, error)
	DeleteWebhook(ctx context.Context, params *bot.DeleteWebhookParams) (bool, error)
	SetWebhook(ctx context.Context, params *bot.SetWebhookParams) (bool, error)
	AnswerCallbackQuery(ctx context.Context, params *bot.AnswerCallbackQueryParams) (bool, error)
	ProcessUpdate(ctx context.Context, upd *models.Update)
}

// Bot is the Telegram adapter.
type Bot struct {
	opt     Options
	handler Handler
	cursors cursorStore
	log     *slog.Logger
	api     botAPI
	gate    atomic.Pointer[pollGate] // the poller's, while this process polls
	red     redactor
	me      models.User

	allowedUsers map[int64]bool
	allowedChats map[int64]bool
	denials      *throttle
	limits       *chatLimits
	order        *chatOrder
	presses      *chatLocks
	files        *semaphore.Weighted // FileMemory: the bytes of the files held
	albums       albums
	drafts       *drafts

	seed      maphash.Seed   // of sum
	handlers  sync.WaitGroup // running message handlers
	draftSeq  atomic.Int64
	webhookUp atomic.Bool // webhook mode: listening and registered with setWebhook
	polling   atomic.Bool // polling mode: Run polls, or waits to lead the polling
	leading   atomic.Bool // polling mode: this process polls
}

// sum is the fingerprint of a text a message shows (64 bits, keyed per process).
func (b *Bot) sum(text string) uint64 { return maphash.String(b.seed, text) }

// Ready reports whether the bot receives updates: its webhook is listening,
// or it polls and its last getUpdates did not fail, or another process that
// shares the store polls and this one stands by to take over.
func (b *Bot) Ready() bool {
	if b.opt.Mode == ModeWebhook {
		return b.webhookUp.Load()
	}
	if !b.polling.Load() {
		return false
	}
	g := b.gate.Load()
	return !b.leading.Load() || g != nil && g.polling.Load()
}

// New checks the token with getMe and returns the adapter; Run starts it.
func New(ctx context.Context, opt Options, h Handler, cursors cursorStore) (*Bot, error) {
	opt.setDefaults()
	if err := opt.validate(); err != nil {
		return nil, err
	}
	b := &Bot{
		opt: opt, handler: h, cursors: cursors, log: opt.Logger,
		red:          redactor{token: opt.Token},
		seed:         maphash.MakeSeed(),
		allowedUsers: set(opt.AllowedUserIDs),
		allowedChats: set(opt.AllowedChatIDs),
		denials:      newThrottle(time.Minute),
		limits:       newChatLimits(opt.EditEvery, opt.GroupEditEvery),
		order:        newChatOrder(),
		presses:      newChatLocks(),
		files:        semaphore.NewWeighted(opt.FileMemory),
		drafts:       newDrafts(),
	}
	b.draftSeq.Store(time.Now().UnixNano() & 0x3fffffff)
	if err := b.connect(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// connect builds the SDK client of the bot's calls (and of the webhook's
// updates) and asks who the bot is. Polling has clients of its own (poller).
func (b *Bot) connect(ctx context.Context) error {
	sdk, err := bot.New(b.opt.Token,
		bot.WithServerURL(b.opt.APIURL),
		bot.WithSkipGetMe(),
		bot.WithHTTPClient(b.opt.PollTimeout, b.opt.HTTPClient),
		bot.WithAllowedUpdates(allowedUpdates),
		bot.WithDefaultHandler(func(ctx context.Context, _ *bot.Bot, upd *models.Update) { b.onUpdate(ctx, nil, upd) }),
		bot.WithNotAsyncHandlers(),
		bot.WithErrorsHandler(func(err error) { b.log.Warn("telegram", "err", b.red.err(err)) }),
	)
	if err != nil {
		return fmt.Errorf("telegram: %w", b.red.err(err))
	}
	b.api = sdk
	me, err := b.getMe(ctx)
	if err != nil {
		return err
	}
	b.me = *me
	return nil
}

// poller builds the SDK client that polls from offset and hands the updates
// to onUpdate through gate.
func (b *Bot) poller(offset int64, gate *pollGate) (*bot.Bot, error) {
	sdk, err := bot.New(b.opt.Token,
		bot.WithServerURL(b.opt.APIURL),
		bot.WithSkipGetMe(),
		bot.WithHTTPClient(b.opt.PollTimeout, gate),
		bot.WithInitialOffset(max(offset-1, 0)), // the library asks for this + 1
		bot.WithAllowedUpdates(allowedUpdates),
		bot.WithDefaultHandler(func(ctx context.Context, _ *bot.Bot, upd *models.Update) { b.onUpdate(ctx, gate, upd) }),
		bot.WithNotAsyncHandlers(),
		bot.WithErrorsHandler(func(err error) { b.log.Warn("telegram", "err", b.red.err(err)) }),
	)
	if err != nil {
		return nil, fmt.Errorf("telegram: %w", b.red.err(err))
	}
	return sdk, nil
}

// Start-up tries getMe this many times while it fails in a way that may pass
// (no connection, 5xx, 429), waiting transientWait longer each time; it gives
// up at once when Telegram asks to wait longer than maxStartWait.
const (
	startAttempts = 3
	maxStartWait  = 30 * time.Second
)

// getMe asks who the bot is, trying again while the failure may pass.
func (b *Bot) getMe(ctx context.Context) (*models.User, error) {
	for attempt := 1; ; attempt++ {
		me, err := b.api.GetMe(ctx)
		switch {
		case err == nil:
			return me, nil
		case errors.Is(err, bot.ErrorUnauthorized) || errors.Is(err, bot.ErrorNotFound):
			return nil, errors.New("telegram: the bot token was refused (Unauthorized): check telegram.token")
		}
		wait, again := retryAfter(err)
		if !again && transient(err) {
			wait, again = time.Duration(attempt)*transientWait, true
		}
		if !again || wait > maxStartWait || attempt == startAttempts || ctx.Err() != nil {
			tries := ""
			if attempt > 1 {
				tries = fmt.Sprintf(" (tried %d times)", attempt)
			}
			return nil, fmt.Errorf("telegram: getMe failed%s: %s", tries, b.red.text(err.Error()))
		}
		b.log.Warn("telegram: getMe failed, trying again", "attempt", attempt, "wait", wait, "err", b.red.text(err.Error()))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
}

func set(ids []int64) map[int64]bool {
	m := make(map[int64]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// Run serves until ctx ends, then stops taking updates, waits for the messages
// being answered (which the engine's shutdown bounds) and returns.
func (b *Bot) Run(ctx context.Context) error {
	b.setCommands(ctx)
	var err error
	if b.opt.Mode == ModeWebhook {
		err = b.serveWebhook(ctx)
	} else {
		err = b.poll(ctx)
	}
	b.handlers.Wait()
	return err
}

// allowedUpdates are the kinds of update the bot asks Telegram for: messages,
// presses on its buttons, and the stop button under its drafts.
var allowedUpdates = []string{models.AllowedUpdateMessage, models.AllowedUpdateCallbackQuery,
	models.AllowedUpdateStoppedMessageGeneration}

// commands are the commands shown in Telegram's menu.
var commands = []models.BotCommand{
	{Command: conversation.CommandHelp, Description: "What I can do"},
	{Command: conversation.CommandReset, Description: "Forget this conversation and start over"},
	{Command: conversation.CommandStop, Description: "Stop the answer in progress"},
	{Command: conversation.CommandModel, Description: "Show or switch this chat's model"},
	{Command: conversation.CommandPersona, Description: "Show or switch this chat's persona"},
	{Command: conversation.CommandImage, Description: "Draw a picture: /image PROMPT"},
	{Command: conversation.CommandUsage, Description: "How many tokens you used today"},
	{Command: conversation.CommandStart, Description: "Start"},
}

func (b *Bot) setCommands(ctx context.Context) {
	if _, err := b.api.SetMyCommands(ctx, &bot.SetMyCommandsParams{Commands: commands}); err != nil {
		b.log.Warn("telegram: set commands", "err", b.red.err(err))
	}
}

// pollRetry is how long polling waits after the store failed it (the offset
// could not be read, or the campaign to lead failed) before it tries again.
const pollRetry = 2 * time.Second

// poll receives updates by long polling until ctx ends. When the store lets
// several processes share the bot (a leader), exactly one of them polls at a
// time: this one campaigns, polls while it leads, and campaigns again when it
// loses the lead; meanwhile it stands by (Ready) and answers nothing.
func (b *Bot) poll(ctx context.Context) error {
	if ctx.Err() != nil {
		return nil
	}
	b.polling.Store(true)
	defer b.polling.Store(false)
	l, ok := b.cursors.(leader)
	if !ok {
		return b.pollLeading(ctx)
	}
	name := fmt.Sprintf("telegram:polling:%d", b.me.ID)
	for {
		err := l.Lead(ctx, name, b.pollLeading)
		if ctx.Err() != nil {
			return nil
		}
		b.log.Warn("telegram: polling stopped, trying again", "wait", pollRetry, "err", b.red.err(err))
		if !sleep(ctx, pollRetry) {
			return nil
		}
	}
}

// pollLeading polls until ctx ends, from the offset stored last: under a
// leader, ctx is the leadership's, which also fences the offsets accept
// stores with it.
func (b *Bot) pollLeading(ctx context.Context) error {
	offset, err := b.cursors.Cursor(ctx, offsetCursor)
	if err != nil {
		return fmt.Errorf("telegram: read offset: %w", err)
	}
	gate := newPollGate(b.opt.HTTPClient)
	sdk, err := b.poller(offset, gate)
	if err != nil {
		return err
	}
	info, err := b.api.GetWebhookInfo(ctx)
	if err != nil && ctx.Err() == nil {
		b.log.Warn("telegram: get webhook info", "err", b.red.err(err))
	}
	if err != nil || info.URL != "" {
		// A webhook in force makes getUpdates fail with 409 Conflict.
		if _, err := b.api.DeleteWebhook(ctx, &bot.DeleteWebhookParams{}); err != nil {
			if ctx.Err() == nil {
				b.log.Warn("telegram: delete webhook before polling", "err", b.red.err(err))
			}
		} else if info != nil && info.URL != "" {
			b.log.Info("telegram: webhook deleted to poll for updates")
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	b.log.Info("telegram: polling", "bot", "@"+b.me.Username, "api", b.red.text(b.opt.APIURL), "offset", offset)
	b.gate.Store(gate)
	b.leading.Store(true)
	defer b.leading.Store(false)
	sdk.Start(ctx)
	b.log.Info("telegram: stopped polling", "bot", "@"+b.me.Username)
	return nil
}
