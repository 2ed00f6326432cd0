// Package openaitest is a fake OpenAI API for tests, in the manner of
// net/http/httptest: a loopback server speaking the Responses API and the Chat
// Completions API with server-sent events as OpenAI sends them, OpenAI's error
// format, and scripted faults (429 with Retry-After, 500, 401, stalls, streams
// cut mid-way, a server without /responses).
package openaitest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Message is one chat message as the fake received it: its text, and the data:
// URLs of its images and files.
type Message struct {
	Role    string
	Content string
	Images  []string
	Files   []File
	// ToolCalls are an assistant's function calls, as "name arguments".
	ToolCalls []string
}

// File is a file part: its name and data: URL.
type File struct {
	Name    string
	DataURL string
}

// UnmarshalJSON reads a Chat Completions message, whose content is a string or
// a list of parts.
func (m *Message) UnmarshalJSON(b []byte) error {
	var raw struct {
		Role      string          `json:"role"`
		Content   json.RawMessage `json:"content"`
		ToolCalls []struct {
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = contentMessage(raw.Role, raw.Content)
	for _, c := range raw.ToolCalls {
		m.ToolCalls = append(m.ToolCalls, c.Function.Name+" "+c.Function.Arguments)
	}
	return nil
}

// Request is one model call the fake received, on either API. For a Responses
// call, Messages holds the input items' roles and texts and Instructions the
// system prompt; Body is the whole JSON body as sent.
type Request struct {
	// API is "responses" or "chat".
	API          string    `json:"-"`
	Model        string    `json:"model"`
	Messages     []Message `json:"messages"`
	Stream       bool      `json:"stream"`
	Instructions string    `json:"-"`
	// Tools are the names of the function tools offered.
	Tools  []string       `json:"-"`
	Body   map[string]any `json:"-"`
	Header http.Header    `json:"-"`
}

// Field returns the value at a dotted path of the request's JSON body
// ("store", "reasoning.effort"), or nil.
func (r Request) Field(path string) any {
	var v any = r.Body
	for _, key := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[key]
	}
	return v
}

// LastUser returns the text of the request's last user message.
func (r Request) LastUser() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i].Content
		}
	}
	return ""
}

// Reply scripts one answer. The zero Reply streams nothing and finishes.
type Reply struct {
	Tokens     []string      // streamed one per chunk
	FirstDelay time.Duration // before the first chunk
	TokenDelay time.Duration // between chunks

	// An HTTP error instead of a stream, in OpenAI's error format.
	Status     int
	Code       string
	Type       string
	Message    string
	RetryAfter string // the Retry-After header, if any

	StallAfter int  // with Stall: after this many tokens, send nothing until the client leaves
	Stall      bool //
	CutAfter   int  // with Cut: after this many tokens, drop the connection
	Cut        bool //
	// StreamError sends an error event after the tokens, as OpenAI does mid-stream.
	StreamError string

	// Reasoning streams a reasoning summary before the text (Responses API only),
	// one part per entry, each in word-sized deltas.
	Reasoning []string
	// Citations are url_citation annotations on the text (Responses API only).
	Citations []Citation
	// Calls are function calls the model makes after its text, on either API.
	Calls []Call
}

// Call is a function call the fake model makes.
type Call struct {
	Name      string
	Arguments string // JSON
}

// Citation is a url_citation annotation.
type Citation struct {
	URL   string
	Title string
}

// Text is a Reply that streams s in word-sized tokens.
func Text(s string) Reply { return Reply{Tokens: Tokenize(s)} }

// Error is a Reply that fails with an HTTP status and an OpenAI error code.
func Error(status int, code, message string) Reply {
	typ := "invalid_request_error"
	switch {
	case status == http.StatusTooManyRequests:
		typ = "requests"
	case status >= 500:
		typ = "server_error"
	}
	return Reply{Status: status, Code: code, Type: typ, Message: message}
}

