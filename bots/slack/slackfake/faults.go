package slackfake

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gorilla/websocket"
)

// Fault is what the fake answers instead of handling a Web API call (SetFault).
type Fault struct {
	// Status is the HTTP status, e.g. 429 or 503; default 200.
	Status int
	// Error is Slack's error code of an {"ok":false} answer, e.g. "ratelimited"
	// or "internal_error"; none when empty (the body is then Slack's HTML page
	// for 5xx statuses, as its load balancers answer).
	Error string
	// RetryAfter is the Retry-After header in seconds, for 429.
	RetryAfter int
	// Reset closes the connection with a TCP reset instead of answering.
	Reset bool
}

// Ratelimited is Slack's answer to a call over its rate limit.
func Ratelimited(seconds int) *Fault {
	return &Fault{Status: http.StatusTooManyRequests, Error: "ratelimited", RetryAfter: seconds}
}

// SetFault installs f, which sees every Web API call (its method, e.g.
// "chat.update", and its arguments) before the fake handles it; a non-nil Fault
// is answered instead, and the call has no effect. nil removes it.
func (s *Server) SetFault(f func(method string, args url.Values) *Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// faultFor returns the fault to answer a call with, if any.
func (s *Server) faultFor(method string, args url.Values) *Fault {
	s.mu.Lock()
	f := s.fault
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	return f(method, args)
}

// writeFault answers with f.
func writeFault(w http.ResponseWriter, f *Fault) {
	if f.Reset {
		resetConnection(w)
		return
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	if f.Error == "" && status >= 500 {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = w.Write([]byte("<html><body><h1>" + http.StatusText(status) + "</h1></body></html>"))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": f.Error})
}

// resetConnection drops the call's connection with a TCP reset.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("slackfake: the connection cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close()
}

// SendFrame sends data as one text frame on the newest Socket Mode connection,
// as it is: any envelope, valid or not. It waits for a connection, and returns
// false when the fake closed first or the frame could not be written.
func (s *Server) SendFrame(data []byte) bool {
	c := s.conn()
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, data) == nil
}
