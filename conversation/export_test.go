package conversation

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Pacer exposes the pacer to the external tests, with Set to change its text.
type Pacer struct {
	*pacer
	mu     sync.Mutex
	latest string
}

// NewPacerForTest returns a pacer for r on clock c.
func NewPacerForTest(ctx context.Context, r Reply, every time.Duration, c Clock) *Pacer {
	p := &Pacer{}
	p.pacer = newPacer(ctx, r, every, c, slog.New(slog.DiscardHandler), p)
	return p
}

// Set makes text the text to show.
func (p *Pacer) Set(text string) {
	p.mu.Lock()
	p.latest = text
	p.mu.Unlock()
	p.Changed()
}

func (p *Pacer) compose() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latest
}

// Waiting reports whether a message waits for chat's running turn.
func (e *Engine) Waiting(chat ChatID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.chats[chat]
	return st != nil && st.waiting
}
