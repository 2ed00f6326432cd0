package store

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"go.etcd.io/bbolt"
)

// Operation names, the label of the store's error counts (Errors).
const (
	OpReadHistory = "read_history"
	OpAppendTurn  = "append_turn"
	OpReset       = "reset"
	OpReadCursor  = "read_cursor"
	OpWriteCursor = "write_cursor"
	OpSeen        = "seen"
	OpAddUsage    = "add_usage"
	OpReadUsage   = "read_usage"
	OpPending     = "pending"
	OpSettings    = "settings"
	OpReadBlob    = "read_attachment"
)

// ops lists the operations whose error counts exist from the start (at zero).
var ops = []string{OpReadHistory, OpAppendTurn, OpReset, OpReadCursor, OpWriteCursor,
	OpSeen, OpAddUsage, OpReadUsage, OpPending, OpSettings, OpReadBlob, OpWeb}

// guard is the store's bookkeeping around every transaction: failed
// operations counted by name, and the last write's failure.
type guard struct {
	mu   sync.Mutex
	errs map[string]uint64
	// writeErr is the error of the last write transaction that could not be
	// begun or committed (a full disk, an I/O error, a damaged page); nil once a
	// write succeeds.
	writeErr atomic.Pointer[error]
}

// view runs fn in a read transaction, turning a panic (a damaged page) into an
// error, and counts a failure under op.
func (db *DB) view(op string, fn func(*bbolt.Tx) error) error {
	err := protect(db.Path(), func() error { return db.bolt.View(fn) })
	db.count(op, err)
	return err
}

// update runs fn in a write transaction, turning a panic into an error. It
// counts a failure under op, and records whether the store could write: an
// error fn returns (a bad value) says nothing about the disk, one from
// beginning or committing the transaction does.
func (db *DB) update(op string, fn func(*bbolt.Tx) error) error {
	var fnErr error
	err := protect(db.Path(), func() error {
		tx, err := db.bolt.Begin(true)
		if err != nil {
			return err
		}
		// Not bbolt's Update: after a panic its rollback reads the free-page
		// list again, and if that page is damaged too it panics before it
		// releases the writer lock, so every later write would wait forever.
		// Rollback only forgets this transaction's pages, and unlocks.
		defer func() {
			if r := recover(); r != nil {
				tx.Rollback()
				panic(r)
			}
		}()
		if fnErr = fn(tx); fnErr != nil {
			tx.Rollback()
			return fnErr
		}
		return tx.Commit()
	})
	db.count(op, err)
	switch {
	case err == nil:
		db.guard.writeErr.Store(nil)
	case fnErr == nil || errors.Is(err, ErrDamaged):
		db.guard.writeErr.Store(&err)
	}
	return err
}

func (db *DB) count(op string, err error) {
	if err == nil {
		return
	}
	db.guard.mu.Lock()
	if db.guard.errs == nil {
		db.guard.errs = make(map[string]uint64)
	}
	db.guard.errs[op]++
	db.guard.mu.Unlock()
}

// Errors returns how many operations of each kind failed since Open, by
// operation name (OpAppendTurn, …); every known operation is present.
func (db *DB) Errors() map[string]uint64 {
	db.guard.mu.Lock()
	defer db.guard.mu.Unlock()
	out := make(map[string]uint64, len(ops))
	for _, op := range ops {
		out[op] = 0
	}
	for op, n := range db.guard.errs {
		out[op] = n
	}
	return out
}

// WriteErr returns the error of the last write when the store could not write
// (a full disk, an I/O error, a closed or damaged file), and nil once a write
// has succeeded again. Health checks use it.
func (db *DB) WriteErr() error {
	if p := db.guard.writeErr.Load(); p != nil {
		return *p
	}
	return nil
}

// protect runs fn, turning a panic into a *DamagedError for the file at path.
// bbolt panics on a page whose header is wrong, and reading a page past the
// end of a truncated file faults (SIGBUS): SetPanicOnFault makes that a panic
// too, for this goroutine, while fn runs.
func protect(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		problem := fmt.Sprintf("reading it failed: %v", r)
		if fault, ok := r.(interface{ Addr() uintptr }); ok {
			problem = fmt.Sprintf("a page could not be read at all (memory fault at %#x): "+
				"the file is shorter than its pages need, or a damaged page points outside it", fault.Addr())
		}
		err = &DamagedError{Path: path, Problem: problem}
	}()
	return fn()
}
