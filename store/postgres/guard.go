package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/chatbot-dev/chatbot/store"
)

// ops are the operations whose failures Errors counts: the bbolt store's
// names, so that /metrics has the same labels whichever store runs.
var ops = []string{store.OpReadHistory, store.OpAppendTurn, store.OpReset, store.OpReadCursor,
	store.OpWriteCursor, store.OpSeen, store.OpAddUsage, store.OpReadUsage, store.OpPending,
	store.OpSettings, store.OpReadBlob}

// guard counts failed operations by name and remembers whether the last
// write reached the database.
type guard struct {
	mu       sync.Mutex
	errs     map[string]uint64
	writeErr atomic.Pointer[error]
}

// failure reports how a call ended: err unchanged. A failure is counted under
// op unless the caller's context had ended (its own choice, not the store's
// failure). For a write (write is true) it also records whether the database
// could be written: dbErr is the database's answer (nil when the call failed
// before reaching it, as on a value that cannot be encoded).
func (s *Store) failure(ctx context.Context, op string, write bool, err, dbErr error) error {
	if write && ctx.Err() == nil {
		if dbErr == nil && err == nil {
			s.guard.writeErr.Store(nil)
		} else if dbErr != nil {
			s.guard.writeErr.Store(&dbErr)
		}
	}
	if err != nil && ctx.Err() == nil {
		s.guard.mu.Lock()
		if s.guard.errs == nil {
			s.guard.errs = make(map[string]uint64)
		}
		s.guard.errs[op]++
		s.guard.mu.Unlock()
	}
	return err
}

// write reports how a write ended: dbErr, the database's answer, wrapped in
// what, counted under op, and remembered for WriteErr.
func (s *Store) write(ctx context.Context, op, what string, dbErr error) error {
	var err error
	if dbErr != nil {
		err = fmt.Errorf("%s: %w", what, dbErr)
	}
	return s.failure(ctx, op, true, err, dbErr)
}

// Errors returns how many operations of each kind failed since Open, by
// operation name (store.OpAppendTurn, …); every known operation is present.
func (s *Store) Errors() map[string]uint64 {
	s.guard.mu.Lock()
	defer s.guard.mu.Unlock()
	out := make(map[string]uint64, len(ops))
	for _, op := range ops {
		out[op] = 0
	}
	for op, n := range s.guard.errs {
		out[op] = n
	}
	return out
}

// WriteErr returns the error of the last write when the database could not
// take it (unreachable, read-only, full), and nil once a write has succeeded
// again. Health checks use it.
func (s *Store) WriteErr() error {
	if p := s.guard.writeErr.Load(); p != nil {
		return *p
	}
	return nil
}
