package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/store"
)

// ChatSettings returns chat's settings (zero when none were saved). They live
// apart from the history, so /reset keeps them.
func (s *Store) ChatSettings(ctx context.Context, chat conversation.ChatID) (conversation.ChatSettings, error) {
	var set conversation.ChatSettings
	if err := s.live(ctx); err != nil {
		return set, err
	}
	var body []byte
	err := s.pool.QueryRow(ctx, `SELECT body FROM chat_settings WHERE chat = $1`, string(chat)).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return set, nil
	}
	if err == nil {
		err = json.Unmarshal(body, &set)
	}
	if err != nil {
		return conversation.ChatSettings{}, s.failure(ctx, store.OpSettings, false, fmt.Errorf("read settings of %s: %w", chat, err), nil)
	}
	return set, nil
}

// SetChatSettings saves chat's settings; zero settings delete the entry.
func (s *Store) SetChatSettings(ctx context.Context, chat conversation.ChatID, set conversation.ChatSettings) error {
	if err := s.live(ctx); err != nil {
		return err
	}
	what := fmt.Sprintf("write settings of %s", chat)
	if set == (conversation.ChatSettings{}) {
		_, err := s.pool.Exec(ctx, `DELETE FROM chat_settings WHERE chat = $1`, string(chat))
		return s.write(ctx, store.OpSettings, what, err)
	}
	body, err := json.Marshal(set)
	if err != nil {
		return s.failure(ctx, store.OpSettings, true, fmt.Errorf("%s: %w", what, err), nil)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO chat_settings (chat, body) VALUES ($1, $2::text::json)
		ON CONFLICT (chat) DO UPDATE SET body = excluded.body`, string(chat), string(body))
	return s.write(ctx, store.OpSettings, what, err)
}

// utcDay is day's date in UTC, as the usage table keys it.
func utcDay(day time.Time) string { return day.UTC().Format(time.DateOnly) }

// AddTokens adds tokens to what user spent on day (UTC).
func (s *Store) AddTokens(ctx context.Context, user string, day time.Time, tokens int) error {
	if err := s.live(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO usage (user_id, day, tokens) VALUES ($1, $2::text::date, $3)
		ON CONFLICT (user_id, day) DO UPDATE SET tokens = usage.tokens + excluded.tokens`, user, utcDay(day), tokens)
	return s.write(ctx, store.OpAddUsage, "add usage", err)
}

// TokensOn returns what user spent on day (UTC).
func (s *Store) TokensOn(ctx context.Context, user string, day time.Time) (int, error) {
	if err := s.live(ctx); err != nil {
		return 0, err
	}
	var total int64
	err := s.pool.QueryRow(ctx, `SELECT tokens FROM usage WHERE user_id = $1 AND day = $2::text::date`, user, utcDay(day)).Scan(&total)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, s.failure(ctx, store.OpReadUsage, false, fmt.Errorf("read usage: %w", err), nil)
	}
	return int(total), nil
}

// Cursor returns the named platform cursor (0 when unset).
func (s *Store) Cursor(ctx context.Context, name string) (int64, error) {
	if err := s.live(ctx); err != nil {
		return 0, err
	}
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT value FROM cursors WHERE name = $1`, name).Scan(&v)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, s.failure(ctx, store.OpReadCursor, false, fmt.Errorf("read cursor %s: %w", name, err), nil)
	}
	return v, nil
}

// SetCursor stores the named platform cursor. Under a leader's context (see
// Lead) it writes only while that leadership holds, and returns ErrNotLeader
// otherwise.
func (s *Store) SetCursor(ctx context.Context, name string, v int64) error {
	if err := s.live(ctx); err != nil {
		return err
	}
	f, fenced := ctx.Value(fenceKey{}).(fence)
	if !fenced {
		_, err := s.pool.Exec(ctx, `INSERT INTO cursors (name, value) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, v)
		return s.write(ctx, store.OpWriteCursor, "write cursor "+name, err)
	}
	// FOR SHARE holds the leadership row until the write commits: an election
	// waits for it, or, having won first, makes this write find no row.
	ct, err := s.pool.Exec(ctx, `WITH held AS (
			SELECT 1 FROM leaders WHERE name = $3 AND token = $4 AND owner IS NOT NULL FOR SHARE)
		INSERT INTO cursors (name, value) SELECT $1, $2 FROM held
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, v, f.name, f.token)
	if err := s.write(ctx, store.OpWriteCursor, "write cursor "+name, err); err != nil {
		return err
	}
	if ct.RowsAffected() == 0 {
		return fmt.Errorf("write cursor %s: %w (%s)", name, ErrNotLeader, f.name)
	}
	return nil
}

// FirstSeen records key (an event id, a channel+ts) and reports whether it was
// new, over all replicas: of several replicas that see one key at once, exactly
// one is told it is new. The key is remembered for ttl, by the database's
// clock; expired keys (whatever ttl they were given) are forgotten on the way,
// a bounded number per call, skipping those another call is deleting.
func (s *Store) FirstSeen(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := s.live(ctx); err != nil {
		return false, err
	}
	first := false
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM seen WHERE key IN (
		SELECT key FROM seen WHERE expires_at < now() ORDER BY expires_at LIMIT 1000 FOR UPDATE SKIP LOCKED)`)
	b.Queue(`INSERT INTO seen (key, expires_at) VALUES ($1, now() + $2::bigint * interval '1 microsecond')
		ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE seen.expires_at < now()`,
		key, ttl.Microseconds()).Exec(func(ct pgconn.CommandTag) error {
		first = ct.RowsAffected() == 1
		return nil
	})
	if err := s.write(ctx, store.OpSeen, fmt.Sprintf("record seen %q", key), s.pool.SendBatch(ctx, b).Close()); err != nil {
		return false, err
	}
	return first, nil
}
