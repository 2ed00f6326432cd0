package openai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/chatbot-dev/chatbot/conversation"
)

// ProxyHeader is the response header the chatbot Worker (proxy/worker.js) sets on
// every answer it makes or forwards, and ProxyName its value.
const (
	ProxyHeader = "X-Proxy"
	ProxyName   = "chatbot-worker"
)

// Checker makes the calls `chatbot check` needs: a model list and one short streamed
// reply, without retries, recording the proxy's marker header and when each
// chunk of the stream arrives.
type Checker struct {
	client *Client
}

// NewChecker returns a Checker for the service opt points at. opt.MaxRetries is
// ignored: a check reports the first failure as it is.
func NewChecker(opt Options) *Checker {
	opt.MaxRetries = -1
	hc := opt.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	wrapped := *hc
	wrapped.Transport = &recordingTransport{next: transportOf(hc)}
	opt.HTTPClient = &wrapped
	return &Checker{client: New(opt)}
}

// Listing is the answer to GET {base_url}/models.
type Listing struct {
	IDs   []string // the models the key may use, sorted
	Proxy string   // the X-Proxy header; ProxyName when it came through the Worker
}

// Has reports whether model is listed.
func (l Listing) Has(model string) bool {
	_, found := slices.BinarySearch(l.IDs, model)
	return found
}

// Models lists the models. Its errors are *CheckError values.
func (k *Checker) Models(ctx context.Context) (Listing, error) {
	rec := &record{}
	ctx = context.WithValue(ctx, recordKey{}, rec)
	list, err := k.client.api.ListModels(ctx)
	if err != nil {
		return Listing{Proxy: rec.proxy()}, k.fail(err, rec)
	}
	out := Listing{Proxy: rec.proxy()}
	for _, m := range list.Models {
		out.IDs = append(out.IDs, m.ID)
	}
	slices.Sort(out.IDs)
	return out, nil
}

// StreamProbe is what Checker.Stream measured.
type StreamProbe struct {
	Reply string
	// API is the API that answered: APIResponses, or APIChat when the server has
	// no /responses (with openai.api auto) or the config asks for it.
	API API
	// FirstToken is the time from sending the request to the first text.
	FirstToken time.Duration
	// Arrivals are the times, since the request was sent, at which each chunk that
	// carried text arrived.
	Arrivals []time.Duration
	Proxy    string // the X-Proxy header
}

// Spread is the time between the first and the last chunk with text.
func (p StreamProbe) Spread() time.Duration {
	if len(p.Arrivals) == 0 {
		return 0
	}
	return p.Arrivals[len(p.Arrivals)-1] - p.Arrivals[0]
}

// Buffering thresholds: a model writes a few hundred tokens a second at most, so
// several chunks that all arrive within a few milliseconds were held back and
// released together by something on the way (nginx's proxy_buffering, for one).
const (
	minChunksToJudge = 5
	maxBufferedSpan  = 30 * time.Millisecond
)

// Judgeable reports whether the stream had enough chunks to tell whether it was buffered.
func (p StreamProbe) Judgeable() bool { return len(p.Arrivals) >= minChunksToJudge }

// Buffered reports whether the chunks arrived all at once instead of one by one.
func (p StreamProbe) Buffered() bool {
	return p.Judgeable() && p.Spread() < maxBufferedSpan
}

// Stream streams one reply to prompt on the configured API (with openai.api
// auto, falling back to Chat Completions as the bot would). Its errors are
// *CheckError values. Arrival times are taken as the bytes come off the network,
// so a slow or busy client does not blur them.
func (k *Checker) Stream(ctx context.Context, prompt string) (StreamProbe, error) {
	req := conversation.ModelRequest{Model: k.client.opt.Model,
		Messages: []conversation.Message{{Role: conversation.RoleUser, Content: prompt}}}
	for {
		rec := &record{start: time.Now()}
		var text strings.Builder
		api := k.client.API()
		st := &streamState{out: conversation.ModelOutput{Text: func(d string) { text.WriteString(d) }}}
		err := k.client.streamOnce(context.WithValue(ctx, recordKey{}, rec), api, &req, st)
		if err != nil && k.client.fallBack(api, err) {
			continue
		}
		p := StreamProbe{Reply: text.String(), API: api, Proxy: rec.proxy()}
		if err != nil {
			return p, k.fail(err, rec)
		}
		if rec.body != nil {
			p.Arrivals = rec.body.textArrivals()
		}
		if len(p.Arrivals) > 0 {
			p.FirstToken = p.Arrivals[0]
		}
		return p, nil
	}
}

