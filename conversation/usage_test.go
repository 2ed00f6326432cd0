package conversation_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

type recordingObserver struct {
	mu    sync.Mutex
	turns []conversation.TurnStats
}

func (o *recordingObserver) TurnDone(s conversation.TurnStats) {
	o.mu.Lock()
	o.turns = append(o.turns, s)
	o.mu.Unlock()
}

func TestDailyLimitAndUsageCommand(t *testing.T) {
	obs := &recordingObserver{}
	h := newHarness(t, conversation.Config{DailyTokensPerUser: 30, Observer: obs})
	h.cfg.Usage = h.db
	h.db.Close()
	h.open(t) // again, now with usage accounting on the same store
	if got := h.say(t, "c1", "/usage"); !strings.Contains(got, "used 0 tokens") || !strings.Contains(got, "daily 30") {
		t.Errorf("/usage before = %q", got)
	}
	h.fake.Enqueue(openaitest.Text(strings.Repeat("word ", 40)))
	h.say(t, "c1", "talk a lot")
	got := h.say(t, "c1", "more please")
	if !strings.Contains(got, "used your 30 tokens") {
		t.Errorf("over the limit got %q", got)
	}
	if n := len(h.fake.Requests()); n != 1 {
		t.Errorf("model called %d times, want 1 (the second turn is refused)", n)
	}
	if got := h.say(t, "c1", "/usage"); !strings.Contains(got, "daily 30") || strings.Contains(got, "used 0") {
		t.Errorf("/usage after = %q", got)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.turns) != 2 || obs.turns[0].Outcome != conversation.OutcomeOK || obs.turns[1].Outcome != conversation.OutcomeRefused {
		t.Errorf("observed %+v", obs.turns)
	}
	if u := obs.turns[0].Usage; u.PromptTokens == 0 || u.CompletionTokens < 40 || obs.turns[0].FirstToken == 0 {
		t.Errorf("first turn stats %+v", obs.turns[0])
	}
}
