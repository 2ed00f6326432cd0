package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store"
)

// vocabulary makes up the model's answers.
var vocabulary = strings.Fields("the bot streams each reply into one message that grows in place " +
	"while tokens arrive from the model through the proxy and every chat waits its turn")

// question is what user i asks.
func question(i int) string { return fmt.Sprintf("question %d", i) }

// questionOf returns i of the last "question i" in text (the engine may put the
// speaker's name before it), or -1.
func questionOf(text string) int {
	at := strings.LastIndex(text, "question ")
	if at < 0 {
		return -1
	}
	i, err := strconv.Atoi(strings.TrimSpace(text[at+len("question "):]))
	if err != nil {
		return -1
	}
	return i
}

// lastQuestion returns i of the last "question i" anywhere in body, or -1.
func lastQuestion(body []byte) int {
	at := bytes.LastIndex(body, []byte("question "))
	if at < 0 {
		return -1
	}
	digits := body[at+len("question "):]
	n := 0
	for n < len(digits) && '0' <= digits[n] && digits[n] <= '9' {
		n++
	}
	i, err := strconv.Atoi(string(digits[:n]))
	if err != nil {
		return -1
	}
	return i
}

// answer is the model's reply to question i in n tokens (as openaitest.Tokenize
// cuts them): a bold first sentence, then words, a new paragraph every 60 tokens.
func answer(i, n int) []string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Answer %d.**", i) // two tokens
	for k := 2; k < n; k++ {
		if k%60 == 0 {
			b.WriteString("\n\n")
		} else {
			b.WriteString(" ")
		}
		b.WriteString(vocabulary[(i+k)%len(vocabulary)])
	}
	return openaitest.Tokenize(b.String())
}

// answering is the fake model's handler: n tokens per answer, 15 to 20 ms apart
// (by question, so that the streams do not tick together).
func answering(n int) func(openaitest.Request) openaitest.Reply {
	return func(r openaitest.Request) openaitest.Reply {
		i := questionOf(r.LastUser())
		delay := time.Duration(15+max(i, 0)%6) * time.Millisecond
		return openaitest.Reply{Tokens: answer(i, n), TokenDelay: delay}
	}
}

// telegramVisible is what Telegram shows of an answer: the HTML rendering's text.
func telegramVisible(md string) string { return strings.ReplaceAll(md, "**", "") }

// slackMrkdwn is the mrkdwn the Slack adapter makes of an answer.
func slackMrkdwn(md string) string { return strings.ReplaceAll(md, "**", "*") }

// newEngine builds the engine on db with the real OpenAI client, which talks to
// baseURL through rt.
func newEngine(t *testing.T, db *store.DB, baseURL string, rt http.RoundTripper, maxConcurrent int, log *slog.Logger) *conversation.Engine {
	t.Helper()
	tokens, err := openai.NewTokenCounter("gpt-5.4-mini")
	if err != nil {
		t.Fatal(err)
	}
	// The memory test holds streams open for minutes: no stall watchdog cuts them.
	model := openai.New(openai.Options{BaseURL: baseURL, APIKey: "sk-test", Model: "gpt-5.4-mini",
		HTTPClient: &http.Client{Transport: rt}, StallTimeout: 10 * time.Minute})
	n := max(maxConcurrent, 16)
	return conversation.New(conversation.Config{MaxConcurrent: n, InitialConcurrent: n, Logger: log}, db, model, tokens)
}

// warmTokenizer loads the tokenizer's tables (kept for the process's life), so
// that heap measurements do not count them.
func warmTokenizer(t *testing.T) {
	t.Helper()
	if _, err := openai.NewTokenCounter("gpt-5.4-mini"); err != nil {
		t.Fatal(err)
	}
}

// streamTimes is what the client saw of one answer's stream.
type streamTimes struct {
	first, last time.Time // the first and the last token
	tokens      int
	at          []time.Time // with everyToken: when each token arrived
	chars       []int       // with everyToken: characters received after each token
}

// streamClock is the model client's transport. It notes, per question, when the
// answer's tokens reach the client (the bot's side of the connection).
type streamClock struct {
	next       http.RoundTripper
	everyToken bool

	mu      sync.Mutex
	streams map[int]*streamTimes
}

func newStreamClock(everyToken bool) *streamClock {
	return &streamClock{next: http.DefaultTransport, everyToken: everyToken, streams: map[int]*streamTimes{}}
}

// RoundTrip implements http.RoundTripper.
func (c *streamClock) RoundTrip(req *http.Request) (*http.Response, error) {
	key := -1
	if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		var call openaitest.Request
		if json.Unmarshal(body, &call) == nil {
			key = questionOf(call.LastUser())
		}
		if key < 0 { // a Responses API body: its input holds the question
			key = lastQuestion(body)
		}
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil || key < 0 {
		return resp, err
	}
	c.mu.Lock()
	st := &streamTimes{}
	c.streams[key] = st
	c.mu.Unlock()
	resp.Body = &tokenReader{ReadCloser: resp.Body, c: c, st: st}
	return resp, nil
}

// times returns a copy of what was seen of question i's answer.
func (c *streamClock) times(i int) (streamTimes, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.streams[i]
	if !ok {
		return streamTimes{}, false
	}
	out := *st
	out.at, out.chars = append([]time.Time(nil), st.at...), append([]int(nil), st.chars...)
	return out, true
}

// span returns the first token and the last token over all answers, and the
// number of tokens.
func (c *streamClock) span() (first, last time.Time, tokens int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.streams {
		if st.tokens == 0 {
			continue
		}
		if first.IsZero() || st.first.Before(first) {
			first = st.first
		}
		if st.last.After(last) {
			last = st.last
		}
		tokens += st.tokens
	}
	return first, last, tokens
}

// tokenReader notes the time of each content chunk of a server-sent event stream.
type tokenReader struct {
	io.ReadCloser
	c       *streamClock
	st      *streamTimes
	pending []byte
	chars   int
}

var (
	contentField = []byte(`"content":"`)
	// responsesDelta marks a text delta of the Responses API, which the
	// client uses unless the server has none.
	responsesDelta = []byte(`"type":"response.output_text.delta"`)
)

func (r *tokenReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	now := time.Now()
	r.pending = append(r.pending, p[:n]...)
	for {
		line, rest, ok := bytes.Cut(r.pending, []byte("\n"))
		if !ok {
			break
		}
		r.pending = rest
		if i := bytes.Index(line, contentField); (i >= 0 && !bytes.HasPrefix(line[i+len(contentField):], []byte(`"`))) ||
			bytes.Contains(line, responsesDelta) {
			r.token(now, line)
		}
	}
	return n, err
}

// token records one content chunk that arrived at now.
func (r *tokenReader) token(now time.Time, line []byte) {
	if r.c.everyToken {
		var chunk struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		data := bytes.TrimPrefix(line, []byte("data: "))
		if bytes.Contains(line, responsesDelta) {
			var ev struct{ Delta string }
			_ = json.Unmarshal(data, &ev)
			r.chars += len([]rune(ev.Delta))
		} else {
			_ = json.Unmarshal(data, &chunk)
		}
		for _, ch := range chunk.Choices {
			r.chars += len([]rune(ch.Delta.Content))
		}
	}
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	if r.st.tokens == 0 {
		r.st.first = now
	}
	r.st.last = now
	r.st.tokens++
	if r.c.everyToken {
		r.st.at = append(r.st.at, now)
		r.st.chars = append(r.st.chars, r.chars)
	}
}
