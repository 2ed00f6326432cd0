package openaitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// sse writes server-sent events to one client and notices when it leaves.
type sse struct {
	s       *Server
	w       http.ResponseWriter
	r       *http.Request
	flusher http.Flusher
}

func (s *Server) startSSE(w http.ResponseWriter, r *http.Request) *sse {
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	return &sse{s: s, w: w, r: r, flusher: flusher}
}

// send writes one event (with an "event:" line when name is set); false means
// the client is gone.
func (e *sse) send(name string, v any) bool {
	b, _ := json.Marshal(v)
	if name != "" {
		if _, err := fmt.Fprintf(e.w, "event: %s\n", name); err != nil {
			return false
		}
	}
	if _, err := fmt.Fprintf(e.w, "data: %s\n\n", b); err != nil {
		return false
	}
	if e.flusher != nil {
		e.flusher.Flush()
	}
	return e.r.Context().Err() == nil
}

// wait sleeps d unless the client leaves first.
func (e *sse) wait(d time.Duration) bool {
	if d <= 0 {
		return e.r.Context().Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-e.r.Context().Done():
		return false
	case <-t.C:
		return true
	}
}

// gone counts a client that left before the reply was complete.
func (e *sse) gone() {
	e.s.mu.Lock()
	e.s.canceled++
	e.s.mu.Unlock()
}

// fault acts out the reply's stall or cut before token i (at the end, any stall
// or cut left); true means the stream ended.
func (e *sse) fault(reply Reply, i int) bool {
	at := func(n int) bool { return n == i || (i == len(reply.Tokens) && n > i) }
	switch {
	case reply.Stall && at(reply.StallAfter):
		<-e.r.Context().Done()
		e.gone()
		return true
	case reply.Cut && at(reply.CutAfter):
		cut(e.w)
		return true
	}
	return false
}

// tokens streams the reply's tokens with its delays and faults; false means the
// stream ended early.
func (e *sse) tokens(reply Reply, send func(tok string) bool) bool {
	for i, tok := range reply.Tokens {
		if e.fault(reply, i) {
			return false
		}
		if (i > 0 && !e.wait(reply.TokenDelay)) || !send(tok) {
			e.gone()
			return false
		}
	}
	return !e.fault(reply, len(reply.Tokens))
}

// stream answers with server-sent events in OpenAI's chunk format: a role chunk,
// one chunk per token, a finish chunk, a usage chunk when asked, then [DONE].
func (s *Server) stream(w http.ResponseWriter, r *http.Request, req Request, reply Reply) {
	e := s.startSSE(w, r)
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk",
			"created": time.Now().Unix(), "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	if !e.wait(reply.FirstDelay) || !e.send("", chunk(map[string]any{"role": "assistant", "content": ""}, nil)) {
		e.gone()
		return
	}
	if !e.tokens(reply, func(tok string) bool { return e.send("", chunk(map[string]any{"content": tok}, nil)) }) {
		return
	}
	if reply.StreamError != "" {
		e.send("", map[string]any{"error": map[string]any{"message": reply.StreamError, "type": "server_error", "param": nil, "code": nil}})
		return
	}
	finish := "stop"
	for i, c := range reply.Calls {
		finish = "tool_calls"
		call := map[string]any{"index": i, "id": fmt.Sprintf("call_fake_%d", i), "type": "function",
			"function": map[string]any{"name": c.Name, "arguments": ""}}
		args := map[string]any{"index": i, "function": map[string]any{"arguments": c.Arguments}}
		if !e.send("", chunk(map[string]any{"tool_calls": []any{call}}, nil)) ||
			!e.send("", chunk(map[string]any{"tool_calls": []any{args}}, nil)) {
			e.gone()
			return
		}
	}
	e.send("", chunk(map[string]any{}, finish))
	e.send("", map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": time.Now().Unix(),
		"model": req.Model, "choices": []any{}, "usage": usage(req, reply)})
	fmt.Fprint(w, "data: [DONE]\n\n")
	if e.flusher != nil {
		e.flusher.Flush()
	}
}

// cut drops the connection without ending the chunked body, as a broken network does.
func cut(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
		}
	}
}
