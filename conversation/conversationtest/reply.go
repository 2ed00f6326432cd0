package conversationtest

import (
	"context"
	"sync"
	"time"
)

// Call is one Reply call.
type Call struct {
	Final bool // Finish rather than Update
	Text  string
}

// Reply records Update and Finish calls. Errs, if set, gives the error each call
// returns (by call index); calls past its end succeed.
type Reply struct {
	mu       sync.Mutex
	calls    []Call
	errs     []error
	finished chan struct{}
}

// NewReply returns a Reply whose calls return errs in turn.
func NewReply(errs ...error) *Reply {
	return &Reply{errs: errs, finished: make(chan struct{})}
}

// Update records an update.
func (r *Reply) Update(ctx context.Context, text string) error { return r.record(Call{Text: text}) }

// Finish records the final text.
func (r *Reply) Finish(ctx context.Context, text string) error {
	return r.record(Call{Final: true, Text: text})
}

func (r *Reply) record(c Call) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.calls)
	r.calls = append(r.calls, c)
	var err error
	if n < len(r.errs) {
		err = r.errs[n]
	}
	if c.Final && err == nil {
		close(r.finished)
	}
	return err
}

// Calls returns the calls so far.
func (r *Reply) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

// Updates returns the texts of the Update calls.
func (r *Reply) Updates() []string {
	var out []string
	for _, c := range r.Calls() {
		if !c.Final {
			out = append(out, c.Text)
		}
	}
	return out
}

// Final returns the text delivered by a successful Finish ("" before that).
func (r *Reply) Final() string {
	select {
	case <-r.finished:
	default:
		return ""
	}
	calls := r.Calls()
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i].Final {
			return calls[i].Text
		}
	}
	return ""
}

// WaitFinal waits (real time) for a successful Finish and returns its text.
func (r *Reply) WaitFinal(timeout time.Duration) (string, bool) {
	select {
	case <-r.finished:
		return r.Final(), true
	case <-time.After(timeout):
		return "", false
	}
}
