package conversation_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/conversation/conversationtest"
)

const wait = 10 * time.Second // real-time bound for a goroutine to reach a point

// waitCalls waits until r has n calls.
func waitCalls(t *testing.T, r *conversationtest.Reply, n int) []conversationtest.Call {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if c := r.Calls(); len(c) >= n {
			return c
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("got calls %+v, want %d", r.Calls(), n)
	return nil
}

func texts(calls []conversationtest.Call) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.Text)
	}
	return out
}

func TestPacerFirstTextAtOnceThenLatestPerInterval(t *testing.T) {
	clock := conversationtest.NewClock()
	r := conversationtest.NewReply()
	p := conversation.NewPacerForTest(context.Background(), r, time.Second, clock)

	p.Set("Hel")
	waitCalls(t, r, 1) // no time has passed: the first text goes out at once
	p.Set("Hello")
	p.Set("Hello wor")
	p.Set("Hello world")
	if !clock.WaitForWaiters(1, wait) {
		t.Fatal("pacer is not waiting for the interval")
	}
	if n := len(r.Calls()); n != 1 {
		t.Fatalf("%d calls before the interval passed, want 1", n)
	}
	clock.Advance(time.Second)
	calls := waitCalls(t, r, 2)
	if want := []string{"Hel", "Hello world"}; !slices.Equal(texts(calls), want) {
		t.Errorf("updates = %q, want %q (latest text wins)", texts(calls), want)
	}
	done := make(chan error)
	go func() { done <- p.Finish("Hello world!") }()
	clock.WaitForWaiters(1, wait)
	clock.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := r.Final(); got != "Hello world!" {
		t.Errorf("final = %q", got)
	}
}

func TestPacerRetryAfterDelaysNextUpdate(t *testing.T) {
	clock := conversationtest.NewClock()
	flood := &conversation.RetryAfterError{After: 30 * time.Second, Err: errors.New("429")}
	r := conversationtest.NewReply(nil, flood)
	p := conversation.NewPacerForTest(context.Background(), r, time.Second, clock)

	p.Set("a")
	waitCalls(t, r, 1)
	p.Set("ab")
	clock.WaitForWaiters(1, wait)
	clock.Advance(time.Second)
	waitCalls(t, r, 2) // answered 429 retry after 30 s
	p.Set("abc")
	clock.WaitForWaiters(1, wait)
	clock.Advance(29 * time.Second)
	time.Sleep(20 * time.Millisecond)
	if n := len(r.Calls()); n != 2 {
		t.Fatalf("%d calls before retry_after passed, want 2", n)
	}
	clock.Advance(time.Second)
	calls := waitCalls(t, r, 3)
	if calls[2].Text != "abc" {
		t.Errorf("after the wait got %q, want the latest text", calls[2].Text)
	}
}

