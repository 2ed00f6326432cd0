// Package openai is the bot's model: go-openai pointed at the owner's proxy
// (openai.base_url), streaming on the Responses API (or Chat Completions for
// servers without it), with retries before the first token, a stall watchdog,
// and errors turned into short texts a user can act on.
// Nothing else in the project imports go-openai.
package openai

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/chatbot-dev/chatbot/conversation"
)

var _ conversation.Model = (*Client)(nil)

// API names the model API a Client speaks.
type API string

// The model APIs. APIAuto starts on the Responses API and switches to Chat
// Completions for good when the server has no /responses.
const (
	APIAuto      API = "auto"
	APIResponses API = "responses"
	APIChat      API = "chat"
)

// Options configure a Client. Zero values take the defaults noted.
type Options struct {
	BaseURL string // e.g. https://ai-proxy.example.workers.dev/v1
	APIKey  string // the OpenAI key, or the Worker's proxy token
	Model   string // the default model
	// API is the model API; default APIAuto.
	API API
	// ReasoningEffort is sent as reasoning.effort (reasoning_effort on Chat
	// Completions) when set.
	ReasoningEffort string
	// ReasoningSummary asks the Responses API for a streamed reasoning summary.
	ReasoningSummary bool
	// WebSearch offers the built-in web_search tool (Responses API only).
	WebSearch bool
	// TranscriptionModel transcribes voice; default DefaultTranscriptionModel.
	TranscriptionModel string
	// ImageModel draws for /image; default DefaultImageModel.
	ImageModel string
	// MaxRetries is how often a call is retried on 429, 5xx or a connection error,
	// before the first token only. Negative means none; zero means 3.
	MaxRetries int
	// StallTimeout aborts a call that receives nothing for this long. Default 60 s.
	StallTimeout time.Duration
	// BackoffBase is the first retry's wait (doubling, with jitter) when the server
	// sends no Retry-After. Default 500 ms.
	BackoffBase time.Duration
	// MaxRetryAfter is the longest Retry-After honoured; a longer one fails the call
	// at once. Default 30 s.
	MaxRetryAfter time.Duration
	// HTTPClient is the transport; default one without an overall timeout (streams
	// are long), bounded by the watchdog and the caller's context instead.
	HTTPClient *http.Client
	// Logger receives the one line that says auto switched to Chat Completions.
	Logger *slog.Logger
}

// Client streams model replies through the proxy. It is safe for concurrent use.
type Client struct {
	api     *goopenai.Client // transcriptions, pictures and the model list
	http    *http.Client     // the streams
	streams *streamRequests
	opt     Options
	// chatOnly is set once APIAuto finds that the server has no /responses.
	chatOnly atomic.Bool
}

