package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/store"
)

// The web chat's state (bots/web), as the bbolt store keeps it (store/web.go).

func secretHash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// webWrite runs a write of the web chat's state.
func (s *Store) webWrite(ctx context.Context, what, sql string, args ...any) error {
	if err := s.live(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, sql, args...)
	return s.write(ctx, store.OpWeb, what, err)
}

// webRead reports a failed read of the web chat's state.
func (s *Store) webRead(ctx context.Context, what string, err error) error {
	if err == nil || errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	return s.failure(ctx, store.OpWeb, false, fmt.Errorf("%s: %w", what, err), nil)
}

// CreateWebSession stores a session of user under token until expires, and
// forgets the sessions that have expired.
func (s *Store) CreateWebSession(ctx context.Context, token, user string, expires time.Time) error {
	return s.webWrite(ctx, "create web session", `
		WITH gone AS (DELETE FROM web_sessions WHERE expires_at < now())
		INSERT INTO web_sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (token_hash) DO UPDATE SET user_id = excluded.user_id, expires_at = excluded.expires_at`,
		secretHash(token), user, expires)
}

// WebSession returns the user of the session stored under token and when it
// expires; user is "" when there is none or it expired before now.
func (s *Store) WebSession(ctx context.Context, token string, now time.Time) (string, time.Time, error) {
	if err := s.live(ctx); err != nil {
		return "", time.Time{}, err
	}
	var user string
	var expires time.Time
	err := s.pool.QueryRow(ctx, `SELECT user_id, expires_at FROM web_sessions WHERE token_hash = $1 AND expires_at > $2`,
		secretHash(token), now).Scan(&user, &expires)
	return user, expires, s.webRead(ctx, "read web session", err)
}

// ExtendWebSession moves the session's expiry to expires.
func (s *Store) ExtendWebSession(ctx context.Context, token string, expires time.Time) error {
	return s.webWrite(ctx, "extend web session", `UPDATE web_sessions SET expires_at = $2 WHERE token_hash = $1`,
		secretHash(token), expires)
}

// DeleteWebSession forgets the session stored under token (logout).
func (s *Store) DeleteWebSession(ctx context.Context, token string) error {
	return s.webWrite(ctx, "delete web session", `DELETE FROM web_sessions WHERE token_hash = $1`, secretHash(token))
}

// CreateWebLoginToken stores a one-time login token for user and their chat,
// valid until expires, and forgets expired tokens.
func (s *Store) CreateWebLoginToken(ctx context.Context, token, user string, chat conversation.ChatID, expires time.Time) error {
	return s.webWrite(ctx, "create web login token", `
		WITH gone AS (DELETE FROM web_tokens WHERE expires_at < now())
		INSERT INTO web_tokens (token_hash, user_id, chat, expires_at) VALUES ($1, $2, $3, $4)`,
		secretHash(token), user, string(chat), expires)
}

// TakeWebLoginToken uses up a login token: it deletes it and returns its user
// and chat, so that it works once (over all replicas). user is "" when the
// token is unknown, used already or expired before now.
func (s *Store) TakeWebLoginToken(ctx context.Context, token string, now time.Time) (string, conversation.ChatID, error) {
	if err := s.live(ctx); err != nil {
		return "", "", err
	}
	var user, chat string
	var expires time.Time
	err := s.pool.QueryRow(ctx, `DELETE FROM web_tokens WHERE token_hash = $1 RETURNING user_id, chat, expires_at`,
		secretHash(token)).Scan(&user, &chat, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", nil
	}
	if err != nil {
		return "", "", s.write(ctx, store.OpWeb, "take web login token", err)
	}
	if !now.Before(expires) {
		return "", "", nil
	}
	return user, conversation.ChatID(chat), nil
}

// PutWebConversation records (or updates) the conversation id in user's list.
// An empty title keeps the title it has, a zero updated the time it has.
func (s *Store) PutWebConversation(ctx context.Context, user, id string, chat conversation.ChatID, title string, updated time.Time) error {
	var at *time.Time
	if !updated.IsZero() {
		at = &updated
	}
	return s.webWrite(ctx, "save web conversation", `
		INSERT INTO web_conversations (user_id, id, chat, title, updated_at) VALUES ($1, $2, $3, $4, coalesce($5, now()))
		ON CONFLICT (user_id, id) DO UPDATE SET chat = excluded.chat,
			title = CASE WHEN $4 = '' THEN web_conversations.title ELSE excluded.title END,
			updated_at = coalesce($5, web_conversations.updated_at)`,
		user, id, string(chat), title, at)
}

