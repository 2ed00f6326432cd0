package store

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/chatbot-dev/chatbot/conversation"
)

// TestWriteErrUntilAWriteSucceeds fills the disk, as far as bbolt knows (its
// MaxSize stands in for a full file system: the commit that needs the file to
// grow fails), and checks that the failure shows in WriteErr and Errors until
// a write succeeds again.
func TestWriteErrUntilAWriteSucceeds(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	fill(t, db, "c", 0, 10)
	if err := db.WriteErr(); err != nil {
		t.Fatalf("WriteErr = %v on a healthy store", err)
	}
	fi, err := os.Stat(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	db.bolt.MaxSize = int(fi.Size()) // the disk is full
	big := conversation.Message{Role: conversation.RoleUser, Content: strings.Repeat("x", 200_000)}
	for range 2 {
		if err := db.AppendTurn(ctx, "c", big); !errors.Is(err, berrors.ErrMaxSizeReached) {
			t.Fatalf("AppendTurn on a full disk: %v", err)
		}
	}
	if err := db.WriteErr(); !errors.Is(err, berrors.ErrMaxSizeReached) {
		t.Errorf("WriteErr = %v after failed writes", err)
	}
	if got := db.Errors()[OpAppendTurn]; got != 2 {
		t.Errorf("append_turn errors = %d, want 2", got)
	}
	// Reads work and say nothing about writes.
	if got, err := db.Recent(ctx, "c", 100); err != nil || len(got) != 10 {
		t.Errorf("Recent: %d messages, %v", len(got), err)
	}
	if db.WriteErr() == nil {
		t.Error("a read cleared WriteErr")
	}
	db.bolt.MaxSize = 0 // space again
	if err := db.AppendTurn(ctx, "c", big); err != nil {
		t.Fatal(err)
	}
	if err := db.WriteErr(); err != nil {
		t.Errorf("WriteErr = %v after a write succeeded", err)
	}
	if got := db.Errors()[OpAppendTurn]; got != 2 {
		t.Errorf("append_turn errors = %d after a success, want still 2", got)
	}
}

// TestErrorsCountEachOperation closes the file under the store, so that every
// operation fails, and checks each is counted under its own name; a cancelled
// context is the caller's doing and is not counted.
func TestErrorsCountEachOperation(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	for op, n := range db.Errors() {
		if n != 0 {
			t.Errorf("%s = %d on a new store", op, n)
		}
	}
	db.bolt.Close()
	calls := map[string]func(context.Context) error{
		OpReadHistory: func(ctx context.Context) error { _, err := db.Recent(ctx, "c", 1); return err },
		OpAppendTurn:  func(ctx context.Context) error { return db.AppendTurn(ctx, "c", msg("c", 0)) },
		OpReset:       func(ctx context.Context) error { return db.Reset(ctx, "c") },
		OpReadCursor:  func(ctx context.Context) error { _, err := db.Cursor(ctx, "x"); return err },
		OpWriteCursor: func(ctx context.Context) error { return db.SetCursor(ctx, "x", 1) },
		OpSeen:        func(ctx context.Context) error { _, err := db.FirstSeen(ctx, "k", 0); return err },
		OpAddUsage:    func(ctx context.Context) error { return db.AddTokens(ctx, "u", msg("c", 0).Time, 1) },
		OpReadUsage:   func(ctx context.Context) error { _, err := db.TokensOn(ctx, "u", msg("c", 0).Time); return err },
		OpPending:     func(ctx context.Context) error { return db.MarkPending(ctx, "c") },
		OpSettings: func(ctx context.Context) error {
			return db.SetChatSettings(ctx, "c", conversation.ChatSettings{Model: "m"})
		},
		OpReadBlob: func(ctx context.Context) error { _, err := db.Blob(ctx, "c", "sha"); return err },
		OpWeb:      func(ctx context.Context) error { return db.DeleteWebSession(ctx, "token") },
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for op, call := range calls {
		if err := call(ctx); !errors.Is(err, bbolt.ErrDatabaseNotOpen) {
			t.Errorf("%s on a closed file: %v", op, err)
		}
		if err := call(cancelled); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v", op, err)
		}
	}
	got := db.Errors()
	if len(got) != len(calls) {
		t.Errorf("Errors has %d operations, want %d: %v", len(got), len(calls), got)
	}
	for op := range calls {
		if got[op] != 1 {
			t.Errorf("%s errors = %d, want 1", op, got[op])
		}
	}
	if !errors.Is(db.WriteErr(), bbolt.ErrDatabaseNotOpen) {
		t.Errorf("WriteErr = %v with the file closed", db.WriteErr())
	}
}

// TestBadValueIsNotAWriteFailure: an error of the operation itself (here a key
// bbolt refuses) is counted, but says nothing about whether the store can write.
func TestBadValueIsNotAWriteFailure(t *testing.T) {
	db := openTest(t, Options{})
	_, err := db.FirstSeen(context.Background(), strings.Repeat("k", bbolt.MaxKeySize+1), 0)
	if !errors.Is(err, bbolt.ErrKeyTooLarge) {
		t.Fatalf("FirstSeen with a huge key: %v", err)
	}
	if db.Errors()[OpSeen] != 1 || db.WriteErr() != nil {
		t.Errorf("seen errors %d, WriteErr %v; want 1 and nil", db.Errors()[OpSeen], db.WriteErr())
	}
}