// New returns a Client.
func New(opt Options) *Client {
	if opt.API == "" {
		opt.API = APIAuto
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = 3
	}
	if opt.StallTimeout <= 0 {
		opt.StallTimeout = 60 * time.Second
	}
	if opt.BackoffBase <= 0 {
		opt.BackoffBase = 500 * time.Millisecond
	}
	if opt.MaxRetryAfter <= 0 {
		opt.MaxRetryAfter = 30 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	hc := opt.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	cfg := goopenai.DefaultConfig(opt.APIKey)
	cfg.BaseURL = strings.TrimRight(opt.BaseURL, "/")
	cfg.HTTPClient = hc
	return &Client{api: goopenai.NewClientWithConfig(cfg), http: hc, opt: opt,
		streams: newStreamRequests(cfg.BaseURL, opt.APIKey, hc)}
}

// Name is the default model.
func (c *Client) Name() string { return c.opt.Model }

// API is the model API in use now: APIResponses or APIChat.
func (c *Client) API() API {
	if c.opt.API == APIChat || c.chatOnly.Load() {
		return APIChat
	}
	return APIResponses
}

// Stream sends req and calls out.Text with each piece of the reply as it arrives.
// Before the first output it retries 429, 5xx and connection errors with backoff
// and jitter, honouring Retry-After. Its errors are *conversation.Error values
// whose text is safe to show; none contains the key.
//
// The caller's goroutine reads the stream, and waits on it most of the time, so
// the functions on its stack then (this one, streamOnce, a stream's read) keep
// small frames: see conversation's turn.
func (c *Client) Stream(ctx context.Context, req *conversation.ModelRequest, out conversation.ModelOutput) (conversation.Answer, error) {
	req = c.withModel(req)
	for attempt := 0; ; attempt++ {
		api := c.API()
		st := &streamState{out: out}
		err := c.streamOnce(ctx, api, req, st)
		if err == nil {
			return st.answer, nil
		}
		if !st.started && c.fallBack(api, err) {
			attempt--
			continue
		}
		if st.started || !c.waitToRetry(ctx, attempt, st.retryAfter, err) {
			return st.answer, c.userError(err, req.Model)
		}
	}
}

// withModel is req, naming the default model if it names none. (Not inlined,
// so that the copy goes to the heap rather than into Stream's frame.)
//
//go:noinline
func (c *Client) withModel(req *conversation.ModelRequest) *conversation.ModelRequest {
	if req.Model != "" {
		return req
	}
	named := *req
	named.Model = c.opt.Model
	return &named
}

// waitToRetry waits before the next attempt, if err is worth one; it reports
// whether to make it.
func (c *Client) waitToRetry(ctx context.Context, attempt int, retryAfter time.Duration, err error) bool {
	wait, retry := c.retryWait(attempt, retryAfter, err)
	if !retry || ctx.Err() != nil {
		return false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// fallBack switches APIAuto to Chat Completions for good when the Responses call
// failed because the server has no /responses (404 or 405 that is not about the
// model). It reports whether the call should be made again.
func (c *Client) fallBack(api API, err error) bool {
	if c.opt.API != APIAuto || api != APIResponses || !noResponsesAPI(err) {
		return false
	}
	if c.chatOnly.CompareAndSwap(false, true) {
		c.opt.Logger.Info("openai: the server has no Responses API; using Chat Completions from now on",
			"base_url", c.opt.BaseURL)
	}
	return true
}

// streamOnce makes one call, into st.
func (c *Client) streamOnce(ctx context.Context, api API, req *conversation.ModelRequest, st *streamState) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(c.opt.StallTimeout, func() { cancel(errStalled) })
	defer watchdog.Stop()
	stream, err := c.open(ctx, api, req, st)
	if err != nil {
		return causeOf(ctx, err)
	}
	defer stream.Close()
	for {
		err := stream.read(st)
		switch {
		case errors.Is(err, io.EOF) && !st.finished:
			// A body that ends without [DONE] is io.EOF too.
			return errCut
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return causeOf(ctx, err)
		}
		watchdog.Reset(c.opt.StallTimeout)
	}
}

// open starts the call on api; a refusal's Retry-After goes into st.
func (c *Client) open(ctx context.Context, api API, req *conversation.ModelRequest, st *streamState) (modelStream, error) {
	if api == APIChat {
		return c.openChat(ctx, req, &st.retryAfter)
	}
	return c.openResponse(ctx, req, &st.retryAfter)
}

// modelStream is one open stream of either API, read one event at a time.
type modelStream interface {
	// read reads one event into st; io.EOF ends the stream.
	read(st *streamState) error
	Close() error
}

// streamState is what a call has received so far.
type streamState struct {
	out        conversation.ModelOutput
	answer     conversation.Answer
	started    bool          // output reached out: no retry from here
	finished   bool          // the server said the reply is complete
	retryAfter time.Duration // the refusal's Retry-After
}

func (st *streamState) text(delta string) {
	if delta == "" {
		return
	}
	st.started = true
	st.out.Text(delta)
}

func (st *streamState) reasoning(delta string) {
	if delta == "" || st.out.Reasoning == nil {
		return
	}
	st.started = true
	st.out.Reasoning(delta)
}

// causeOf prefers the watchdog's cause over the context error it produced.
func causeOf(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
		return errStalled
	}
	return err
}

// retryWait says whether err is worth retrying and after how long.
func (c *Client) retryWait(attempt int, retryAfter time.Duration, err error) (time.Duration, bool) {
	if attempt >= c.opt.MaxRetries || !retryable(err) {
		return 0, false
	}
	if retryAfter > 0 {
		if retryAfter > c.opt.MaxRetryAfter {
			return 0, false
		}
		return retryAfter + rand.N(retryAfter/10+time.Millisecond), true
	}
	backoff := c.opt.BackoffBase << attempt
	return backoff/2 + rand.N(backoff/2+1), true // "equal jitter"
}

// userContent is a message's text as the model sees it: a speaker's name goes in
// the text, as OpenAI's name field allows only [a-zA-Z0-9_-].
func userContent(m conversation.Message) string {
	if m.Name != "" && m.Role == conversation.RoleUser {
		return m.Name + ": " + m.Content
	}
	return m.Content
}
