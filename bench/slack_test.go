package bench

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chatbot-dev/chatbot/bots/slack"
	"github.com/chatbot-dev/chatbot/bots/slack/slackfake"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store"
)

// placeholder is what the Slack adapter posts where Slack allows no thread
// status, until the first text.
const placeholder = "_Thinking…_"

// TestSmokeSlack is the small load test that runs always: 20 threads streaming
// at once (60 tokens each) over Socket Mode. Slack's chat.update limit (50 a
// minute) would make it last a minute, so here the fake allows 3,000 a minute
// and the adapter spends 2,700; TestLoadSlack keeps Slack's limit.
func TestSmokeSlack(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	res := loadSlack(t, 20, 60, slackfake.Options{UpdateLimit: 3000}, func(c *slack.Config) { c.UpdatesPerMinute = 2700 })
	res.log(t)
}

// TestLoadSlack streams 200 threads at once (mentions in 10 channels, 300 tokens
// 15-20 ms apart) through the real adapter over Socket Mode, the engine and the
// bbolt store, against slackfake with Slack's chat.update limit (50 a minute per
// workspace) and the fake OpenAI. CHATBOT_LOAD_THREADS and CHATBOT_LOAD_TOKENS
// change the numbers.
func TestLoadSlack(t *testing.T) {
	needLoad(t)
	threads, tokens := envInt(t, "CHATBOT_LOAD_THREADS", 200), envInt(t, "CHATBOT_LOAD_TOKENS", 300)
	res := loadSlack(t, threads, tokens, slackfake.Options{}, nil)
	res.log(t)
}

// slRig is the real Slack adapter (Socket Mode), engine and bbolt store against
// slackfake and openaitest, all in this process.
type slRig struct {
	running
	slack *slackfake.Server
	ai    *openaitest.Server
	clock *streamClock
}

// Slack's side of the load: users and channels.
const (
	slackUsers    = 20
	slackChannels = 10
)

func slackUser(i int) string { return fmt.Sprintf("U0USER%02d", i%slackUsers) }

// slackChannel is where thread i is opened, of channels.
func slackChannel(i, channels int) string { return fmt.Sprintf("C0LOAD%02d", i%channels) }

