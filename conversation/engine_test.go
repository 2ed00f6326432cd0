package conversation_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/conversation/conversationtest"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store"
)

// harness is an engine on a real store and the real model client, talking to the
// fake OpenAI server.
type harness struct {
	engine *conversation.Engine
	fake   *openaitest.Server
	db     *store.DB
	path   string
	cfg    conversation.Config
	// modelOpt tunes the model client (BaseURL, key and model are set by open).
	modelOpt openai.Options
}

func newHarness(t *testing.T, cfg conversation.Config) *harness {
	t.Helper()
	fake := openaitest.NewServer()
	t.Cleanup(fake.Close)
	h := &harness{fake: fake, path: filepath.Join(t.TempDir(), "chat.db"), cfg: cfg}
	h.open(t)
	return h
}

func (h *harness) open(t *testing.T) {
	t.Helper()
	db, err := store.Open(h.path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tokens, err := openai.NewTokenCounter("gpt-5.4-mini")
	if err != nil {
		t.Fatal(err)
	}
	opt := h.modelOpt
	opt.BaseURL, opt.APIKey, opt.Model, opt.BackoffBase = h.fake.BaseURL(), "k", "gpt-5.4-mini", time.Millisecond
	model := openai.New(opt)
	h.cfg.Settings = db
	h.cfg.Transcriber, h.cfg.Images = model, model
	if h.cfg.Logger == nil {
		h.cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if h.cfg.Usage != nil {
		h.cfg.Usage = db
	}
	h.db, h.engine = db, conversation.New(h.cfg, db, model, tokens)
}

// say sends text in chat and returns the final reply.
func (h *harness) say(t *testing.T, chat, text string) string {
	t.Helper()
	r := conversationtest.NewReply()
	if err := h.engine.Handle(context.Background(), conversation.Request{Chat: conversation.ChatID(chat), UserID: "u1", Text: text, Reply: r, UpdateEvery: time.Millisecond}); err != nil {
		t.Fatalf("handle %q: %v", text, err)
	}
	got, ok := r.WaitFinal(wait)
	if !ok {
		t.Fatalf("no final reply to %q; calls %+v", text, r.Calls())
	}
	return got
}

// start sends text in chat without waiting; the reply and Handle's error come later.
func (h *harness) start(chat, text string) (*conversationtest.Reply, chan error) {
	r := conversationtest.NewReply()
	errc := make(chan error, 1)
	go func() {
		errc <- h.engine.Handle(context.Background(), conversation.Request{Chat: conversation.ChatID(chat), Text: text, Reply: r, UpdateEvery: time.Millisecond})
	}()
	return r, errc
}

// contents lists a call's messages as "role:text", the Responses API's
// instructions first as the system message.
func contents(req openaitest.Request) []string {
	var out []string
	if req.Instructions != "" {
		out = append(out, "system:"+req.Instructions)
	}
	for _, m := range req.Messages {
		out = append(out, m.Role+":"+m.Content)
	}
	return out
}

func TestContextCarriedAcrossTurnsAndReset(t *testing.T) {
	h := newHarness(t, conversation.Config{SystemPrompt: "Be brief."})
	if got := h.say(t, "c1", "my name is Ana"); got != "You said: my name is Ana" {
		t.Fatalf("reply = %q", got)
	}
	h.say(t, "c1", "what is my name?")
	reqs := h.fake.Requests()
	want := []string{"system:Be brief.", "user:my name is Ana", "assistant:You said: my name is Ana", "user:what is my name?"}
	if got := contents(reqs[1]); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("second call sent %q, want %q", got, want)
	}
	if got := h.say(t, "c1", "/reset"); !strings.Contains(got, "cleared") {
		t.Errorf("/reset answered %q", got)
	}
	h.say(t, "c1", "hello again")
	reqs = h.fake.Requests()
	if got := contents(reqs[2]); len(got) != 2 {
		t.Errorf("after /reset the model got %q, want only the system prompt and the new message", got)
	}
}

func TestHistorySurvivesReopen(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	h.say(t, "c1", "remember 42")
	h.db.Close()
	h.open(t)
	h.say(t, "c1", "what number?")
	got := contents(h.fake.Requests()[1])
	if len(got) != 3 || got[0] != "user:remember 42" {
		t.Errorf("after reopening the model got %q, want the earlier turn", got)
	}
}

func TestFailedTurnStoresNothing(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	h.fake.Enqueue(openaitest.Reply{Tokens: []string{"half", " an", " answer"}, Cut: true, CutAfter: 2})
	got := h.say(t, "c1", "tell me")
	if !strings.HasPrefix(got, "half an") || !strings.Contains(got, "cut off") {
		t.Errorf("final = %q, want the partial text and a note", got)
	}
	msgs, err := h.db.Recent(context.Background(), "c1", 10)
	if err != nil || len(msgs) != 0 {
		t.Errorf("stored %v (err %v) after a failed turn, want nothing", msgs, err)
	}
}

func TestModelErrorGivesShortMessageAndNextTurnWorks(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	h.fake.Enqueue(openaitest.Error(401, "invalid_api_key", "Incorrect API key provided: k"))
	if got := h.say(t, "c1", "hi"); !strings.Contains(got, "openai.api_key") {
		t.Errorf("final = %q, want the key problem explained", got)
	}
	if got := h.say(t, "c1", "hi again"); got != "You said: hi again" {
		t.Errorf("next turn = %q", got)
	}
}

func TestMessageTooLongForContext(t *testing.T) {
	h := newHarness(t, conversation.Config{MaxContextTokens: 200, ReplyTokens: 50})
	got := h.say(t, "c1", strings.Repeat("lorem ipsum ", 200))
	if !strings.Contains(got, "too long") {
		t.Errorf("final = %q, want a clear too-long answer", got)
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Errorf("the model was called %d times", n)
	}
}

func TestHistoryTrimmedToBudget(t *testing.T) {
	h := newHarness(t, conversation.Config{MaxContextTokens: 300, ReplyTokens: 100})
	for i := range 10 {
		h.say(t, "c1", fmt.Sprintf("message number %d with some padding words to take room", i))
	}
	last := h.fake.Requests()[9]
	if n := len(last.Messages); n >= 19 || n < 3 {
		t.Errorf("the last call carried %d messages, want the newest few that fit", n)
	}
	if got := last.Messages[len(last.Messages)-1].Content; !strings.Contains(got, "number 9") {
		t.Errorf("the newest message is missing: %q", got)
	}
}

func TestTurnsInOneChatNeverInterleave(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	h.fake.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize("first answer"), TokenDelay: 50 * time.Millisecond})
	r1, e1 := h.start("c1", "one")
	waitFor(t, func() bool { return len(h.fake.Requests()) == 1 })
	r2, e2 := h.start("c1", "two")
	for _, e := range []chan error{e1, e2} {
		if err := <-e; err != nil {
			t.Fatal(err)
		}
	}
	if r1.Final() != "first answer" || r2.Final() != "You said: two" {
		t.Fatalf("finals %q, %q", r1.Final(), r2.Final())
	}
	second := contents(h.fake.Requests()[1])
	if len(second) != 3 || second[1] != "assistant:first answer" {
		t.Errorf("the second turn saw %q: it ran before the first finished", second)
	}
}

