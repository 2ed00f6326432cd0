package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chatbot-dev/chatbot/bots/telegram"
	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store"
)

// TestSmokeTelegram is the small load test that runs always: 50 private chats
// streaming at once (60 tokens each) under Telegram's flood limits. Every reply
// must arrive whole, and nothing may be left running.
func TestSmokeTelegram(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	res := loadTelegram(t, 50, 60, telegramtest.TelegramLimits)
	res.log(t)
}

// TestLoadTelegram streams 1,000 private chats at once (300 tokens, 15-20 ms
// apart) through the real adapter, engine and bbolt store, against the fake Bot
// API with Telegram's flood limits and the fake OpenAI. CHATBOT_LOAD_CHATS and
// CHATBOT_LOAD_TOKENS change the numbers.
func TestLoadTelegram(t *testing.T) {
	needLoad(t)
	chats, tokens := envInt(t, "CHATBOT_LOAD_CHATS", 1000), envInt(t, "CHATBOT_LOAD_TOKENS", 300)
	res := loadTelegram(t, chats, tokens, telegramtest.TelegramLimits)
	res.log(t)
}

// tgBot is the bot's side: the real Telegram adapter (long polling), engine and
// bbolt store.
type tgBot struct {
	running
}

// startTelegramBot runs the bot against the Bot API at apiURL and the model at
// modelURL (through rt), for the users ids, with the adapter's default pacing
// (1 edit a second in a private chat). want is how many turns the handler waits for.
func startTelegramBot(t *testing.T, apiURL, token, modelURL string, rt http.RoundTripper, ids []int64, want int) *tgBot {
	t.Helper()
	b := &tgBot{running{t: t, logs: newLogCounter()}}
	db, err := store.Open(filepath.Join(t.TempDir(), "chatbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b.db = db
	log := slog.New(b.logs)
	b.engine = newEngine(t, db, modelURL, rt, len(ids), log)
	b.handler = newCountingHandler(b.engine, want)
	adapter, err := telegram.New(context.Background(), telegram.Options{Token: token, APIURL: apiURL, AllowedUserIDs: ids, Logger: log},
		b.handler, db)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	b.run(adapter.Run)
	return b
}

// stop shuts the bot down as cmd/chatbot does, and closes the store.
func (b *tgBot) stop() { b.stopBot() }

// tgRig is the bot against telegramtest and openaitest, all in this process.
type tgRig struct {
	*tgBot
	tg    *telegramtest.Server
	ai    *openaitest.Server
	clock *streamClock
	users []telegramtest.User
}

// startTelegram starts the fakes and the bot for n allowed users.
func startTelegram(t *testing.T, n int, flood telegramtest.FloodLimits, everyToken bool) *tgRig {
	t.Helper()
	r := &tgRig{tg: telegramtest.NewServer(telegramtest.Options{}), ai: openaitest.NewServer(),
		clock: newStreamClock(everyToken)}
	t.Cleanup(r.ai.Close)
	t.Cleanup(r.tg.Close)
	r.tg.SetFlood(flood)
	ids := make([]int64, n)
	r.users = make([]telegramtest.User, n)
	for i := range n {
		r.users[i] = telegramtest.User{ID: int64(100000 + i), FirstName: fmt.Sprintf("User%d", i)}
		ids[i] = r.users[i].ID
	}
	r.tgBot = startTelegramBot(t, r.tg.URL, r.tg.Token, r.ai.BaseURL(), r.clock, ids, n)
	return r
}

// stop shuts the bot down, then the fakes.
func (r *tgRig) stop() {
	r.tgBot.stop()
	r.tg.Close()
	r.ai.Close()
}

// tgResult is what a Telegram load run showed.
type tgResult struct {
	chats, tokens int
	wall          time.Duration // the first message sent → the last final text shown
	cpu           time.Duration
	peaks         peaks
	fakesHeap     uint64 // heap the fakes' records hold at the end
	replies       replyCheck
	flood         floodCount
	stream        streamSpan
	errs          map[string]int
	logs          *logCounter
}

// loadTelegram runs chats conversations at once, checks every reply and that
// nothing is left running after shutdown, and returns the figures.
func loadTelegram(t *testing.T, chats, tokens int, flood telegramtest.FloodLimits) tgResult {
	leaks := goleak.IgnoreCurrent()
	warmTokenizer(t)
	base, _ := heapAfterGC()
	r := startTelegram(t, chats, flood, false)
	r.ai.SetHandler(answering(tokens))
	smp := startSampler(100*time.Millisecond, map[string]string{"Bot API": r.tg.URL, "OpenAI": r.ai.URL})
	cpu0, start := cpuTime(), time.Now()
	for i, u := range r.users {
		r.tg.Inject(telegramtest.Incoming{From: u, Text: question(i)})
	}
	if !r.handler.wait(20 * time.Minute) {
		t.Errorf("not every turn ended within 20 minutes")
	}
	res := tgResult{chats: chats, tokens: tokens, cpu: cpuTime() - cpu0, peaks: smp.Stop(), logs: r.logs,
		errs: r.handler.errors()}
	res.replies = r.checkReplies(tokens, start)
	res.replies.stored = countStored(t, r.db, r.chatIDs())
	res.wall = since(start, res.replies.lastFinal)
	res.flood = countFlood(r.tg.Calls())
	res.stream = r.clock.spanOf()
	r.stop()
	heap, _ := heapAfterGC()
	res.fakesHeap = heap - min(heap, base)
	runtime.KeepAlive(r)
	failIncomplete(t, res.replies, chats)
	goleak.VerifyNone(t, leaks)
	return res
}

// replyCheck is the state of every chat's reply after the run.
type replyCheck struct {
	complete, wrong, missing int
	plain                    int // final text shown without HTML (Telegram refused it)
	stored                   int // turns in the store's history
	examples                 []string
	firstText, finalText     []time.Duration // from the message being sent
	firstToken               []time.Duration // from the message being sent to the first token at the bot
	tokenToText              []time.Duration // the first token reached the bot → first text shown
	edits                    []int
	lastFinal                time.Time
}

// checkReplies compares what each chat shows with the model's answer.
func (r *tgRig) checkReplies(tokens int, start time.Time) replyCheck {
	var c replyCheck
	for i, u := range r.users {
		c.tokenAt(r.clock, i, start)
		want := telegramVisible(strings.Join(answer(i, tokens), ""))
		msgs := r.tg.BotMessages(u.ID)
		switch {
		case len(msgs) == 0:
			c.missing++
			c.note(fmt.Sprintf("chat %d: no message", i))
			continue
		case len(msgs) != 1 || msgs[0].Last().Text != want:
			c.wrong++
			c.note(fmt.Sprintf("chat %d: %d messages, the last showing %q…, want %q…", i, len(msgs),
				head(msgs[len(msgs)-1].Last().Text), head(want)))
			continue
		}
		m := msgs[0]
		c.complete++
		if m.Last().ParseMode != "HTML" {
			c.plain++
		}
		c.firstText = append(c.firstText, m.Versions[0].At.Sub(start))
		c.finalText = append(c.finalText, m.Last().At.Sub(start))
		c.edits = append(c.edits, len(m.Versions)-1)
		if st, ok := r.clock.times(i); ok {
			c.tokenToText = append(c.tokenToText, m.Versions[0].At.Sub(st.first))
		}
		if m.Last().At.After(c.lastFinal) {
			c.lastFinal = m.Last().At
		}
	}
	return c
}

// tokenAt notes when the first token of answer i reached the bot.
func (c *replyCheck) tokenAt(clock *streamClock, i int, start time.Time) {
	if st, ok := clock.times(i); ok && st.tokens > 0 {
		c.firstToken = append(c.firstToken, st.first.Sub(start))
	}
}

// chatIDs are the engine's names of the rig's chats.
func (r *tgRig) chatIDs() []conversation.ChatID {
	ids := make([]conversation.ChatID, len(r.users))
	for i, u := range r.users {
		ids[i] = conversation.ChatID(fmt.Sprintf("telegram:%d", u.ID))
	}
	return ids
}

// note keeps the first few problems as examples.
func (c *replyCheck) note(s string) {
	if len(c.examples) < 5 {
		c.examples = append(c.examples, s)
	}
}

// head is the start of s, for messages.
func head(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40])
	}
	return s
}