// CheckError is a failed check call: the classified error, plus what a check needs
// for its hints. Error() is the classified, redacted text; the unredacted cause is
// reachable only through errors.As and errors.Is (for *net.DNSError, x509 errors…).
type CheckError struct {
	Err *Error
	// Message is the error message of the service's JSON answer, redacted.
	Message string
	// Proxy is the X-Proxy header of the error answer (ProxyName from the Worker).
	Proxy string
	cause error
}

func (e *CheckError) Error() string { return e.Err.Error() }

// Unwrap gives the classified error and the original cause.
func (e *CheckError) Unwrap() []error { return []error{e.Err, e.cause} }

// fail turns err into a *CheckError.
func (k *Checker) fail(err error, rec *record) *CheckError {
	e := classify(err)
	e.msg = k.client.redact(e.msg)
	ce := &CheckError{Err: e, Proxy: rec.proxy(), cause: err}
	var apiErr *goopenai.APIError
	if errors.As(err, &apiErr) {
		ce.Message = k.client.redact(apiErr.Message)
	}
	return ce
}

// record keeps what the transport saw of a check call: the response headers and,
// for a stream, the timed body.
type record struct {
	start  time.Time
	header http.Header
	body   *timedBody
}

type recordKey struct{}

func (r *record) proxy() string { return r.header.Get(ProxyHeader) }

// recordingTransport fills in the request context's record. A call's record is
// read after the call returns, on the same goroutine.
type recordingTransport struct{ next http.RoundTripper }

func (t *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	rec, ok := r.Context().Value(recordKey{}).(*record)
	if !ok || err != nil {
		return resp, err
	}
	rec.header = resp.Header.Clone()
	if !rec.start.IsZero() && resp.StatusCode == http.StatusOK &&
		strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		rec.body = newTimedBody(resp.Body, rec.start)
		resp.Body = rec.body
	}
	return resp, nil
}

// timedBody reads a server-sent event stream on its own goroutine and notes when
// each event carrying text came off the network: the time of the read that
// delivered the event's last byte. The client reads the same bytes, unchanged.
type timedBody struct {
	body  io.ReadCloser
	start time.Time
	lines chan []byte
	rest  []byte
	err   error // the body's error; written before lines is closed

	mu       sync.Mutex
	arrivals []time.Duration
}

func newTimedBody(body io.ReadCloser, start time.Time) *timedBody {
	b := &timedBody{body: body, start: start, lines: make(chan []byte, 1024)}
	go b.pump()
	return b
}

// stampReader remembers when its last read returned data.
type stampReader struct {
	r     io.Reader
	start time.Time
	at    time.Duration
}

func (s *stampReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.at = time.Since(s.start)
	}
	return n, err
}

// pump ends when the body ends or is closed.
func (b *timedBody) pump() {
	defer close(b.lines)
	stamp := &stampReader{r: b.body, start: b.start}
	br := bufio.NewReaderSize(stamp, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if hasText(line) {
				b.mu.Lock()
				b.arrivals = append(b.arrivals, stamp.at)
				b.mu.Unlock()
			}
			b.lines <- line
		}
		if err != nil {
			b.err = err
			return
		}
	}
}

// hasText reports whether an SSE line is an event with answer text in it: a
// Responses API output_text delta or a Chat Completions chunk with content.
func hasText(line []byte) bool {
	data, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("data:"))
	if !ok {
		return false
	}
	var event struct {
		Type    string `json:"type"`
		Delta   any    `json:"delta"`
		Choices []struct {
			Delta struct {
				Content string `json:"content"`
			} `json:"delta"`
		} `json:"choices"`
	}
	if json.Unmarshal(data, &event) != nil {
		return false
	}
	if event.Type == string(goopenai.ResponseStreamEventOutputTextDelta) {
		d, _ := event.Delta.(string)
		return d != ""
	}
	for _, c := range event.Choices {
		if c.Delta.Content != "" {
			return true
		}
	}
	return false
}

func (b *timedBody) Read(p []byte) (int, error) {
	if len(b.rest) == 0 {
		line, ok := <-b.lines
		if !ok {
			return 0, b.err
		}
		b.rest = line
	}
	n := copy(p, b.rest)
	b.rest = b.rest[n:]
	return n, nil
}

// Close closes the body and waits for the pump to stop.
func (b *timedBody) Close() error {
	err := b.body.Close()
	for range b.lines {
	}
	return err
}

// textArrivals returns the arrival times of the events with text so far.
func (b *timedBody) textArrivals() []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Duration(nil), b.arrivals...)
}
