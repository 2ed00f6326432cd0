package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

// The tests in this file check the performance promise: appending a turn
// and reading the newest N cost the same with 10 or 100,000 stored messages. They
// count what the code does (keys visited, pages written) instead of timing it, so
// they are deterministic on a noisy CI machine; the benchmarks give the times.

// costSizes are the history lengths the cost tests and the benchmarks compare.
var costSizes = []int{10, 1_000, 100_000}

// countingCursor counts the moves and deletes of the cursor it wraps.
type countingCursor struct {
	c       *bbolt.Cursor
	moves   int // calls that move the cursor, First included
	firsts  int
	deletes int
}

func (cc *countingCursor) First() ([]byte, []byte)        { cc.moves++; cc.firsts++; return cc.c.First() }
func (cc *countingCursor) Last() ([]byte, []byte)         { cc.moves++; return cc.c.Last() }
func (cc *countingCursor) Next() ([]byte, []byte)         { cc.moves++; return cc.c.Next() }
func (cc *countingCursor) Prev() ([]byte, []byte)         { cc.moves++; return cc.c.Prev() }
func (cc *countingCursor) Seek(k []byte) ([]byte, []byte) { cc.moves++; return cc.c.Seek(k) }
func (cc *countingCursor) Delete() error                  { cc.deletes++; return cc.c.Delete() }

// sizedChat names the chat that holds n messages in costDB.
func sizedChat(n int) conversation.ChatID { return conversation.ChatID(fmt.Sprintf("chat-%d", n)) }

// costDB returns a store without a cap holding one chat per size in costSizes.
func costDB(t *testing.T) *DB {
	t.Helper()
	db := openTest(t, Options{MaxMessagesPerChat: -1})
	for _, n := range costSizes {
		bulkFill(t, db, sizedChat(n), n)
	}
	return db
}

