package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
)

// testSettings checks per-chat settings: zero when none, the last write wins,
// chats apart, zero settings delete, kept across a reopen.
func testSettings(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, Caps{})
	get := func(chat conversation.ChatID) conversation.ChatSettings {
		t.Helper()
		s, err := db.ChatSettings(ctx, chat)
		if err != nil {
			t.Fatalf("ChatSettings(%s): %v", chat, err)
		}
		return s
	}
	set := func(chat conversation.ChatID, s conversation.ChatSettings) {
		t.Helper()
		if err := db.SetChatSettings(ctx, chat, s); err != nil {
			t.Fatalf("SetChatSettings(%s): %v", chat, err)
		}
	}
	if got := get("c"); got != (conversation.ChatSettings{}) {
		t.Errorf("unset = %+v, want zero", got)
	}
	set("c", conversation.ChatSettings{Model: "gpt-5.4-mini"})
	set("c", conversation.ChatSettings{Model: "gpt-5.5", Persona: "pirate"})
	set("d", conversation.ChatSettings{Persona: "poet"})
	set("e", conversation.ChatSettings{Model: "x"})
	set("e", conversation.ChatSettings{})
	db = reopen(t, open, db, Caps{})
	for _, tt := range []struct {
		chat conversation.ChatID
		want conversation.ChatSettings
	}{
		{"c", conversation.ChatSettings{Model: "gpt-5.5", Persona: "pirate"}},
		{"d", conversation.ChatSettings{Persona: "poet"}},
		{"e", conversation.ChatSettings{}},
	} {
		if got := get(tt.chat); got != tt.want {
			t.Errorf("ChatSettings(%s) = %+v, want %+v", tt.chat, got, tt.want)
		}
	}
}

// testUsagePerUserPerDay checks token counts add up per user per UTC day, a
// time in another zone counting for its UTC day, and survive a reopen.
func testUsagePerUserPerDay(t *testing.T, open Opener) {
	db := open(t, Caps{})
	ctx := context.Background()
	day := time.Date(2026, 11, 23, 23, 59, 0, 0, time.UTC)
	next := day.Add(2 * time.Minute)
	tokyo := time.FixedZone("JST", 9*3600)
	for _, n := range []int{100, 50} {
		if err := db.AddTokens(ctx, "telegram:1", day, n); err != nil {
			t.Fatal(err)
		}
	}
	db.AddTokens(ctx, "telegram:2", day, 7)
	db.AddTokens(ctx, "telegram:1", next, 1)
	db.AddTokens(ctx, "telegram:1", day.Add(-time.Hour).In(tokyo), 1000) // 2026-11-24 07:59 in Tokyo
	db = reopen(t, open, db, Caps{})
	tests := []struct {
		user string
		day  time.Time
		want int
	}{
		{"telegram:1", day, 1150},
		{"telegram:1", day.Add(-23 * time.Hour), 1150},
		{"telegram:2", day, 7},
		{"telegram:1", next, 1},
		{"telegram:1", next.In(tokyo), 1},
		{"telegram:3", day, 0},
	}
	for _, tt := range tests {
		if got, err := db.TokensOn(ctx, tt.user, tt.day); err != nil || got != tt.want {
			t.Errorf("%s on %s = %d (%v), want %d", tt.user, tt.day, got, err, tt.want)
		}
	}
}

