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
	err := db.view(OpReadHistory, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketChats).Bucket([]byte(chat))
		if b == nil {
			return nil
		}
		var err error
		msgs, err = newest(b.Cursor(), max)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", chat, err)
	}
	return msgs, nil
}

// AppendTurn stores msgs in one transaction, then prunes the chat to its cap.
func (db *DB) AppendTurn(ctx context.Context, chat conversation.ChatID, msgs ...conversation.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := db.update(OpAppendTurn, func(tx *bbolt.Tx) error {
		b, err := tx.Bucket(bucketChats).CreateBucketIfNotExists([]byte(chat))
		if err != nil {
			return err
		}
		// Keys only ever go at the end, so fill pages whole: at bbolt's default
		// (half) every page split on append would stay half empty forever.
		b.FillPercent = 1
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
			if err := db.putBlobs(tx, chat, seq, m.Attachments); err != nil {
				return err
			}
		}
		if err := db.prune(b); err != nil {
			return err
		}
		keep := b.Sequence()
		if k, _ := b.Cursor().First(); len(k) == 8 {
			keep = binary.BigEndian.Uint64(k)
		}
		return db.pruneBlobs(tx, chat, keep)
	})
	if err != nil {
		return fmt.Errorf("append turn: %w", err)
	}
	return nil
}

// cursor is the part of *bbolt.Cursor that the store's walks (newest, trim,
// forgetSeen) use. Tests wrap it to count the keys a walk visits: that is how
// they check, without a clock, that reading and pruning cost the same with 10
// or 100,000 stored keys. (No walk uses Next; it is here so that one that
// scanned would be counted too.)
type cursor interface {
	First() (key, value []byte)
	Last() (key, value []byte)
	Next() (key, value []byte)
	Prev() (key, value []byte)
	Seek(seek []byte) (key, value []byte)
	Delete() error
}

// newest decodes up to max of the newest messages under c, oldest first. It
// walks back from the last key and stops after max, so it visits max keys
// whatever the history's length.
func newest(c cursor, max int) ([]conversation.Message, error) {
	if max <= 0 {
		return nil, nil
	}
	var msgs []conversation.Message
	for k, v := c.Last(); k != nil; k, v = c.Prev() {
		var m conversation.Message
		if err := json.Unmarshal(v, &m); err != nil {
			return nil, fmt.Errorf("message %x: %w", k, err)
		}
		msgs = append(msgs, m)
		if len(msgs) == max {
			break
		}
	}
	slices.Reverse(msgs)
	return msgs, nil
}

// prune deletes the chat's oldest messages beyond the cap.
func (db *DB) prune(b *bbolt.Bucket) error {
	if db.maxPerCh <= 0 {
		return nil
	}
	return trim(b.Cursor(), b.Sequence(), db.maxPerCh)
}

// trim deletes the oldest messages under c until at most max remain; last is the
// newest sequence number. Keys are contiguous (only the oldest are ever deleted),
// so the count is last − first + 1, and trim visits only the keys it deletes.
//
// It seeks to each next key rather than calling First again: deleted keys leave
// empty leaves behind until the commit, which First would walk over every time,
// making a large trim (a cap lowered under a long history) quadratic.
func trim(c cursor, last uint64, max int) error {
	k, _ := c.First()
	if len(k) != 8 {
		return nil
	}
	first := binary.BigEndian.Uint64(k)
	if last < first || last-first < uint64(max) {
		return nil
	}
	keep := last - uint64(max) + 1 // the oldest sequence number kept
	for seq := first; seq < keep; {
		if err := c.Delete(); err != nil {
			return err
		}
		if k, _ = c.Seek(seqKey(seq + 1)); len(k) != 8 {
			break
		}
		seq = binary.BigEndian.Uint64(k)
	}
	return nil
}

// Reset deletes the chat's history and its kept attachments.
func (db *DB) Reset(ctx context.Context, chat conversation.ChatID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := db.update(OpReset, func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketChats, bucketBlobs} {
			err := tx.Bucket(name).DeleteBucket([]byte(chat))
			if err != nil && !errors.Is(err, bbolt.ErrBucketNotFound) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reset history: %w", err)
	}
	return nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
