package telegram

import (
	"sync"

	"github.com/chatbot-dev/chatbot/conversation"
)

// chatOrder hands the messages of a chat to the engine in the order they came.
// Each is answered in a goroutine of its own, and two goroutines started one after
// the other may reach the engine in either order. So a message waits until the
// previous one of its chat has started (the engine wrote to its reply) when that one
// may still be the first in the engine; behind a message that waits its turn in the
// engine, it waits only until that one has been handed over, and the engine's rule
// for a busy chat (one message waits, a further one is told to wait) applies.
type chatOrder struct {
	mu    sync.Mutex
	chats map[conversation.ChatID]*chatQueue
}

// chatQueue is a chat's messages between dispatch and the end of Handle.
type chatQueue struct {
	last        *turn
	outstanding int
}

func newChatOrder() *chatOrder {
	return &chatOrder{chats: make(map[conversation.ChatID]*chatQueue)}
}

// turn is a message's place in its chat's order: wait before handing it over,
// call entering just before Handle, started at the first write to its reply,
// done after Handle. Each may be called more than once. A nil turn keeps no
// place (commands); started may be called on it.
type turn struct {
	wait <-chan struct{} // nil: nothing to wait for

	o    *chatOrder
	q    *chatQueue
	chat conversation.ChatID
	// Under o.mu. The channels are made for the chat's next message, if it
	// must wait for them.
	entered                    chan struct{} // closed just before the message is handed to the engine
	begun                      chan struct{} // closed when the engine first writes to its reply
	isEntered, isBegun, isDone bool
}

// join queues a message of chat.
func (o *chatOrder) join(chat conversation.ChatID) *turn {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.chats[chat]
	if q == nil {
		q = &chatQueue{}
		o.chats[chat] = q
	}
	t := &turn{o: o, q: q, chat: chat}
	switch prev := q.last; {
	case prev == nil:
	case q.outstanding < 2: // the previous one may be the chat's first in the engine
		t.wait = signal(&prev.begun, prev.isBegun)
	default: // the previous one waits behind another: the engine decides
		t.wait = signal(&prev.entered, prev.isEntered)
	}
	q.last = t
	q.outstanding++
	return t
}

// signal returns the channel *ch that closes on an event, made now; nil when
// the event has come already.
func signal(ch *chan struct{}, came bool) <-chan struct{} {
	if came {
		return nil
	}
	if *ch == nil {
		*ch = make(chan struct{})
	}
	return *ch
}

// fire records an event: its channel, if any, closes.
func fire(ch chan struct{}, came *bool) {
	if *came {
		return
	}
	*came = true
	if ch != nil {
		close(ch)
	}
}

func (t *turn) entering() {
	t.o.mu.Lock()
	defer t.o.mu.Unlock()
	fire(t.entered, &t.isEntered)
}

func (t *turn) started() {
	if t == nil {
		return
	}
	t.o.mu.Lock()
	defer t.o.mu.Unlock()
	fire(t.begun, &t.isBegun)
}

func (t *turn) done() {
	o := t.o
	o.mu.Lock()
	defer o.mu.Unlock()
	fire(t.entered, &t.isEntered)
	fire(t.begun, &t.isBegun)
	if t.isDone {
		return
	}
	t.isDone = true
	if t.q.outstanding--; t.q.outstanding == 0 && o.chats[t.chat] == t.q {
		delete(o.chats, t.chat)
	}
}
