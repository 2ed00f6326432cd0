package store

import (
	"fmt"
	"runtime/debug"

	"go.etcd.io/bbolt"
)

// Operation names.
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
)

// view runs fn in a read transaction, turning a panic (a damaged page) into an
// error.
func (db *DB) view(op string, fn func(*bbolt.Tx) error) error {
	return protect(db.Path(), func() error { return db.bolt.View(fn) })
}

// update runs fn in a write transaction, turning a panic into an error.
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
	return err
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