// TestHistoryCostDoesNotGrow checks that reading the newest 50, pruning, and
// writing a turn do work that depends on 50, on the number pruned, and on the
// depth of the chat's B+tree, never on the number of messages stored.
func TestHistoryCostDoesNotGrow(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a chat with 100,000 messages")
	}
	db := costDB(t)
	const max = 50

	t.Run("newest visits only what it returns", func(t *testing.T) {
		for _, n := range costSizes {
			chat := sizedChat(n)
			var cc *countingCursor
			var got []conversation.Message
			err := db.bolt.View(func(tx *bbolt.Tx) error {
				cc = &countingCursor{c: tx.Bucket(bucketChats).Bucket([]byte(chat)).Cursor()}
				var err error
				got, err = newest(cc, max)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			wantLen := min(n, max)
			// One move per message returned, plus the one that finds the start
			// of a history shorter than max.
			wantMoves := wantLen
			if n < max {
				wantMoves++
			}
			if len(got) != wantLen || cc.moves != wantMoves {
				t.Errorf("%d stored: newest(%d) returned %d after %d cursor moves, want %d after %d",
					n, max, len(got), cc.moves, wantLen, wantMoves)
			}
			// Recent is newest on the chat's bucket: same answer.
			if rec := recent(t, db, chat, max); !reflect.DeepEqual(rec, got) || !reflect.DeepEqual(rec, msgs(chat, n-wantLen, n)) {
				t.Errorf("%d stored: Recent(%d) is not the newest %d in order", n, max, wantLen)
			}
		}
	})

	t.Run("trim visits only what it deletes", func(t *testing.T) {
		for _, n := range costSizes {
			for _, drop := range []int{0, 2, 5} {
				var cc *countingCursor
				var kept []uint64
				errRollback := errors.New("roll back")
				err := db.bolt.Update(func(tx *bbolt.Tx) error {
					b := tx.Bucket(bucketChats).Bucket([]byte(sizedChat(n)))
					cc = &countingCursor{c: b.Cursor()}
					if err := trim(cc, b.Sequence(), n-drop); err != nil {
						return err
					}
					k, _ := b.Cursor().First()
					kept = append(kept, seqOf(k), b.Sequence())
					return errRollback
				})
				if !errors.Is(err, errRollback) {
					t.Fatal(err)
				}
				// One First, then one Seek per delete: calling First again after a
				// delete would walk every leaf emptied so far (quadratic).
				if cc.deletes != drop || cc.moves != drop+1 || cc.firsts != 1 {
					t.Errorf("%d stored, cap %d: %d deletes after %d cursor moves (%d First), want %d after %d (1 First)",
						n, n-drop, cc.deletes, cc.moves, cc.firsts, drop, drop+1)
				}
				if want := []uint64{uint64(drop + 1), uint64(n)}; !reflect.DeepEqual(kept, want) {
					t.Errorf("%d stored, cap %d: first and last key %v, want %v", n, n-drop, kept, want)
				}
			}
		}
	})

	t.Run("a turn writes pages along one or two tree paths", func(t *testing.T) {
		// Writing a turn dirties the path from the chat bucket's root to its last
		// leaf; pruning at the cap also the path to its first leaf. Each extra
		// level of the tree may cost one page per path, plus two for a split and
		// a longer freelist. Storing the history as one value, or one commit per
		// message, would write far more.
		for _, capped := range []bool{false, true} {
			var base, baseDepth int
			for _, n := range costSizes {
				opt := Options{MaxMessagesPerChat: -1}
				if capped {
					opt.MaxMessagesPerChat = n
				}
				db = reopen(t, db, opt)
				chat := sizedChat(n)
				before := db.bolt.Stats().TxStats
				if err := db.AppendTurn(context.Background(), chat, msg(chat, n), msg(chat, n+1)); err != nil {
					t.Fatal(err)
				}
				after := db.bolt.Stats().TxStats
				diff := after.Sub(&before)
				written, depth := int(diff.GetWrite()), chatDepth(t, db, chat)
				if base == 0 {
					base, baseDepth = written, depth
				}
				paths := 1
				if capped {
					paths = 2
				}
				if limit := base + paths*(depth-baseDepth) + 2; written > limit {
					t.Errorf("capped %v, %d stored (tree depth %d): a turn wrote %d pages, want at most %d (%d at %d stored, depth %d)",
						capped, n, depth, written, limit, base, costSizes[0], baseDepth)
				}
				t.Logf("capped %v, %d stored, depth %d: %d pages written, %d nodes", capped, n, depth, written, diff.GetNodeCount())
				// Undo the turn so the next round sees the same sizes.
				db.bolt.Update(func(tx *bbolt.Tx) error {
					b := tx.Bucket(bucketChats).Bucket([]byte(chat))
					b.Delete(seqKey(b.Sequence()))
					b.Delete(seqKey(b.Sequence() - 1))
					return b.SetSequence(b.Sequence() - 2)
				})
			}
		}
	})
}

// TestForgetSeenVisitsOnlyWhatItForgets checks that forgetting expired keys moves
// the cursor once per key forgotten, plus one to find the first young key, and
// never starts again from the first key after a delete.
func TestForgetSeenVisitsOnlyWhatItForgets(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct{ old, young int }{{0, 5}, {3, 0}, {1_000, 10}} {
		db := openTest(t, Options{})
		seenAt(t, db, "old", tt.old, func(i int) time.Time { return now.Add(-2*time.Hour + time.Duration(i)*time.Second) })
		seenAt(t, db, "young", tt.young, func(i int) time.Time { return now.Add(-time.Duration(i) * time.Second) })
		var cc *countingCursor
		err := db.bolt.Update(func(tx *bbolt.Tx) error {
			cc = &countingCursor{c: tx.Bucket(bucketSeenAge).Cursor()}
			return forgetSeen(tx.Bucket(bucketSeen), cc, now.Add(-time.Hour))
		})
		if err != nil {
			t.Fatal(err)
		}
		if cc.deletes != tt.old || cc.moves != tt.old+1 || cc.firsts != 1 {
			t.Errorf("%d old, %d young: %d deletes after %d cursor moves (%d First), want %d after %d (1 First)",
				tt.old, tt.young, cc.deletes, cc.moves, cc.firsts, tt.old, tt.old+1)
		}
		for _, name := range [][]byte{bucketSeen, bucketSeenAge} {
			if got := countKeys(t, db, name); got != tt.young {
				t.Errorf("%d old, %d young: bucket %s holds %d keys, want %d", tt.old, tt.young, name, got, tt.young)
			}
		}
	}
}

// chatDepth is the depth of chat's B+tree.
func chatDepth(t *testing.T, db *DB, chat conversation.ChatID) int {
	t.Helper()
	var depth int
	db.bolt.View(func(tx *bbolt.Tx) error {
		depth = tx.Bucket(bucketChats).Bucket([]byte(chat)).Stats().Depth
		return nil
	})
	return depth
}

func seqOf(k []byte) uint64 {
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// TestHistoryPagesAreFull checks that a history written turn by turn fills its
// pages: bbolt splits a page at half by default, which for keys that only ever
// grow at the end leaves every page half empty and the file twice its size.
func TestHistoryPagesAreFull(t *testing.T) {
	for _, max := range []int{-1, 300} {
		db := openTest(t, Options{MaxMessagesPerChat: max})
		fill(t, db, "c", 0, 2_000)
		var st bbolt.BucketStats
		db.bolt.View(func(tx *bbolt.Tx) error {
			st = tx.Bucket(bucketChats).Bucket([]byte("c")).Stats()
			return nil
		})
		if used := float64(st.LeafInuse) / float64(st.LeafAlloc); used < 0.8 {
			t.Errorf("cap %d: leaf pages %.0f%% used (%d of %d bytes in %d pages), want at least 80%%",
				max, 100*used, st.LeafInuse, st.LeafAlloc, st.LeafPageN)
		}
	}
}
