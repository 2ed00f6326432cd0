package telegramtest

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// manualClock is a clock that moves only when told.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestDraftsWithTheLibrary drives the fake's drafts with go-telegram/bot: the
// parameters it sends (draft_id as text, can_stop, keep_on_stop) are read as
// Telegram reads them, a draft lives 30 seconds unless renewed or replaced by
// a message, and the stop button's update reaches the library's handler.
func TestDraftsWithTheLibrary(t *testing.T) {
	clock := &manualClock{now: time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)}
	s := NewServer(Options{Now: clock.Now})
	defer s.Close()
	user := User{ID: 42, FirstName: "Ann"}
	s.AddChat(PrivateChat(user))
	s.AddChat(Group(-7, "Group"))
	ctx := context.Background()
	b, err := bot.New(s.Token, bot.WithServerURL(s.URL), bot.WithSkipGetMe())
	if err != nil {
		t.Fatal(err)
	}
	draft := func(chat int64, id, text string, canStop bool) error {
		_, err := b.SendMessageDraft(ctx, &bot.SendMessageDraftParams{ChatID: chat, DraftID: id, Text: text,
			ParseMode: models.ParseModeHTML, CanStop: canStop, KeepOnStop: canStop})
		return err
	}

	// The documented errors and limits.
	for _, tt := range []struct {
		chat     int64
		id, text string
		want     string
	}{
		{-7, "1", "in a group", "private chats"},
		{42, "0", "zero id", "draft_id must be non-zero"},
		{42, "abc", "not a number", "draft_id must be non-zero"},
		{42, "1", strings.Repeat("x", MaxMessageLength+1), TooLong},
		{42, "1", "<b>open", "can't parse entities"},
	} {
		if err := draft(tt.chat, tt.id, tt.text, false); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("draft %s %q in %d: %v, want an error with %q", tt.id, tt.text[:min(len(tt.text), 12)], tt.chat, err, tt.want)
		}
	}
	if len(s.Drafts(42)) != 0 {
		t.Fatalf("refused drafts recorded: %+v", s.Drafts(42))
	}

	// An empty text is the "Thinking..." placeholder; a draft lives 30 s from
	// its last change.
	if err := draft(42, "7", "", true); err != nil {
		t.Fatalf("placeholder draft: %v", err)
	}
	clock.add(20 * time.Second)
	if err := draft(42, "7", "<b>Hello</b>", true); err != nil {
		t.Fatal(err)
	}
	clock.add(25 * time.Second) // 45 s after the first draft, 25 s after the second
	d, ok := s.DraftShown(42, 0)
	if !ok || d.Text != "Hello" || !d.CanStop || !d.KeepOnStop || d.DraftID != 7 {
		t.Fatalf("shown %+v %v, want the renewed draft with its stop button", d, ok)
	}
	clock.add(6 * time.Second)
	if _, ok := s.DraftShown(42, 0); ok {
		t.Error("a draft shows 31 s after its last change")
	}
	if exp := s.ExpiredDrafts(42); len(exp) != 1 || exp[0].Text != "Hello" {
		t.Errorf("expired %+v, want the draft that was left to lapse", exp)
	}

	// A message from the bot replaces the draft at once.
	if err := draft(42, "8", "Almost", false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: 42, Text: "Almost done"}); err != nil {
		t.Fatal(err)
	}
	if d, ok := s.DraftShown(42, 0); ok {
		t.Errorf("draft %+v still shows under the message", d)
	}
	if _, err := s.StopDraft(42, 0); err == nil {
		t.Error("stopped a draft that no longer shows")
	}

	// Without can_stop there is no stop button.
	if err := draft(42, "9", "No button", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StopDraft(42, 0); err == nil {
		t.Error("stopped a draft sent without can_stop")
	}

	// The stop button: the library gets stopped_message_generation, further
	// drafts of that id are not shown, keep_on_stop keeps the draft.
	if err := draft(42, "10", "Stop me", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StopDraft(42, 0); err != nil {
		t.Fatal(err)
	}
	got := make(chan *models.MessageGenerationStopped, 1)
	pollCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	poller, err := bot.New(s.Token, bot.WithServerURL(s.URL), bot.WithSkipGetMe(),
		bot.WithAllowedUpdates(bot.AllowedUpdates{models.AllowedUpdateStoppedMessageGeneration}),
		bot.WithDefaultHandler(func(_ context.Context, _ *bot.Bot, u *models.Update) {
			if u.StoppedMessageGeneration != nil {
				got <- u.StoppedMessageGeneration
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	go poller.Start(pollCtx)
	select {
	case st := <-got:
		if st.Chat.ID != 42 || st.DraftID != 10 || st.MessageThreadID != 0 {
			t.Errorf("stopped_message_generation %+v, want chat 42, draft 10", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the library got no stopped_message_generation update")
	}
	cancel()
	if d, ok := s.DraftShown(42, 0); !ok || d.DraftID != 10 {
		t.Errorf("shown %+v %v: keep_on_stop keeps the stopped draft", d, ok)
	}
	if err := draft(42, "10", "Stop me, more", true); err != nil {
		t.Fatal(err)
	}
	if ds := s.Drafts(42); !ds[len(ds)-1].Ignored {
		t.Error("a draft after its stop was shown")
	}
	if d, _ := s.DraftShown(42, 0); d.Text != "Stop me" {
		t.Errorf("shown %q after the stop, want the stopped draft as it was", d.Text)
	}
}

// TestStoppedUpdateNeedsAllowedUpdates: a bot that lists allowed_updates
// without stopped_message_generation does not get it.
func TestStoppedUpdateNeedsAllowedUpdates(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	user := User{ID: 42, FirstName: "Ann"}
	s.AddChat(PrivateChat(user))
	b, err := bot.New(s.Token, bot.WithServerURL(s.URL), bot.WithSkipGetMe())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.SendMessageDraft(context.Background(), &bot.SendMessageDraftParams{ChatID: 42, DraftID: "3",
		Text: "x", CanStop: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StopDraft(42, 0); err != nil {
		t.Fatal(err)
	}
	s.Inject(Incoming{From: user, Text: "hi"})
	ups := getUpdates(t, s, `["message"]`)
	if len(ups) != 1 || ups[0].Message == nil {
		t.Errorf("updates %+v, want only the message", ups)
	}
}

// getUpdates calls getUpdates once with allowed_updates and no timeout.
func getUpdates(t *testing.T, s *Server, allowed string) []Update {
	t.Helper()
	_, a := call(t, s, "getUpdates", url.Values{"allowed_updates": {allowed}, "timeout": {"0"}})
	var ups []Update
	if err := json.Unmarshal(a.Result, &ups); err != nil || !a.OK {
		t.Fatalf("getUpdates: %+v %v", a, err)
	}
	return ups
}
