package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/store"
)

// testCanceledContext checks that every call returns context.Canceled once
// its context is done, without doing anything.
func testCanceledContext(t *testing.T, open Opener) {
	db := open(t, Caps{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"Recent":          func() error { _, err := db.Recent(ctx, "c", 10); return err },
		"AppendTurn":      func() error { return db.AppendTurn(ctx, "c", msg("c", 0)) },
		"Reset":           func() error { return db.Reset(ctx, "c") },
		"Blob":            func() error { _, err := db.Blob(ctx, "c", "ab"); return err },
		"ChatSettings":    func() error { _, err := db.ChatSettings(ctx, "c"); return err },
		"SetChatSettings": func() error { return db.SetChatSettings(ctx, "c", conversation.ChatSettings{Model: "m"}) },
		"AddTokens":       func() error { return db.AddTokens(ctx, "u", time.Now(), 1) },
		"TokensOn":        func() error { _, err := db.TokensOn(ctx, "u", time.Now()); return err },
		"MarkPending":     func() error { return db.MarkPending(ctx, "c") },
		"ClearPending":    func() error { return db.ClearPending(ctx, "c") },
		"TakePending":     func() error { _, err := db.TakePending(ctx); return err },
		"Cursor":          func() error { _, err := db.Cursor(ctx, "x"); return err },
		"SetCursor":       func() error { return db.SetCursor(ctx, "x", 1) },
		"FirstSeen":       func() error { _, err := db.FirstSeen(ctx, "k", time.Hour); return err },
		"LockChat":        func() error { _, err := db.LockChat(ctx, "c"); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v, want context.Canceled", name, err)
		}
	}
	bg := context.Background()
	if got := recent(t, db, "c", 10); len(got) != 0 {
		t.Errorf("AppendTurn with a canceled context stored %d messages", len(got))
	}
	if s, _ := db.ChatSettings(bg, "c"); s != (conversation.ChatSettings{}) {
		t.Errorf("SetChatSettings with a canceled context stored %+v", s)
	}
	if first, _ := db.FirstSeen(bg, "k", time.Hour); !first {
		t.Error("FirstSeen with a canceled context recorded the key")
	}
	unlock, err := db.LockChat(bg, "c")
	if err != nil {
		t.Fatalf("LockChat after a canceled one: %v (did the canceled call keep the lock?)", err)
	}
	unlock()
}

// testPath checks that the store describes itself for logs.
func testPath(t *testing.T, open Opener) {
	if p := open(t, Caps{}).Path(); p == "" {
		t.Error("Path() is empty")
	}
}

// testErrorsStartAtZero checks the error counts and write health of a store
// that has not failed: every operation the bbolt store names is there, at
// zero, and a call with a canceled context is not counted as a failure.
func testErrorsStartAtZero(t *testing.T, open Opener) {
	db := open(t, Caps{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	db.AppendTurn(ctx, "c", msg("c", 0))
	db.Recent(ctx, "c", 1)
	errs := db.Errors()
	for _, op := range []string{store.OpReadHistory, store.OpAppendTurn, store.OpReset, store.OpReadCursor,
		store.OpWriteCursor, store.OpSeen, store.OpAddUsage, store.OpReadUsage, store.OpPending,
		store.OpSettings, store.OpReadBlob} {
		if n, ok := errs[op]; !ok || n != 0 {
			t.Errorf("Errors()[%s] = %d, %v; want 0, present", op, n, ok)
		}
	}
	if err := db.WriteErr(); err != nil {
		t.Errorf("WriteErr() = %v, want nil", err)
	}
}
