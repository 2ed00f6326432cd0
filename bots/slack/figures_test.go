package slack

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/slack/slackfake"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// TestFigures measures, against the fakes, the time from the model's first token
// to the first visible text, and the changes and ratelimited answers per reply
// with 1, 5 and 20 concurrent streams in one channel (editing in place, and
// streamed natively) or in as many DMs' threads. It is slow, so it runs only
// when asked:
//
//	SLACK_FIGURES=1 go test ./bots/slack/ -run TestFigures -v -timeout 20m
func TestFigures(t *testing.T) {
	if os.Getenv("SLACK_FIGURES") == "" {
		t.Skip("set SLACK_FIGURES=1 to measure")
	}
	t.Log("| where | streams | first token → first text (median / max) | changes per reply (mean / max) | 429s | all done |")
	t.Log("|---|---|---|---|---|---|")
	for _, where := range []string{"channel thread", "channel thread, native", "DM thread"} {
		for _, n := range []int{1, 5, 20} {
			t.Log(measure(t, where, n))
		}
	}
}

// measure runs n replies at once and returns a table row.
func measure(t *testing.T, where string, n int) string {
	h := buildHarness(t, slackfake.Options{}, func(c *Config) { c.NativeStreaming = strings.HasSuffix(where, "native") })
	tokens := &firstTokens{at: map[string]time.Time{}}
	proxy := httptest.NewServer(tokens.proxy(h.ai.URL))
	defer proxy.Close()
	h.modelURL = proxy.URL + "/v1"
	words := strings.Fields(strings.Repeat("lorem ipsum dolor sit amet ", 8)) // 40 tokens
	h.ai.SetHandler(func(openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Tokens: spaced(words), TokenDelay: 100 * time.Millisecond}
	})
	h.start()
	defer h.shutdown()

	roots := map[int]string{}
	for i := range n {
		if where == "DM thread" {
			roots[i] = h.slack.Seed(fmt.Sprintf("D0USER%02d", i), alice, "hi")
		}
	}
	start := time.Now()
	var posted []slackfake.UserMessage
	for i := range n {
		q := fmt.Sprintf("question %d", i)
		if where == "DM thread" {
			posted = append(posted, h.slack.PostInThread(fmt.Sprintf("D0USER%02d", i), roots[i], alice, q))
		} else {
			posted = append(posted, h.slack.Post(general, alice, h.mention(q)))
		}
	}
	limitedBefore := h.slack.RateLimited()
	var lat []time.Duration
	var edits []int
	for i, m := range posted {
		deadline := time.Now().Add(10 * time.Minute) // many streams share one budget
		for !h.traced("answered", m.Channel+":"+m.TS) {
			if time.Now().After(deadline) {
				t.Fatalf("reply %d never finished", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
		msgs := h.slack.BotMessages(m.Channel, threadOf(m))
		msg := msgs[len(msgs)-1]
		edits = append(edits, len(msg.History)-1)
		key := fmt.Sprintf("question %d", i)
		for j, text := range msg.History {
			if text != thinkingText {
				lat = append(lat, msg.At[j].Sub(tokens.get(key)))
				break
			}
		}
	}
	done := time.Since(start)
	slices.Sort(lat)
	return fmt.Sprintf("| %s | %d | %s / %s | %.1f / %d | %d | %s |", where, n,
		lat[len(lat)/2].Round(100*time.Microsecond), lat[len(lat)-1].Round(100*time.Microsecond),
		mean(edits), slices.Max(edits), h.slack.RateLimited()-limitedBefore, done.Round(100*time.Millisecond))
}

// threadOf is where the reply to m goes.
func threadOf(m slackfake.UserMessage) string {
	if m.ThreadTS != "" {
		return m.ThreadTS
	}
	return m.TS
}

func mean(xs []int) float64 {
	sum := 0
	for _, x := range xs {
		sum += x
	}
	return float64(sum) / float64(len(xs))
}

// firstTokens records when the model's first token of each question passed.
type firstTokens struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (f *firstTokens) get(key string) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.at[key]
}

// proxy forwards to the fake OpenAI and notes the first text event's time (a
// Responses output_text delta or a Chat Completions content chunk),
// keyed by the question (the end of the last user message).
func (f *firstTokens) proxy(upstream string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key := string(body) // the last "question …" in the body, on either API
		if i := strings.LastIndex(key, "question "); i >= 0 {
			key = key[i:]
		}
		key, _, _ = strings.Cut(key, `"`)
		out, err := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.Path, bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		rd := bufio.NewReader(resp.Body)
		for {
			line, err := rd.ReadString('\n')
			if strings.Contains(line, `"type":"response.output_text.delta"`) ||
				(strings.Contains(line, `"content":"`) && !strings.Contains(line, `"content":""`)) {
				f.mu.Lock()
				if _, ok := f.at[key]; !ok {
					f.at[key] = time.Now()
				}
				f.mu.Unlock()
			}
			_, _ = io.WriteString(w, line)
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
			if err != nil {
				return
			}
		}
	})
}