func TestPacerFinalTextAlwaysDelivered(t *testing.T) {
	clock := conversationtest.NewClock()
	flood := &conversation.RetryAfterError{After: 5 * time.Second}
	// The first Finish is flood-controlled twice.
	r := conversationtest.NewReply(nil, flood, flood)
	p := conversation.NewPacerForTest(context.Background(), r, time.Second, clock)
	p.Set("partial")
	waitCalls(t, r, 1)
	done := make(chan error)
	go func() { done <- p.Finish("the whole reply") }()
	for range 3 {
		clock.WaitForWaiters(1, wait)
		clock.Advance(5 * time.Second)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	calls := r.Calls()
	if last := calls[len(calls)-1]; !last.Final || last.Text != "the whole reply" {
		t.Errorf("last call = %+v, want the final text", last)
	}
}

func TestPacerSkipsUnchangedText(t *testing.T) {
	clock := conversationtest.NewClock()
	r := conversationtest.NewReply()
	p := conversation.NewPacerForTest(context.Background(), r, time.Second, clock)
	p.Set("same")
	waitCalls(t, r, 1)
	p.Set("same")
	clock.WaitForWaiters(1, wait)
	clock.Advance(time.Second)
	time.Sleep(20 * time.Millisecond)
	if n := len(r.Updates()); n != 1 {
		t.Errorf("%d updates for one text, want 1", n)
	}
}

func TestPacerFinalEqualToShownGoesAtOnce(t *testing.T) {
	clock := conversationtest.NewClock()
	r := conversationtest.NewReply()
	p := conversation.NewPacerForTest(context.Background(), r, time.Hour, clock)
	p.Set("all of it")
	waitCalls(t, r, 1)
	if err := p.Finish("all of it"); err != nil { // no clock advance needed
		t.Fatal(err)
	}
	if r.Final() != "all of it" {
		t.Errorf("final = %q", r.Final())
	}
}

func TestPacerWaitsOutAnyNumberOfRetryAfters(t *testing.T) {
	clock := conversationtest.NewClock()
	flood := &conversation.RetryAfterError{After: 20 * time.Second}
	errs := make([]error, 15) // a busy platform: fifteen 429s in a row
	for i := range errs {
		errs[i] = flood
	}
	r := conversationtest.NewReply(errs...)
	p := conversation.NewPacerForTest(context.Background(), r, time.Second, clock)
	done := make(chan error)
	go func() { done <- p.Finish("never lost") }()
	for range len(errs) {
		clock.WaitForWaiters(1, wait)
		clock.Advance(20 * time.Second)
	}
	if err := <-done; err != nil || r.Final() != "never lost" {
		t.Fatalf("err %v, final %q", err, r.Final())
	}
}

func TestPacerRetriesADeferredTextWithoutNewTokens(t *testing.T) {
	clock := conversationtest.NewClock()
	flood := &conversation.RetryAfterError{After: 5 * time.Second}
	r := conversationtest.NewReply(flood) // the first update is deferred
	p := conversation.NewPacerForTest(context.Background(), r, time.Second, clock)
	p.Set("the first words") // and then the model pauses: no more Set calls
	waitCalls(t, r, 1)
	clock.WaitForWaiters(1, wait)
	clock.Advance(5 * time.Second)
	calls := waitCalls(t, r, 2)
	if calls[1].Final || calls[1].Text != "the first words" {
		t.Errorf("second call %+v, want the deferred text shown without waiting for more", calls[1])
	}
}

// pacerGoroutines counts the goroutines running the pacer's code.
func pacerGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "conversation.(*pacer)")
}

func TestPacerHasNoGoroutineWhileItWaits(t *testing.T) {
	clock := conversationtest.NewClock()
	r := conversationtest.NewReply()
	p := conversation.NewPacerForTest(context.Background(), r, time.Second, clock)
	p.Set("first")
	waitCalls(t, r, 1)
	p.Set("first words")
	if !clock.WaitForWaiters(1, wait) {
		t.Fatal("no send armed for the next slot")
	}
	if n := pacerGoroutines(); n != 0 {
		t.Errorf("%d goroutines in the pacer while it waits for its next slot, want 0", n)
	}
	clock.Advance(time.Second)
	waitCalls(t, r, 2)
	if err := p.Finish("first words"); err != nil { // shown already: goes at once
		t.Fatal(err)
	}
	if got := texts(r.Calls()); !slices.Equal(got, []string{"first", "first words", "first words"}) {
		t.Errorf("calls %q", got)
	}
	if n := pacerGoroutines(); n != 0 {
		t.Errorf("%d goroutines in the pacer after Finish, want 0", n)
	}
}

// countingClock counts the timers made on it.
type countingClock struct {
	*conversationtest.Clock
	timers atomic.Int32
}

func (c *countingClock) AfterFunc(d time.Duration, f func()) conversation.Timer {
	c.timers.Add(1)
	return c.Clock.AfterFunc(d, f)
}

// A pacer reuses one timer for all its sends and retries: a reply that waits
// for the platform's budget retries many times.
func TestPacerKeepsOneTimer(t *testing.T) {
	clock := &countingClock{Clock: conversationtest.NewClock()}
	flood := &conversation.RetryAfterError{After: time.Second}
	r := conversationtest.NewReply(flood, flood, flood)
	p := conversation.NewPacerForTest(context.Background(), r, time.Second, clock)
	p.Set("one")
	for n := 1; n <= 4; n++ { // three refusals, then the text goes out
		waitCalls(t, r, n)
		if n < 4 {
			clock.WaitForWaiters(1, wait)
			clock.Advance(time.Second)
		}
	}
	if n := clock.timers.Load(); n != 1 {
		t.Errorf("%d timers for four tries, want 1", n)
	}
	if err := p.Finish("one"); err != nil {
		t.Fatal(err)
	}
}
