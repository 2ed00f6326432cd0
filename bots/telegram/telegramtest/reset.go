package telegramtest

import (
	"net"
	"net/http"
)

// SetReset installs f, which sees every call before the fake handles it (and
// before SetFault's function); when it returns true the fake closes the
// connection without an answer, with a TCP reset, as a broken network or a
// failing proxy does. Such a call has no effect; Calls lists it with Reset set.
func (s *Server) SetReset(f func(Call) bool) {
	s.mu.Lock()
	s.reset = f
	s.mu.Unlock()
}

// resetConnection records call and drops the connection it came on.
func (s *Server) resetConnection(w http.ResponseWriter, call Call) {
	call.Reset = true
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("telegramtest: the connection cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close with RST: "connection reset by peer"
	}
	conn.Close()
}
