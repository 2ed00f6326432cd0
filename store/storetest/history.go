package storetest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
)

// testRecent checks that Recent returns the newest max messages, oldest
// first, over histories stored turn by turn.
func testRecent(t *testing.T, open Opener) {
	db := open(t, Caps{})
	fill(t, db, "c6", 0, 6)
	fill(t, db, "c3", 0, 3)
	fill(t, db, "c240", 0, 240)
	tests := []struct {
		name string
		chat conversation.ChatID
		max  int
		want []conversation.Message
	}{
		{name: "unknown chat", chat: "none", max: 10, want: nil},
		{name: "max zero", chat: "c6", max: 0, want: nil},
		{name: "max negative", chat: "c6", max: -1, want: nil},
		{name: "fewer than max", chat: "c3", max: 10, want: msgs("c3", 0, 3)},
		{name: "exactly max", chat: "c6", max: 6, want: msgs("c6", 0, 6)},
		{name: "newest one", chat: "c6", max: 1, want: msgs("c6", 5, 6)},
		{name: "newest of many", chat: "c240", max: 50, want: msgs("c240", 190, 240)},
	}
	for _, tt := range tests {
		if got := recent(t, db, tt.chat, tt.max); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Recent(%s, %d) =\n%v\nwant\n%v", tt.name, tt.chat, tt.max, contents(got), contents(tt.want))
		}
	}
}

// testHistoryIsolationAndOrder interleaves turns of several chats (one name a
// prefix of another) and checks each chat sees exactly its own, in order.
func testHistoryIsolationAndOrder(t *testing.T, open Opener) {
	db := open(t, Caps{})
	chats := []conversation.ChatID{"telegram:1", "telegram:12", "slack:T1:C2:1712345678.000100", "telegram:-1001", "web:ü ∂ 💬"}
	const perChat = 40
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

// testHistorySurvivesReopen checks histories are kept, not in memory.
func testHistorySurvivesReopen(t *testing.T, open Opener) {
	db := open(t, Caps{})
	fill(t, db, "a", 0, 10)
	fill(t, db, "b", 0, 4)
	db = reopen(t, open, db, Caps{})
	fill(t, db, "a", 10, 12)
	if got, want := recent(t, db, "a", 100), msgs("a", 0, 12); !reflect.DeepEqual(got, want) {
		t.Errorf("a after reopen = %v, want %v", contents(got), contents(want))
	}
	if got, want := recent(t, db, "b", 100), msgs("b", 0, 4); !reflect.DeepEqual(got, want) {
		t.Errorf("b after reopen = %v, want %v", contents(got), contents(want))
	}
}

// testMessageFieldsRoundTrip stores messages using every field, with text a
// database might mangle (NUL, escapes, emoji, a long text), and checks they
// come back as stored: attachments as references, without their bytes.
func testMessageFieldsRoundTrip(t *testing.T, open Opener) {
	db := open(t, Caps{})
	ctx := context.Background()
	img := conversation.NewAttachment("photo.png", "image/png", png(1, 100))
	pdf := conversation.Attachment{Kind: conversation.AttachPDF, Name: "a.pdf", MIME: "application/pdf", SHA256: "ab12", Size: 3, Tokens: 1300}
	in := []conversation.Message{
		{Role: conversation.RoleUser, Content: "nul \x00 inside, quote \" and \\ and \u2028", Name: "Zoë",
			Time: time.Date(2026, 12, 1, 8, 30, 15, 123456789, time.UTC), Tokens: 12,
			Attachments: []conversation.Attachment{img, pdf}},
		{Role: conversation.RoleAssistant, Content: "emoji 😀, right-to-left שלום, " + strings.Repeat("long ", 100_000)},
		{Role: conversation.RoleSystem, Content: ""},
	}
	if err := db.AppendTurn(ctx, "c", in...); err != nil {
		t.Fatalf("AppendTurn: %v", err)
	}
	want := make([]conversation.Message, len(in))
	copy(want, in)
	want[0].Attachments = []conversation.Attachment{img, pdf}
	want[0].Attachments[0].Data = nil
	got := recent(t, db, "c", 10)
	if len(got) != 3 {
		t.Fatalf("Recent = %d messages, want 3", len(got))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			g, w := got[i], want[i]
			g.Content, w.Content = trim(g.Content), trim(w.Content)
			t.Errorf("message %d =\n%+v\nwant\n%+v", i, g, w)
		}
	}
}

