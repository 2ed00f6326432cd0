package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

// TestRecent checks that Recent returns the newest max messages, oldest first,
// over histories stored turn by turn.
func TestRecent(t *testing.T) {
	tests := []struct {
		name   string
		stored int
		max    int
		want   []conversation.Message
	}{
		{name: "unknown chat", stored: 0, max: 10, want: nil},
		{name: "max zero", stored: 6, max: 0, want: nil},
		{name: "max negative", stored: 6, max: -1, want: nil},
		{name: "fewer than max", stored: 3, max: 10, want: msgs("c", 0, 3)},
		{name: "exactly max", stored: 6, max: 6, want: msgs("c", 0, 6)},
		{name: "newest one", stored: 6, max: 1, want: msgs("c", 5, 6)},
		{name: "newest of many", stored: 240, max: 50, want: msgs("c", 190, 240)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, Options{})
			fill(t, db, "c", 0, tt.stored)
			got := recent(t, db, "c", tt.max)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Recent(c, %d) =\n%v\nwant\n%v", tt.max, contents(got), contents(tt.want))
			}
		})
	}
}

// contents lists the messages' texts, for readable failures.
func contents(ms []conversation.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Role)+": "+m.Content)
	}
	return out
}

// TestHistoryLayout checks the on-disk layout the issue asks for: each message is
// its own key in the chat's own bucket, keys are big-endian sequence numbers that
// sort in the order the messages were appended, values are single JSON messages.
func TestHistoryLayout(t *testing.T) {
	db := openTest(t, Options{})
	fill(t, db, "telegram:1", 0, 6)
	fill(t, db, "telegram:12", 0, 4)
	for _, tt := range []struct {
		chat conversation.ChatID
		want []uint64
	}{
		{"telegram:1", []uint64{1, 2, 3, 4, 5, 6}},
		{"telegram:12", []uint64{1, 2, 3, 4}},
	} {
		if got := chatKeys(t, db, tt.chat); !slices.Equal(got, tt.want) {
			t.Errorf("keys of %s = %v, want %v", tt.chat, got, tt.want)
		}
	}
	db.bolt.View(func(tx *bbolt.Tx) error {
		var m conversation.Message
		v := tx.Bucket(bucketChats).Bucket([]byte("telegram:1")).Get(seqKey(3))
		if err := json.Unmarshal(v, &m); err != nil || !reflect.DeepEqual(m, msg("telegram:1", 2)) {
			t.Errorf("value of key 3 = %s (%v), want message #2", v, err)
		}
		return nil
	})
	if got := countKeys(t, db, bucketChats); got != 2 {
		t.Errorf("%d keys in %s, want one bucket per chat (2)", got, bucketChats)
	}
}

// TestHistoryIsolationAndOrder interleaves turns of several chats (one name a
// prefix of another) and checks each chat sees exactly its own, in order.
func TestHistoryIsolationAndOrder(t *testing.T) {
	db := openTest(t, Options{})
	chats := []conversation.ChatID{"telegram:1", "telegram:12", "slack:T1:C2:1712345678.000100", "telegram:-1001"}
	const perChat = 120
	for i := 0; i < perChat; i += 2 {
		for _, c := range chats {
			fill(t, db, c, i, i+2)
		}
	}
	for _, c := range chats {
		if got, want := recent(t, db, c, 1000), msgs(c, 0, perChat); !reflect.DeepEqual(got, want) {
			t.Errorf("Recent(%s) = %d messages %v…, want %d in order", c, len(got), contents(got[:min(4, len(got))]), len(want))
		}
	}
}

// TestHistorySurvivesReopen checks histories are on disk, not in memory.
func TestHistorySurvivesReopen(t *testing.T) {
	db := openTest(t, Options{})
	fill(t, db, "a", 0, 10)
	fill(t, db, "b", 0, 4)
	db = reopen(t, db, Options{})
	fill(t, db, "a", 10, 12)
	if got, want := recent(t, db, "a", 100), msgs("a", 0, 12); !reflect.DeepEqual(got, want) {
		t.Errorf("a after reopen = %v, want %v", contents(got), contents(want))
	}
	if got, want := recent(t, db, "b", 100), msgs("b", 0, 4); !reflect.DeepEqual(got, want) {
		t.Errorf("b after reopen = %v, want %v", contents(got), contents(want))
	}
}

