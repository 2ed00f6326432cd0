package postgres

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// session is one lease of this replica: a row of the replicas table. It is
// lost when the replica could not renew it in time, or found it deleted; the
// store then takes a new one, under a new id.
type session struct {
	id   string
	lost chan struct{} // closed when the lease is lost
}

// lease keeps this replica's lease: it renews it on its own connection (so
// that a busy pool cannot starve it), retries the chat releases that failed,
// and deletes the leases of replicas that died.
type lease struct {
	s *Store

	mu         sync.Mutex
	sess       *session      // nil between a loss and the next lease
	ready      chan struct{} // closed when sess is set again
	validUntil time.Time     // when this replica stops trusting sess
	ids        []string      // every id this store has had, oldest first
	unlocks    []heldLock    // chat locks whose release failed

	kick chan struct{} // wakes the keeper at once (a loss was found)
	conn *pgx.Conn     // the keeper's connection; only the keeper and Open use it
}

// heldLock names one holding of a chat lock.
type heldLock struct{ chat, token string }

func newLease(s *Store) *lease {
	return &lease{s: s, ready: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// reapSQL deletes the leases that expired, by the database's clock; with
// them go their chat locks and leaderships (foreign keys), and their pending
// marks become a dead replica's. If any went, it wakes every waiting replica
// ($1 is the channel).
const reapSQL = `WITH gone AS (DELETE FROM replicas WHERE expires_at < now() RETURNING id)
	SELECT pg_notify($1, 'r') FROM (SELECT 1 FROM gone LIMIT 1) AS any_gone`

// register takes a new lease. When an earlier one was lost, what the replica
// still holds under it (the chat locks of turns still running, its pending
// marks) moves to the new lease, provided the old row is still there (else
// those locks went with it), and its leaderships are given up: Lead stopped
// trusting them when the lease was lost.
func (l *lease) register(ctx context.Context) error {
	l.mu.Lock()
	var old string
	if len(l.ids) > 0 {
		old = l.ids[len(l.ids)-1]
	}
	l.mu.Unlock()
	id := l.s.opt.Name + "-" + newID(4)
	sent := time.Now()
	err := l.onConn(ctx, func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			b.Queue(`INSERT INTO replicas (id, name, expires_at) VALUES ($1, $2, now() + $3::bigint * interval '1 microsecond')`,
				id, l.s.opt.Name, l.s.opt.LeaseTTL.Microseconds())
			if old != "" {
				b.Queue(`UPDATE chat_locks SET owner = $2 WHERE owner = $1`, old, id)
				b.Queue(`UPDATE pending SET owner = $2 WHERE owner = $1`, old, id)
				b.Queue(`WITH r AS (UPDATE leaders SET owner = NULL, token = NULL WHERE owner = $2 RETURNING name)
					SELECT pg_notify($1, 'l:' || name) FROM r`, l.s.channel, old)
				b.Queue(`DELETE FROM replicas WHERE id = $1`, old)
			}
			return tx.SendBatch(ctx, b).Close()
		})
	})
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.sess = &session{id: id, lost: make(chan struct{})}
	l.validUntil = sent.Add(l.s.opt.trustFor())
	l.ids = append(l.ids, id)
	close(l.ready)
	l.mu.Unlock()
	l.s.log.Info("replica lease taken", "replica", id, "ttl", l.s.opt.LeaseTTL)
	return nil
}

// onConn runs fn on the keeper's connection, connecting first if need be; a
// failure closes the connection, to connect afresh next time.
func (l *lease) onConn(ctx context.Context, fn func(*pgx.Conn) error) error {
	if l.conn == nil {
		conn, err := pgx.ConnectConfig(ctx, l.s.connCfg.Copy())
		if err != nil {
			return err
		}
		l.conn = conn
	}
	err := fn(l.conn)
	if err != nil {
		l.stop()
	}
	return err
}

// stop closes the keeper's connection.
func (l *lease) stop() {
	if l.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		l.conn.Close(ctx)
		cancel()
		l.conn = nil
	}
}

// keep renews the lease every RenewEvery until the store closes.
func (l *lease) keep() {
	defer l.stop()
	timer := time.NewTimer(l.s.opt.RenewEvery)
	defer timer.Stop()
	for {
		select {
		case <-l.s.ctx.Done():
			return
		case <-timer.C:
		case <-l.kick:
		}
		timer.Reset(l.step())
	}
}

