package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// The notifications on a schema's channel (payloads):
//
//	u:CHAT  chat's lock was released
//	l:NAME  leadership NAME is free
//	r       a lease ended (expired, or its replica closed): whatever it held is free
//
// They only wake waiters early: a waiter also looks again every PollEvery, so
// a lost notification (the listener reconnecting) costs time, never safety.

// broker hands notifications to the goroutines waiting for them.
type broker struct {
	mu   sync.Mutex
	subs map[string]map[*subscription]struct{}
}

// subscription wakes its goroutine (c receives) when its key is notified.
type subscription struct {
	key string
	c   chan struct{}
	b   *broker
}

func newBroker() *broker { return &broker{subs: make(map[string]map[*subscription]struct{})} }

// subscribe starts waking the caller for key; call cancel when done.
func (b *broker) subscribe(key string) *subscription {
	sub := &subscription{key: key, c: make(chan struct{}, 1), b: b}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs[key] == nil {
		b.subs[key] = make(map[*subscription]struct{})
	}
	b.subs[key][sub] = struct{}{}
	return sub
}

func (sub *subscription) cancel() {
	b := sub.b
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs[sub.key], sub)
	if len(b.subs[sub.key]) == 0 {
		delete(b.subs, sub.key)
	}
}

// publish wakes the subscribers of key; "r" wakes everyone.
func (b *broker) publish(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if key == "r" {
		for _, subs := range b.subs {
			wake(subs)
		}
		return
	}
	wake(b.subs[key])
}

// publishAll wakes everyone (notifications may have been missed).
func (b *broker) publishAll() { b.publish("r") }

func wake(subs map[*subscription]struct{}) {
	for sub := range subs {
		select {
		case sub.c <- struct{}{}:
		default:
		}
	}
}

// listen receives the schema's notifications on a connection of its own until
// the store closes, reconnecting after a failure.
func (s *Store) listen() {
	for {
		err := s.listenOnce()
		if s.ctx.Err() != nil {
			return
		}
		s.log.Warn("listen for other replicas' notifications (they still poll)", "err", err)
		s.events.publishAll()
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(min(max(s.opt.PollEvery, time.Second), 5*time.Second)):
		}
	}
}

func (s *Store) listenOnce() error {
	conn, err := pgx.ConnectConfig(s.ctx, s.connCfg.Copy())
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(ctx)
	}()
	if _, err := conn.Exec(s.ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	s.events.publishAll() // what was notified before LISTEN is missed: look again
	for {
		n, err := conn.WaitForNotification(s.ctx)
		if err != nil {
			return err
		}
		s.events.publish(n.Payload)
	}
}