// TestAppendTurnIsAtomic checks that a turn is stored whole or not at all: a
// message that cannot be encoded, a canceled context or a closed store leave
// the history exactly as it was, also after a reopen.
func TestAppendTurnIsAtomic(t *testing.T) {
	// A year beyond 9999 makes json.Marshal of time.Time fail.
	unencodable := conversation.Message{Role: conversation.RoleAssistant, Content: "reply", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		append func(db *DB) (*DB, error) // returns the store to check
	}{
		{"second message unencodable", func(db *DB) (*DB, error) {
			return db, db.AppendTurn(context.Background(), "c", msg("c", 4), unencodable)
		}},
		{"canceled context", func(db *DB) (*DB, error) {
			return db, db.AppendTurn(canceled, "c", msg("c", 4), msg("c", 5))
		}},
		{"closed store", func(db *DB) (*DB, error) {
			db.Close()
			return db, db.AppendTurn(context.Background(), "c", msg("c", 4), msg("c", 5))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, Options{})
			fill(t, db, "c", 0, 4)
			path := db.Path()
			db, err := tt.append(db)
			if err == nil {
				t.Fatal("AppendTurn succeeded, want an error")
			}
			db.Close()
			db = openAt(t, path, Options{})
			if got, want := recent(t, db, "c", 100), msgs("c", 0, 4); !reflect.DeepEqual(got, want) {
				t.Errorf("after the failed turn and a reopen: %v, want %v", contents(got), contents(want))
			}
			// The sequence did not move either: the next turn gets keys 5 and 6.
			fill(t, db, "c", 4, 6)
			if got, want := chatKeys(t, db, "c"), []uint64{1, 2, 3, 4, 5, 6}; !slices.Equal(got, want) {
				t.Errorf("keys after the next turn = %v, want %v", got, want)
			}
		})
	}
	t.Run("both messages", func(t *testing.T) {
		db := openTest(t, Options{})
		if err := db.AppendTurn(context.Background(), "c", msg("c", 0), msg("c", 1)); err != nil {
			t.Fatal(err)
		}
		db = reopen(t, db, Options{})
		if got, want := recent(t, db, "c", 10), msgs("c", 0, 2); !reflect.DeepEqual(got, want) {
			t.Errorf("after a reopen: %v, want %v", contents(got), contents(want))
		}
	})
}

// TestReset checks that Reset deletes one chat's history and nothing else, that
// the chat starts afresh, and that resetting an unknown chat is fine.
func TestReset(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	fill(t, db, "telegram:1", 0, 10)
	fill(t, db, "telegram:12", 0, 6)
	if err := db.SetCursor(ctx, "telegram:1", 9); err != nil {
		t.Fatal(err)
	}
	if err := db.Reset(ctx, "telegram:1"); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if err := db.Reset(ctx, "never-seen"); err != nil {
		t.Fatalf("Reset of an unknown chat: %v", err)
	}
	db = reopen(t, db, Options{})
	if got := recent(t, db, "telegram:1", 100); len(got) != 0 {
		t.Errorf("after Reset: %v, want nothing", contents(got))
	}
	if got, want := recent(t, db, "telegram:12", 100), msgs("telegram:12", 0, 6); !reflect.DeepEqual(got, want) {
		t.Errorf("other chat after Reset: %v, want %v", contents(got), contents(want))
	}
	if got, err := db.Cursor(ctx, "telegram:1"); got != 9 || err != nil {
		t.Errorf("cursor after Reset = %d, %v; want 9 (Reset is about history only)", got, err)
	}
	fill(t, db, "telegram:1", 100, 102)
	if got, want := recent(t, db, "telegram:1", 100), msgs("telegram:1", 100, 102); !reflect.DeepEqual(got, want) {
		t.Errorf("first turn after Reset: %v, want %v", contents(got), contents(want))
	}
}

// TestMaxMessagesPerChat checks the cap is applied on write, oldest first, per
// chat, that negative means unlimited, and that a lower cap on a later Open
// trims an existing history on its next write.
func TestMaxMessagesPerChat(t *testing.T) {
	tests := []struct {
		name      string
		max       int
		stored    int
		wantFirst int // index of the oldest message kept
	}{
		{name: "default 500 after 600", max: 0, stored: 600, wantFirst: 100},
		{name: "default under the cap", max: 0, stored: 480, wantFirst: 0},
		{name: "default at the cap", max: 0, stored: 500, wantFirst: 0},
		{name: "cap 7 with turns of 2", max: 7, stored: 40, wantFirst: 33},
		{name: "cap 1 keeps the reply", max: 1, stored: 6, wantFirst: 5},
		{name: "unlimited", max: -1, stored: 600, wantFirst: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, Options{MaxMessagesPerChat: tt.max})
			fill(t, db, "c", 0, tt.stored)
			fill(t, db, "other", 0, 2)
			got := recent(t, db, "c", 10_000)
			if want := msgs("c", tt.wantFirst, tt.stored); !reflect.DeepEqual(got, want) {
				t.Errorf("kept %d messages from %v, want %d from %q", len(got), contents(got[:min(1, len(got))]), len(want), want[0].Content)
			}
			if got, want := len(chatKeys(t, db, "c")), tt.stored-tt.wantFirst; got != want {
				t.Errorf("%d keys on disk, want %d", got, want)
			}
			wantOther := 2
			if tt.max > 0 {
				wantOther = min(2, tt.max)
			}
			if got := recent(t, db, "other", 10); len(got) != wantOther {
				t.Errorf("other chat has %d messages, want %d", len(got), wantOther)
			}
		})
	}
	t.Run("lower cap on reopen", func(t *testing.T) {
		db := openTest(t, Options{MaxMessagesPerChat: -1})
		fill(t, db, "c", 0, 600)
		db = reopen(t, db, Options{MaxMessagesPerChat: 50})
		if got := len(recent(t, db, "c", 10_000)); got != 600 {
			t.Errorf("before the next write: %d messages, want 600 (pruned on write only)", got)
		}
		fill(t, db, "c", 600, 602)
		if got, want := recent(t, db, "c", 10_000), msgs("c", 552, 602); !reflect.DeepEqual(got, want) {
			t.Errorf("after the next write: %d messages, want the newest 50", len(got))
		}
	})
}