// floodCount sorts the sends and edits the fake answered.
type floodCount struct {
	accepted, perChat, global int // 429s: per-chat limit or the 30/s over all chats
	other                     map[string]int
	acceptedSpan              time.Duration // first to last accepted call
}

// countFlood classifies the 429 answers: a 429 in a chat whose last accepted
// call was less than a second before is the per-chat limit; any other is the
// global one (30 a second over all chats).
func countFlood(calls []telegramtest.Call) floodCount {
	f := floodCount{other: map[string]int{}}
	slices.SortStableFunc(calls, func(a, b telegramtest.Call) int { return a.At.Compare(b.At) })
	last := map[int64]time.Time{}
	var first, final time.Time
	for _, c := range calls {
		if c.Method != "sendMessage" && c.Method != "editMessageText" {
			continue
		}
		switch {
		case c.ErrorCode == 0:
			f.accepted++
			last[c.ChatID] = c.At
			if first.IsZero() {
				first = c.At
			}
			final = c.At
		case c.ErrorCode == 429 && c.At.Sub(last[c.ChatID]) < time.Second:
			f.perChat++
		case c.ErrorCode == 429:
			f.global++
		default:
			f.other[fmt.Sprintf("%s %d %.60s", c.Method, c.ErrorCode, c.Description)]++
		}
	}
	f.acceptedSpan = final.Sub(first)
	return f
}

