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
	chats   KeyedMutex[conversation.ChatID]
	leaders KeyedMutex[string]

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
	return db.local.chats.Lock(ctx, chat)
}

// Lead runs fn while this process leads name. One process uses a bbolt file,
// so it leads at once, unless another Lead of this DB runs for name: then it
// waits for that one to return. It returns fn's error, or nil when ctx ends
// while it waits.
func (db *DB) Lead(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	unlock, err := db.local.leaders.Lock(ctx, name)
	if err != nil {
		return nil
	}
	defer unlock()
	return fn(ctx)
}