// LinkWebConversation puts chat in user's list under id, unless it is there
// already; it returns the id the chat has in the list.
func (s *Store) LinkWebConversation(ctx context.Context, user, id string, chat conversation.ChatID, title string, updated time.Time) (string, error) {
	if err := s.live(ctx); err != nil {
		return "", err
	}
	var got string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// One link at a time per user: two logins at once list the chat once.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('web_conversations ' || $1, 0))`, user); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT id FROM web_conversations WHERE user_id = $1 AND chat = $2 ORDER BY id LIMIT 1`,
			user, string(chat)).Scan(&got)
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		got = id
		_, err = tx.Exec(ctx, `INSERT INTO web_conversations (user_id, id, chat, title, updated_at) VALUES ($1, $2, $3, $4, $5)`,
			user, id, string(chat), title, updated)
		return err
	})
	if err != nil {
		return "", s.write(ctx, store.OpWeb, "link web conversation", err)
	}
	return got, s.write(ctx, store.OpWeb, "link web conversation", nil)
}

// WebConversation returns the chat and title of the conversation id in user's
// list; chat is "" when user has no such conversation.
func (s *Store) WebConversation(ctx context.Context, user, id string) (conversation.ChatID, string, error) {
	if err := s.live(ctx); err != nil {
		return "", "", err
	}
	var chat, title string
	err := s.pool.QueryRow(ctx, `SELECT chat, title FROM web_conversations WHERE user_id = $1 AND id = $2`, user, id).Scan(&chat, &title)
	return conversation.ChatID(chat), title, s.webRead(ctx, "read web conversation", err)
}

// WebConversations calls fn with each conversation in user's list, the most
// recently written first.
func (s *Store) WebConversations(ctx context.Context, user string, fn func(id string, chat conversation.ChatID, title string, updated time.Time) error) error {
	if err := s.live(ctx); err != nil {
		return err
	}
	type entry struct {
		id, chat, title string
		updated         time.Time
	}
	var list []entry
	rows, err := s.pool.Query(ctx, `SELECT id, chat, title, updated_at FROM web_conversations WHERE user_id = $1
		ORDER BY updated_at DESC, id`, user)
	if err == nil {
		var e entry
		_, err = pgx.ForEachRow(rows, []any{&e.id, &e.chat, &e.title, &e.updated}, func() error {
			list = append(list, e)
			return nil
		})
	}
	if err != nil {
		return s.webRead(ctx, "list web conversations", err)
	}
	for _, e := range list {
		if err := fn(e.id, conversation.ChatID(e.chat), e.title, e.updated); err != nil {
			return err
		}
	}
	return nil
}

// DeleteWebConversation removes the conversation id from user's list.
func (s *Store) DeleteWebConversation(ctx context.Context, user, id string) error {
	return s.webWrite(ctx, "delete web conversation", `DELETE FROM web_conversations WHERE user_id = $1 AND id = $2`, user, id)
}

