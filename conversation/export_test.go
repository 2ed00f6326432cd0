package conversation

import (
	"context"
	"log/slog"
	"time"
)

// Pacer exposes the pacer to the external tests.
type Pacer = pacer

// NewPacerForTest starts a pacer for r on clock c.
func NewPacerForTest(ctx context.Context, r Reply, every time.Duration, c Clock) *Pacer {
	p := newPacer(r, every, c, slog.New(slog.DiscardHandler))
	go p.run(ctx)
	return p
}

// Waiting reports whether a message waits for chat's running turn.
func (e *Engine) Waiting(chat ChatID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.chats[chat]
	return st != nil && st.waiting
}
