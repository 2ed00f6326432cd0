package conversation_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/conversation/conversationtest"
)

// runeCounter counts a token per rune, 100 runes at a time like a chunking
// counter, and records how many runes it was given to count.
type runeCounter struct {
	bounded bool          // offer CountAtMost
	block   chan struct{} // when set, CountAtMost waits for its context to end

	mu      sync.Mutex
	counted int
	stopped bool // a blocked count ended with its context
}

func (c *runeCounter) Count(text string) int {
	n, _ := c.countAtMost(context.Background(), text, -1)
	return n
}

func (c *runeCounter) countAtMost(ctx context.Context, text string, limit int) (int, error) {
	if c.block != nil {
		close(c.block)
		select {
		case <-ctx.Done():
			c.mu.Lock()
			c.stopped = true
			c.mu.Unlock()
			return 0, ctx.Err()
		case <-time.After(wait): // a counter the turn cannot stop
			return 1, nil
		}
	}
	n := 0
	for text != "" {
		chunk := text
		if r := []rune(text); len(r) > 100 {
			chunk = string(r[:100])
		}
		text = text[len(chunk):]
		k := utf8.RuneCountInString(chunk)
		c.mu.Lock()
		c.counted += k
		c.mu.Unlock()
		if n += k; limit >= 0 && n > limit {
			break
		}
	}
	return n, nil
}

func (c *runeCounter) runes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counted
}

// boundedCounter is a runeCounter that offers CountAtMost.
type boundedCounter struct{ *runeCounter }

func (c boundedCounter) CountAtMost(ctx context.Context, text string, limit int) (int, error) {
	return c.countAtMost(ctx, text, limit)
}

// newCountingEngine is an engine with an in-memory history, an instant model and
// the counter tc; the room for a message is 1000 − 100 − 3 = 897 tokens.
func newCountingEngine(tc conversation.TokenCounter) *conversation.Engine {
	return conversation.New(conversation.Config{MaxContextTokens: 1000, ReplyTokens: 100, Logger: slog.New(slog.DiscardHandler)},
		&memHistory{chats: map[conversation.ChatID][]conversation.Message{}}, instantModel{}, tc)
}

// room is what newCountingEngine leaves for a message.
const room = 1000 - 100 - 3

func ask(t *testing.T, e *conversation.Engine, text string) string {
	t.Helper()
	r := conversationtest.NewReply()
	if err := e.Handle(context.Background(), conversation.Request{Chat: "c1", Text: text, Reply: r}); err != nil {
		t.Fatal(err)
	}
	got, ok := r.WaitFinal(wait)
	if !ok {
		t.Fatalf("no final text; calls %+v", r.Calls())
	}
	return got
}

// A message whose length alone proves it cannot fit (more than MaxTokenRunes
// characters per token of room) is refused without counting a single token.
func TestTooLongByLengthIsNotCounted(t *testing.T) {
	for _, bounded := range []bool{false, true} {
		c := &runeCounter{}
		var tc conversation.TokenCounter = c
		if bounded {
			tc = boundedCounter{c}
		}
		e := newCountingEngine(tc)
		got := ask(t, e, strings.Repeat("한", room*conversation.MaxTokenRunes+1))
		if !strings.Contains(got, "too long") {
			t.Errorf("bounded %v: answer %q, want the too-long answer", bounded, got)
		}
		if n := c.runes(); n != 0 {
			t.Errorf("bounded %v: %d characters were counted, want none", bounded, n)
		}
	}
}

// A message that might fit by its length is counted only until its count passes
// the room left in the context.
func TestTooLongStopsCountingAtTheRoom(t *testing.T) {
	c := &runeCounter{}
	e := newCountingEngine(boundedCounter{c})
	text := strings.Repeat("字", 100*room) // 1 token per rune here: far too long
	got := ask(t, e, text)
	if !strings.Contains(got, "too long") || !strings.Contains(got, "more than") {
		t.Errorf("answer %q, want the too-long answer", got)
	}
	if n := c.runes(); n > room+100 {
		t.Errorf("%d of %d characters counted, want the counting to stop past %d", n, utf8.RuneCountInString(text), room)
	}
	if got := ask(t, e, "short"); got != "Hello, this is an instant reply." {
		t.Errorf("a short message got %q", got)
	}
}

// Counting ends with the turn: /stop (like the turn's deadline and the shutdown)
// cancels it, and the model is never called.
func TestStopEndsCounting(t *testing.T) {
	c := &runeCounter{block: make(chan struct{})}
	e := newCountingEngine(boundedCounter{c})
	r := conversationtest.NewReply()
	errc := make(chan error, 1)
	go func() {
		errc <- e.Handle(context.Background(), conversation.Request{Chat: "c1", Text: "count me slowly", Reply: r})
	}()
	<-c.block // counting has begun
	if got := ask(t, e, "/stop"); got != "Stopped." {
		t.Errorf("/stop answered %q", got)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got := r.Final(); got != "Stopped." {
		t.Errorf("the stopped message got %q", got)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopped {
		t.Error("the counting went on after /stop")
	}
}
