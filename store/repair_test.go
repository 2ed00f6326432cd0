package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

// TestRepairRecoversReadableChats damages a file the store wrote in each of the
// ways Open refuses, repairs it, and checks the result: a file that opens and
// passes Check; every chat reported whole holds exactly its messages, a
// partial one its newest messages, a lost one nothing; new turns go on after
// the copied ones; the damaged file is kept, unchanged, beside it.
func TestRepairRecoversReadableChats(t *testing.T) {
	ctx := context.Background()
	want := map[string]struct {
		whole   int                 // at least this many chats copied whole
		lost    []int               // these chats lost
		partial []int               // these chats partly copied
		failIn  string              // Repair fails, with this in its error
		mayFail bool                // … or it may succeed, depending on where bbolt put the root page
		check   func(*RepairReport) // anything else
	}{
		"truncated to half its pages":     {failIn: "nothing can be read", mayFail: true},
		"truncated by one page":           {whole: damageChats - 2},
		"truncated inside the meta pages": {failIn: "invalid"},
		"a chat's root page overwritten":  {whole: damageChats - 1, lost: []int{3}},
		"a chat's oldest leaf overwritten": {whole: damageChats - 1, partial: []int{5},
			check: func(r *RepairReport) {
				if kept := r.Partial[0].Kept; kept <= 0 || kept >= damageMessages {
					t.Errorf("kept %d of chat 5's %d messages, want its newest ones", kept, damageMessages)
				}
			}},
		"a chat's leaf overwritten after its header": {whole: damageChats - 1},
		"the free-page list overwritten":             {whole: damageChats},
		"the root bucket page overwritten":           {failIn: "nothing can be read"},
		"both meta pages overwritten":                {failIn: "invalid"},
	}
	for _, tt := range damages {
		t.Run(tt.name, func(t *testing.T) {
			w, ok := want[tt.name]
			if !ok {
				t.Fatalf("no expectation for %q", tt.name)
			}
			path := writeDamageStore(t)
			tt.damage(t, path)
			damaged, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Repair(path, Options{LockTimeout: time.Second})
			if w.failIn != "" && (err != nil || !w.mayFail) {
				if err == nil || !strings.Contains(err.Error(), w.failIn) {
					t.Fatalf("Repair: %v, want an error with %q", err, w.failIn)
				}
				if got, _ := os.ReadFile(path); !bytes.Equal(got, damaged) {
					t.Error("a failed repair changed the file")
				}
				if _, err := os.Stat(path + ".repair"); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a failed repair left its copy behind: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			t.Logf("whole %d, partial %v, lost %v, damaged buckets %v", rep.Chats, rep.Partial, rep.Lost, rep.DamagedBuckets)
			if got := rep.Chats + len(rep.Partial) + len(rep.Lost); got != damageChats {
				t.Errorf("report accounts for %d chats, want %d", got, damageChats)
			}
			if rep.Chats < w.whole {
				t.Errorf("%d chats copied whole, want at least %d", rep.Chats, w.whole)
			}
			if w.lost != nil && !slices.Equal(rep.Lost, chatIDs(w.lost)) {
				t.Errorf("lost %q, want %q", rep.Lost, chatIDs(w.lost))
			}
			if w.partial != nil {
				var got []conversation.ChatID
				for _, p := range rep.Partial {
					got = append(got, p.Chat)
				}
				if !slices.Equal(got, chatIDs(w.partial)) {
					t.Errorf("partial %q, want %q", got, chatIDs(w.partial))
				}
			}
			if w.check != nil {
				w.check(rep)
			}
			if kept, _ := os.ReadFile(rep.Damaged); !bytes.Equal(kept, damaged) {
				t.Errorf("the damaged file is not kept unchanged at %s", rep.Damaged)
			}
			if r, err := Check(path, Options{}); err != nil || !r.OK() || r.Chats != rep.Chats+len(rep.Partial) {
				t.Fatalf("Check of the repaired file: %+v, %v; want it sound with the chats copied whole or in part", r, err)
			}

			db := openAt(t, path, Options{MaxMessagesPerChat: -1})
			partial := map[conversation.ChatID]int{}
			for _, p := range rep.Partial {
				partial[p.Chat] = p.Kept
			}
			for i := range damageChats {
				chat := damageChat(i)
				got, err := db.Recent(ctx, chat, 2*damageMessages)
				if err != nil {
					t.Fatalf("Recent %s: %v", chat, err)
				}
				want := msgs(chat, 0, damageMessages)
				switch kept, isPartial := partial[chat]; {
				case slices.Contains(rep.Lost, chat):
					want = nil
				case isPartial:
					want = want[damageMessages-kept:]
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("chat %s: %d messages after the repair, want %d", chat, len(got), len(want))
				}
				if len(want) == damageMessages {
					// The chat goes on where it was.
					next := msg(chat, damageMessages)
					if err := db.AppendTurn(ctx, chat, next); err != nil {
						t.Fatal(err)
					}
					if keys := chatKeys(t, db, chat); keys[len(keys)-1] != damageMessages+1 {
						t.Errorf("chat %s: new message stored under key %d, want %d", chat, keys[len(keys)-1], damageMessages+1)
					}
				}
			}
			if len(rep.DamagedBuckets) == 0 {
				if v, err := db.Cursor(ctx, "telegram"); err != nil || v != 4242 {
					t.Errorf("cursor after the repair = %d, %v; want 4242", v, err)
				}
			}
		})
	}
}

func chatIDs(is []int) []conversation.ChatID {
	var out []conversation.ChatID
	for _, i := range is {
		out = append(out, damageChat(i))
	}
	return out
}

// TestRepairRefusesWhileTheBotRuns: a store open for writing is not touched.
func TestRepairRefusesWhileTheBotRuns(t *testing.T) {
	path := writeDamageStore(t)
	openAt(t, path, Options{})
	if _, err := Repair(path, Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("Repair of an open store: %v, want ErrLocked", err)
	}
	if _, err := Check(path, Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("Check of an open store: %v, want ErrLocked", err)
	}
}

// TestRepairRefusesNewerSchema: a file from a newer chatbot is left alone.
func TestRepairRefusesNewerSchema(t *testing.T) {
	path := writeDamageStore(t)
	db := openAt(t, path, Options{})
	db.bolt.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, []byte("2")) })
	db.Close()
	if _, err := Repair(path, Options{}); !errors.Is(err, ErrNewerVersion) {
		t.Errorf("Repair: %v, want ErrNewerVersion", err)
	}
}