// PutWebImage keeps a picture drawn in chat for prompt; past
// store.MaxWebImagesPerChat the oldest goes.
func (s *Store) PutWebImage(ctx context.Context, chat conversation.ChatID, prompt, sha string, data []byte) error {
	if err := s.live(ctx); err != nil {
		return err
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO web_images (chat, sha256, prompt, data) VALUES ($1, $2, $3, $4)
		ON CONFLICT (chat, sha256) DO UPDATE SET prompt = excluded.prompt, seq = nextval(pg_get_serial_sequence('web_images', 'seq'))`,
		string(chat), sha, prompt, data)
	b.Queue(`DELETE FROM web_images WHERE chat = $1 AND seq NOT IN
		(SELECT seq FROM web_images WHERE chat = $1 ORDER BY seq DESC LIMIT $2)`, string(chat), store.MaxWebImagesPerChat)
	return s.write(ctx, store.OpWeb, "save web image", s.pool.SendBatch(ctx, b).Close())
}

// WebImageFor returns the SHA-256 of the picture drawn in chat for prompt, or
// "" when none is kept.
func (s *Store) WebImageFor(ctx context.Context, chat conversation.ChatID, prompt string) (string, error) {
	if err := s.live(ctx); err != nil {
		return "", err
	}
	var sha string
	err := s.pool.QueryRow(ctx, `SELECT sha256 FROM web_images WHERE chat = $1 AND prompt = $2 ORDER BY seq DESC LIMIT 1`,
		string(chat), prompt).Scan(&sha)
	return sha, s.webRead(ctx, "read web image", err)
}

// WebImage returns the bytes of a picture drawn in chat (nil when not kept).
func (s *Store) WebImage(ctx context.Context, chat conversation.ChatID, sha string) ([]byte, error) {
	if err := s.live(ctx); err != nil {
		return nil, err
	}
	var data []byte
	err := s.pool.QueryRow(ctx, `SELECT data FROM web_images WHERE chat = $1 AND sha256 = $2`, string(chat), sha).Scan(&data)
	return data, s.webRead(ctx, "read web image", err)
}

// DeleteWebImages forgets the pictures drawn in chat.
func (s *Store) DeleteWebImages(ctx context.Context, chat conversation.ChatID) error {
	return s.webWrite(ctx, "delete web images", `DELETE FROM web_images WHERE chat = $1`, string(chat))
}

// HistoryPage returns up to max of chat's messages before the sequence number
// before (0: the newest), oldest first, with the sequence number of the first
// (0 when none), which pages further back.
func (s *Store) HistoryPage(ctx context.Context, chat conversation.ChatID, before uint64, max int) ([]conversation.Message, uint64, error) {
	if err := s.live(ctx); err != nil {
		return nil, 0, err
	}
	if max <= 0 {
		return nil, 0, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, body FROM messages WHERE chat = $1 AND ($2::bigint = 0 OR seq < $2::bigint)
		ORDER BY seq DESC LIMIT $3`, string(chat), int64(before), max)
	var msgs []conversation.Message
	var first int64
	if err == nil {
		var seq int64
		var body []byte
		_, err = pgx.ForEachRow(rows, []any{&seq, &body}, func() error {
			var m conversation.Message
			if err := json.Unmarshal(body, &m); err != nil {
				return fmt.Errorf("message %d: %w", seq, err)
			}
			msgs, first = append(msgs, m), seq
			return nil
		})
	}
	if err != nil {
		return nil, 0, s.failure(ctx, store.OpReadHistory, false, fmt.Errorf("read history of %s: %w", chat, err), nil)
	}
	slices.Reverse(msgs)
	return msgs, uint64(first), nil
}

// DropLastTurn deletes chat's last turn (the assistant's messages at the end
// and the user's message before them) and returns that user message; found is
// false when the history holds no user message. The sequence goes on from the
// messages kept, as in the bbolt store. Attachments stay until pruned.
func (s *Store) DropLastTurn(ctx context.Context, chat conversation.ChatID) (user conversation.Message, found bool, err error) {
	if err := s.live(ctx); err != nil {
		return user, false, err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The chat's row orders this against its turns being appended.
		var last int64
		if err := tx.QueryRow(ctx, `SELECT last_seq FROM chats WHERE chat = $1 FOR UPDATE`, string(chat)).Scan(&last); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return err
		}
		var seq int64
		var body []byte
		err := tx.QueryRow(ctx, `SELECT seq, body FROM messages WHERE chat = $1 AND body->>'role' = 'user'
			ORDER BY seq DESC LIMIT 1`, string(chat)).Scan(&seq, &body)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := json.Unmarshal(body, &user); err != nil {
			return fmt.Errorf("message %d: %w", seq, err)
		}
		found = true
		if _, err := tx.Exec(ctx, `DELETE FROM messages WHERE chat = $1 AND seq >= $2`, string(chat), seq); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE chats SET last_seq = $2 WHERE chat = $1`, string(chat), seq-1)
		return err
	})
	if err != nil {
		return conversation.Message{}, false, s.write(ctx, store.OpWeb, fmt.Sprintf("drop last turn of %s", chat), err)
	}
	return user, found, s.write(ctx, store.OpWeb, "drop last turn", nil)
}