// streamSpan is the model side of a run.
type streamSpan struct {
	tokens      int
	first, last time.Time
}

// spanOf returns the tokens received over all answers and when.
func (c *streamClock) spanOf() streamSpan {
	first, last, n := c.span()
	return streamSpan{tokens: n, first: first, last: last}
}

// log reports the run as table rows.
func (res tgResult) log(t *testing.T) {
	t.Helper()
	c, f := res.replies, res.flood
	t.Logf("| chats at once | %d (%d tokens each) |", res.chats, res.tokens)
	t.Logf("| replies complete and correct | %d of %d (wrong %d, missing %d, plain text %d) |",
		c.complete, res.chats, c.wrong, c.missing, c.plain)
	t.Logf("| turns stored in the history | %d of %d |", c.stored, res.chats)
	t.Logf("| first message sent → last final text | %v |", res.wall.Round(10*time.Millisecond))
	t.Logf("| replies per second | %.1f |", float64(c.complete)/res.wall.Seconds())
	logStream(t, res.stream)
	t.Logf("| message sent → first token at the bot (median / p90 / max) | %s |", spread(c.firstToken))
	t.Logf("| message sent → first text (median / p90 / max) | %s |", spread(c.firstText))
	t.Logf("| first token at the bot → first text (median / p90 / max) | %s |", spread(c.tokenToText))
	t.Logf("| message sent → final text (median / p90 / max) | %s |", spread(c.finalText))
	t.Logf("| edits per reply (median / max) | %d / %d |", median(c.edits), slices.Max(append(c.edits, 0)))
	t.Logf("| sends and edits accepted | %d in %v (%.1f a second) |", f.accepted,
		f.acceptedSpan.Round(10*time.Millisecond), float64(f.accepted)/max(f.acceptedSpan.Seconds(), 1e-9))
	t.Logf("| 429 answers | %d (global 30/s limit: %d, per-chat 1/s limit: %d) |", f.perChat+f.global, f.global, f.perChat)
	for k, n := range f.other {
		t.Logf("| other error answers: %s | %d |", k, n)
	}
	t.Logf("| CPU time (bot and fakes) | %v (%.2f cores on average) |", res.cpu.Round(10*time.Millisecond),
		res.cpu.Seconds()/res.wall.Seconds())
	logPeaks(t, res.peaks)
	t.Logf("| heap still held by the fakes' records after shutdown | %s |", mib(res.fakesHeap))
	for e, n := range res.errs {
		t.Logf("Handle returned %d × %.300s", n, e)
	}
	res.logs.report(t)
}

// logStream reports the model side of a run.
func logStream(t *testing.T, s streamSpan) {
	t.Helper()
	d := s.last.Sub(s.first)
	t.Logf("| tokens streamed | %d in %v (%.0f a second) |", s.tokens, d.Round(10*time.Millisecond),
		float64(s.tokens)/max(d.Seconds(), 1e-9))
}

// median of xs (0 if empty).
func median(xs []int) int {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}
