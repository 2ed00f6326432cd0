package telegram_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram"
	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store"
)

// Users and chats of the tests.
var (
	alice = telegramtest.User{ID: 1001, FirstName: "Alice", LastName: "Smith", Username: "alice"}
	bob   = telegramtest.User{ID: 2002, FirstName: "Bob"}
	// team is a group where only alice is allowed; club is an allowed group.
	team = telegramtest.Supergroup(-1001234, "Team", false)
	club = telegramtest.Group(-5005, "Club")
	// forum is an allowed supergroup with topics.
	forum = telegramtest.Supergroup(-1009999, "Forum", true)
)

// waitTimeout is how long tests wait for a condition before they call it hung:
// generous, for slow CI boxes (a 100,000-character echo took 32 s on a 2-core
// box running the whole suite); a passing test waits only as long as it must.
const waitTimeout = 2 * time.Minute

// syncBuffer collects the logs of a test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness runs the real adapter, engine and store against the fake Telegram and
// the fake OpenAI.
type harness struct {
	t      *testing.T
	tg     *telegramtest.Server
	ai     *openaitest.Server
	dbPath string
	logs   *syncBuffer
	opt    telegram.Options
	// modelHTTP, when set, carries the model's requests.
	modelHTTP *http.Client
	// model and config tune the model client and the engine (the harness sets
	// the addresses, the store, the logger, and unless set the transcriber, the
	// image maker and the usage log).
	model  openai.Options
	config conversation.Config
	// wrap, when set, wraps the engine as the adapter's handler.
	wrap func(telegram.Handler) telegram.Handler
	// manual: the harness opens the store but starts no bot; the test starts
	// its own (node).
	manual bool

	db     *store.DB
	engine *conversation.Engine
	cancel context.CancelFunc
	done   chan error
}

// option changes a harness before the bot starts.
type option func(*harness)

// adapter changes the adapter's options.
func adapter(f func(*telegram.Options)) option { return func(h *harness) { f(&h.opt) } }

// modelOptions changes the model client's options.
func modelOptions(f func(*openai.Options)) option { return func(h *harness) { f(&h.model) } }

// engineConfig changes the engine's configuration.
func engineConfig(f func(*conversation.Config)) option { return func(h *harness) { f(&h.config) } }

// newHarness starts the fakes and the bot.
func newHarness(t *testing.T, opts ...option) *harness {
	t.Helper()
	h := &harness{t: t, tg: telegramtest.NewServer(telegramtest.Options{}), ai: openaitest.NewServer(),
		dbPath: filepath.Join(t.TempDir(), "chatbot.db"), logs: &syncBuffer{}}
	t.Cleanup(h.ai.Close)
	t.Cleanup(h.tg.Close)
	h.opt = telegram.Options{
		Token:          h.tg.Token,
		APIURL:         h.tg.URL,
		AllowedUserIDs: []int64{alice.ID},
		AllowedChatIDs: []int64{club.ID, forum.ID},
		EditEvery:      40 * time.Millisecond,
		GroupEditEvery: 80 * time.Millisecond,
		TypingEvery:    100 * time.Millisecond,
		PollTimeout:    5 * time.Second,
		Logger:         slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(h)
	}
	t.Cleanup(func() {
		h.stop()
		if strings.Contains(h.logs.String(), h.tg.Token) {
			t.Errorf("the bot token appears in the logs:\n%s", h.logs.String())
		}
		if t.Failed() {
			t.Logf("logs:\n%s", h.logs.String())
		}
	})
	if h.manual {
		db, err := store.Open(h.dbPath, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		h.db = db
		t.Cleanup(func() { db.Close() })
		return h
	}
	h.start()
	return h
}

// start opens the store and runs a new engine and adapter on it.
func (h *harness) start() {
	h.t.Helper()
	db, err := store.Open(h.dbPath, store.Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	h.db = db
	h.engine = h.newEngine(db)
	ctx, cancel := context.WithCancel(context.Background())
	var handler telegram.Handler = h.engine
	if h.wrap != nil {
		handler = h.wrap(handler)
	}
	b, err := telegram.New(ctx, h.opt, handler, db)
	if err != nil {
		cancel()
		db.Close()
		h.t.Fatal(err)
	}
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- b.Run(ctx) }()
}

// newEngine returns an engine on db with the harness's model and config.
func (h *harness) newEngine(db *store.DB) *conversation.Engine {
	h.t.Helper()
	tokens, err := openai.NewTokenCounter("gpt-5.4-mini")
	if err != nil {
		h.t.Fatal(err)
	}
	mo := h.model
	mo.BaseURL, mo.APIKey, mo.HTTPClient, mo.Logger = h.ai.BaseURL(), "sk-test", h.modelHTTP, h.opt.Logger
	if mo.Model == "" {
		mo.Model = "gpt-5.4-mini"
	}
	model := openai.New(mo)
	cfg := h.config
	cfg.Logger, cfg.Settings = h.opt.Logger, db
	if cfg.Transcriber == nil {
		cfg.Transcriber = model
	}
	if cfg.Images == nil {
		cfg.Images = model
	}
	if cfg.Usage == nil {
		cfg.Usage = db // /usage, and the daily pictures
	}
	return conversation.New(cfg, db, model, tokens)
}

// stop shuts the adapter and the engine down as cmd/chatbot does, and closes the store.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = h.engine.Shutdown(shutdown)
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
	h.db.Close()
	h.cancel = nil
}

