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
	last        *ticket
	outstanding int
}

// ticket is one message's place in its chat's order.
type ticket struct {
	entering chan struct{} // closed just before the message is handed to the engine
	started  chan struct{} // closed when the engine first writes to its reply
}

func newChatOrder() *chatOrder {
	return &chatOrder{chats: make(map[conversation.ChatID]*chatQueue)}
}

// turn is what join gives a message: wait before handing it over, call entering
// just before Handle, started at the first write to its reply, done after Handle.
type turn struct {
	wait     <-chan struct{} // nil: nothing to wait for
	entering func()
	started  func()
	done     func()
}

// join queues a message of chat.
func (o *chatOrder) join(chat conversation.ChatID) turn {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.chats[chat]
	if q == nil {
		q = &chatQueue{}
		o.chats[chat] = q
	}
	var t turn
	switch {
	case q.last == nil:
	case q.outstanding < 2: // the previous one may be the chat's first in the engine
		t.wait = q.last.started
	default: // the previous one waits behind another: the engine decides
		t.wait = q.last.entering
	}
	mine := &ticket{entering: make(chan struct{}), started: make(chan struct{})}
	q.last = mine
	q.outstanding++
	var entered, started, done sync.Once
	t.entering = func() { entered.Do(func() { close(mine.entering) }) }
	t.started = func() { started.Do(func() { close(mine.started) }) }
	t.done = func() {
		t.entering()
		t.started()
		done.Do(func() {
			o.mu.Lock()
			defer o.mu.Unlock()
			if q.outstanding--; q.outstanding == 0 && o.chats[chat] == q {
				delete(o.chats, chat)
			}
		})
	}
	return t
}
