package telegram_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram"
	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store"
)

// botStore is what a node keeps its state in.
type botStore interface {
	Cursor(ctx context.Context, name string) (int64, error)
	SetCursor(ctx context.Context, name string, v int64) error
}

// node is one process of the bot on the harness's store and fakes: an engine
// and an adapter of its own, as a replica would have.
type node struct {
	bot    *telegram.Bot
	engine *conversation.Engine
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// node starts a bot on st (the harness's store, or a wrapper of it).
func (h *harness) node(name string, st botStore) *node {
	h.t.Helper()
	n := &node{engine: h.newEngine(h.db), done: make(chan error, 1)}
	opt := h.opt
	opt.Logger = h.opt.Logger.With("node", name)
	ctx, cancel := context.WithCancel(context.Background())
	b, err := telegram.New(ctx, opt, n.engine, st)
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	n.bot, n.cancel = b, cancel
	go func() { n.done <- b.Run(ctx) }()
	h.t.Cleanup(func() { n.stop(h.t) })
	return n
}

// stop shuts the node down as cmd/chatbot does.
func (n *node) stop(t *testing.T) {
	n.once.Do(func() {
		n.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.engine.Shutdown(ctx)
		if err := <-n.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// callsPerText counts the model calls for each user text.
func callsPerText(ai *openaitest.Server) map[string]int {
	got := map[string]int{}
	for _, r := range ai.Requests() {
		got[r.LastUser()]++
	}
	return got
}

// TestOnePollerAtATime: two bots on one store (as two replicas on one
// database): one polls, the other stands by, ready; when the poller stops,
// the other takes over from the stored offset; each message is answered once.
func TestOnePollerAtATime(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.manual = true })
	h.ai.SetHandler(func(r openaitest.Request) openaitest.Reply { return openaitest.Text("Re: " + r.LastUser()) })
	a := h.node("a", h.db)
	h.waitFor("a to poll", a.bot.Ready)
	h.waitFor("a's long poll", func() bool { return len(h.tg.CallsTo("getUpdates")) > 0 || h.tg.Pending() == 0 })
	b := h.node("b", h.db)
	h.waitFor("b to stand by, ready", b.bot.Ready)

	for i := range 3 {
		h.say(alice, telegramtest.Chat{}, fmt.Sprintf("first %d", i))
		h.waitReply(alice.ID, i+1, fmt.Sprintf("Re: first %d", i))
	}
	a.stop(t)
	for i := range 3 {
		h.say(alice, telegramtest.Chat{}, fmt.Sprintf("second %d", i))
		h.waitReply(alice.ID, 4+i, fmt.Sprintf("Re: second %d", i))
	}
	if n := h.tg.PollConflicts(); n != 0 {
		t.Errorf("%d getUpdates calls overlapped another: two pollers at once", n)
	}
	for text, n := range callsPerText(h.ai) {
		if n != 1 {
			t.Errorf("%q answered %d times", text, n)
		}
	}
	if n := len(h.tg.BotMessages(alice.ID)); n != 6 {
		t.Errorf("%d answers, want 6", n)
	}
	if !strings.Contains(h.logs.String(), "node=b") || !strings.Contains(h.logs.String(), `msg="telegram: polling" node=b`) {
		t.Error("b never polled")
	}
}

// deposedStore is a store as a replica that lost the polling lead sees it: the
// offset it stores is refused (the fence), the rest works.
type deposedStore struct{ *store.DB }

var errNotLeader = errors.New("not the leader any more")

func (deposedStore) SetCursor(context.Context, string, int64) error { return errNotLeader }

// TestPolledUpdateAnsweredOnce: a poller that answers an update but cannot
// store its offset (it lost the lead) and dies before confirming it to
// Telegram leaves it to the next poller, which gets it again and does not
// answer it again; the next message is answered.
func TestPolledUpdateAnsweredOnce(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.manual = true })
	h.ai.SetHandler(func(r openaitest.Request) openaitest.Reply { return openaitest.Text("Re: " + r.LastUser()) })
	// The first poller's getUpdates after the update would confirm it: the
	// network drops them.
	var holdConfirm atomic.Bool
	holdConfirm.Store(true)
	h.tg.SetReset(func(c telegramtest.Call) bool {
		offset, _ := strconv.ParseInt(c.Params["offset"], 10, 64)
		return c.Method == "getUpdates" && holdConfirm.Load() && offset > 1
	})
	a := h.node("a", deposedStore{h.db})
	h.waitFor("a to poll", a.bot.Ready)
	h.say(alice, telegramtest.Chat{}, "once")
	h.waitReply(alice.ID, 1, "Re: once")
	a.stop(t)
	if h.tg.Pending() != 1 {
		t.Fatalf("%d updates unconfirmed, want the answered one", h.tg.Pending())
	}
	holdConfirm.Store(false)
	h.node("b", h.db)
	h.waitFor("b to take the update", func() bool { return h.tg.Pending() == 0 })
	h.say(alice, telegramtest.Chat{}, "twice")
	h.waitReply(alice.ID, 2, "Re: twice")
	if got := callsPerText(h.ai); got["once"] != 1 || got["twice"] != 1 {
		t.Errorf("model calls %v, want each message once", got)
	}
	if n := len(h.tg.BotMessages(alice.ID)); n != 2 {
		t.Errorf("%d answers, want 2", n)
	}
}

// TestWebhookRedeliveryAnsweredOnce: Telegram posts an update again when the
// answer was late, and replicas behind a load balancer share the webhook: the
// second delivery of an update id is acknowledged and not answered.
func TestWebhookRedeliveryAnsweredOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hook := "http://" + ln.Addr().String() + "/telegram/hook"
	h := newHarness(t, adapter(func(o *telegram.Options) {
		o.Mode, o.WebhookURL, o.WebhookSecret, o.WebhookListener = telegram.ModeWebhook, hook, webhookSecret, ln
	}))
	h.waitFor("setWebhook", func() bool { return h.tg.WebhookInfo().URL == hook })
	h.ai.SetHandler(func(r openaitest.Request) openaitest.Reply { return openaitest.Text("Re: " + r.LastUser()) })
	h.tg.AddChat(telegramtest.PrivateChat(alice))
	update := `{"update_id": 777, "message": {"message_id": 5, "date": 1, "chat": {"id": 1001, "type": "private"},
		"from": {"id": 1001, "is_bot": false, "first_name": "Alice"}, "text": "delivered twice"}}`
	for range 3 {
		req, _ := http.NewRequest(http.MethodPost, hook, strings.NewReader(update))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", webhookSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("delivery answered %d, want 200", resp.StatusCode)
		}
	}
	h.waitReply(alice.ID, 1, "Re: delivered twice")
	h.say(alice, telegramtest.Chat{}, "next")
	h.waitReply(alice.ID, 2, "Re: next")
	if got := callsPerText(h.ai); got["delivered twice"] != 1 {
		t.Errorf("model calls %v, want the update answered once", got)
	}
}