func TestBusyChatAnswersWait(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	h.fake.Enqueue(openaitest.Reply{Tokens: []string{"slow"}, FirstDelay: time.Hour})
	h.start("c1", "one")
	waitFor(t, func() bool { return len(h.fake.Requests()) == 1 })
	h.start("c1", "two") // waits its turn
	waitFor(t, func() bool { return h.engine.Waiting("c1") })
	r3, _ := h.start("c1", "three")
	got, ok := r3.WaitFinal(wait)
	if !ok || !strings.Contains(got, "Still answering") {
		t.Errorf("third message got %q, want the busy answer", got)
	}
	if n := len(h.fake.Requests()); n != 1 {
		t.Errorf("%d model calls, want 1 while busy", n)
	}
	h.say(t, "c1", "/stop")
}

func TestChatsRunInParallel(t *testing.T) {
	const chats = 100
	h := newHarness(t, conversation.Config{MaxConcurrent: chats, InitialConcurrent: chats})
	var inFlight atomic.Int32
	release := make(chan struct{})
	h.fake.SetHandler(func(r openaitest.Request) openaitest.Reply {
		if inFlight.Add(1) == chats {
			close(release)
		}
		<-release // every call waits until all 100 are in flight at once
		return openaitest.Text("ok " + r.LastUser())
	})
	var wg sync.WaitGroup
	for i := range chats {
		wg.Go(func() {
			chat := fmt.Sprintf("c%d", i)
			if got := h.say(t, chat, chat); got != "ok "+chat {
				t.Errorf("%s got %q", chat, got)
			}
		})
	}
	wg.Wait()
}

