package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/store"
	"github.com/chatbot-dev/chatbot/store/postgres"
)

// botStore is what the bot keeps its state in: the bbolt file (store.path) or
// PostgreSQL (store.url), which several replicas share.
type botStore interface {
	conversation.History
	conversation.BlobStore
	conversation.Settings
	conversation.UsageLog
	conversation.PendingLog
	conversation.ChatLocker
	TakePending(ctx context.Context) ([]conversation.ChatID, error)
	Cursor(ctx context.Context, name string) (int64, error)
	SetCursor(ctx context.Context, name string, v int64) error
	FirstSeen(ctx context.Context, key string, ttl time.Duration) (bool, error)
	Lead(ctx context.Context, name string, fn func(ctx context.Context) error) error
	Errors() map[string]uint64
	WriteErr() error
	Path() string
	Close() error
}

var (
	_ botStore = (*store.DB)(nil)
	_ botStore = (*postgres.Store)(nil)
)

// openStore opens PostgreSQL when store.url is set, else the bbolt file.
func openStore(ctx context.Context, cfg *Config, log *slog.Logger) (botStore, error) {
	if cfg.Store.URL != "" {
		return postgres.Open(ctx, cfg.Store.URL, postgres.Options{
			MaxMessagesPerChat:  cfg.Store.MaxMessagesPerChat,
			MaxFileBytesPerChat: cfg.Store.MaxFileBytesPerChat,
			Logger:              log,
		})
	}
	return store.Open(cfg.Store.Path, store.Options{MaxMessagesPerChat: cfg.Store.MaxMessagesPerChat,
		MaxFileBytesPerChat: cfg.Store.MaxFileBytesPerChat})
}

// replicated reports whether several processes may share the store: then the
// engine takes each chat's turn in the store too.
func replicated(cfg *Config) bool { return cfg.Store.URL != "" }

// chatLocker is the store's cross-process chat lock when replicas share it;
// nil for the bbolt file, whose one process the engine serialises itself.
func chatLocker(cfg *Config, db botStore) conversation.ChatLocker {
	if !replicated(cfg) {
		return nil
	}
	return db
}

// orphanCheckEvery is how often a replica looks for replies cut by a dead one.
const orphanCheckEvery = 5 * time.Second

// everyWhile calls fn every d until ctx ends.
func everyWhile(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
