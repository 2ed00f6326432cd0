package slackfake

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsConn is one Socket Mode connection.
type wsConn struct {
	ws   *websocket.Conn
	mu   sync.Mutex // serialises writes
	gone chan struct{}
	once sync.Once
}

// send writes one JSON message.
func (c *wsConn) send(v any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(v)
}

// ping sends a WebSocket ping, as Slack does to keep the connection alive.
func (c *wsConn) ping() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(5*time.Second))
}

func (c *wsConn) close() {
	c.once.Do(func() {
		close(c.gone)
		c.ws.Close()
	})
}

// connectionsOpen issues a one-time WebSocket URL, as apps.connections.open does.
func (s *Server) connectionsOpen(url.Values) response {
	s.mu.Lock()
	ticket := s.nextID("ticket-")
	s.tickets[ticket] = true
	s.mu.Unlock()
	ws := "ws" + strings.TrimPrefix(s.URL, "http") + "/link/?ticket=" + ticket + "&app_id=" + s.opt.AppID
	return ok(map[string]any{"url": ws})
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// serveSocket runs one Socket Mode connection: hello, pings, envelopes out,
// acknowledgements in.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	valid := s.tickets[ticket]
	delete(s.tickets, ticket)
	s.mu.Unlock()
	if !valid {
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &wsConn{ws: ws, gone: make(chan struct{})}
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.connects++
	n := len(s.conns)
	s.mu.Unlock()
	defer s.dropConn(c)
	hello := map[string]any{"type": "hello", "num_connections": n,
		"debug_info":      map[string]any{"host": "fake-slack", "build_number": 1, "approximate_connection_time": 3600},
		"connection_info": map[string]any{"app_id": s.opt.AppID}}
	if c.send(hello) != nil {
		return
	}
	s.workers.Go(func() { s.pingLoop(c) })
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var ack struct {
			EnvelopeID string `json:"envelope_id"`
		}
		if json.Unmarshal(data, &ack) == nil && ack.EnvelopeID != "" {
			s.acked(ack.EnvelopeID)
		}
	}
}

// dropConn forgets a closed connection.
func (s *Server) dropConn(c *wsConn) {
	c.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns = slices.DeleteFunc(s.conns, func(x *wsConn) bool { return x == c })
}

func (s *Server) pingLoop(c *wsConn) {
	t := time.NewTicker(s.opt.PingInterval)
	defer t.Stop()
	if c.ping() != nil {
		return
	}
	for {
		select {
		case <-c.gone:
			return
		case <-s.done:
			return
		case <-t.C:
			if c.ping() != nil {
				return
			}
		}
	}
}

// conn returns the newest connection, waiting for one; nil once closed.
func (s *Server) conn() *wsConn {
	for {
		s.mu.Lock()
		var c *wsConn
		if len(s.conns) > 0 {
			c = s.conns[len(s.conns)-1]
		}
		s.mu.Unlock()
		if c != nil {
			return c
		}
		select {
		case <-s.done:
			return nil
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Disconnect asks the clients to reconnect, as Slack does before it refreshes a
// connection (type disconnect, reason refresh_requested).
func (s *Server) Disconnect() {
	s.mu.Lock()
	conns := slices.Clone(s.conns)
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.send(map[string]any{"type": "disconnect", "reason": "refresh_requested",
			"debug_info": map[string]any{"host": "fake-slack"}})
	}
}

// Drop closes every connection without a word, as a broken network does.
func (s *Server) Drop() {
	s.mu.Lock()
	conns := slices.Clone(s.conns)
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}
