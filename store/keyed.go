package store

import (
	"context"
	"sync"
)

// KeyedMutex is a set of mutexes by key, made on demand and forgotten when
// free, whose Lock gives up when its context ends. The zero value is ready. Both
// stores queue a process's own callers of a chat or a leadership with it.
type KeyedMutex[K comparable] struct {
	mu    sync.Mutex
	locks map[K]*keyedLock
}

type keyedLock struct {
	held  chan struct{} // holds a value while locked
	users int           // holders and waiters
}

// Lock waits until key is free or ctx ends, and returns the function that
// frees it (once; later calls do nothing).
func (m *KeyedMutex[K]) Lock(ctx context.Context, key K) (unlock func(), err error) {
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

func (m *KeyedMutex[K]) leave(key K, l *keyedLock) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l.users--; l.users == 0 {
		delete(m.locks, key)
	}
}
