package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/mcp"
	"github.com/chatbot-dev/chatbot/openai"
)

// shutdownGrace is how long running replies may take to finish after a signal.
const shutdownGrace = 20 * time.Second

// platform is a running chat platform adapter.
type platform interface {
	// Run serves until ctx ends, then returns once its handlers have stopped.
	Run(ctx context.Context) error
}

// deps are the parts every adapter is built from.
type deps struct {
	cfg     *Config
	engine  *conversation.Engine
	db      botStore
	log     *slog.Logger
	metrics *metrics // platform calls go through metrics.client(name)
}

// Run runs the parsed command until ctx ends.
func (m *Main) Run(ctx context.Context) error {
	switch m.command {
	case "health":
		return m.health(ctx)
	case "passwd":
		return m.passwd()
	}
	cfg, err := m.loadConfig()
	if err != nil {
		return err
	}
	switch m.command {
	case "check":
		return m.check(ctx, cfg, newLogger(cfg.Log, m.Stderr))
	case "store check", "store repair":
		return m.storeCommand(cfg)
	}
	if err := checkAPIKey(cfg.OpenAI); err != nil {
		return err
	}
	if m.command == "chat" {
		// Logs go to stderr, which is the terminal too: only warnings and errors,
		// so that they do not break into the conversation.
		return m.withStoreAdvice(m.chat(ctx, cfg, newLogger(atLeastWarn(cfg.Log), m.Stderr)))
	}
	return m.withStoreAdvice(m.serve(ctx, cfg, newLogger(cfg.Log, m.Stderr)))
}

// atLeastWarn raises c's level to warn.
func atLeastWarn(c LogConfig) LogConfig {
	if c.Level == "debug" || c.Level == "info" {
		c.Level = "warn"
	}
	return c
}

func (m *Main) loadConfig() (*Config, error) {
	data, err := os.ReadFile(m.configPath)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parseConfig(data, m.LookupEnv)
}

// newLogger logs text on a terminal and JSON otherwise.
func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	format := c.Format
	if format == "auto" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// core is what every command that talks to the model builds.
type core struct {
	db     botStore
	tools  *mcp.Servers // nil without tools.mcp_servers
	model  *openai.Client
	engine *conversation.Engine
}

// openCore opens the store and builds the model and the engine; obs may be nil.
func openCore(ctx context.Context, cfg *Config, log *slog.Logger, obs conversation.Observer) (*core, error) {
	db, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	tokens, err := openai.NewTokenCounter(cfg.OpenAI.Model)
	if err != nil {
		db.Close()
		return nil, err
	}
	tools, err := newTools(cfg, log)
	if err != nil {
		db.Close()
		return nil, err
	}
	model := newModel(cfg, log)
	engine := conversation.New(conversation.Config{
		Tools:              engineTools(tools),
		SystemPrompt:       cfg.OpenAI.SystemPrompt,
		Models:             cfg.OpenAI.Models,
		Personas:           cfg.Personas,
		Settings:           db,
		Locker:             chatLocker(cfg, db),
		Transcriber:        model,
		Images:             model,
		MaxTextFileBytes:   cfg.Limits.MaxTextFileBytes,
		DailyImagesPerUser: *cfg.Limits.DailyImagesPerUser,
		ToolsInGroups:      cfg.Tools.InGroups,
		MaxToolRounds:      cfg.Tools.MaxRounds,
		ToolCallTimeout:    time.Duration(cfg.Tools.CallTimeout),
		ShowToolCalls:      cfg.Tools.ShowCalls,
		MaxContextTokens:   cfg.OpenAI.MaxContextTokens,
		ReplyTokens:        cfg.OpenAI.MaxReplyTokens,
		MaxConcurrent:      cfg.OpenAI.MaxConcurrentRequests,
		TurnTimeout:        time.Duration(cfg.OpenAI.TurnTimeout),
		Logger:             log,
		LogContent:         cfg.Log.Content,
		Usage:              db,
		DailyTokensPerUser: cfg.Limits.DailyTokensPerUser,
		Observer:           obs,
		Pending:            db,
		WebLinks:           webLinks(cfg, db),
	}, db, model, tokens)
	return &core{db: db, tools: tools, model: model, engine: engine}, nil
}

