package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

// BenchmarkAppendTurn appends one turn (a user message and a reply) to a chat
// that holds stored messages. The chat is filled with the cap off, then opened
// with the cap at stored, so every turn also prunes the two oldest messages: the
// steady state of a busy chat, and a history that keeps its length however many
// iterations run. "fsync" is the real thing (two fdatasyncs per commit);
// "nosync" turns bbolt's fsync off to show the CPU and page work alone.
func BenchmarkAppendTurn(b *testing.B) {
	for _, sync := range []bool{true, false} {
		for _, n := range costSizes {
			name := fmt.Sprintf("fsync/stored=%d", n)
			if !sync {
				name = fmt.Sprintf("nosync/stored=%d", n)
			}
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				db := openTest(b, Options{MaxMessagesPerChat: -1})
				bulkFill(b, db, "c", n)
				db = reopen(b, db, Options{MaxMessagesPerChat: n})
				db.bolt.NoSync = !sync // openAt turns it off
				turn := msgs("c", n, n+2)
				b.ReportAllocs()
				for b.Loop() {
					if err := db.AppendTurn(ctx, "c", turn...); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkRecent reads the newest 50 messages of a chat that holds stored
// messages. With 10 stored it returns those 10, so stored=50 is the like-for-like
// baseline: 50 messages decoded from the smallest tree.
func BenchmarkRecent(b *testing.B) {
	for _, n := range []int{10, 50, 1_000, 100_000} {
		b.Run(fmt.Sprintf("stored=%d", n), func(b *testing.B) {
			ctx := context.Background()
			db := openTest(b, Options{MaxMessagesPerChat: -1})
			bulkFill(b, db, "c", n)
			b.ReportAllocs()
			for b.Loop() {
				got, err := db.Recent(ctx, "c", 50)
				if err != nil || len(got) != min(n, 50) {
					b.Fatalf("Recent = %d messages, %v", len(got), err)
				}
			}
		})
	}
}

// BenchmarkTrimLoweredCap appends one turn to a chat of 100,000 messages in a
// store whose cap is 500, as after the owner lowers the cap under a long
// history: the turn deletes 99,502 messages in its transaction (with fsync).
func BenchmarkTrimLoweredCap(b *testing.B) {
	ctx := context.Background()
	db := openTest(b, Options{MaxMessagesPerChat: 500})
	db.bolt.NoSync = false // openAt turns it off
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		chat := conversation.ChatID(fmt.Sprintf("c%d", i))
		i++
		rawFill(b, db, chat, 100_000)
		b.StartTimer()
		if err := db.AppendTurn(ctx, chat, msg(chat, 100_000), msg(chat, 100_001)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkForgetSeen calls FirstSeen once 100,000 keys have expired, as after a
// long pause of a busy Slack bot: the call forgets them all (with fsync).
func BenchmarkForgetSeen(b *testing.B) {
	ctx := context.Background()
	db := openTest(b, Options{})
	db.bolt.NoSync = false // openAt turns it off
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		old := time.Now().Add(-2 * time.Hour)
		err := db.bolt.Update(func(tx *bbolt.Tx) error {
			seen, byAge := tx.Bucket(bucketSeen), tx.Bucket(bucketSeenAge)
			for i := range 100_000 {
				key := fmt.Sprintf("Ev%08d", i)
				stamp := binary.BigEndian.AppendUint64(nil, uint64(old.Add(time.Duration(i)).UnixNano()))
				if err := seen.Put([]byte(key), stamp); err != nil {
					return err
				}
				if err := byAge.Put(append(stamp, key...), nil); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := db.FirstSeen(ctx, "new", time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
