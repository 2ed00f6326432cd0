package openai

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/chatbot-dev/chatbot/conversation"
)

// Errors the client produces itself.
var (
	errStalled = errors.New("model stream stalled")
	errCut     = errors.New("model stream ended without finishing")
	errNotAPI  = errors.New("the proxy answered with a web page, not an API response")
)

// Kind names a class of model error, for texts, metrics and `chatbot check`.
type Kind string

// The kinds of model error.
const (
	KindAuth        Kind = "auth"        // 401 from OpenAI: bad key
	KindProxyAuth   Kind = "proxy_auth"  // 401 from the Worker: bad proxy token
	KindQuota       Kind = "quota"       // 429 insufficient_quota
	KindRateLimit   Kind = "rate_limit"  // 429
	KindNotFound    Kind = "not_found"   // 404 model_not_found
	KindContext     Kind = "context"     // 400 context_length_exceeded
	KindBadRequest  Kind = "bad_request" // other 4xx
	KindServer      Kind = "server"      // 5xx
	KindUnreachable Kind = "unreachable" // DNS, connect, TLS
	KindBadProxy    Kind = "bad_proxy"   // base_url answers, but not as an OpenAI API
	KindStalled     Kind = "stalled"     // watchdog
	KindCut         Kind = "cut"         // stream broken mid-way
	KindCanceled    Kind = "canceled"    // caller's context
	KindUnknown     Kind = "unknown"
)

// Error is a classified model error. Its Error() never contains the API key.
type Error struct {
	Kind   Kind
	Status int // HTTP status, 0 when none
	Code   string
	msg    string // the cause, redacted
}

func (e *Error) Error() string {
	if e.Status > 0 {
		return fmt.Sprintf("model %s (HTTP %d %s): %s", e.Kind, e.Status, e.Code, e.msg)
	}
	return fmt.Sprintf("model %s: %s", e.Kind, e.msg)
}

// KindOf returns the kind of a model error (KindUnknown for others).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnknown
}

// Is makes a rate-limit error match conversation.ErrRateLimited, which the
// engine's adaptive limit on concurrent calls looks for.
func (e *Error) Is(target error) bool {
	return target == conversation.ErrRateLimited && e.Kind == KindRateLimit
}

// userError classifies err and wraps it in a *conversation.Error with a safe text;
// where the model refused something the config asks for, the text names the key.
func (c *Client) userError(err error, model string) error {
	var ue *conversation.Error
	if errors.As(err, &ue) {
		return ue // already a text for the user
	}
	e := classify(err)
	e.msg = c.redact(e.msg)
	text := userTexts[e.Kind]
	if hint := configHint(err, e.Kind, model); hint != "" {
		text = hint
	}
	return &conversation.Error{Text: text, Err: e}
}

var userTexts = map[Kind]string{
	KindAuth:        "The model service rejected the bot's API key. The bot's owner needs to check openai.api_key.",
	KindProxyAuth:   "The proxy rejected the bot's token. The bot's owner needs to check openai.api_key against the Worker's PROXY_TOKEN.",
	KindQuota:       "The OpenAI account behind this bot has run out of quota. The bot's owner needs to check billing.",
	KindRateLimit:   "The model is busy (rate limit). Please try again in a minute.",
	KindNotFound:    "The configured model was not found. The bot's owner needs to check openai.model.",
	KindContext:     "This conversation is too long for the model. Send /reset to start over.",
	KindBadRequest:  "The model service refused the request. Please try again, or /reset.",
	KindServer:      "The model service is having trouble. Please try again in a minute.",
	KindUnreachable: "I can't reach the model service right now. Please try again later.",
	KindBadProxy:    "The model proxy's address does not answer like an OpenAI API. The bot's owner needs to check openai.base_url (it usually ends in /v1).",
	KindStalled:     "The model stopped answering, so the reply was cut off. Please try again.",
	KindCut:         "The connection to the model broke, so the reply was cut off. Please try again.",
	KindCanceled:    "The answer was cancelled.",
	KindUnknown:     "Something went wrong while asking the model. Please try again.",
}

// classify maps go-openai's and net/http's errors onto a Kind.
func classify(err error) *Error {
	e := &Error{Kind: KindUnknown, msg: err.Error()}
	var apiErr *goopenai.APIError
	var reqErr *goopenai.RequestError
	var netErr net.Error
	switch {
	case errors.Is(err, errStalled):
		e.Kind = KindStalled
	case errors.Is(err, errCut):
		e.Kind = KindCut
	case errors.Is(err, errNotAPI):
		e.Kind = KindBadProxy
	case errors.As(err, &apiErr):
		e.Status, e.Code = apiErr.HTTPStatusCode, fmt.Sprint(apiErr.Code)
		if apiErr.Code == nil {
			e.Code = ""
		}
		e.Kind = kindOfStatus(e.Status, e.Code, apiErr.Type, apiErr.Message)
	case errors.As(err, &reqErr):
		e.Status = reqErr.HTTPStatusCode
		e.Kind = kindOfStatus(e.Status, "", "", string(reqErr.Body))
		if e.Status == http.StatusNotFound { // a 404 without OpenAI's error: a wrong base_url
			e.Kind = KindBadProxy
		}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e.Kind = KindCanceled
	case isUnreachable(err):
		e.Kind = KindUnreachable
	case errors.As(err, &netErr), strings.Contains(err.Error(), "unexpected EOF"),
		strings.Contains(err.Error(), "connection reset"):
		e.Kind = KindCut
	}
	return e
}

// kindOfStatus classifies an HTTP error; status 0 is an error sent inside the stream.
func kindOfStatus(status int, code, typ, msg string) Kind {
	switch {
	case code == "invalid_proxy_token":
		return KindProxyAuth
	case code == "path_not_allowed" || code == "invalid_path":
		return KindBadProxy // the Worker refuses a call it does not forward
	case code == "insufficient_quota" || typ == "insufficient_quota":
		return KindQuota
	case code == "model_not_found":
		return KindNotFound
	case code == "context_length_exceeded" || strings.Contains(msg, "maximum context length"):
		return KindContext
	case status == http.StatusUnauthorized || status == http.StatusForbidden || code == "invalid_api_key":
		return KindAuth
	case status == http.StatusTooManyRequests || code == "rate_limit_exceeded":
		return KindRateLimit
	case status == http.StatusNotFound:
		return KindNotFound
	case status >= 500 || typ == "server_error":
		return KindServer
	case status >= 400:
		return KindBadRequest
	case status == 0:
		return KindCut
	}
	return KindUnknown
}

func isUnreachable(err error) bool {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	if errors.As(err, &dnsErr) {
		return true
	}
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "tls:") || strings.Contains(s, "x509:") || strings.Contains(s, "connection refused")
}

// retryable reports whether a failed call may be tried again (before any token).
func retryable(err error) bool {
	switch classify(err).Kind {
	case KindRateLimit, KindServer, KindUnreachable, KindCut:
		return true
	}
	return false
}

// redact removes the API key from s.
func (c *Client) redact(s string) string {
	return conversation.RedactSecret(s, c.opt.APIKey)
}

// parseRetryAfter reads retry-after-ms, then Retry-After in seconds or as a date.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseFloat(h.Get("Retry-After-Ms"), 64); err == nil && ms > 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 {
		return time.Duration(secs * float64(time.Second))
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

func transportOf(hc *http.Client) http.RoundTripper {
	if hc.Transport != nil {
		return hc.Transport
	}
	return http.DefaultTransport
}
