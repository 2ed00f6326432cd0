package conversation

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// stillClock never fires: the pacer's next send stays armed.
type stillClock struct{}

func (stillClock) Now() time.Time                        { return time.Time{} }
func (stillClock) After(time.Duration) <-chan time.Time  { return nil }
func (stillClock) AfterFunc(time.Duration, func()) Timer { return stillTimer{} }

type stillTimer struct{}

func (stillTimer) Stop() bool               { return true }
func (stillTimer) Reset(time.Duration) bool { return true }

// A delta costs no copy of the reply, even with a reasoning summary before
// it: the text is composed only when the pacer sends.
func TestDeltasDoNotComposeTheReply(t *testing.T) {
	sh := &shown{}
	sh.addSummary("Thinking about it.\nAnd more.")
	src := &countingSource{sh: sh}
	p := newPacer(context.Background(), nopReply{}, time.Second, stillClock{}, slog.New(slog.DiscardHandler), src)
	p.Changed() // arms the next send
	allocs := testing.AllocsPerRun(2000, func() {
		sh.addText("word ")
		p.Changed()
	})
	if allocs > 0.1 {
		t.Errorf("%.2f allocations per delta, want none but the answer's own growth", allocs)
	}
	if src.composed != 0 {
		t.Errorf("composed %d times before any send, want 0", src.composed)
	}
	if got := sh.compose(); !strings.HasSuffix(got, "word word ") || !strings.HasPrefix(got, "> "+ReasoningMark) {
		t.Errorf("composed %q", got[:40])
	}
}

// countingSource counts the texts composed of sh.
type countingSource struct {
	sh       *shown
	composed int
}

func (c *countingSource) compose() string {
	c.composed++
	return c.sh.compose()
}

type nopReply struct{}

func (nopReply) Update(context.Context, string) error { return nil }
func (nopReply) Finish(context.Context, string) error { return nil }