// step renews the lease (or takes a new one) and returns when to step next.
func (l *lease) step() time.Duration {
	opt := &l.s.opt
	l.mu.Lock()
	sess, validUntil := l.sess, l.validUntil
	l.mu.Unlock()
	if sess == nil {
		ctx, cancel := context.WithTimeout(l.s.ctx, opt.LeaseTTL)
		err := l.register(ctx)
		cancel()
		if err != nil {
			if l.s.ctx.Err() == nil {
				l.s.log.Warn("take a replica lease", "err", err)
			}
			return opt.PollEvery
		}
		return opt.RenewEvery
	}
	if !time.Now().Before(validUntil) {
		l.lose(sess, "not renewed in time")
		return 0
	}
	sent := time.Now()
	ctx, cancel := context.WithDeadline(l.s.ctx, validUntil)
	defer cancel()
	renewed := false
	err := l.onConn(ctx, func(conn *pgx.Conn) error {
		b := &pgx.Batch{}
		b.Queue(`UPDATE replicas SET expires_at = now() + $2::bigint * interval '1 microsecond' WHERE id = $1`,
			sess.id, opt.LeaseTTL.Microseconds()).Exec(func(ct pgconn.CommandTag) error {
			renewed = ct.RowsAffected() == 1
			return nil
		})
		b.Queue(reapSQL, l.s.channel)
		return conn.SendBatch(ctx, b).Close()
	})
	switch {
	case err == nil && renewed:
		l.mu.Lock()
		if l.sess == sess {
			l.validUntil = sent.Add(opt.trustFor())
		}
		l.mu.Unlock()
		l.retryUnlocks()
		return opt.RenewEvery
	case err == nil:
		l.lose(sess, "its row was deleted: it had expired")
		return 0
	case l.s.ctx.Err() != nil:
		return 0
	default:
		l.s.log.Warn("renew the replica lease", "replica", sess.id, "err", err, "trusted for", time.Until(validUntil).Round(time.Millisecond))
		return max(0, min(opt.RenewEvery/3, time.Until(validUntil)))
	}
}

// lose gives up sess: Lead stops leading under it, and the keeper takes a new
// lease at once.
func (l *lease) lose(sess *session, why string) {
	l.mu.Lock()
	if l.sess != sess {
		l.mu.Unlock()
		return
	}
	l.sess = nil
	l.ready = make(chan struct{})
	l.mu.Unlock()
	close(sess.lost)
	l.s.log.Warn("replica lease lost", "replica", sess.id, "why", why)
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// current is the lease now, or nil.
func (l *lease) current() *session {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sess
}

// trustedUntil returns the end of sess's trust window, and false when sess
// is not the lease or that end has passed.
func (l *lease) trustedUntil(sess *session) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.validUntil, l.sess == sess && time.Now().Before(l.validUntil)
}

// session returns the lease, waiting for one while the replica has none.
func (l *lease) session(ctx context.Context) (*session, error) {
	for {
		l.mu.Lock()
		sess, ready := l.sess, l.ready
		l.mu.Unlock()
		if sess != nil {
			return sess, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-l.s.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// allIDs are the ids this store has had.
func (l *lease) allIDs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ids)
}

// release gives the lease up (Close): Lead stops leading, and the row goes,
// with the chat locks and leaderships it holds; every waiting replica is woken.
func (l *lease) release() {
	l.mu.Lock()
	sess := l.sess
	l.sess = nil
	l.mu.Unlock()
	if sess == nil {
		return
	}
	close(sess.lost)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM replicas WHERE id = $1`, sess.id)
	b.Queue(`SELECT pg_notify($1, 'r')`, l.s.channel)
	if err := l.s.pool.SendBatch(ctx, b).Close(); err != nil {
		l.s.log.Warn("give up the replica lease (the others take over when it expires)", "replica", sess.id, "err", err)
	}
}

// retryLater keeps a chat release that failed, for the keeper to retry: the
// lock lives as long as this replica's lease, so it must not be forgotten.
func (l *lease) retryLater(h heldLock) {
	l.mu.Lock()
	l.unlocks = append(l.unlocks, h)
	l.mu.Unlock()
}

// retryUnlocks retries the chat releases that failed.
func (l *lease) retryUnlocks() {
	l.mu.Lock()
	todo := l.unlocks
	l.unlocks = nil
	l.mu.Unlock()
	for _, h := range todo {
		l.s.unlockChat(h.chat, h.token)
	}
}

// isForeignKeyViolation reports whether err is PostgreSQL's foreign key
// violation: here, a lock or leadership taken under a lease whose row has
// gone.
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}