// say injects a text message from a user in a chat (the zero chat: private).
func (h *harness) say(from telegramtest.User, chat telegramtest.Chat, text string) telegramtest.Message {
	return h.tg.Inject(telegramtest.Incoming{From: from, Chat: chat, Text: text})
}

// waitFor waits until cond holds.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitReply waits until the chat holds n bot messages whose last states show the
// whole of want (joined), and returns the messages.
func (h *harness) waitReply(chatID int64, n int, want string) []telegramtest.BotMessage {
	h.t.Helper()
	var msgs []telegramtest.BotMessage
	h.waitFor(fmt.Sprintf("%d bot messages in chat %d ending with %q", n, chatID, want), func() bool {
		msgs = live(h.tg.BotMessages(chatID))
		return len(msgs) >= n && strings.Contains(msgs[len(msgs)-1].Last().Text, want)
	})
	return msgs
}

// live drops deleted messages.
func live(msgs []telegramtest.BotMessage) []telegramtest.BotMessage {
	var out []telegramtest.BotMessage
	for _, m := range msgs {
		if !m.Deleted {
			out = append(out, m)
		}
	}
	return out
}

// userTexts returns the user messages of a model call, oldest first.
func userTexts(r openaitest.Request) []string {
	var out []string
	for _, m := range r.Messages {
		if m.Role == "user" {
			out = append(out, m.Content)
		}
	}
	return out
}

// checkHTML fails the test unless every version of every message was sent as valid
// Telegram HTML that loses no formatting.
func checkHTML(t *testing.T, msgs []telegramtest.BotMessage) {
	t.Helper()
	for _, m := range msgs {
		for i, v := range m.Versions {
			if v.ParseMode != "HTML" {
				t.Errorf("message %d version %d sent without HTML: %q", m.ID, i, v.Raw)
				continue
			}
			text, ents, err := telegramtest.ParseHTML(v.Raw)
			if err != nil {
				t.Errorf("message %d version %d: %v in %q", m.ID, i, err, v.Raw)
			}
			if err := telegramtest.CheckNesting(ents); err != nil {
				t.Errorf("message %d version %d: %v in %q", m.ID, i, err, v.Raw)
			}
			if telegramtest.UTF16Len(strings.TrimSpace(text)) > telegramtest.MaxMessageLength {
				t.Errorf("message %d version %d is over the limit", m.ID, i)
			}
		}
	}
}