// Tokenize splits s into chunks the size of typical model tokens (a word with its
// leading space), so that joining them gives s back.
func Tokenize(s string) []string {
	var out []string
	start := 0
	for i := 1; i < len(s); i++ {
		if (s[i] == ' ' || s[i] == '\n') && s[i-1] != ' ' && s[i-1] != '\n' {
			out = append(out, s[start:i])
			start = i
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// Server is the fake. Replies come from the queue (Enqueue) first, then from the
// Handler; by default it echoes the last user message.
type Server struct {
	*httptest.Server
	// APIKey, when set, is required as "Bearer <APIKey>"; others get a 401.
	APIKey string
	// Models is what GET /v1/models lists and the calls accept; default the
	// model "gpt-5.4-mini".
	Models []string
	// NoResponses makes /v1/responses answer 404, as servers with only Chat
	// Completions (Ollama, vLLM, most compatible servers) do.
	NoResponses bool

	mu       sync.Mutex
	queue    []Reply
	handler  func(Request) Reply
	requests []Request
	canceled int
	media    media
}

// NewServer starts a fake on loopback. Close it when done.
func NewServer() *Server {
	s, h := newServer()
	s.Server = httptest.NewServer(h)
	return s
}

// NewTLSServer starts a fake on loopback that speaks HTTPS and HTTP/2, as
// OpenAI and Cloudflare's Workers do. Its Client (or a transport whose
// TLSClientConfig trusts Certificate, with ForceAttemptHTTP2) reaches it over
// HTTP/2. Close it when done.
func NewTLSServer() *Server {
	s, h := newServer()
	s.Server = httptest.NewUnstartedServer(h)
	s.EnableHTTP2 = true
	s.StartTLS()
	return s
}

// newServer returns a fake without its httptest server, and its handler.
func newServer() (*Server, http.Handler) {
	s := &Server{Models: []string{"gpt-5.4-mini"}}
	s.handler = func(r Request) Reply { return Text("You said: " + r.LastUser()) }
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	mux.HandleFunc("POST /v1/responses", s.responses)
	mux.HandleFunc("POST /v1/audio/transcriptions", s.transcriptions)
	mux.HandleFunc("POST /v1/images/generations", s.imageGenerations)
	mux.HandleFunc("GET /v1/models", s.models)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "invalid_request_error", "unknown_url", "Unknown request URL: "+r.Method+" "+r.URL.Path)
	})
	return s, mux
}

// BaseURL is the value for openai.base_url.
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// Enqueue adds replies used, in order, by the next calls.
func (s *Server) Enqueue(r ...Reply) {
	s.mu.Lock()
	s.queue = append(s.queue, r...)
	s.mu.Unlock()
}

// SetHandler computes replies once the queue is empty.
func (s *Server) SetHandler(h func(Request) Reply) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

// Requests returns the model calls received so far, on both APIs.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Canceled counts calls whose client went away before the reply was complete.
func (s *Server) Canceled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.canceled
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.APIKey == "" || r.Header.Get("Authorization") == "Bearer "+s.APIKey {
		return true
	}
	writeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key",
		"Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.")
	return false
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list"}
	for _, m := range s.Models {
		list.Data = append(list.Data, model{ID: m, Object: "model", Created: 1700000000, OwnedBy: "system"})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(list)
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	var req Request
	raw, ok := decodeBody(w, r, &req)
	if !ok {
		return
	}
	req.API, req.Body, req.Header = "chat", raw, r.Header.Clone()
	if tools, ok := raw["tools"].([]any); ok {
		for _, t := range tools {
			fn, _ := t.(map[string]any)["function"].(map[string]any)
			name, _ := fn["name"].(string)
			req.Tools = append(req.Tools, name)
		}
	}
	reply, ok := s.take(w, req)
	if !ok {
		return
	}
	if !req.Stream {
		s.complete(w, req, reply)
		return
	}
	s.stream(w, r, req, reply)
}

// decodeBody reads a JSON body into v and into a generic map.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) (map[string]any, bool) {
	var raw map[string]any
	b, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(b, &raw)
	}
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "We could not parse the JSON body of your request.")
		return nil, false
	}
	return raw, true
}

// take records req and picks its reply; it answers the errors itself (unknown
// model, scripted HTTP errors) and then reports false.
func (s *Server) take(w http.ResponseWriter, req Request) (Reply, bool) {
	s.mu.Lock()
	s.requests = append(s.requests, req)
	reply, queued := Reply{}, len(s.queue) > 0
	if queued {
		reply, s.queue = s.queue[0], s.queue[1:]
	}
	handler := s.handler
	s.mu.Unlock()
	if !queued {
		reply = handler(req) // outside the lock: a handler may block
	}
	if !s.modelKnown(req.Model) {
		writeError(w, http.StatusNotFound, "invalid_request_error", "model_not_found",
			fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", req.Model))
		return reply, false
	}
	if reply.Status != 0 {
		if reply.RetryAfter != "" {
			w.Header().Set("Retry-After", reply.RetryAfter)
		}
		writeError(w, reply.Status, reply.Type, reply.Code, reply.Message)
		return reply, false
	}
	return reply, true
}

func (s *Server) modelKnown(m string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, known := range s.Models {
		if known == m {
			return true
		}
	}
	return false
}

// complete answers a non-streaming call.
func (s *Server) complete(w http.ResponseWriter, req Request, reply Reply) {
	text := strings.Join(reply.Tokens, "")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"id": "chatcmpl-fake", "object": "chat.completion", "created": time.Now().Unix(), "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": text}}},
		"usage": usage(req, reply),
	})
}

func usage(req Request, reply Reply) map[string]int {
	in := len(Tokenize(req.Instructions))
	for _, m := range req.Messages {
		in += len(Tokenize(m.Content)) + 4
	}
	return map[string]int{"prompt_tokens": in, "completion_tokens": len(reply.Tokens),
		"total_tokens": in + len(reply.Tokens)}
}

func writeError(w http.ResponseWriter, status int, typ, code, message string) {
	var c any
	if code != "" {
		c = code
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"message": message, "type": typ, "param": nil, "code": c}})
}
