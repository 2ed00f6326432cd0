package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store"
)

// TestLoadModelConcurrency measures what the limit on concurrent model calls
// does to 50 chats writing at once, against a model that answers every request
// at once (300 tokens, 15–20 ms apart: about 5 s a reply): the message → first
// token spread with the old fixed limit of 16 (openai.max_concurrent_requests'
// old default) and with the adaptive limit at its defaults. CHATBOT_LOAD_CHATS
// and CHATBOT_LOAD_TOKENS change the numbers.
func TestLoadModelConcurrency(t *testing.T) {
	needLoad(t)
	chats, tokens := envInt(t, "CHATBOT_LOAD_CHATS", 50), envInt(t, "CHATBOT_LOAD_TOKENS", 300)
	for _, c := range []struct {
		name string
		cfg  conversation.Config
	}{
		{"fixed limit of 16 (before)", conversation.Config{MaxConcurrent: 16, InitialConcurrent: 16}},
		{"adaptive limit, defaults (after)", conversation.Config{}},
	} {
		res := loadModel(t, c.cfg, chats, tokens)
		t.Logf("| %s | %s | %v | %d | %d |", c.name, spread(res.firstToken), res.wall.Round(10*time.Millisecond),
			res.limit, res.ok)
	}
	t.Logf("columns: | limit | message → first token (median / p90 / max) | all %d replies done | limit at the end | replies ok |", chats)
}

// modelResult is what one run of loadModel saw.
type modelResult struct {
	firstToken []time.Duration // message → first token, per chat
	wall       time.Duration   // the first message → the last reply done
	limit      int             // the engine's limit at the end
	ok         int             // turns that ended well
}

// firstTokens records each turn's time to first token.
type firstTokens struct {
	mu  sync.Mutex
	got []time.Duration
	ok  int
	err error // the first turn's error, if any
}

func (f *firstTokens) TurnDone(st conversation.TurnStats) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, st.FirstToken)
	if st.Outcome == conversation.OutcomeOK {
		f.ok++
	} else if f.err == nil {
		f.err = fmt.Errorf("%s: %w", st.Outcome, st.Err)
	}
}

// loadModel sends one message in each of chats chats at once, straight to the
// engine (no platform: nothing but the model and the limit sets the pace).
func loadModel(t *testing.T, cfg conversation.Config, chats, tokens int) modelResult {
	t.Helper()
	ai := openaitest.NewServer()
	defer ai.Close()
	ai.SetHandler(answering(tokens))
	db, err := store.Open(filepath.Join(t.TempDir(), "chatbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tc, err := openai.NewTokenCounter("gpt-5.4-mini")
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	model := openai.New(openai.Options{BaseURL: ai.BaseURL(), APIKey: "sk-test", Model: "gpt-5.4-mini", HTTPClient: hc})
	obs := &firstTokens{}
	cfg.Observer, cfg.Logger = obs, slog.New(slog.DiscardHandler)
	engine := conversation.New(cfg, db, model, tc)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range chats {
		wg.Go(func() {
			req := conversation.Request{Chat: conversation.ChatID(fmt.Sprintf("load:%d", i)), UserID: "u",
				Text: question(i), Reply: discard{}, UpdateEvery: time.Second}
			if err := engine.Handle(context.Background(), req); err != nil {
				t.Errorf("chat %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	res := modelResult{wall: time.Since(start)}
	res.limit, _ = engine.ModelConcurrency()
	if err := engine.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
	obs.mu.Lock()
	res.firstToken, res.ok = obs.got, obs.ok
	obs.mu.Unlock()
	if res.ok != chats {
		t.Errorf("%d of %d turns ended well; the first error: %v", res.ok, chats, obs.err)
	}
	hc.CloseIdleConnections()
	return res
}

// discard is a platform that takes every text at once.
type discard struct{}

func (discard) Update(context.Context, string) error { return nil }
func (discard) Finish(context.Context, string) error { return nil }
