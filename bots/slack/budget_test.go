package slack

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
)

// The limiters' shapes, with periods long enough that no refill happens while
// the test runs: no assertion on how long anything took.
func TestLimiterShapes(t *testing.T) {
	ctx := context.Background()
	t.Run("window: many at once, then none until the span passes", func(t *testing.T) {
		w := newWindow(3, time.Hour)
		for i := range 3 {
			if d, _ := w.tryTake(ctx, 0); d != 0 {
				t.Fatalf("call %d: wait %v", i, d)
			}
		}
		if d, _ := w.tryTake(ctx, 0); d < 59*time.Minute {
			t.Errorf("fourth call: wait %v, want the span", d)
		}
		undo, d := newWindow(1, time.Hour).hold()
		if d != 0 || undo == nil {
			t.Fatalf("hold: %v", d)
		}
	})
	t.Run("window: a call held and given back frees its room", func(t *testing.T) {
		w := newWindow(1, time.Hour)
		undo, _ := w.hold()
		undo()
		if _, d := w.hold(); d != 0 {
			t.Errorf("the room given back is not there: wait %v", d)
		}
	})
	t.Run("paced: the whole burst at once, then one a period after the margin", func(t *testing.T) {
		p := newPaced(time.Hour, 3, time.Minute)
		for i := range 3 {
			if d, _ := p.tryTake(ctx, 0); d != 0 {
				t.Fatalf("burst call %d: wait %v", i, d)
			}
		}
		d, _ := p.tryTake(ctx, 0)
		if d < time.Hour || d > time.Hour+time.Minute+time.Second {
			t.Errorf("fourth call: wait %v, want a period and the margin", d)
		}
		undo, _ := newPaced(time.Hour, 1, 0).hold()
		if undo == nil {
			t.Fatal("hold of a full bucket failed")
		}
	})
	t.Run("paced: pause after Slack's ratelimited", func(t *testing.T) {
		p := newPaced(time.Millisecond, 10, 0)
		p.pause(time.Hour)
		if d, _ := p.tryTake(ctx, 0); d < 59*time.Minute {
			t.Errorf("wait %v during a pause", d)
		}
	})
	t.Run("spendAll: all or none", func(t *testing.T) {
		room, full := newWindow(1, time.Hour), newWindow(1, time.Hour)
		full.reserve()
		err := spendAll(ctx, false, room, full)
		if _, ok := conversation.RetryAfter(err); !ok || !errors.Is(err, errNoRoom) {
			t.Fatalf("spendAll: %v, want a RetryAfterError", err)
		}
		if d := room.reserve(); d != 0 {
			t.Errorf("the first budget kept a call that was not made: wait %v", d)
		}
	})
}

// A thread's state belongs to the thread: the first live reply shows it, the
// last one closes the session.
func TestThreadState(t *testing.T) {
	w := newWorkspaces(Config{UpdatesPerMinute: 45, UpdateBurst: 3, PostEvery: time.Second, PostBurst: 3}).of("T")
	if !w.enterThread("C", "1") || w.enterThread("C", "1") {
		t.Fatal("the first reply should show the state, the second not")
	}
	w.sessionOpened("C", "1")
	if w.leaveThread("C", "1") {
		t.Error("closed with a reply still live")
	}
	if !w.leaveThread("C", "1") {
		t.Error("the last reply did not close the session")
	}
	w.enterThread("C", "2")
	w.sessionOpened("C", "2")
	w.sessionClosed("C", "2") // a stream's stop closed it
	if w.leaveThread("C", "2") {
		t.Error("closed twice")
	}
}