func TestConcurrentModelCallsBounded(t *testing.T) {
	h := newHarness(t, conversation.Config{MaxConcurrent: 2})
	var now, peak atomic.Int32
	h.fake.SetHandler(func(r openaitest.Request) openaitest.Reply {
		n := now.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		now.Add(-1)
		return openaitest.Text("ok")
	})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { h.say(t, fmt.Sprintf("c%d", i), "hi") })
	}
	wg.Wait()
	if p := peak.Load(); p > 2 {
		t.Errorf("peak concurrent model calls = %d, want at most 2", p)
	}
}

func TestStopAndResetCancelUpstream(t *testing.T) {
	for _, cmd := range []string{"/stop", "/reset"} {
		t.Run(cmd, func(t *testing.T) {
			h := newHarness(t, conversation.Config{})
			h.fake.Enqueue(openaitest.Reply{Tokens: []string{"partial", " never"}, TokenDelay: time.Hour})
			r, errc := h.start("c1", "go on forever")
			waitFor(t, func() bool { return len(r.Updates()) > 0 })
			h.say(t, "c1", cmd)
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { return h.fake.Canceled() == 1 })
			if !strings.HasPrefix(r.Final(), "partial") {
				t.Errorf("final = %q, want the partial text kept visible", r.Final())
			}
			msgs, _ := h.db.Recent(context.Background(), "c1", 10)
			if stored := len(msgs); (cmd == "/stop") != (stored == 2) {
				t.Errorf("%s left %d stored messages", cmd, stored)
			}
		})
	}
}

func TestShutdownFinishesRunningTurnsAndRefusesNew(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	h.fake.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize("finishing in time"), TokenDelay: 20 * time.Millisecond})
	r, errc := h.start("c1", "hi")
	waitFor(t, func() bool { return len(h.fake.Requests()) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := h.engine.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-errc
	if r.Final() != "finishing in time" {
		t.Errorf("final = %q, want the whole reply", r.Final())
	}
	late := conversationtest.NewReply()
	err := h.engine.Handle(context.Background(), conversation.Request{Chat: "c2", Text: "hi", Reply: late})
	if err == nil || !strings.Contains(late.Final(), "restarting") {
		t.Errorf("after shutdown: err %v, reply %q", err, late.Final())
	}
}

func TestShutdownGraceCancelsSlowTurns(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	h.fake.Enqueue(openaitest.Reply{Tokens: []string{"never", " ends"}, TokenDelay: time.Hour})
	r, errc := h.start("c1", "hi")
	waitFor(t, func() bool { return len(r.Updates()) > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	h.engine.Shutdown(ctx)
	<-errc
	if got := r.Final(); !strings.HasPrefix(got, "never") || !strings.Contains(got, "restarting") {
		t.Errorf("final = %q, want the partial reply delivered and marked as cut off", got)
	}
}

func TestHelpNamesModelAndReset(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	for _, cmd := range []string{"/help", "/start", "/help@my_bot"} {
		got := h.say(t, "c1", cmd)
		if !strings.Contains(got, "gpt-5.4-mini") || !strings.Contains(got, "/reset") {
			t.Errorf("%s answered %q", cmd, got)
		}
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Errorf("commands called the model %d times", n)
	}
}

func TestStreamingUpdatesGrow(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	h.fake.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize("one two three four five"), TokenDelay: 20 * time.Millisecond})
	r, errc := h.start("c1", "count")
	<-errc
	ups := r.Updates()
	if len(ups) < 2 {
		t.Fatalf("updates %q, want the reply to grow in at least two steps", ups)
	}
	for i := 1; i < len(ups); i++ {
		if !strings.HasPrefix(ups[i], ups[i-1]) {
			t.Errorf("update %q does not extend %q", ups[i], ups[i-1])
		}
	}
	if r.Final() != "one two three four five" {
		t.Errorf("final = %q", r.Final())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestWaitingMessageRefusedOnceShutdownBegins(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	h.fake.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize("first reply"), TokenDelay: 100 * time.Millisecond})
	_, e1 := h.start("c1", "one")
	waitFor(t, func() bool { return len(h.fake.Requests()) == 1 })
	r2, e2 := h.start("c1", "two")
	waitFor(t, func() bool { return h.engine.Waiting("c1") })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := h.engine.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-e1
	if err := <-e2; !errors.Is(err, conversation.ErrClosed) || !strings.Contains(r2.Final(), "restarting") {
		t.Errorf("queued message: err %v, final %q; want it refused", err, r2.Final())
	}
	if n := len(h.fake.Requests()); n != 1 {
		t.Errorf("%d model calls, want 1", n)
	}
}

// pendingLog records MarkPending and ClearPending calls.
type pendingLog struct {
	mu    sync.Mutex
	calls []string
}

func (p *pendingLog) MarkPending(_ context.Context, c conversation.ChatID) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "mark "+string(c))
	return nil
}

