package conversation_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/conversation/conversationtest"
	"github.com/chatbot-dev/chatbot/openai"
)

var errDiskFull = errors.New("write chatbot.db: no space left on device")

// failingHistory is a History whose AppendTurn fails while failing is set, as
// a store on a full disk does.
type failingHistory struct {
	*memHistory
	failing atomic.Bool
}

func (h *failingHistory) AppendTurn(ctx context.Context, chat conversation.ChatID, msgs ...conversation.Message) error {
	if h.failing.Load() {
		return errDiskFull
	}
	return h.memHistory.AppendTurn(ctx, chat, msgs...)
}

// TestTurnNotSavedIsToldToTheUser: when the store cannot save a turn, the reply
// still arrives whole and says the exchange will not be remembered, and Handle
// returns the store's error (for the logs); once the store works again, the
// note goes.
func TestTurnNotSavedIsToldToTheUser(t *testing.T) {
	hist := &failingHistory{memHistory: &memHistory{chats: map[conversation.ChatID][]conversation.Message{}}}
	hist.failing.Store(true)
	tokens, err := openai.NewTokenCounter("gpt-4o-mini")
	if err != nil {
		t.Fatal(err)
	}
	e := conversation.New(conversation.Config{Logger: slog.New(slog.DiscardHandler)}, hist, instantModel{}, tokens)
	say := func() (string, error) {
		r := conversationtest.NewReply()
		err := e.Handle(context.Background(), conversation.Request{Chat: "c1", UserID: "u1", Text: "hi", Reply: r, UpdateEvery: time.Millisecond})
		final, ok := r.WaitFinal(wait)
		if !ok {
			t.Fatalf("no final reply; calls %+v", r.Calls())
		}
		return final, err
	}

	final, err := say()
	if !errors.Is(err, errDiskFull) {
		t.Errorf("Handle = %v, want the store's error", err)
	}
	const reply = "Hello, this is an instant reply."
	if want := reply + "\n\n⚠️ I could not save this exchange, so I will not remember it."; final != want {
		t.Errorf("final = %q, want %q", final, want)
	}
	if got, _ := hist.Recent(context.Background(), "c1", 10); len(got) != 0 {
		t.Errorf("stored %d messages", len(got))
	}

	hist.failing.Store(false)
	final, err = say()
	if err != nil || final != reply {
		t.Errorf("with the store working again: %q, %v; want %q", final, err, reply)
	}
	if strings.Contains(final, "could not save") {
		t.Error("the note stayed after the store recovered")
	}
}
