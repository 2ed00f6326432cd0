package slack

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/slack/slackfake"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// TestMediaFigures measures, against the fakes, the bot's peak heap while
// twenty people send a 10 MB image at once (with the default download slots
// and with one slot per message), and the time from an audio clip's arrival to
// its transcript shown. It runs only when asked:
//
//	SLACK_FIGURES=1 go test ./bots/slack/ -run TestMediaFigures -v -timeout 10m
func TestMediaFigures(t *testing.T) {
	if os.Getenv("SLACK_FIGURES") == "" {
		t.Skip("set SLACK_FIGURES=1 to measure")
	}
	t.Log("| 10 MB images at once | download slots | peak heap above idle | most downloads at once | all answered |")
	t.Log("|---|---|---|---|---|")
	for _, slots := range []int{DefaultMaxDownloads, 20} {
		t.Log(measureImages(t, 20, 10<<20, slots))
	}
	t.Log("| where | clip | arrival → transcript shown (median / max of 5) |")
	t.Log("|---|---|---|")
	for _, where := range []string{"DM", "DM thread", "channel thread"} {
		t.Log(measureTranscript(t, where, 5))
	}
}

// discardingModel stands in front of the fake OpenAI: it reads each request's
// body to the end without keeping it, and asks the fake with a small request
// instead, so that the fake's own record of requests (which keeps their images)
// does not count in the bot's memory.
func discardingModel(target string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		body := `{"model":"gpt-5.4-mini","stream":true,"store":false,"input":"a picture"}`
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.Path, strings.NewReader(body))
		req.Header = r.Header.Clone()
		req.ContentLength = int64(len(body))
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				w.Write(buf[:n])
				w.(http.Flusher).Flush()
			}
			if err != nil {
				return
			}
		}
	})
}

// heapPeak samples the heap's object bytes (live and not yet collected) until
// stopped, and returns the highest.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak
	}
}

func heapNow() uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// measureImages has n people send an image of size bytes at once, each in a DM.
func measureImages(t *testing.T, n, size, slots int) string {
	h := buildHarness(t, slackfake.Options{UpdateLimit: 1000, DownloadDelay: 10 * time.Millisecond}, func(c *Config) {
		c.MaxDownloads = slots
		c.UpdatesPerMinute, c.UpdateBurst = 1000, 50 // edits are not measured here
	})
	proxy := httptest.NewServer(discardingModel(h.ai.URL))
	defer proxy.Close()
	h.modelURL = proxy.URL + "/v1"
	h.ai.SetHandler(func(openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Tokens: openaitest.Tokenize("a picture of nothing much"), FirstDelay: 200 * time.Millisecond}
	})
	h.start()
	defer h.shutdown()
	pic := append(testPNG(t, 64, 64, 9), bytes.Repeat([]byte{0}, size)...)[:size] // one array for all
	for i := range n {
		h.slack.AddChannel(fmt.Sprintf("D0USER%02d", i))
	}
	idle := heapNow()
	stop := heapPeak()
	start := time.Now()
	var msgs []slackfake.UserMessage
	for i := range n {
		msgs = append(msgs, h.slack.PostFiles(fmt.Sprintf("D0USER%02d", i), alice, "what is this?",
			slackfake.File{Name: "photo.png", Mimetype: "image/png", Data: pic}))
	}
	for _, m := range msgs {
		h.answered(m)
	}
	took := time.Since(start)
	peak := stop()
	if got := len(h.ai.Requests()); got != n {
		t.Errorf("%d model requests, want %d", got, n)
	}
	return fmt.Sprintf("| %d × %d MB | %d | %d MB | %d | %.1f s |", n, size>>20, slots,
		(peak-min(idle, peak))>>20, h.slack.MaxConcurrentDownloads(), took.Seconds())
}

// measureTranscript sends an audio clip runs times, each to a fresh bot, and
// returns the time from the post to the first bot message showing the
// transcript.
func measureTranscript(t *testing.T, where string, runs int) string {
	clip := bytes.Repeat([]byte{0x1a, 0x45, 0xdf, 0xa3}, 25_000) // 100 KB
	var took []time.Duration
	for range runs {
		h := buildHarness(t, slackfake.Options{}, nil)
		h.ai.SetHandler(func(r openaitest.Request) openaitest.Reply {
			return openaitest.Reply{Tokens: openaitest.Tokenize("noted"), FirstDelay: time.Second}
		})
		h.start()
		file := slackfake.File{Name: "audio_message.webm", Mimetype: "audio/webm", Subtype: "slack_audio", Data: clip}
		var m slackfake.UserMessage
		var channel, thread string
		var sent time.Time
		switch where {
		case "DM":
			sent = time.Now()
			m = h.slack.PostFiles(aliceDM, alice, "", file)
			channel = aliceDM
		case "DM thread":
			root := h.slack.Seed(aliceDM, alice, "hi")
			sent = time.Now()
			m = h.slack.PostFilesInThread(aliceDM, root, alice, "", file)
			channel, thread = aliceDM, root
		default:
			sent = time.Now()
			m = h.slack.PostFiles(general, alice, h.mention(""), file)
			channel, thread = general, m.TS
		}
		h.answered(m)
		mark := "> " + conversation.TranscriptMark
		for _, msg := range h.slack.BotMessages(channel, thread) {
			if i := slices.IndexFunc(msg.History, func(s string) bool { return strings.Contains(s, mark) }); i >= 0 {
				took = append(took, msg.At[i].Sub(sent))
				break
			}
		}
		h.shutdown()
	}
	if len(took) != runs {
		t.Errorf("%s: the transcript showed in %d of %d runs", where, len(took), runs)
		return ""
	}
	slices.Sort(took)
	return fmt.Sprintf("| %s | 100 KB `audio/webm` | %s / %s |", where, took[len(took)/2].Round(time.Millisecond),
		took[len(took)-1].Round(time.Millisecond))
}
