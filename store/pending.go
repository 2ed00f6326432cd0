package store

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

var _ conversation.PendingLog = (*DB)(nil)

// MarkPending notes that a reply is being written in chat. The mark holds an
// id of this Open, so that TakePending leaves the replies still being written
// alone.
func (db *DB) MarkPending(ctx context.Context, chat conversation.ChatID) error {
	return db.updatePending(ctx, func(b *bbolt.Bucket) error { return b.Put([]byte(chat), db.local.markOwner()) })
}

// ClearPending notes that chat's reply is finished.
func (db *DB) ClearPending(ctx context.Context, chat conversation.ChatID) error {
	return db.updatePending(ctx, func(b *bbolt.Bucket) error { return b.Delete([]byte(chat)) })
}

// TakePending returns the chats whose reply was being written when an earlier
// process stopped without finishing it (a crash), and forgets them. The marks
// of replies this process is writing stay, so calling it again later (as with
// the PostgreSQL store, where other replicas die) takes nothing of this one's.
func (db *DB) TakePending(ctx context.Context) ([]conversation.ChatID, error) {
	var chats []conversation.ChatID
	owner := db.local.markOwner()
	err := db.updatePending(ctx, func(b *bbolt.Bucket) error {
		if err := b.ForEach(func(k, v []byte) error {
			if !bytes.Equal(v, owner) {
				chats = append(chats, conversation.ChatID(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, c := range chats {
			if err := b.Delete([]byte(c)); err != nil {
				return err
			}
		}
		return nil
	})
	return chats, err
}

func (db *DB) updatePending(ctx context.Context, fn func(*bbolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := db.update(OpPending, func(tx *bbolt.Tx) error { return fn(tx.Bucket(bucketPending)) }); err != nil {
		return fmt.Errorf("pending replies: %w", err)
	}
	return nil
}
