// Package storetest is the conformance suite of the bot's stores: the same
// tests run against the bbolt store (store.DB) and the PostgreSQL store
// (postgres.Store), so that the engine and the adapters find the same
// behaviour, method for method, whichever the owner configured.
//
// A store's package runs it with an Opener over a fresh place per test:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Opener {
//			path := filepath.Join(t.TempDir(), "chatbot.db")
//			return func(t *testing.T, c storetest.Caps) storetest.Store { … open path with c … }
//		})
//	}
//
// (storetest's own tests run it against both stores.)
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
)

// Store is what every store implements: the engine's storage interfaces, what
// the adapters keep (cursors, seen keys), the crash notes, and what replicas
// need to cooperate (a per-chat turn lock, leadership).
type Store interface {
	conversation.History
	conversation.BlobStore
	conversation.Settings
	conversation.UsageLog
	conversation.PendingLog
	// TakePending returns, once, the chats whose reply was cut because the
	// process (replica) writing it stopped; not those still being written.
	TakePending(ctx context.Context) ([]conversation.ChatID, error)
	Cursor(ctx context.Context, name string) (int64, error)
	SetCursor(ctx context.Context, name string, v int64) error
	FirstSeen(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// LockChat waits until chat is free (one turn at a time), takes it and
	// returns the function that frees it.
	LockChat(ctx context.Context, chat conversation.ChatID) (unlock func(), err error)
	// Lead runs fn while this process leads name.
	Lead(ctx context.Context, name string, fn func(ctx context.Context) error) error
	// Errors counts failed operations by name (store.OpAppendTurn, …), for
	// /metrics; WriteErr is why writes fail now, for health checks.
	Errors() map[string]uint64
	WriteErr() error
	// Path describes the store for logs.
	Path() string
	Close() error
}

// Caps are the limits a test opens a store with: the stores' Options fields
// of the same names (zero: the default; negative MaxMessagesPerChat: none).
type Caps struct {
	MaxMessagesPerChat  int
	MaxFileBytesPerChat int
}

// Opener opens a store over one place (a bbolt file, a PostgreSQL database)
// with caps. Each call opens the same data again (after the test closed the
// previous store). The store must be closed when the test ends; closing it
// twice must be harmless.
type Opener func(t *testing.T, caps Caps) Store

// Run runs the conformance suite. newPlace returns an Opener over a fresh,
// empty place; each test calls it once.
func Run(t *testing.T, newPlace func(t *testing.T) Opener) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newPlace(t)) })
	}
}

var tests = []struct {
	name string
	run  func(t *testing.T, open Opener)
}{
	{"Recent", testRecent},
	{"HistoryIsolationAndOrder", testHistoryIsolationAndOrder},
	{"HistorySurvivesReopen", testHistorySurvivesReopen},
	{"MessageFieldsRoundTrip", testMessageFieldsRoundTrip},
	{"AppendTurnIsAtomic", testAppendTurnIsAtomic},
	{"Reset", testReset},
	{"MaxMessagesPerChat", testMaxMessagesPerChat},
	{"ConcurrentAppends", testConcurrentAppends},
	{"BlobsKeptOnceAndGivenBack", testBlobsKeptOnceAndGivenBack},
	{"BlobsPrunedWithTheirMessages", testBlobsPrunedWithTheirMessages},
	{"BlobsByteCapDropsOldestFirst", testBlobsByteCapDropsOldestFirst},
	{"BlobsTieBreakByHash", testBlobsTieBreakByHash},
	{"ResetDropsBlobs", testResetDropsBlobs},
	{"Settings", testSettings},
	{"UsagePerUserPerDay", testUsagePerUserPerDay},
	{"Cursor", testCursor},
	{"FirstSeen", testFirstSeen},
	{"FirstSeenTTLIsPerKey", testFirstSeenTTLIsPerKey},
	{"FirstSeenConcurrent", testFirstSeenConcurrent},
	{"PendingSurvivesReopenUntilTaken", testPendingSurvivesReopenUntilTaken},
	{"PendingOfRunningRepliesStays", testPendingOfRunningRepliesStays},
	{"LockChatExcludes", testLockChatExcludes},
	{"LockChatGivesUpWithContext", testLockChatGivesUpWithContext},
	{"LockChatUnderContention", testLockChatUnderContention},
	{"Lead", testLead},
	{"LeadWaitsForTheLeader", testLeadWaitsForTheLeader},
	{"CanceledContext", testCanceledContext},
	{"Path", testPath},
	{"ErrorsStartAtZero", testErrorsStartAtZero},
}

// reopen closes db and opens its place again with caps.
func reopen(t *testing.T, open Opener, db Store, caps Caps) Store {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return open(t, caps)
}

// msg is the i-th message of a test conversation: even ones are the user's,
// odd ones the assistant's, and the content names the chat and the index.
func msg(chat conversation.ChatID, i int) conversation.Message {
	role := conversation.RoleUser
	if i%2 == 1 {
		role = conversation.RoleAssistant
	}
	return conversation.Message{
		Role:    role,
		Content: fmt.Sprintf("%s #%d", chat, i),
		Time:    time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
		Tokens:  i % 7,
	}
}

// msgs returns messages from..to-1 of chat's test conversation.
func msgs(chat conversation.ChatID, from, to int) []conversation.Message {
	var out []conversation.Message
	for i := from; i < to; i++ {
		out = append(out, msg(chat, i))
	}
	return out
}

// fill appends messages from..to-1 of chat's test conversation as turns of two.
func fill(t testing.TB, db Store, chat conversation.ChatID, from, to int) {
	t.Helper()
	for i := from; i < to; i += 2 {
		if err := db.AppendTurn(context.Background(), chat, msgs(chat, i, min(i+2, to))...); err != nil {
			t.Fatalf("AppendTurn %s #%d: %v", chat, i, err)
		}
	}
}

// recent is db.Recent that fails the test on error.
func recent(t testing.TB, db Store, chat conversation.ChatID, max int) []conversation.Message {
	t.Helper()
	got, err := db.Recent(context.Background(), chat, max)
	if err != nil {
		t.Fatalf("Recent(%s, %d): %v", chat, max, err)
	}
	return got
}

// contents lists the messages' texts, for readable failures.
func contents(ms []conversation.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Role)+": "+m.Content)
	}
	return out
}

// within is how long a test waits for something that should happen at once
// (a lock freed, a waiter woken): generous, for a busy CI machine. Tests never
// assert that something took less than a given time.
const within = 30 * time.Second