func (p *pendingLog) ClearPending(_ context.Context, c conversation.ChatID) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "clear "+string(c))
	return nil
}

func (p *pendingLog) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

func TestChatMarkedPendingOnlyWhileReplying(t *testing.T) {
	log := &pendingLog{}
	h := newHarness(t, conversation.Config{Pending: log})
	h.fake.Enqueue(openaitest.Reply{Tokens: []string{"slow", " reply"}, TokenDelay: 100 * time.Millisecond})
	r, errc := h.start("c1", "hi")
	waitFor(t, func() bool { return len(r.Updates()) > 0 })
	if got := log.get(); len(got) != 1 || got[0] != "mark c1" {
		t.Errorf("while streaming: %q, want the chat marked", got)
	}
	<-errc
	if got := log.get(); len(got) != 2 || got[1] != "clear c1" {
		t.Errorf("after the reply: %q, want the mark cleared", got)
	}
	h.say(t, "c1", "/help") // commands write no mark
	if n := len(log.get()); n != 2 {
		t.Errorf("a command touched the marks: %q", log.get())
	}
}

// TestLockerRunsOneTurnPerChatAcrossEngines: two engines on one store (as two
// replicas are) with the store's chat lock take turns in a chat; the second
// turn waits for the first and sees it in its history.
func TestLockerRunsOneTurnPerChatAcrossEngines(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	tokens, _ := openai.NewTokenCounter("gpt-5.4-mini")
	engines := make([]*conversation.Engine, 2)
	for i := range engines {
		model := openai.New(openai.Options{BaseURL: h.fake.BaseURL(), APIKey: "k", Model: "gpt-5.4-mini"})
		engines[i] = conversation.New(conversation.Config{Locker: h.db, Settings: h.db, Logger: h.cfg.Logger}, h.db, model, tokens)
	}
	release := make(chan struct{})
	h.fake.SetHandler(func(r openaitest.Request) openaitest.Reply {
		if r.LastUser() == "first" {
			<-release
		}
		return openaitest.Text("ok " + r.LastUser())
	})
	ask := func(e *conversation.Engine, text string) *conversationtest.Reply {
		r := conversationtest.NewReply()
		go e.Handle(context.Background(), conversation.Request{Chat: "c1", UserID: "u", Text: text, Reply: r, UpdateEvery: time.Millisecond})
		return r
	}
	a := ask(engines[0], "first")
	waitUntil(t, "the first call", func() bool { return len(h.fake.Requests()) == 1 })
	b := ask(engines[1], "second")
	time.Sleep(50 * time.Millisecond) // room for a wrong second call; its absence is checked below
	if n := len(h.fake.Requests()); n != 1 {
		t.Fatalf("%d model calls while the chat's turn was held elsewhere, want 1", n)
	}
	close(release)
	if got, _ := a.WaitFinal(wait); got != "ok first" {
		t.Fatalf("first reply %q", got)
	}
	if got, _ := b.WaitFinal(wait); got != "ok second" {
		t.Fatalf("second reply %q", got)
	}
	if second := contents(h.fake.Requests()[1]); len(second) != 3 || second[0] != "user:first" {
		t.Errorf("the second turn sent %q, want the first turn before it", second)
	}
}