func trim(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%s… (%d bytes)", s[:80], len(s))
	}
	return s
}

// testAppendTurnIsAtomic checks that a turn is stored whole or not at all: a
// message that cannot be encoded, a canceled context or a closed store leave
// the history as it was, also after a reopen, and the next turn follows on.
func testAppendTurnIsAtomic(t *testing.T, open Opener) {
	// A year beyond 9999 makes json.Marshal of time.Time fail.
	unencodable := conversation.Message{Role: conversation.RoleAssistant, Content: "reply", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	steps := []struct {
		name   string
		append func(db Store) error
	}{
		{"second message unencodable", func(db Store) error {
			return db.AppendTurn(context.Background(), "c", msg("c", 4), unencodable)
		}},
		{"canceled context", func(db Store) error {
			return db.AppendTurn(canceled, "c", msg("c", 4), msg("c", 5))
		}},
		{"closed store", func(db Store) error {
			db.Close()
			return db.AppendTurn(context.Background(), "c", msg("c", 4), msg("c", 5))
		}},
	}
	db := open(t, Caps{})
	fill(t, db, "c", 0, 4)
	for _, s := range steps {
		if err := s.append(db); err == nil {
			t.Fatalf("%s: AppendTurn succeeded, want an error", s.name)
		}
		db = reopen(t, open, db, Caps{})
		if got, want := recent(t, db, "c", 100), msgs("c", 0, 4); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: after the failed turn and a reopen: %v, want %v", s.name, contents(got), contents(want))
		}
	}
	fill(t, db, "c", 4, 6)
	if got, want := recent(t, db, "c", 100), msgs("c", 0, 6); !reflect.DeepEqual(got, want) {
		t.Errorf("after the next turn: %v, want %v", contents(got), contents(want))
	}
}

// testReset checks that Reset deletes one chat's history and nothing else
// (not its cursor, not its settings), that the chat starts afresh, and that
// resetting an unknown chat is fine.
func testReset(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, Caps{})
	fill(t, db, "telegram:1", 0, 10)
	fill(t, db, "telegram:12", 0, 6)
	set := conversation.ChatSettings{Model: "m", Persona: "p"}
	if err := db.SetCursor(ctx, "telegram:1", 9); err != nil {
		t.Fatal(err)
	}
	if err := db.SetChatSettings(ctx, "telegram:1", set); err != nil {
		t.Fatal(err)
	}
	if err := db.Reset(ctx, "telegram:1"); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if err := db.Reset(ctx, "never-seen"); err != nil {
		t.Fatalf("Reset of an unknown chat: %v", err)
	}
	db = reopen(t, open, db, Caps{})
	if got := recent(t, db, "telegram:1", 100); len(got) != 0 {
		t.Errorf("after Reset: %v, want nothing", contents(got))
	}
	if got, want := recent(t, db, "telegram:12", 100), msgs("telegram:12", 0, 6); !reflect.DeepEqual(got, want) {
		t.Errorf("other chat after Reset: %v, want %v", contents(got), contents(want))
	}
	if got, err := db.Cursor(ctx, "telegram:1"); got != 9 || err != nil {
		t.Errorf("cursor after Reset = %d, %v; want 9 (Reset is about history only)", got, err)
	}
	if got, err := db.ChatSettings(ctx, "telegram:1"); got != set || err != nil {
		t.Errorf("settings after Reset = %+v, %v; want %+v", got, err, set)
	}
	fill(t, db, "telegram:1", 100, 102)
	if got, want := recent(t, db, "telegram:1", 100), msgs("telegram:1", 100, 102); !reflect.DeepEqual(got, want) {
		t.Errorf("first turn after Reset: %v, want %v", contents(got), contents(want))
	}
}

