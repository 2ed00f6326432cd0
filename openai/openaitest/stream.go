package openaitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// stream answers with server-sent events in OpenAI's chunk format: a role chunk,
// one chunk per token, a finish chunk, a usage chunk when asked, then [DONE].
func (s *Server) stream(w http.ResponseWriter, r *http.Request, req Request, reply Reply) {
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send := func(v any) bool {
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return r.Context().Err() == nil
	}
	wait := func(d time.Duration) bool {
		if d <= 0 {
			return r.Context().Err() == nil
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-r.Context().Done():
			return false
		case <-t.C:
			return true
		}
	}
	gone := func() {
		s.mu.Lock()
		s.canceled++
		s.mu.Unlock()
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk",
			"created": time.Now().Unix(), "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}

	if !wait(reply.FirstDelay) || !send(chunk(map[string]any{"role": "assistant", "content": ""}, nil)) {
		gone()
		return
	}
	for i, tok := range reply.Tokens {
		if reply.Stall && i == reply.StallAfter {
			<-r.Context().Done()
			gone()
			return
		}
		if reply.Cut && i == reply.CutAfter {
			s.cut(w)
			return
		}
		if (i > 0 && !wait(reply.TokenDelay)) || !send(chunk(map[string]any{"content": tok}, nil)) {
			gone()
			return
		}
	}
	if reply.Stall && reply.StallAfter >= len(reply.Tokens) {
		<-r.Context().Done()
		gone()
		return
	}
	if reply.Cut && reply.CutAfter >= len(reply.Tokens) {
		s.cut(w)
		return
	}
	if reply.StreamError != "" {
		send(map[string]any{"error": map[string]any{"message": reply.StreamError, "type": "server_error", "param": nil, "code": nil}})
		return
	}
	send(chunk(map[string]any{}, "stop"))
	send(map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": time.Now().Unix(),
		"model": req.Model, "choices": []any{}, "usage": usage(req, reply)})
	fmt.Fprint(w, "data: [DONE]\n\n")
	if flusher != nil {
		flusher.Flush()
	}
}

// cut drops the connection without ending the chunked body, as a broken network does.
func (s *Server) cut(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
		}
	}
}
