package telegram_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram"
	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
)

// TestMediaFigures measures, against the fakes, the figures of the "Telegram
// media" section of docs/BENCHMARKS.md: the time from a voice note's arrival
// (its update queued at the fake) to its transcript shown in the chat, and the
// heap's peak while twenty 10 MB photos arrive at once, with the default
// FileMemory and with none to speak of. Run:
// go test ./bots/telegram -run TestMediaFigures -figures -v
func TestMediaFigures(t *testing.T) {
	if !*figures {
		t.Skip("run with -figures")
	}
	users, ids := someUsers(20)
	h := newHarness(t, adapter(func(o *telegram.Options) {
		o.EditEvery, o.GroupEditEvery, o.TypingEvery = 0, 0, 0 // the defaults: 1 s, 3 s, 4.5 s
		o.AllowedUserIDs = ids
	}))
	ogg := append([]byte("OggS"), bytes.Repeat([]byte{0x55}, 32<<10-4)...) // about 10 s of Opus
	var lat []time.Duration
	for _, u := range users {
		sent := time.Now()
		h.tg.Inject(telegramtest.Incoming{From: u, Media: telegramtest.Voice(ogg)})
		var shown time.Time
		h.waitFor("the transcript", func() bool {
			for _, m := range h.tg.BotMessages(u.ID) {
				for _, v := range m.Versions {
					if strings.Contains(v.Text, "🎤 Transcript of voice.ogg") {
						shown = v.At
						return true
					}
				}
			}
			return false
		})
		lat = append(lat, shown.Sub(sent))
		h.waitReply(u.ID, 1, "You said: Transcript")
	}
	slices.Sort(lat)
	t.Logf("voice note (32 KB) arrival → transcript shown, 20 notes one after another: median %v, max %v",
		lat[len(lat)/2].Round(100*time.Microsecond), lat[len(lat)-1].Round(100*time.Microsecond))

	for _, fm := range []struct {
		name  string
		bytes int64
	}{{"default FileMemory (40 MB)", 0}, {"FileMemory of 200 MB (no bound for twenty)", 200 << 20}} {
		start := time.Now()
		peak, downloads := largePhotos(t, 10<<20, fm.bytes)
		t.Logf("20 photos of 10 MB at once, %s: heap peak %d MB above the start, at most %d downloads at once, all answered in %v",
			fm.name, peak>>20, downloads, time.Since(start).Round(100*time.Millisecond))
	}
}