// testMaxMessagesPerChat checks the cap is applied on write, oldest first, per
// chat, that negative means unlimited, and that a lower cap at a later open
// trims an existing history on its next write only.
func testMaxMessagesPerChat(t *testing.T, open Opener) {
	tests := []struct {
		name      string
		max       int
		stored    int
		wantFirst int // index of the oldest message kept
	}{
		{name: "default 500 after 600", max: 0, stored: 600, wantFirst: 100},
		{name: "cap 7 with turns of 2", max: 7, stored: 40, wantFirst: 33},
		{name: "cap 1 keeps the reply", max: 1, stored: 6, wantFirst: 5},
		{name: "unlimited", max: -1, stored: 520, wantFirst: 0},
	}
	for _, tt := range tests {
		db := open(t, Caps{MaxMessagesPerChat: tt.max})
		chat := conversation.ChatID(tt.name)
		fill(t, db, chat, 0, tt.stored)
		fill(t, db, "other "+chat, 0, 2)
		got := recent(t, db, chat, 10_000)
		if want := msgs(chat, tt.wantFirst, tt.stored); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: kept %d messages from %v, want %d from %q", tt.name, len(got), contents(got[:min(1, len(got))]), len(want), want[0].Content)
		}
		wantOther := 2
		if tt.max > 0 {
			wantOther = min(2, tt.max)
		}
		if got := recent(t, db, "other "+chat, 10); len(got) != wantOther {
			t.Errorf("%s: other chat has %d messages, want %d", tt.name, len(got), wantOther)
		}
		db.Close()
	}

	db := open(t, Caps{MaxMessagesPerChat: -1})
	fill(t, db, "lower", 0, 120)
	db = reopen(t, open, db, Caps{MaxMessagesPerChat: 50})
	if got := len(recent(t, db, "lower", 10_000)); got != 120 {
		t.Errorf("lower cap, before the next write: %d messages, want 120 (pruned on write only)", got)
	}
	fill(t, db, "lower", 120, 122)
	if got, want := recent(t, db, "lower", 10_000), msgs("lower", 72, 122); !reflect.DeepEqual(got, want) {
		t.Errorf("lower cap, after the next write: %d messages, want the newest 50", len(got))
	}
}

// testConcurrentAppends runs 50 goroutines that each append turns to their
// own chat and some to one shared chat (run it with -race). Every turn must
// be stored once, and the shared chat's turns must never interleave.
func testConcurrentAppends(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, Caps{})
	const workers, turns = 50, 3
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
			if w%2 == 0 {
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
	checkTurnsWhole(t, recent(t, db, "shared", 1000), 2*workers/2)
}

// checkTurnsWhole checks that shared holds want messages in turns of two
// (each user message followed by its reply).
func checkTurnsWhole(t *testing.T, shared []conversation.Message, want int) {
	t.Helper()
	if got := len(shared); got != want {
		t.Fatalf("shared chat has %d messages, want %d", got, want)
	}
	for i := 0; i < len(shared); i += 2 {
		user, reply := shared[i], shared[i+1]
		if user.Role != conversation.RoleUser || reply.Role != conversation.RoleAssistant || user.Content[:len(user.Content)-1] != reply.Content[:len(reply.Content)-1] {
			t.Errorf("shared chat messages %d and %d are not one turn: %q, %q", i, i+1, user.Content, reply.Content)
		}
	}
}

// CheckTurnsWhole is checkTurnsWhole for the stores' own tests (several
// replicas appending to one chat).
func CheckTurnsWhole(t *testing.T, shared []conversation.Message, want int) {
	t.Helper()
	checkTurnsWhole(t, shared, want)
}

// Msg is the i-th message of chat's test conversation, for the stores' own
// tests: user and assistant in turn, the content naming chat and i.
func Msg(chat conversation.ChatID, i int) conversation.Message { return msg(chat, i) }