func newModel(cfg *Config, log *slog.Logger) *openai.Client {
	retries := *cfg.OpenAI.MaxRetries
	if retries == 0 {
		retries = -1 // openai.Options: negative is none, zero the default
	}
	return openai.New(openai.Options{
		BaseURL:            cfg.OpenAI.BaseURL,
		APIKey:             cfg.OpenAI.APIKey,
		API:                openai.API(cfg.OpenAI.API),
		Model:              cfg.OpenAI.Model,
		ReasoningEffort:    cfg.OpenAI.ReasoningEffort,
		ReasoningSummary:   cfg.OpenAI.ReasoningSummary,
		WebSearch:          cfg.OpenAI.WebSearch,
		TranscriptionModel: cfg.OpenAI.TranscriptionModel,
		ImageModel:         cfg.OpenAI.ImageModel,
		MaxRetries:         retries,
		StallTimeout:       time.Duration(cfg.OpenAI.StallTimeout),
		Logger:             log,
	})
}

// shutdown lets running turns finish within grace, then cancels them.
func (c *core) shutdown(grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := c.engine.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil // running turns were cancelled and have written their final text
}

// close shuts the engine down, then stops the tool servers and closes the store.
func (c *core) close(grace time.Duration) error {
	return errors.Join(c.shutdown(grace), c.closeTools(), c.db.Close())
}

// closeTools stops the MCP servers (after the engine, whose turns call them).
func (c *core) closeTools() error {
	if c.tools == nil {
		return nil
	}
	return c.tools.Close()
}

// serve runs every platform whose token is set until ctx ends.
func (m *Main) serve(ctx context.Context, cfg *Config, log *slog.Logger) error {
	if cfg.Telegram.Token == "" && cfg.Slack.BotToken == "" && cfg.Web.Listen == "" {
		return errors.New("no platform configured: set telegram.token, slack.bot_token or web.listen " +
			"(for example export TELEGRAM_BOT_TOKEN=... with token: ${TELEGRAM_BOT_TOKEN} in the config)")
	}
	met := newMetrics()
	c, err := openCore(ctx, cfg, log, met)
	if err != nil {
		return err
	}
	met.watchStore(c.db)
	met.watchModelLimit(c.engine)
	ready := &readiness{store: c.db}
	ready.storeOpen.Store(true)
	d := deps{cfg: cfg, engine: c.engine, db: c.db, log: log, metrics: met}
	for _, build := range []func(context.Context, deps) (platform, error){newTelegram, newSlack, newWeb} {
		p, err := build(ctx, d)
		if err != nil {
			return errors.Join(err, c.close(0))
		}
		if p != nil {
			ready.platforms = append(ready.platforms, p)
		}
	}
	notifyInterrupted(ctx, c.db, ready.platforms, log)
	if replicated(cfg) {
		// A dead replica's cut replies become this one's to announce once its
		// lease has expired: look again now and then.
		go everyWhile(ctx, orphanCheckEvery, func() { notifyInterrupted(ctx, c.db, ready.platforms, log) })
	}
	if cfg.HTTP.Listen != "" {
		stopOps, err := serveOps(ctx, cfg.HTTP.Listen, opsHandler(ready, met), log)
		if err != nil {
			return errors.Join(err, c.close(0))
		}
		defer stopOps()
	}
	log.Info("serving", "platforms", len(ready.platforms), "model", cfg.OpenAI.Model, "store", cfg.Store.Path)
	// On a signal the adapters stop taking updates while the engine lets running
	// replies finish within the grace period; the store closes after both.
	stopped := make(chan error, 1)
	go func() {
		<-ctx.Done()
		log.Info("shutting down", "grace", shutdownGrace)
		stopped <- c.shutdown(shutdownGrace)
	}()
	err = runAll(ctx, ready.platforms)
	ready.storeOpen.Store(false)
	return errors.Join(err, <-stopped, c.closeTools(), c.db.Close())
}

// runAll runs the platforms until ctx ends or one fails; a failure stops the rest.
func runAll(ctx context.Context, platforms []platform) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(platforms))
	for i, p := range platforms {
		wg.Go(func() {
			if errs[i] = p.Run(ctx); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// notifier is what a platform implements to send a note into one of its chats;
// it reports whether the chat was its own.
type notifier interface {
	Notify(ctx context.Context, chat conversation.ChatID, text string) (bool, error)
}

// notifyInterrupted tells each chat whose reply was cut by a crash (the store
// still marks it as being written) that the answer was cut off.
func notifyInterrupted(ctx context.Context, db botStore, platforms []platform, log *slog.Logger) {
	chats, err := db.TakePending(ctx)
	if err != nil {
		log.Warn("read interrupted replies", "err", err)
		return
	}
	for _, chat := range chats {
		for _, p := range platforms {
			n, ok := p.(notifier)
			if !ok {
				continue
			}
			callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			mine, err := n.Notify(callCtx, chat, conversation.InterruptedText)
			cancel()
			if err != nil {
				log.Warn("tell a chat its reply was interrupted", "chat", string(chat), "err", err)
			}
			if mine {
				log.Info("told a chat its reply was interrupted by a restart", "chat", string(chat))
				break
			}
		}
	}
}
