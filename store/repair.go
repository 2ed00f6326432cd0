package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

// RepairReport says what Repair copied.
type RepairReport struct {
	// Path is the repaired store (the original path); Damaged is where the
	// damaged file was moved, unchanged.
	Path, Damaged string
	// Chats were copied whole, with Messages messages in all.
	Chats, Messages int
	// Partial chats kept only their newest messages; Lost chats kept none.
	Partial []PartialChat
	Lost    []conversation.ChatID
	// DamagedBuckets names the other buckets (cursors, seen events, usage, …)
	// some of whose records could not be read.
	DamagedBuckets []string
}

// PartialChat is a chat of which Repair could copy only the newest Kept messages.
type PartialChat struct {
	Chat conversation.ChatID
	Kept int
}

// Repair copies what can be read of the store file at path into a new file:
// each chat's history (whole, or its newest messages up to the first one that
// cannot be read), the platforms' cursors, seen events, usage and the other
// records. It checks the new file, then moves the damaged one aside, unchanged,
// to path.damaged-YYYYMMDD-HHMMSS and puts the new one in its place. The bot
// must be stopped: Repair fails with ErrLocked while it has the file open.
func Repair(path string, opt Options) (*RepairReport, error) {
	fail := func(err error) (*RepairReport, error) { return nil, fmt.Errorf("repair store %s: %w", path, err) }
	src, err := openReadOnly(path, opt.lockTimeout())
	if err != nil {
		return fail(err)
	}
	defer src.Close()
	if err := checkVersion(src, path); err != nil {
		return fail(err)
	}

	tmp := path + ".repair"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	dst, err := bbolt.Open(tmp, 0o600, &bbolt.Options{Timeout: opt.lockTimeout(), NoSync: true})
	if err != nil {
		return fail(err)
	}
	rep := &RepairReport{Path: path}
	err = copyReadable(src, dst, path, rep)
	err = errors.Join(err, dst.Sync(), dst.Close())
	if err != nil {
		os.Remove(tmp)
		return fail(err)
	}
	// The new file must pass what the bot checks when it starts.
	db, err := Open(tmp, opt)
	if err != nil {
		os.Remove(tmp)
		return fail(fmt.Errorf("the repaired copy: %w", err))
	}
	if err := db.Close(); err != nil {
		return fail(err)
	}
	src.Close()
	rep.Damaged = path + ".damaged-" + time.Now().UTC().Format("20060102-150405")
	if _, err := os.Lstat(rep.Damaged); err == nil {
		return fail(fmt.Errorf("%s already exists", rep.Damaged))
	}
	if err := os.Rename(path, rep.Damaged); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("%w (the damaged file is at %s, the repaired one at %s)", err, rep.Damaged, tmp))
	}
	return rep, nil
}

// checkVersion refuses a file written by a newer chatbot: its layout may not
// be what this one would copy.
func checkVersion(src *bbolt.DB, path string) error {
	var v []byte
	walk(src, path, [][]byte{bucketMeta}, false, func(k, val []byte) {
		if bytes.Equal(k, keyVersion) {
			v = bytes.Clone(val)
		}
	})
	if n, err := strconv.Atoi(string(v)); err == nil && n > SchemaVersion {
		return fmt.Errorf("%w (schema %d, this build reads %d): repair it with a newer chatbot", ErrNewerVersion, n, SchemaVersion)
	}
	return nil
}

type record struct{ k, v []byte }

// copyReadable copies every readable bucket of src into dst, one bucket per
// transaction on each side, so that a damaged page loses only what it holds.
func copyReadable(src, dst *bbolt.DB, path string, rep *RepairReport) error {
	var tops [][]byte
	err := protect(path, func() error {
		return src.View(func(tx *bbolt.Tx) error {
			return tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
				tops = append(tops, bytes.Clone(name))
				return nil
			})
		})
	})
	if err != nil {
		return fmt.Errorf("nothing can be read: the list of buckets is damaged (%s)", problemOf(err))
	}
	var copyTree func(names [][]byte) error
	copyTree = func(names [][]byte) error {
		var recs []record
		var nested [][]byte
		var seq uint64
		if len(names) == 2 && bytes.Equal(names[0], bucketChats) {
			recs, nested, seq = readChat(src, path, names, rep)
			if len(recs) == 0 && len(nested) == 0 {
				return nil // lost (or empty): no bucket for it
			}
		} else {
			recs, nested, seq = readBucket(src, path, names, rep)
		}
		if err := dst.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(names[0])
			for _, n := range names[1:] {
				if err != nil {
					break
				}
				b, err = b.CreateBucketIfNotExists(n)
			}
			if err != nil {
				return err
			}
			b.FillPercent = 1 // keys go in in order
			for _, r := range recs {
				if err := b.Put(r.k, r.v); err != nil {
					return err
				}
			}
			return b.SetSequence(seq)
		}); err != nil {
			return fmt.Errorf("write bucket %s: %w", bucketPath(names), err)
		}
		for _, n := range nested {
			if err := copyTree(append(names[:len(names):len(names)], n)); err != nil {
				return err
			}
		}
		return nil
	}
	for _, name := range tops {
		if err := copyTree([][]byte{name}); err != nil {
			return err
		}
	}
	return nil
}

// readChat reads a chat's messages newest first and keeps the newest ones up
// to the first that cannot be read or decoded, so that the copy's keys stay
// contiguous (pruning relies on it) and its context is the latest one.
func readChat(src *bbolt.DB, path string, names [][]byte, rep *RepairReport) (recs []record, nested [][]byte, seq uint64) {
	stopped := false
	nested, seq, err := walk(src, path, names, true, func(k, v []byte) {
		if stopped {
			return
		}
		var m conversation.Message
		if len(k) != 8 || json.Unmarshal(v, &m) != nil ||
			(len(recs) > 0 && binary.BigEndian.Uint64(k)+1 != binary.BigEndian.Uint64(recs[len(recs)-1].k)) {
			stopped = true
			return
		}
		recs = append(recs, record{bytes.Clone(k), bytes.Clone(v)})
	})
	slices.Reverse(recs)
	if n := len(recs); n > 0 {
		seq = max(seq, binary.BigEndian.Uint64(recs[n-1].k))
	}
	chat := conversation.ChatID(names[1])
	switch {
	case err == nil && !stopped:
		rep.Chats++
		rep.Messages += len(recs)
	case len(recs) == 0:
		rep.Lost = append(rep.Lost, chat)
	default:
		rep.Partial = append(rep.Partial, PartialChat{Chat: chat, Kept: len(recs)})
		rep.Messages += len(recs)
	}
	return recs, nested, seq
}

// readBucket reads a bucket oldest key first and, if a damaged page stops
// that, newest first too, keeping every record it could read.
func readBucket(src *bbolt.DB, path string, names [][]byte, rep *RepairReport) (recs []record, nested [][]byte, seq uint64) {
	keep := func(k, v []byte) { recs = append(recs, record{bytes.Clone(k), bytes.Clone(v)}) }
	nested, seq, err := walk(src, path, names, false, keep)
	if err == nil {
		return recs, nested, seq
	}
	more, _, _ := walk(src, path, names, true, keep)
	nested = append(nested, more...)
	slices.SortFunc(recs, func(a, b record) int { return bytes.Compare(a.k, b.k) })
	recs = slices.CompactFunc(recs, func(a, b record) bool { return bytes.Equal(a.k, b.k) })
	slices.SortFunc(nested, bytes.Compare)
	nested = slices.CompactFunc(nested, bytes.Equal)
	rep.DamagedBuckets = append(rep.DamagedBuckets, bucketPath(names))
	return recs, nested, seq
}
