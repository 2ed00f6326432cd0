package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

// openTest opens a store in a fresh t.TempDir and closes it when the test ends.
func openTest(t testing.TB, opt Options) *DB {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "chatbot.db"), opt)
}

// openAt opens the store at path and closes it when the test ends. Closing twice
// is harmless, so tests may close it early to reopen the file.
//
// It turns bbolt's fsync off. Every other step of a commit still runs, and what
// a reopen in the same machine sees does not depend on fsync; but thousands of
// fsyncs made the tests take a minute on a disk busy with other work. The
// benchmarks measure with fsync.
func openAt(t testing.TB, path string, opt Options) *DB {
	t.Helper()
	db, err := Open(path, opt)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	db.bolt.NoSync = true
	t.Cleanup(func() { db.Close() })
	return db
}

// reopen closes db and opens its file again with opt.
func reopen(t testing.TB, db *DB, opt Options) *DB {
	t.Helper()
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openAt(t, path, opt)
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
func fill(t testing.TB, db *DB, chat conversation.ChatID, from, to int) {
	t.Helper()
	for i := from; i < to; i += 2 {
		if err := db.AppendTurn(context.Background(), chat, msgs(chat, i, min(i+2, to))...); err != nil {
			t.Fatalf("AppendTurn %s #%d: %v", chat, i, err)
		}
	}
}

// bulkFill appends n messages to chat in transactions of up to 1,000 messages,
// which is far quicker than turn by turn when a benchmark needs 100,000.
func bulkFill(t testing.TB, db *DB, chat conversation.ChatID, n int) {
	t.Helper()
	for i := 0; i < n; i += 1000 {
		if err := db.AppendTurn(context.Background(), chat, msgs(chat, i, min(i+1000, n))...); err != nil {
			t.Fatalf("AppendTurn %s #%d: %v", chat, i, err)
		}
	}
}

// recent is db.Recent that fails the test on error.
func recent(t testing.TB, db *DB, chat conversation.ChatID, max int) []conversation.Message {
	t.Helper()
	got, err := db.Recent(context.Background(), chat, max)
	if err != nil {
		t.Fatalf("Recent(%s, %d): %v", chat, max, err)
	}
	return got
}

// countKeys counts the keys of the top-level bucket name with a cursor (bbolt's
// Stats are not reliable inside a write transaction, and a cursor is the truth).
func countKeys(t testing.TB, db *DB, name []byte) int {
	t.Helper()
	n := 0
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(name)
		if b == nil {
			return fmt.Errorf("no bucket %q", name)
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("count keys of %q: %v", name, err)
	}
	return n
}

// chatKeys returns the sequence numbers stored in chat's bucket, in key order.
func chatKeys(t testing.TB, db *DB, chat conversation.ChatID) []uint64 {
	t.Helper()
	var seqs []uint64
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketChats).Bucket([]byte(chat))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("key %x is not an 8-byte sequence number", k)
			}
			seqs = append(seqs, binary.BigEndian.Uint64(k))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("chat keys of %s: %v", chat, err)
	}
	return seqs
}

// seenAt records n keys prefix-0 … prefix-(n−1) as FirstSeen would have, key i
// expiring at at(i), writing both seen buckets directly in one transaction so that
// tests can make keys of any age quickly.
func seenAt(t testing.TB, db *DB, prefix string, n int, at func(i int) time.Time) {
	t.Helper()
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		for i := range n {
			key := fmt.Sprintf("%s-%d", prefix, i)
			stamp := binary.BigEndian.AppendUint64(nil, uint64(at(i).UnixNano()))
			if err := tx.Bucket(bucketSeen).Put([]byte(key), stamp); err != nil {
				return err
			}
			if err := tx.Bucket(bucketSeenAge).Put(append(stamp, key...), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seenAt(%s, %d): %v", prefix, n, err)
	}
}

// rawFill appends n messages to chat in one transaction with bbolt directly,
// without pruning, whatever the store's cap.
func rawFill(t testing.TB, db *DB, chat conversation.ChatID, n int) {
	t.Helper()
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		b, err := tx.Bucket(bucketChats).CreateBucketIfNotExists([]byte(chat))
		if err != nil {
			return err
		}
		b.FillPercent = 1
		for i := range n {
			v, err := json.Marshal(msg(chat, i))
			if err != nil {
				return err
			}
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(seq), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("rawFill(%s, %d): %v", chat, n, err)
	}
}
