package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chatbot-dev/chatbot/conversation"
)

// LockChat waits until no turn runs in chat on any replica, then takes the
// chat's lock and returns the function that gives it back (calling it again
// does nothing). Callers of one replica queue in process; across replicas the
// lock is a row of chat_locks that lasts as long as this replica's lease, so
// a replica that dies holding it keeps it at most LeaseTTL. A waiter is woken
// by a notification when the lock is given back, and looks again every
// PollEvery in any case. It returns ctx's error if ctx ends first.
//
// A replica that cannot reach the database for longer than its lease loses
// its locks; a turn still running there is then no longer alone in its chat.
func (s *Store) LockChat(ctx context.Context, chat conversation.ChatID) (unlock func(), err error) {
	if err := s.live(ctx); err != nil {
		return nil, err
	}
	unlockHere, err := s.chats.Lock(ctx, chat)
	if err != nil {
		return nil, err
	}
	token := newID(8)
	sub := s.events.subscribe("u:" + string(chat))
	defer sub.cancel()
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		select {
		case <-sub.c:
		case <-poll.C:
		case <-ctx.Done():
			unlockHere()
			return nil, ctx.Err()
		case <-s.ctx.Done():
			unlockHere()
			return nil, ErrClosed
		}
		sess, err := s.lease.session(ctx)
		if err != nil {
			unlockHere()
			return nil, err
		}
		got, err := s.tryLock(ctx, sess, chat, token)
		switch {
		case err == nil && got:
			var once sync.Once
			return func() {
				once.Do(func() {
					s.unlockChat(string(chat), token)
					unlockHere()
				})
			}, nil
		case isForeignKeyViolation(err):
			s.lease.lose(sess, "its row was deleted: it had expired")
		case ctx.Err() != nil:
			unlockHere()
			return nil, ctx.Err()
		case err != nil:
			unlockHere()
			return nil, fmt.Errorf("lock chat %s: %w", chat, err)
		}
		poll.Reset(s.opt.PollEvery)
	}
}

// tryLock deletes expired leases (and with them the locks they held), then
// takes chat's lock if it is free.
func (s *Store) tryLock(ctx context.Context, sess *session, chat conversation.ChatID, token string) (bool, error) {
	got := false
	b := &pgx.Batch{}
	b.Queue(reapSQL, s.channel)
	b.Queue(`INSERT INTO chat_locks (chat, owner, token) VALUES ($1, $2, $3) ON CONFLICT (chat) DO NOTHING`,
		string(chat), sess.id, token).Exec(func(ct pgconn.CommandTag) error {
		got = ct.RowsAffected() == 1
		return nil
	})
	err := s.pool.SendBatch(ctx, b).Close()
	return got && err == nil, err
}

// unlockChat gives back one holding of chat's lock and wakes the replicas
// waiting for it. When the database cannot be reached, the lease keeper
// retries: the row would otherwise last as long as this replica.
func (s *Store) unlockChat(chat, token string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.pool.Exec(ctx, `WITH d AS (DELETE FROM chat_locks WHERE chat = $2 AND token = $3 RETURNING chat)
		SELECT pg_notify($1, 'u:' || chat) FROM d`, s.channel, chat, token)
	if err != nil && !errors.Is(err, context.Canceled) && s.ctx.Err() == nil {
		s.log.Warn("release a chat lock (retried)", "chat", chat, "err", err)
		s.lease.retryLater(heldLock{chat: chat, token: token})
	}
}
