package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
)

// openStream posts body (a go-openai request type) as JSON to path under the
// base URL and returns the answer's event stream, for an sseReader. Errors are what go-openai
// returns for the same answers: *goopenai.APIError for OpenAI's JSON errors,
// *goopenai.RequestError for other bodies, and errNotAPI for a web page; a
// refusal's Retry-After (or retry-after-ms) goes into retryAfter. The request's
// JSON is dropped once it is sent, not kept for the stream's life.
func (c *Client) openStream(ctx context.Context, path string, body any, retryAfter *time.Duration) (io.ReadCloser, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	sent := &requestJSON{b: b}
	req, err := c.streams.request(ctx, path, &onceReader{rest: b})
	if err != nil {
		return nil, err
	}
	req.ContentLength = int64(len(b))
	req.GetBody = sent.again
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
	// The transport keeps the response until the stream ends; its headers
	// (a dozen from OpenAI) are not needed past here.
	resp.Header = nil
	return resp.Body, nil
}

// streamRequests makes the requests of the streams: their URLs (one per API)
// and headers are the same for every call, so the calls share them, read-only.
// A client with a cookie jar adds to a request's headers: its calls get
// their own.
type streamRequests struct {
	baseURL string
	urls    map[string]*url.URL // by path
	header  http.Header
	shared  bool // the header may be shared
}

func newStreamRequests(baseURL, apiKey string, hc *http.Client) *streamRequests {
	s := &streamRequests{baseURL: baseURL, urls: make(map[string]*url.URL), header: make(http.Header),
		shared: hc.Jar == nil}
	for _, path := range []string{"/responses", "/chat/completions"} {
		if u, err := url.Parse(baseURL + path); err == nil {
			u.Host = strings.TrimSuffix(u.Host, ":") // as NewRequest does
			s.urls[path] = u
		}
	}
	if apiKey != "" {
		s.header.Set("Authorization", "Bearer "+apiKey)
	}
	s.header.Set("Content-Type", "application/json")
	s.header.Set("Accept", "text/event-stream")
	s.header.Set("Cache-Control", "no-cache")
	return s
}

// request is a POST of body to path, as http.NewRequestWithContext makes it.
func (s *streamRequests) request(ctx context.Context, path string, body io.ReadCloser) (*http.Request, error) {
	header := s.header
	if !s.shared {
		header = header.Clone()
	}
	u := s.urls[path]
	if u == nil { // a base URL that does not parse: NewRequest says why
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.baseURL+path, body)
		if err == nil {
			req.Header = header
		}
		return req, err
	}
	r := &http.Request{Method: http.MethodPost, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: header, Body: body, Host: u.Host}
	return r.WithContext(ctx), nil
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
