package store

import (
	"context"
	"crypto/rand"
	"sync"

	"github.com/chatbot-dev/chatbot/conversation"
)

// The bbolt store serves one process (the file is locked), so what replicas
// on PostgreSQL (package store/postgres) share over the database is in-process
// here, behind the same methods: LockChat, Lead, and pending marks that tell a
// previous process's cut replies from this one's running ones.

// inProcess is the state behind LockChat, Lead and the pending marks' owner.
// The zero value is ready.
type inProcess struct {
	chats   keyedMutex[conversation.ChatID]
	leaders keyedMutex[string]

	ownerOnce sync.Once
	owner     []byte // marks this DB's pending marks; random per Open
}

// markOwner is the value this DB writes in its pending marks.
func (p *inProcess) markOwner() []byte {
	p.ownerOnce.Do(func() {
		p.owner = make([]byte, 8)
		rand.Read(p.owner)
	})
	return p.owner
}

// LockChat waits until no turn runs in chat in this process, then takes the
// chat's lock and returns the function that gives it back (calling it again
// does nothing). It returns ctx's error if ctx ends first.
func (db *DB) LockChat(ctx context.Context, chat conversation.ChatID) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return db.local.chats.lock(ctx, chat)
}

// Lead runs fn while this process leads name. One process uses a bbolt file,
// so it leads at once, unless another Lead of this DB runs for name: then it
// waits for that one to return. It returns fn's error, or nil when ctx ends
// while it waits.
func (db *DB) Lead(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	unlock, err := db.local.leaders.lock(ctx, name)
	if err != nil {
		return nil
	}
	defer unlock()
	return fn(ctx)
}

// keyedMutex is a set of mutexes by key, made on demand and forgotten when
// free, whose Lock gives up when its context ends. The zero value is ready.
type keyedMutex[K comparable] struct {
	mu    sync.Mutex
	locks map[K]*keyedLock
}

type keyedLock struct {
	held  chan struct{} // holds a value while locked
	users int           // holders and waiters
}

// lock waits until key is free or ctx ends, and returns the function that
// frees it (once; later calls do nothing).
func (m *keyedMutex[K]) lock(ctx context.Context, key K) (unlock func(), err error) {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = make(map[K]*keyedLock)
	}
	l := m.locks[key]
	if l == nil {
		l = &keyedLock{held: make(chan struct{}, 1)}
		m.locks[key] = l
	}
	l.users++
	m.mu.Unlock()
	select {
	case l.held <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-l.held; m.leave(key, l) }) }, nil
	case <-ctx.Done():
		m.leave(key, l)
		return nil, ctx.Err()
	}
}

func (m *keyedMutex[K]) leave(key K, l *keyedLock) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l.users--; l.users == 0 {
		delete(m.locks, key)
	}
}
