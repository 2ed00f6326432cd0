package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
)

// plotEnv turns TestPlotTelegramReply on.
const plotEnv = "CHATBOT_PLOT"

// plotFile is where the figure goes, from this package's folder.
var plotFile = filepath.Join("..", "docs", "telegram-stream.svg")

// TestPlotTelegramReply draws docs/telegram-stream.svg: for one private-chat
// reply of 300 tokens, the characters received from the model and the characters
// visible in Telegram over time, once for a chat alone and once for a chat among
// 200 streaming at once (Telegram's flood limits on, default pacing). With
// CHATBOT_PLOT_PNG=file it also writes a PNG of the same lines (no text).
//
//	CHATBOT_PLOT=1 go test ./bench -run TestPlot -v
func TestPlotTelegramReply(t *testing.T) {
	if os.Getenv(plotEnv) == "" {
		t.Skipf("draws docs/telegram-stream.svg: run with %s=1 go test ./bench -run TestPlot -v", plotEnv)
	}
	alone := recordReply(t, 1, 0)
	crowd := recordReply(t, 200, 100)
	c := chart{
		title:  "One Telegram private-chat reply: 300 tokens, 15-20 ms apart, flood limits on, 1 edit/s pacing",
		xLabel: "seconds since the message was sent",
		yLabel: "characters",
		series: []series{
			{name: "received from the model, chat alone", color: "#9ca3af", x: alone.tokenAt, y: alone.tokenChars},
			{name: "visible in Telegram, chat alone", color: "#2563eb", x: alone.shownAt, y: alone.shownChars, step: true, dots: true},
			{name: "received from the model, 1 of 200 chats", color: "#fdba74", x: crowd.tokenAt, y: crowd.tokenChars},
			{name: "visible in Telegram, 1 of 200 chats", color: "#ea580c", x: crowd.shownAt, y: crowd.shownChars, step: true, dots: true},
		},
	}
	if err := os.WriteFile(plotFile, c.svg(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", plotFile)
	if p := os.Getenv("CHATBOT_PLOT_PNG"); p != "" {
		if err := os.WriteFile(p, c.png(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tr := range []struct {
		name string
		tr   trace
	}{{"alone", alone}, {"1 of 200", crowd}} {
		t.Logf("%s: first token at %.2f s, last at %.2f s; %d texts shown, the first at %.2f s, the final at %.2f s",
			tr.name, tr.tr.tokenAt[0], tr.tr.tokenAt[len(tr.tr.tokenAt)-1], len(tr.tr.shownAt)-1,
			tr.tr.shownAt[1], tr.tr.shownAt[len(tr.tr.shownAt)-1])
	}
}

// trace is one reply seen from both ends: when its characters reached the bot,
// and when Telegram showed how many. Times are seconds since the message was sent.
type trace struct {
	tokenAt, tokenChars []float64
	shownAt, shownChars []float64 // starting with (0, 0)
}

// recordReply runs chats private chats at once and returns chat watch's trace.
func recordReply(t *testing.T, chats, watch int) trace {
	t.Helper()
	r := startTelegram(t, chats, telegramtest.TelegramLimits, true)
	r.ai.SetHandler(answering(300))
	start := time.Now()
	for i, u := range r.users {
		r.tg.Inject(telegramtest.Incoming{From: u, Text: question(i)})
	}
	if !r.handler.wait(5 * time.Minute) {
		t.Fatal("the replies did not end within 5 minutes")
	}
	st, ok := r.clock.times(watch)
	msgs := r.tg.BotMessages(r.users[watch].ID)
	r.stop()
	want := telegramVisible(strings.Join(answer(watch, 300), ""))
	if !ok || len(msgs) != 1 || msgs[0].Last().Text != want {
		t.Fatalf("chat %d: %d messages, not showing the whole answer (stream seen: %v)", watch, len(msgs), ok)
	}
	secs := func(at time.Time) float64 { return at.Sub(start).Seconds() }
	tr := trace{shownAt: []float64{0}, shownChars: []float64{0}}
	for i, at := range st.at {
		tr.tokenAt = append(tr.tokenAt, secs(at))
		tr.tokenChars = append(tr.tokenChars, float64(st.chars[i]))
	}
	for _, v := range msgs[0].Versions {
		tr.shownAt = append(tr.shownAt, secs(v.At))
		tr.shownChars = append(tr.shownChars, float64(len([]rune(v.Text))))
	}
	return tr
}
