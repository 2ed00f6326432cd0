package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// errLostLeadership ends a leader's context when its lease was lost.
var errLostLeadership = errors.New("leadership lost: the replica's lease could not be renewed")

// ErrNotLeader is what SetCursor returns when called with a leader's context
// (the one Lead gives fn, or one derived from it) after that leadership ended:
// the write is refused, so that a deposed leader cannot move the cursor its
// successor polls from.
var ErrNotLeader = errors.New("not the leader any more")

// fence identifies one holding of a leadership, carried in the leader's
// context for SetCursor.
type fence struct{ name, token string }

type fenceKey struct{}

// Lead runs fn while this replica leads name, the one leader of that name
// over all replicas (for example Telegram polling: exactly one replica polls).
// It campaigns until it is elected, then calls fn with a context that ends
// when ctx ends or when leadership is lost: when this replica could not renew
// its lease within the trust window (a little less than LeaseTTL, so that it
// stops before any other replica can be elected), or found its lease's row
// deleted. After a loss it campaigns again.
//
// A leader that dies keeps leadership until its lease expires: another
// replica is elected at most LeaseTTL + PollEvery later (by default 11 s). A
// leader that stops (fn returns, ctx ends, Close) gives leadership up at once
// and wakes the others by a notification.
//
// fn's context also fences SetCursor: a cursor written with it (or with a
// context derived from it, even by context.WithoutCancel) is written only
// while this leadership holds, in the same transaction that checks it, so a
// leader cut off mid-write cannot overwrite its successor's offset.
//
// Lead returns fn's error when fn returns on its own or after ctx ended; nil
// when ctx ends while it campaigns; ErrClosed when the store closes.
func (s *Store) Lead(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	token := newID(8)
	sub := s.events.subscribe("l:" + name)
	defer sub.cancel()
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		select {
		case <-sub.c:
		case <-poll.C:
		case <-ctx.Done():
			return nil
		case <-s.ctx.Done():
			return ErrClosed
		}
		sess, err := s.lease.session(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		term, won, err := s.elect(ctx, sess, name, token)
		switch {
		case ctx.Err() != nil:
			return nil
		case isForeignKeyViolation(err):
			s.lease.lose(sess, "its row was deleted: it had expired")
		case err != nil:
			s.log.Warn("campaign for leadership", "name", name, "err", err)
		case won:
			s.log.Info("leading", "name", name, "term", term, "replica", sess.id)
			err, lost := s.leadWhile(ctx, sess, name, token, fn)
			if !lost || ctx.Err() != nil {
				return err
			}
			s.log.Warn("stopped leading", "name", name, "term", term, "replica", sess.id, "why", errLostLeadership, "err", err)
			token = newID(8) // a new holding: the lost one's fence must stay shut
		}
		poll.Reset(s.opt.PollEvery)
	}
}

// elect deletes expired leases (a dead leader's goes, and with it its
// leadership), then takes leadership name if no one holds it.
func (s *Store) elect(ctx context.Context, sess *session, name, token string) (term int64, won bool, err error) {
	b := &pgx.Batch{}
	b.Queue(reapSQL, s.channel)
	b.Queue(`INSERT INTO leaders (name, owner, token, term) VALUES ($1, $2, $3, 1)
		ON CONFLICT (name) DO UPDATE
			SET owner = excluded.owner, token = excluded.token, term = leaders.term + 1, elected_at = now()
			WHERE leaders.owner IS NULL
		RETURNING term`, name, sess.id, token).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&term)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		won = err == nil
		return err
	})
	err = s.pool.SendBatch(ctx, b).Close()
	return term, won && err == nil, err
}

// leadWhile runs fn under a context that ends when leadership is lost, and
// gives leadership up afterwards unless it was lost. It reports fn's error
// and whether leadership was lost.
func (s *Store) leadWhile(ctx context.Context, sess *session, name, token string, fn func(context.Context) error) (err error, lost bool) {
	leadCtx, cancel := context.WithCancelCause(context.WithValue(ctx, fenceKey{}, fence{name: name, token: token}))
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		s.watchLeadership(leadCtx, cancel, sess)
	}()
	err = fn(leadCtx)
	lost = errors.Is(context.Cause(leadCtx), errLostLeadership)
	cancel(nil)
	<-watched
	if !lost {
		s.resign(name, token)
	}
	return err, lost
}

// watchLeadership ends the leader's context with errLostLeadership when the
// lease is lost, or at the end of its trust window if it was not renewed by
// then. It needs no database: a replica that cannot reach it stops leading in
// time all the same.
func (s *Store) watchLeadership(ctx context.Context, cancel context.CancelCauseFunc, sess *session) {
	for {
		until, ok := s.lease.trustedUntil(sess)
		if !ok {
			cancel(errLostLeadership)
			return
		}
		timer := time.NewTimer(time.Until(until))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-sess.lost:
			timer.Stop()
			cancel(errLostLeadership)
			return
		case <-timer.C:
		}
	}
}

// resign gives leadership name up and wakes the replicas campaigning for it.
func (s *Store) resign(name, token string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.pool.Exec(ctx, `WITH r AS (UPDATE leaders SET owner = NULL, token = NULL WHERE name = $2 AND token = $3 RETURNING name)
		SELECT pg_notify($1, 'l:' || name) FROM r`, s.channel, name, token)
	if err != nil && s.ctx.Err() == nil {
		s.log.Warn("give up leadership (the others take over when this lease expires)", "name", name, "err", err)
	}
}