// TestConcurrentAppends runs 100 goroutines that each append turns to their own
// chat and to one shared chat (run it with -race). Every turn must be stored
// once, and the shared chat's turns must never interleave.
func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	const workers, turns = 100, 3
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			own := conversation.ChatID(fmt.Sprintf("chat-%d", w))
			for i := 0; i < 2*turns; i += 2 {
				if err := db.AppendTurn(ctx, own, msg(own, i), msg(own, i+1)); err != nil {
					errc <- err
					return
				}
				if _, err := db.Recent(ctx, own, 10); err != nil {
					errc <- err
					return
				}
			}
			if w%4 == 0 {
				shared := conversation.ChatID(fmt.Sprintf("worker-%d", w))
				if err := db.AppendTurn(ctx, "shared", msg(shared, 0), msg(shared, 1)); err != nil {
					errc <- err
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	for w := range workers {
		own := conversation.ChatID(fmt.Sprintf("chat-%d", w))
		if got, want := recent(t, db, own, 100), msgs(own, 0, 2*turns); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", own, contents(got), contents(want))
		}
	}
	shared := recent(t, db, "shared", 1000)
	if got, want := len(shared), 2*workers/4; got != want {
		t.Fatalf("shared chat has %d messages, want %d", got, want)
	}
	for i := 0; i < len(shared); i += 2 {
		user, reply := shared[i], shared[i+1]
		if user.Role != conversation.RoleUser || reply.Role != conversation.RoleAssistant || user.Content[:len(user.Content)-1] != reply.Content[:len(reply.Content)-1] {
			t.Errorf("shared chat messages %d and %d are not one turn: %q, %q", i, i+1, user.Content, reply.Content)
		}
	}
}

// TestRecentCorruptMessage checks that a value that is not a message is an error
// naming the key, not a panic or a silent gap.
func TestRecentCorruptMessage(t *testing.T) {
	db := openTest(t, Options{})
	fill(t, db, "c", 0, 4)
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketChats).Bucket([]byte("c")).Put(seqKey(3), []byte("{not json"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := recent(t, db, "c", 1); !reflect.DeepEqual(got, msgs("c", 3, 4)) {
		t.Errorf("Recent(c, 1) = %v, want only the newest message", contents(got))
	}
	var syntax *json.SyntaxError
	if _, err := db.Recent(context.Background(), "c", 4); !errors.As(err, &syntax) {
		t.Errorf("Recent over a corrupt message: %v, want a JSON syntax error", err)
	}
}

func TestUsagePerUserPerDay(t *testing.T) {
	db := openTest(t, Options{})
	ctx := context.Background()
	day := time.Date(2026, 11, 23, 23, 59, 0, 0, time.UTC)
	next := day.Add(2 * time.Minute)
	for _, n := range []int{100, 50} {
		if err := db.AddTokens(ctx, "telegram:1", day, n); err != nil {
			t.Fatal(err)
		}
	}
	db.AddTokens(ctx, "telegram:2", day, 7)
	db.AddTokens(ctx, "telegram:1", next, 1)
	tests := []struct {
		user string
		day  time.Time
		want int
	}{
		{"telegram:1", day, 150},
		{"telegram:2", day, 7},
		{"telegram:1", next, 1},
		{"telegram:3", day, 0},
	}
	for _, tt := range tests {
		if got, err := db.TokensOn(ctx, tt.user, tt.day); err != nil || got != tt.want {
			t.Errorf("%s on %s = %d (%v), want %d", tt.user, tt.day.Format(time.DateOnly), got, err, tt.want)
		}
	}
}

func TestPendingRepliesSurviveReopenUntilTaken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	db := openAt(t, path, Options{})
	ctx := context.Background()
	for _, c := range []conversation.ChatID{"telegram:1", "slack:T:C:1.2", "telegram:2"} {
		if err := db.MarkPending(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	db.ClearPending(ctx, "telegram:2") // finished normally
	db.Close()
	db = openAt(t, path, Options{})
	got, err := db.TakePending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []conversation.ChatID{"slack:T:C:1.2", "telegram:1"}; !slices.Equal(got, want) {
		t.Errorf("pending = %v, want %v", got, want)
	}
	if again, _ := db.TakePending(ctx); len(again) != 0 {
		t.Errorf("taken twice: %v", again)
	}
}
