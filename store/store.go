// Package store keeps the bot's state in one bbolt file: each chat's messages,
// platform cursors (such as Telegram's update offset) and recently seen event ids.
// It implements conversation.History.
package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

var _ conversation.History = (*DB)(nil)

// SchemaVersion is the layout this code reads and writes.
const SchemaVersion = 1

// DefaultMaxMessagesPerChat is the per-chat cap when Options leaves it at zero.
const DefaultMaxMessagesPerChat = 500

// Errors returned by Open.
var (
	ErrLocked       = errors.New("database is locked by another process")
	ErrNewerVersion = errors.New("database was written by a newer version of chatbot")
)

// Bucket names. Chats holds one nested bucket per chat, whose keys are big-endian
// sequence numbers and whose values are JSON messages.
var (
	bucketMeta     = []byte("meta")
	bucketChats    = []byte("chats")
	bucketCursors  = []byte("cursors")
	bucketSeen     = []byte("seen")        // key → expiry time
	bucketSeenAge  = []byte("seen_by_age") // expiry time ‖ key → nil, soonest first
	bucketUsage    = []byte("usage")       // user ‖ 0 ‖ YYYY-MM-DD → tokens
	bucketPending  = []byte("pending")     // chat → owner, while a reply is being written (pending.go)
	bucketSettings = []byte("settings")    // chat → JSON conversation.ChatSettings
	bucketBlobs    = []byte("blobs")       // chat → kept attachments (blobs.go)
	keyVersion     = []byte("schema_version")
)

// Options tune Open.
type Options struct {
	// MaxMessagesPerChat caps each chat's history; older messages are pruned on
	// write. Zero means DefaultMaxMessagesPerChat; negative means no cap.
	MaxMessagesPerChat int
	// LockTimeout is how long Open waits for another process's lock. Default 2 s.
	LockTimeout time.Duration
	// MaxFileBytesPerChat caps the attachments kept for each chat; the oldest go
	// first. Zero means DefaultMaxFileBytesPerChat.
	MaxFileBytesPerChat int
}

func (o Options) lockTimeout() time.Duration {
	if o.LockTimeout <= 0 {
		return 2 * time.Second
	}
	return o.LockTimeout
}

// DB is the bot's store. It is safe for concurrent use.
type DB struct {
	bolt         *bbolt.DB
	path         string // bbolt forgets it on Close, racing with a late caller
	maxPerCh     int
	maxBlobBytes int
	guard        guard
	local        inProcess // replica.go
}

// Open opens (or creates) the store at path, creating parent folders. It first
// reads the whole file once (see Check) and returns a *DamagedError, which
// matches ErrDamaged, when the file is damaged.
func Open(path string, opt Options) (*DB, error) {
	opt.LockTimeout = opt.lockTimeout()
	switch {
	case opt.MaxMessagesPerChat == 0:
		opt.MaxMessagesPerChat = DefaultMaxMessagesPerChat
	case opt.MaxMessagesPerChat < 0:
		opt.MaxMessagesPerChat = 0
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := verify(path, opt.LockTimeout); err != nil {
		if errors.Is(err, ErrDamaged) {
			return nil, err
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	var b *bbolt.DB
	err := protect(path, func() (err error) {
		b, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opt.LockTimeout})
		return err
	})
	if errors.Is(err, ErrDamaged) {
		return nil, err
	}
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if opt.MaxFileBytesPerChat <= 0 {
		opt.MaxFileBytesPerChat = DefaultMaxFileBytesPerChat
	}
	db := &DB{bolt: b, path: path, maxPerCh: opt.MaxMessagesPerChat, maxBlobBytes: opt.MaxFileBytesPerChat}
	if err := db.init(); err != nil {
		b.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return db, nil
}

// init creates the buckets and checks the schema version.
func (db *DB) init() error {
	return db.bolt.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketChats, bucketCursors, bucketSeen, bucketSeenAge, bucketUsage, bucketPending, bucketSettings, bucketBlobs} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		v := meta.Get(keyVersion)
		if v == nil {
			return meta.Put(keyVersion, []byte(strconv.Itoa(SchemaVersion)))
		}
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("bad schema version %q", v)
		}
		if n > SchemaVersion {
			return fmt.Errorf("%w (schema %d, this build reads %d): upgrade chatbot", ErrNewerVersion, n, SchemaVersion)
		}
		return nil
	})
}

// Close closes the file.
func (db *DB) Close() error { return db.bolt.Close() }

// Path is the file's path.
func (db *DB) Path() string { return db.path }

// Cursor returns the named platform cursor (0 when unset).
func (db *DB) Cursor(ctx context.Context, name string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var v int64
	err := db.view(OpReadCursor, func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bucketCursors).Get([]byte(name)); len(b) == 8 {
			v = int64(binary.BigEndian.Uint64(b))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read cursor %s: %w", name, err)
	}
	return v, nil
}

// SetCursor stores the named platform cursor.
func (db *DB) SetCursor(ctx context.Context, name string, v int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := db.update(OpWriteCursor, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketCursors).Put([]byte(name), binary.BigEndian.AppendUint64(nil, uint64(v)))
	})
	if err != nil {
		return fmt.Errorf("write cursor %s: %w", name, err)
	}
	return nil
}

// FirstSeen records key (an event id, a channel+ts) and reports whether it was new.
// The key is remembered for ttl; expired keys (whatever ttl they were given) are
// forgotten on the way.
func (db *DB) FirstSeen(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := time.Now()
	first := false
	err := db.update(OpSeen, func(tx *bbolt.Tx) error {
		seen, byAge := tx.Bucket(bucketSeen), tx.Bucket(bucketSeenAge)
		if err := forgetSeen(seen, byAge.Cursor(), now); err != nil {
			return err
		}
		if seen.Get([]byte(key)) != nil {
			return nil
		}
		first = true
		stamp := binary.BigEndian.AppendUint64(nil, uint64(now.Add(ttl).UnixNano()))
		if err := seen.Put([]byte(key), stamp); err != nil {
			return err
		}
		return byAge.Put(append(stamp, key...), nil)
	})
	if err != nil {
		return false, fmt.Errorf("record seen %q: %w", key, err)
	}
	return first, nil
}

// forgetSeen deletes the keys that expired before cutoff, oldest first, from seen and
// from the seen_by_age bucket under c. After each delete it seeks past the
// deleted key instead of calling First again, which would walk the leaves
// emptied so far and make forgetting many keys at once quadratic.
func forgetSeen(seen *bbolt.Bucket, c cursor, cutoff time.Time) error {
	for k, _ := c.First(); len(k) >= 8 && unixNano(k[:8]).Before(cutoff); {
		k = bytes.Clone(k)
		if err := seen.Delete(k[8:]); err != nil {
			return err
		}
		if err := c.Delete(); err != nil {
			return err
		}
		k, _ = c.Seek(k)
	}
	return nil
}

func unixNano(v []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(v)))
}
