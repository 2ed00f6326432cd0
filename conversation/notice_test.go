package conversation_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/conversation/conversationtest"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// noticeReply is a Reply with the Notice power; Notice answers err.
type noticeReply struct {
	*conversationtest.Reply
	err     error
	notices atomic.Int32
}

func (r *noticeReply) Notice(ctx context.Context, text string) error {
	r.notices.Add(1)
	return r.err
}

// hold makes the next n model calls wait until they are cancelled.
func hold(h *harness, n int) {
	for range n {
		h.fake.Enqueue(openaitest.Reply{Tokens: []string{"slow"}, FirstDelay: time.Hour})
	}
}

// busy makes chat's next message wait behind a running turn, and returns once it
// waits, with what gets the waiting message's Handle error.
func busy(t *testing.T, h *harness, chat string) chan error {
	t.Helper()
	before := len(h.fake.Requests())
	h.start(chat, "one")
	waitFor(t, func() bool { return len(h.fake.Requests()) > before })
	_, second := h.start(chat, "two")
	waitFor(t, func() bool { return h.engine.Waiting(conversation.ChatID(chat)) })
	return second
}

// sendBusy sends n messages to a busy chat and returns how many were answered
// and what.
func sendBusy(t *testing.T, h *harness, chat string, n int) (answered int, texts []string) {
	t.Helper()
	for i := range n {
		r := conversationtest.NewReply()
		err := h.engine.Handle(context.Background(), conversation.Request{Chat: conversation.ChatID(chat),
			Text: fmt.Sprintf("more %d", i), Reply: r})
		if err != nil {
			t.Fatal(err)
		}
		if calls := r.Calls(); len(calls) > 0 {
			answered++
			texts = append(texts, calls[len(calls)-1].Text)
		}
	}
	return answered, texts
}

// A user who writes 500 times while their chat is busy gets one busy notice per
// running turn, not 498.
func TestOneBusyNoticePerRunningTurn(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	hold(h, 2)
	busy(t, h, "c1")
	n, texts := sendBusy(t, h, "c1", 500)
	if n != 1 || !strings.Contains(texts[0], "Still answering") {
		t.Errorf("500 messages to a busy chat got %d answers (%.80q…), want one busy notice", n, texts)
	}
	if n := len(h.fake.Requests()); n != 1 {
		t.Errorf("%d model calls, want 1", n)
	}

	// The next turn is a new busy period: again one notice at most.
	h.say(t, "c1", "/stop") // "two" runs now, and waits for the model
	waitFor(t, func() bool { return len(h.fake.Requests()) == 2 })
	h.start("c1", "three")
	waitFor(t, func() bool { return h.engine.Waiting("c1") })
	if n, _ := sendBusy(t, h, "c1", 20); n != 1 {
		t.Errorf("20 messages during the next turn got %d answers, want one", n)
	}
	h.say(t, "c1", "/stop")
}

// A busy notice is one attempt: with the Notice power, a flood-control answer
// drops it and Finish is never called; without it, Finish is called once and
// not retried.
func TestBusyNoticeIsOneAttempt(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	hold(h, 1)
	second := busy(t, h, "c1")
	limited := &conversation.RetryAfterError{After: time.Second, Err: errors.New("429")}

	r := &noticeReply{Reply: conversationtest.NewReply(), err: limited}
	if err := h.engine.Handle(context.Background(), conversation.Request{Chat: "c1", Text: "x", Reply: r}); err != nil {
		t.Errorf("a dropped notice made Handle fail: %v", err)
	}
	if n, calls := r.notices.Load(), r.Calls(); n != 1 || len(calls) != 0 {
		t.Errorf("Notice called %d times and Update/Finish %d times, want 1 and 0", n, len(calls))
	}

	h.say(t, "c1", "/stop")
	select { // the waiting message's turn runs and ends: the chat is idle again
	case <-second:
	case <-time.After(wait):
		t.Fatal("the waiting message's turn did not end")
	}
	hold(h, 1)
	busy(t, h, "c1")
	plain := conversationtest.NewReply(limited) // the first Finish is refused
	if err := h.engine.Handle(context.Background(), conversation.Request{Chat: "c1", Text: "y", Reply: plain}); err != nil {
		t.Errorf("a dropped notice made Handle fail: %v", err)
	}
	if calls := plain.Calls(); len(calls) != 1 {
		t.Errorf("Finish called %d times (%+v), want once", len(calls), calls)
	}
	h.say(t, "c1", "/stop")
}

// stuckReply is a platform that never answers: every call waits until its
// context ends.
type stuckReply struct {
	calls, ended *atomic.Int32
}

func (r stuckReply) Update(ctx context.Context, text string) error { return r.Finish(ctx, text) }

func (r stuckReply) Finish(ctx context.Context, text string) error {
	r.calls.Add(1)
	<-ctx.Done()
	r.ended.Add(1)
	return ctx.Err()
}

// Busy notices and command answers pending when the shutdown begins end with
// it, even though their callers' contexts never end (Telegram hands the engine
// a context the shutdown does not cancel).
func TestShutdownEndsPendingNotices(t *testing.T) {
	const chats = 20
	h := newHarness(t, conversation.Config{MaxConcurrent: chats})
	hold(h, 2*chats)
	for i := range chats {
		busy(t, h, fmt.Sprintf("c%d", i))
	}
	var calls, ended atomic.Int32
	var handled sync.WaitGroup
	for i := range chats {
		for _, text := range []string{"more", "/help"} {
			handled.Go(func() {
				h.engine.Handle(context.Background(), conversation.Request{Chat: conversation.ChatID(fmt.Sprintf("c%d", i)),
					Text: text, Reply: stuckReply{&calls, &ended}})
			})
		}
	}
	waitFor(t, func() bool { return calls.Load() == 2*chats }) // all stuck in a platform call

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the grace is over at once
	if err := h.engine.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v", err)
	}
	done := make(chan struct{})
	go func() { handled.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatalf("after Shutdown returned, %d of %d sends were still going on", 2*chats-ended.Load(), 2*chats)
	}
}
