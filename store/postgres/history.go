package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/store"
)

// Recent returns at most max of the chat's newest messages, oldest first. It
// reads them by the (chat, seq) index from the newest, so its cost depends on
// max, not on the history's length.
func (s *Store) Recent(ctx context.Context, chat conversation.ChatID, max int) ([]conversation.Message, error) {
	if err := s.live(ctx); err != nil {
		return nil, err
	}
	if max <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, body FROM messages WHERE chat = $1 ORDER BY seq DESC LIMIT $2`, string(chat), max)
	if err != nil {
		return nil, s.failure(ctx, store.OpReadHistory, false, fmt.Errorf("read history of %s: %w", chat, err), nil)
	}
	var msgs []conversation.Message
	var seq int64
	var body []byte
	_, err = pgx.ForEachRow(rows, []any{&seq, &body}, func() error {
		var m conversation.Message
		if err := json.Unmarshal(body, &m); err != nil {
			return fmt.Errorf("message %d: %w", seq, err)
		}
		msgs = append(msgs, m)
		return nil
	})
	if err != nil {
		return nil, s.failure(ctx, store.OpReadHistory, false, fmt.Errorf("read history of %s: %w", chat, err), nil)
	}
	slices.Reverse(msgs)
	return msgs, nil
}

// AppendTurn stores msgs and their attachments, then prunes the chat to its
// caps, all in one transaction (one batch, one round trip). The chat's row
// in chats hands out the sequence numbers and, locked by the update, orders
// concurrent turns of one chat.
func (s *Store) AppendTurn(ctx context.Context, chat conversation.ChatID, msgs ...conversation.Message) error {
	if err := s.live(ctx); err != nil {
		return err
	}
	bodies := make([]string, len(msgs))
	for i, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			return s.failure(ctx, store.OpAppendTurn, true, fmt.Errorf("append turn: %w", err), nil)
		}
		bodies[i] = string(b)
	}
	n := len(msgs)
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO chats (chat, last_seq) VALUES ($1, $2)
		ON CONFLICT (chat) DO UPDATE SET last_seq = chats.last_seq + excluded.last_seq`, string(chat), n)
	b.Queue(`INSERT INTO messages (chat, seq, body)
		SELECT $1, c.last_seq - $2 + m.ord, m.body::json
		FROM chats c, unnest($3::text[]) WITH ORDINALITY AS m (body, ord)
		WHERE c.chat = $1`, string(chat), n, bodies)
	for _, bl := range turnBlobs(msgs) {
		b.Queue(`INSERT INTO blobs (chat, sha256, seq, size, data)
			SELECT $1, $2, c.last_seq - $3 + $4, $5, $6 FROM chats c WHERE c.chat = $1
			ON CONFLICT (chat, sha256) DO UPDATE SET seq = excluded.seq`,
			string(chat), bl.sha, n, bl.ord, len(bl.data), bl.data)
	}
	b.Queue(pruneSQL, string(chat), s.opt.MaxMessagesPerChat, s.opt.MaxFileBytesPerChat)
	return s.write(ctx, store.OpAppendTurn, "append turn", s.pool.SendBatch(ctx, b).Close())
}

// pruneSQL deletes chat $1's messages beyond the cap $2 (0: none), then its
// attachments whose newest message is older than the oldest message kept, then
// the oldest attachments while the rest take more than $3 bytes: it keeps the
// newest attachments whose sizes, summed from the newest, stay within the cap.
// Attachments age by (seq, sha256), as the bbolt store's index does.
const pruneSQL = `
WITH c AS (
	SELECT last_seq, CASE WHEN $2::bigint > 0 THEN last_seq - $2::bigint ELSE 0 END AS cut
	FROM chats WHERE chat = $1
), pruned AS (
	DELETE FROM messages m USING c WHERE m.chat = $1 AND m.seq <= c.cut
), keep AS (
	SELECT coalesce((SELECT min(m.seq) FROM messages m WHERE m.chat = $1 AND m.seq > c.cut), c.last_seq) AS seq
	FROM c
), ranked AS (
	SELECT sha256, seq, sum(size) OVER (ORDER BY seq DESC, sha256 DESC) AS newer
	FROM blobs WHERE chat = $1
)
DELETE FROM blobs b USING ranked r, keep k
WHERE b.chat = $1 AND b.sha256 = r.sha256 AND (r.seq < k.seq OR r.newer > $3::bigint)`

// turnBlob is an attachment of a turn to keep: ord is the position (from 1) of
// the newest of the turn's messages that carries it.
type turnBlob struct {
	sha  string
	ord  int
	data []byte
}

// turnBlobs lists the attachments with bytes in msgs, once each.
func turnBlobs(msgs []conversation.Message) []turnBlob {
	var out []turnBlob
	at := map[string]int{}
	for i, m := range msgs {
		for _, a := range m.Attachments {
			if a.Data == nil || a.SHA256 == "" {
				continue
			}
			if j, ok := at[a.SHA256]; ok {
				out[j].ord = i + 1
				continue
			}
			at[a.SHA256] = len(out)
			out = append(out, turnBlob{sha: a.SHA256, ord: i + 1, data: a.Data})
		}
	}
	return out
}

// Reset deletes the chat's history and its kept attachments.
func (s *Store) Reset(ctx context.Context, chat conversation.ChatID) error {
	if err := s.live(ctx); err != nil {
		return err
	}
	b := &pgx.Batch{}
	for _, table := range []string{"messages", "blobs", "chats"} {
		b.Queue("DELETE FROM "+table+" WHERE chat = $1", string(chat))
	}
	return s.write(ctx, store.OpReset, "reset history", s.pool.SendBatch(ctx, b).Close())
}

// Blob returns the bytes of an attachment kept for chat, or nil when it is not
// kept (pruned, or never stored).
func (s *Store) Blob(ctx context.Context, chat conversation.ChatID, sha string) ([]byte, error) {
	if err := s.live(ctx); err != nil {
		return nil, err
	}
	var data []byte
	err := s.pool.QueryRow(ctx, `SELECT data FROM blobs WHERE chat = $1 AND sha256 = $2`, string(chat), sha).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, s.failure(ctx, store.OpReadBlob, false, fmt.Errorf("read attachment of %s: %w", chat, err), nil)
	}
	return data, nil
}
