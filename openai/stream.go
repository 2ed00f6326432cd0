package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
)

// openStream posts body (a go-openai request type) as JSON to path under the
// base URL and returns the answer's event stream. Errors are what go-openai
// returns for the same answers: *goopenai.APIError for OpenAI's JSON errors,
// *goopenai.RequestError for other bodies, and errNotAPI for a web page; a
// refusal's Retry-After (or retry-after-ms) goes into retryAfter. The request's
// JSON is dropped once it is sent, not kept for the stream's life.
func (c *Client) openStream(ctx context.Context, path string, body any, retryAfter *time.Duration) (*sseReader, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	sent := &requestJSON{b: b}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+path, &onceReader{rest: b})
	if err != nil {
		return nil, err
	}
	req.ContentLength = int64(len(b))
	req.GetBody = sent.again
	if c.opt.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.opt.APIKey)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := c.http.Do(req)
	sent.release() // past the answer's headers, no transport sends it again
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < http.StatusOK || resp.StatusCode >= http.StatusBadRequest {
		defer resp.Body.Close()
		*retryAfter = parseRetryAfter(resp.Header, time.Now())
		return nil, errorAnswer(resp)
	}
	if resp.StatusCode < 300 && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		resp.Body.Close() // a web page where a stream was asked for: base_url is wrong
		return nil, errNotAPI
	}
	return newSSEReader(resp.Body), nil
}

// errorAnswer reads a failed call's answer: OpenAI's {"error": {...}} as an
// *goopenai.APIError, anything else as a *goopenai.RequestError with the body.
func errorAnswer(resp *http.Response) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read the error answer: %w", err)
	}
	var res goopenai.ErrorResponse
	if err := json.Unmarshal(body, &res); err != nil || res.Error == nil {
		return &goopenai.RequestError{HTTPStatus: resp.Status, HTTPStatusCode: resp.StatusCode, Err: err, Body: body}
	}
	res.Error.HTTPStatus, res.Error.HTTPStatusCode = resp.Status, resp.StatusCode
	return res.Error
}

var errBodyReleased = errors.New("request body already released")

// requestJSON is a request's body. The transport may read it again (GetBody)
// to retry on a fresh connection until the answer's headers come; then release
// drops it, and each reader drops its bytes once read or closed, so that a
// transport that keeps the request for the stream's life keeps no body.
type requestJSON struct {
	mu sync.Mutex
	b  []byte
}

// again is the request's GetBody.
func (j *requestJSON) again() (io.ReadCloser, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.b == nil {
		return nil, errBodyReleased
	}
	return &onceReader{rest: j.b}, nil
}

func (j *requestJSON) release() {
	j.mu.Lock()
	j.b = nil
	j.mu.Unlock()
}

// onceReader reads its bytes once and forgets them at the end or on Close
// (which a transport may call from another goroutine).
type onceReader struct {
	mu   sync.Mutex
	rest []byte
}

func (r *onceReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.rest) == 0 {
		r.rest = nil
		return 0, io.EOF
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	if len(r.rest) == 0 {
		r.rest = nil
	}
	return n, nil
}

func (r *onceReader) Close() error {
	r.mu.Lock()
	r.rest = nil
	r.mu.Unlock()
	return nil
}
