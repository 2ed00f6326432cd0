package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/store"
)

// MarkPending notes that this replica is writing a reply in chat. The mark
// belongs to this replica's lease: if the replica dies, the mark becomes an
// orphan, for TakePending.
func (s *Store) MarkPending(ctx context.Context, chat conversation.ChatID) error {
	if err := s.live(ctx); err != nil {
		return err
	}
	sess, err := s.lease.session(ctx)
	if err != nil {
		return fmt.Errorf("pending replies: %w", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO pending (chat, owner) VALUES ($1, $2)
		ON CONFLICT (chat, owner) DO UPDATE SET marked_at = now()`, string(chat), sess.id)
	return s.write(ctx, store.OpPending, "pending replies", err)
}

// ClearPending notes that this replica's reply in chat is finished.
func (s *Store) ClearPending(ctx context.Context, chat conversation.ChatID) error {
	if err := s.live(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM pending WHERE chat = $1 AND owner = ANY ($2)`, string(chat), s.lease.allIDs())
	return s.write(ctx, store.OpPending, "pending replies", err)
}

// TakePending returns the chats whose reply was being written by a replica
// that died (its lease expired) or stopped before finishing it, and forgets
// them: each is returned once over all replicas, so that its users are told
// once that the answer was cut off. Marks of replicas still alive, this one
// included, stay. Call it at start and then every few seconds: a dead
// replica's marks become orphans only when its lease expires. Chats are
// sorted.
func (s *Store) TakePending(ctx context.Context) ([]conversation.ChatID, error) {
	if err := s.live(ctx); err != nil {
		return nil, err
	}
	var chats []conversation.ChatID
	b := &pgx.Batch{}
	b.Queue(reapSQL, s.channel)
	b.Queue(`DELETE FROM pending p WHERE NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = p.owner) RETURNING chat`).
		Query(func(rows pgx.Rows) error {
			var chat string
			_, err := pgx.ForEachRow(rows, []any{&chat}, func() error {
				chats = append(chats, conversation.ChatID(chat))
				return nil
			})
			return err
		})
	if err := s.write(ctx, store.OpPending, "pending replies", s.pool.SendBatch(ctx, b).Close()); err != nil {
		return nil, err
	}
	slices.Sort(chats)
	return slices.Compact(chats), nil
}
