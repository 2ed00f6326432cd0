package store

import (
	"context"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

var _ conversation.Settings = (*DB)(nil)

// ChatSettings returns chat's settings (zero when none were saved). They live
// apart from the history, so /reset keeps them.
func (db *DB) ChatSettings(ctx context.Context, chat conversation.ChatID) (conversation.ChatSettings, error) {
	var s conversation.ChatSettings
	if err := ctx.Err(); err != nil {
		return s, err
	}
	err := db.view(OpSettings, func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketSettings).Get([]byte(chat)); v != nil {
			return json.Unmarshal(v, &s)
		}
		return nil
	})
	if err != nil {
		return conversation.ChatSettings{}, fmt.Errorf("read settings of %s: %w", chat, err)
	}
	return s, nil
}

// SetChatSettings saves chat's settings; zero settings delete the entry.
func (db *DB) SetChatSettings(ctx context.Context, chat conversation.ChatID, s conversation.ChatSettings) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := db.update(OpSettings, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSettings)
		if s == (conversation.ChatSettings{}) {
			return b.Delete([]byte(chat))
		}
		v, err := json.Marshal(s)
		if err != nil {
			return err
		}
		return b.Put([]byte(chat), v)
	})
	if err != nil {
		return fmt.Errorf("write settings of %s: %w", chat, err)
	}
	return nil
}
