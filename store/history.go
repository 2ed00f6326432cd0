package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

// Recent returns at most max of the chat's newest messages, oldest first. It walks
// back from the last key, so its cost depends on max, not on the history's length.
func (db *DB) Recent(ctx context.Context, chat conversation.ChatID, max int) ([]conversation.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var msgs []conversation.Message
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketChats).Bucket([]byte(chat))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && len(msgs) < max; k, v = c.Prev() {
			var m conversation.Message
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("chat %s message %d: %w", chat, binary.BigEndian.Uint64(k), err)
			}
			msgs = append(msgs, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	slices.Reverse(msgs)
	return msgs, nil
}

// AppendTurn stores msgs in one transaction, then prunes the chat to its cap.
func (db *DB) AppendTurn(ctx context.Context, chat conversation.ChatID, msgs ...conversation.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		b, err := tx.Bucket(bucketChats).CreateBucketIfNotExists([]byte(chat))
		if err != nil {
			return err
		}
		for _, m := range msgs {
			v, err := json.Marshal(m)
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
		return db.prune(b)
	})
	if err != nil {
		return fmt.Errorf("append turn: %w", err)
	}
	return nil
}

// prune deletes the chat's oldest messages beyond the cap. Keys are contiguous
// (only the oldest are ever deleted), so the count is last − first + 1.
func (db *DB) prune(b *bbolt.Bucket) error {
	if db.maxPerCh <= 0 {
		return nil
	}
	c := b.Cursor()
	k, _ := c.First()
	if k == nil {
		return nil
	}
	count := b.Sequence() - binary.BigEndian.Uint64(k) + 1
	for ; count > uint64(db.maxPerCh) && k != nil; count-- {
		if err := c.Delete(); err != nil {
			return err
		}
		k, _ = c.First()
	}
	return nil
}

// Reset deletes the chat's history.
func (db *DB) Reset(ctx context.Context, chat conversation.ChatID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		err := tx.Bucket(bucketChats).DeleteBucket([]byte(chat))
		if errors.Is(err, bbolt.ErrBucketNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("reset history: %w", err)
	}
	return nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
