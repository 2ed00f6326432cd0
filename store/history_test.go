package store

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

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
