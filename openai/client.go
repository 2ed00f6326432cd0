// Package openai is the bot's model: go-openai pointed at the owner's proxy
// (openai.base_url), streaming, with retries before the first token, a stall
// watchdog, and errors turned into short texts a user can act on.
// Nothing else in the project imports go-openai.
package openai

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/chatbot-dev/chatbot/conversation"
)

var _ conversation.Model = (*Client)(nil)

// Options configure a Client. Zero values take the defaults noted.
type Options struct {
	BaseURL string // e.g. https://ai-proxy.example.workers.dev/v1
	APIKey  string // the OpenAI key, or the Worker's proxy token
	Model   string
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
}

// Client streams chat completions through the proxy. It is safe for concurrent use.
type Client struct {
	api *goopenai.Client
	opt Options
}

// New returns a Client.
func New(opt Options) *Client {
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
	hc := opt.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	wrapped := *hc
	wrapped.Transport = &retryAfterTransport{next: transportOf(hc)}
	cfg := goopenai.DefaultConfig(opt.APIKey)
	cfg.BaseURL = strings.TrimRight(opt.BaseURL, "/")
	cfg.HTTPClient = &wrapped
	return &Client{api: goopenai.NewClientWithConfig(cfg), opt: opt}
}

// Name is the configured model.
func (c *Client) Name() string { return c.opt.Model }

// Stream sends msgs and calls onDelta with each piece of the reply as it arrives.
// Before the first token it retries 429, 5xx and connection errors with backoff and
// jitter, honouring Retry-After. Its errors are *conversation.Error values whose
// text is safe to show; none contains the key.
func (c *Client) Stream(ctx context.Context, msgs []conversation.Message, onDelta func(string)) (conversation.Usage, error) {
	req := goopenai.ChatCompletionRequest{
		Model:         c.opt.Model,
		Messages:      toOpenAI(msgs),
		Stream:        true,
		StreamOptions: &goopenai.StreamOptions{IncludeUsage: true},
	}
	for attempt := 0; ; attempt++ {
		usage, started, retryAfter, err := c.streamOnce(ctx, req, onDelta)
		if err == nil {
			return usage, nil
		}
		wait, retry := c.retryWait(attempt, retryAfter, err)
		if started || !retry || ctx.Err() != nil {
			return usage, c.userError(err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return usage, c.userError(err)
		case <-t.C:
		}
	}
}

// streamOnce makes one call. started reports whether any text reached onDelta.
func (c *Client) streamOnce(ctx context.Context, req goopenai.ChatCompletionRequest, onDelta func(string)) (usage conversation.Usage, started bool, retryAfter time.Duration, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hint := &retryHint{}
	ctx = context.WithValue(ctx, retryHintKey{}, hint)
	watchdog := time.AfterFunc(c.opt.StallTimeout, func() { cancel(errStalled) })
	defer watchdog.Stop()

	stream, err := c.api.CreateChatCompletionStream(ctx, req)
	if err != nil {
		return usage, false, hint.get(), causeOf(ctx, err)
	}
	defer stream.Close()
	finished := false
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) && !finished {
			// go-openai also reports a body that ends without [DONE] as io.EOF.
			return usage, started, 0, errCut
		}
		if errors.Is(err, io.EOF) {
			return usage, started, 0, nil
		}
		if err != nil {
			return usage, started, 0, causeOf(ctx, err)
		}
		watchdog.Reset(c.opt.StallTimeout)
		if resp.Usage != nil {
			usage = conversation.Usage{PromptTokens: resp.Usage.PromptTokens, CompletionTokens: resp.Usage.CompletionTokens}
		}
		for _, ch := range resp.Choices {
			finished = finished || ch.FinishReason != ""
			if d := ch.Delta.Content; d != "" {
				started = true
				onDelta(d)
			}
		}
	}
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

// toOpenAI converts the engine's messages; a speaker's name goes in the text, as
// OpenAI's name field allows only [a-zA-Z0-9_-].
func toOpenAI(msgs []conversation.Message) []goopenai.ChatCompletionMessage {
	out := make([]goopenai.ChatCompletionMessage, len(msgs))
	for i, m := range msgs {
		content := m.Content
		if m.Name != "" && m.Role == conversation.RoleUser {
			content = m.Name + ": " + content
		}
		out[i] = goopenai.ChatCompletionMessage{Role: string(m.Role), Content: content}
	}
	return out
}