// startSlack starts the fakes and the bot for n threads in channels channels;
// edit tunes the adapter's config.
func startSlack(t *testing.T, n, channels int, opt slackfake.Options, edit func(*slack.Config)) *slRig {
	t.Helper()
	r := &slRig{running: running{t: t, logs: newLogCounter()}, slack: slackfake.NewServer(opt),
		ai: openaitest.NewServer(), clock: newStreamClock(false)}
	for i := range slackUsers {
		r.slack.AddUser(slackUser(i), fmt.Sprintf("User %d", i))
	}
	for i := range channels {
		r.slack.AddChannel(slackChannel(i, channels))
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "chatbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.db = db
	log := slog.New(r.logs)
	r.engine = newEngine(t, db, r.ai.BaseURL(), r.clock, n, log)
	r.handler = newCountingHandler(r.engine, n)
	o := r.slack.Options()
	cfg := slack.Config{BotToken: o.BotToken, AppToken: o.AppToken, APIURL: r.slack.APIURL(),
		ReplyInThreadsWithoutMention: true, Logger: log}
	if edit != nil {
		edit(&cfg)
	}
	a, err := slack.New(context.Background(), cfg, r.handler, db)
	if err != nil {
		t.Fatal(err)
	}
	r.run(a.Run)
	t.Cleanup(r.stop)
	return r
}

// stop shuts the bot down as cmd/chatbot does, then the store and the fakes.
func (r *slRig) stop() {
	r.stopBot()
	r.slack.Close()
	r.ai.Close()
}

// slResult is what a Slack load run showed.
type slResult struct {
	threads, tokens int
	wall            time.Duration
	cpu             time.Duration
	peaks           peaks
	fakesHeap       uint64
	replies         replyCheck
	updates, posts  int // chat.update and chat.postMessage calls
	limited         int // 429 ratelimited answers
	stream          streamSpan
	errs            map[string]int
	logs            *logCounter
}

// loadSlack runs threads conversations at once, checks every reply and that
// nothing is left running after shutdown, and returns the figures.
func loadSlack(t *testing.T, threads, tokens int, opt slackfake.Options, edit func(*slack.Config)) slResult {
	leaks := goleak.IgnoreCurrent()
	warmTokenizer(t)
	base, _ := heapAfterGC()
	r := startSlack(t, threads, slackChannels, opt, edit)
	r.ai.SetHandler(answering(tokens))
	smp := startSampler(100*time.Millisecond, map[string]string{"Slack": r.slack.URL, "OpenAI": r.ai.URL})
	cpu0, start := cpuTime(), time.Now()
	posted := make([]slackfake.UserMessage, threads)
	for i := range threads {
		posted[i] = r.slack.Post(slackChannel(i, slackChannels), slackUser(i), "<@"+r.slack.Options().BotUserID+"> "+question(i))
	}
	if !r.handler.wait(25 * time.Minute) {
		t.Errorf("not every turn ended within 25 minutes")
	}
	res := slResult{threads: threads, tokens: tokens, cpu: cpuTime() - cpu0, peaks: smp.Stop(), logs: r.logs,
		errs: r.handler.errors(), limited: r.slack.RateLimited(),
		updates: r.slack.Calls("chat.update"), posts: r.slack.Calls("chat.postMessage")}
	res.replies = r.checkReplies(posted, tokens, start)
	res.replies.stored = countStored(t, r.db, r.chatIDs(posted))
	res.wall = since(start, res.replies.lastFinal)
	res.stream = r.clock.spanOf()
	r.stop()
	heap, _ := heapAfterGC()
	res.fakesHeap = heap - min(heap, base)
	runtime.KeepAlive(r)
	failIncomplete(t, res.replies, threads)
	goleak.VerifyNone(t, leaks)
	return res
}

// checkReplies compares what each thread shows with the model's answer.
func (r *slRig) checkReplies(posted []slackfake.UserMessage, tokens int, start time.Time) replyCheck {
	var c replyCheck
	for i, p := range posted {
		c.tokenAt(r.clock, i, start)
		want := strings.Join(answer(i, tokens), "")
		msgs := r.slack.BotMessages(p.Channel, p.TS)
		if len(msgs) == 1 && !msgs[0].Streamed {
			want = slackMrkdwn(want) // a stream shows the Markdown itself
		}
		switch {
		case len(msgs) == 0:
			c.missing++
			c.note(fmt.Sprintf("thread %d: no message", i))
			continue
		case len(msgs) != 1 || msgs[0].Text != want:
			c.wrong++
			c.note(fmt.Sprintf("thread %d: %d messages, the last showing %q…, want %q…", i, len(msgs),
				head(msgs[len(msgs)-1].Text), head(want)))
			continue
		}
		m := msgs[0]
		c.complete++
		first := slices.IndexFunc(m.History, func(s string) bool { return s != placeholder })
		c.firstText = append(c.firstText, m.At[first].Sub(start))
		c.finalText = append(c.finalText, m.At[len(m.At)-1].Sub(start))
		c.edits = append(c.edits, len(m.History)-1)
		if st, ok := r.clock.times(i); ok {
			c.tokenToText = append(c.tokenToText, m.At[first].Sub(st.first))
		}
		if last := m.At[len(m.At)-1]; last.After(c.lastFinal) {
			c.lastFinal = last
		}
	}
	return c
}

// chatIDs are the engine's names of the threads the mentions opened.
func (r *slRig) chatIDs(posted []slackfake.UserMessage) []conversation.ChatID {
	ids := make([]conversation.ChatID, len(posted))
	for i, p := range posted {
		ids[i] = conversation.ChatID("slack:" + r.slack.Options().TeamID + ":" + p.Channel + ":" + p.TS)
	}
	return ids
}

// log reports the run as table rows.
func (res slResult) log(t *testing.T) {
	t.Helper()
	c := res.replies
	t.Logf("| threads at once | %d (%d tokens each, %d channels) |", res.threads, res.tokens, slackChannels)
	t.Logf("| replies complete and correct | %d of %d (wrong %d, missing %d) |", c.complete, res.threads, c.wrong, c.missing)
	t.Logf("| turns stored in the history | %d of %d |", c.stored, res.threads)
	t.Logf("| first mention posted → last final text | %v |", res.wall.Round(10*time.Millisecond))
	t.Logf("| replies per second | %.2f |", float64(c.complete)/res.wall.Seconds())
	logStream(t, res.stream)
	t.Logf("| mention posted → first token at the bot (median / p90 / max) | %s |", spread(c.firstToken))
	t.Logf("| mention posted → first text (median / p90 / max) | %s |", spread(c.firstText))
	t.Logf("| first token at the bot → first text (median / p90 / max) | %s |", spread(c.tokenToText))
	t.Logf("| mention posted → final text (median / p90 / max) | %s |", spread(c.finalText))
	t.Logf("| chat.update per reply (median / max) | %d / %d |", median(c.edits), slices.Max(append(c.edits, 0)))
	t.Logf("| chat.update calls / chat.postMessage calls | %d / %d |", res.updates, res.posts)
	t.Logf("| 429 ratelimited answers | %d |", res.limited)
	t.Logf("| CPU time (bot and fakes) | %v (%.2f cores on average) |", res.cpu.Round(10*time.Millisecond),
		res.cpu.Seconds()/res.wall.Seconds())
	logPeaks(t, res.peaks)
	t.Logf("| heap still held by the fakes' records after shutdown | %s |", mib(res.fakesHeap))
	for e, n := range res.errs {
		t.Logf("Handle returned %d × %.300s", n, e)
	}
	res.logs.report(t)
}