// testCursor checks platform cursors: unset is 0, the last write wins, names
// are apart, any int64 fits, and values survive a reopen.
func testCursor(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, Caps{})
	for _, s := range []struct {
		name string
		v    int64
	}{
		{"telegram:offset", 41},
		{"telegram:offset", 42},
		{"slack:T01", -7},
		{"big", 1<<63 - 1},
		{"small", -1 << 63},
	} {
		if err := db.SetCursor(ctx, s.name, s.v); err != nil {
			t.Fatalf("SetCursor(%s, %d): %v", s.name, s.v, err)
		}
	}
	db = reopen(t, open, db, Caps{})
	for _, tt := range []struct {
		name string
		want int64
	}{
		{"telegram:offset", 42},
		{"slack:T01", -7},
		{"big", 1<<63 - 1},
		{"small", -1 << 63},
		{"unset", 0},
	} {
		if got, err := db.Cursor(ctx, tt.name); err != nil || got != tt.want {
			t.Errorf("Cursor(%s) = %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
}

// testFirstSeen checks deduplication: new, then seen, remembered across a
// reopen, and new again once older than its ttl.
func testFirstSeen(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, Caps{})
	steps := []struct {
		key    string
		ttl    time.Duration
		reopen bool          // close and reopen the store first
		sleep  time.Duration // wait first
		want   bool
	}{
		{key: "Ev1", ttl: time.Hour, want: true},
		{key: "Ev1", ttl: time.Hour, want: false},
		{key: "C1:1712345678.000100", ttl: time.Hour, want: true},
		{key: "Ev1", ttl: time.Hour, reopen: true, want: false},
		{key: "C1:1712345678.000100", ttl: time.Hour, want: false},
		{key: "Ev2", ttl: time.Millisecond, want: true},
		{key: "Ev2", ttl: time.Hour, sleep: 20 * time.Millisecond, want: true}, // expired: new again
		{key: "Ev2", ttl: time.Hour, want: false},
	}
	for i, s := range steps {
		if s.reopen {
			db = reopen(t, open, db, Caps{})
		}
		time.Sleep(s.sleep)
		if got, err := db.FirstSeen(ctx, s.key, s.ttl); err != nil || got != s.want {
			t.Errorf("step %d: FirstSeen(%q, %v) = %v, %v; want %v", i, s.key, s.ttl, got, err, s.want)
		}
	}
}

// testFirstSeenTTLIsPerKey checks that a caller with a short ttl does not
// expire the keys another caller stored for longer.
func testFirstSeenTTLIsPerKey(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, Caps{})
	db.FirstSeen(ctx, "slack-event", time.Hour)
	db.FirstSeen(ctx, "short", time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	db.FirstSeen(ctx, "other-short", time.Millisecond) // forgets what expired
	if first, err := db.FirstSeen(ctx, "slack-event", time.Hour); err != nil || first {
		t.Errorf("the hour-long key was forgotten (first=%v, err=%v)", first, err)
	}
	if first, _ := db.FirstSeen(ctx, "short", time.Hour); !first {
		t.Error("the expired short key is still remembered")
	}
}

// testFirstSeenConcurrent has 20 goroutines see the same 30 keys at once:
// each key must be new to exactly one of them.
func testFirstSeenConcurrent(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, Caps{})
	const workers, keys = 20, 30
	var firsts [keys]atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for k := range keys {
				first, err := db.FirstSeen(ctx, fmt.Sprintf("ev-%d", k), time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if first {
					firsts[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for k := range keys {
		if n := firsts[k].Load(); n != 1 {
			t.Errorf("key ev-%d was new to %d callers, want 1", k, n)
		}
	}
}

// testPendingSurvivesReopenUntilTaken checks crash notes: the marks a store
// left when it closed are taken by the next one, sorted, once; a finished
// reply's mark is not.
func testPendingSurvivesReopenUntilTaken(t *testing.T, open Opener) {
	db := open(t, Caps{})
	ctx := context.Background()
	for _, c := range []conversation.ChatID{"telegram:1", "slack:T:C:1.2", "telegram:2", "telegram:1"} {
		if err := db.MarkPending(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.ClearPending(ctx, "telegram:2"); err != nil { // finished normally
		t.Fatal(err)
	}
	db = reopen(t, open, db, Caps{})
	got, err := db.TakePending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []conversation.ChatID{"slack:T:C:1.2", "telegram:1"}; !slices.Equal(got, want) {
		t.Errorf("pending = %v, want %v", got, want)
	}
	if again, err := db.TakePending(ctx); len(again) != 0 || err != nil {
		t.Errorf("taken twice: %v, %v", again, err)
	}
}

// testPendingOfRunningRepliesStays checks that TakePending, which replicas
// call every few seconds, leaves alone the replies this store is writing,
// and that a mark made twice is cleared once.
func testPendingOfRunningRepliesStays(t *testing.T, open Opener) {
	db := open(t, Caps{})
	ctx := context.Background()
	db.MarkPending(ctx, "running")
	db.MarkPending(ctx, "twice")
	db.MarkPending(ctx, "twice")
	if got, err := db.TakePending(ctx); len(got) != 0 || err != nil {
		t.Errorf("TakePending = %v, %v; want nothing: those replies are still being written", got, err)
	}
	db.ClearPending(ctx, "twice")
	db = reopen(t, open, db, Caps{})
	if got, err := db.TakePending(ctx); !slices.Equal(got, []conversation.ChatID{"running"}) || err != nil {
		t.Errorf("after a reopen, TakePending = %v, %v; want [running]", got, err)
	}
}
