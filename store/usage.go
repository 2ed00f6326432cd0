package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

var _ conversation.UsageLog = (*DB)(nil)

// usageKey is user ‖ 0 ‖ the UTC day.
func usageKey(user string, day time.Time) []byte {
	return fmt.Appendf(nil, "%s\x00%s", user, day.UTC().Format(time.DateOnly))
}

// AddTokens adds tokens to what user spent on day (UTC).
func (db *DB) AddTokens(ctx context.Context, user string, day time.Time, tokens int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := db.update(OpAddUsage, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketUsage)
		key := usageKey(user, day)
		total := uint64(tokens)
		if v := b.Get(key); len(v) == 8 {
			total += binary.BigEndian.Uint64(v)
		}
		return b.Put(key, binary.BigEndian.AppendUint64(nil, total))
	})
	if err != nil {
		return fmt.Errorf("add usage: %w", err)
	}
	return nil
}

// TokensOn returns what user spent on day (UTC).
func (db *DB) TokensOn(ctx context.Context, user string, day time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var total int
	err := db.view(OpReadUsage, func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketUsage).Get(usageKey(user, day)); len(v) == 8 {
			total = int(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read usage: %w", err)
	}
	return total, nil
}
