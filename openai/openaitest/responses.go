package openaitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// responsesBody is the part of a Responses API request the fake reads.
type responsesBody struct {
	Model        string          `json:"model"`
	Instructions string          `json:"instructions"`
	Input        json.RawMessage `json:"input"`
	Stream       bool            `json:"stream"`
	Tools        []struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tools"`
}

// inputItem is one input item: an easy message (content a string) or a message
// with content parts.
type inputItem struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Output    string          `json:"output"`
}

// responses answers POST /v1/responses. Only streaming calls are served, as the
// bot makes no others.
func (s *Server) responses(w http.ResponseWriter, r *http.Request) {
	if s.NoResponses {
		http.NotFound(w, r) // what Ollama-like servers answer: a bare 404
		return
	}
	if !s.authorized(w, r) {
		return
	}
	var body responsesBody
	raw, ok := decodeBody(w, r, &body)
	if !ok {
		return
	}
	req := Request{API: "responses", Model: body.Model, Stream: body.Stream, Instructions: body.Instructions,
		Body: raw, Header: r.Header.Clone(), Messages: inputMessages(body.Input)}
	for _, t := range body.Tools {
		if t.Type == "function" {
			req.Tools = append(req.Tools, t.Name)
		}
	}
	if !req.Stream {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "The fake serves only streaming responses.")
		return
	}
	reply, ok := s.take(w, req)
	if !ok {
		return
	}
	s.streamResponse(w, r, req, reply)
}

// inputMessages reads the input (a string or a list of items) as messages with
// their texts and the data URLs of their images and files.
func inputMessages(input json.RawMessage) []Message {
	var text string
	if json.Unmarshal(input, &text) == nil {
		return []Message{{Role: "user", Content: text}}
	}
	var items []inputItem
	json.Unmarshal(input, &items)
	msgs := make([]Message, 0, len(items))
	for _, it := range items {
		switch it.Type {
		case "", "message":
			msgs = append(msgs, contentMessage(it.Role, it.Content))
		case "function_call":
			msgs = append(msgs, Message{Role: "assistant", ToolCalls: []string{it.Name + " " + it.Arguments}})
		case "function_call_output":
			msgs = append(msgs, Message{Role: "tool", Content: it.Output})
		}
	}
	return msgs
}

// contentMessage reads a content that is a string or a list of parts.
func contentMessage(role string, content json.RawMessage) Message {
	m := Message{Role: role}
	if json.Unmarshal(content, &m.Content) == nil {
		return m
	}
	var parts []struct {
		Type     string          `json:"type"`
		Text     string          `json:"text"`
		ImageURL json.RawMessage `json:"image_url"`
		FileData string          `json:"file_data"`
		Filename string          `json:"filename"`
	}
	json.Unmarshal(content, &parts)
	var b strings.Builder
	for _, p := range parts {
		switch p.Type {
		case "input_text", "text", "output_text":
			b.WriteString(p.Text)
		case "input_image", "image_url":
			var url string
			if json.Unmarshal(p.ImageURL, &url) != nil { // Chat Completions: {"url": …}
				var obj struct{ URL string }
				json.Unmarshal(p.ImageURL, &obj)
				url = obj.URL
			}
			m.Images = append(m.Images, url)
		case "input_file":
			m.Files = append(m.Files, File{Name: p.Filename, DataURL: p.FileData})
		}
	}
	m.Content = b.String()
	return m
}

// responseEvents writes one response's events in order, numbered.
type responseEvents struct {
	*sse
	seq  int
	resp map[string]any
}

func (e *responseEvents) emit(typ string, fields map[string]any) bool {
	fields["type"] = typ
	fields["sequence_number"] = e.seq
	e.seq++
	return e.send(typ, fields)
}

// streamResponse streams a reply as the Responses API does: response.created,
// response.in_progress, a reasoning item with its summary when scripted, the
// message item with output_text deltas and url_citation annotations, then
// response.completed with the usage. There is no [DONE].
func (s *Server) streamResponse(w http.ResponseWriter, r *http.Request, req Request, reply Reply) {
	e := &responseEvents{sse: s.startSSE(w, r), resp: map[string]any{
		"id": "resp_fake", "object": "response", "created_at": time.Now().Unix(), "status": "in_progress",
		"model": req.Model, "output": []any{}, "store": false, "usage": nil,
	}}
	if !e.wait(reply.FirstDelay) || !e.emit("response.created", map[string]any{"response": e.resp}) ||
		!e.emit("response.in_progress", map[string]any{"response": e.resp}) {
		e.gone()
		return
	}
	var output []any
	if len(reply.Reasoning) > 0 {
		item, ok := e.reasoning(reply)
		if !ok {
			return
		}
		output = append(output, item)
	}
	item, ok := e.message(reply, len(output))
	if !ok {
		return
	}
	if reply.StreamError != "" {
		e.emit("error", map[string]any{"code": "server_error", "message": reply.StreamError, "param": nil})
		return
	}
	output = append(output, item)
	for i, c := range reply.Calls {
		call, ok := e.functionCall(c, i, len(output))
		if !ok {
			return
		}
		output = append(output, call)
	}
	e.resp["status"], e.resp["output"] = "completed", output
	u := usage(req, reply)
	e.resp["usage"] = map[string]any{"input_tokens": u["prompt_tokens"], "input_tokens_details": map[string]int{"cached_tokens": 0},
		"output_tokens": u["completion_tokens"], "output_tokens_details": map[string]int{"reasoning_tokens": 0},
		"total_tokens": u["total_tokens"]}
	e.emit("response.completed", map[string]any{"response": e.resp})
}

// reasoning streams the reasoning item and its summary parts.
func (e *responseEvents) reasoning(reply Reply) (map[string]any, bool) {
	id := "rs_fake"
	if !e.emit("response.output_item.added", map[string]any{"output_index": 0,
		"item": map[string]any{"id": id, "type": "reasoning", "summary": []any{}}}) {
		e.gone()
		return nil, false
	}
	var summary []any
	for i, part := range reply.Reasoning {
		at := map[string]any{"item_id": id, "output_index": 0, "summary_index": i}
		if !e.emit("response.reasoning_summary_part.added", with(at, "part", map[string]any{"type": "summary_text", "text": ""})) {
			e.gone()
			return nil, false
		}
		for _, d := range Tokenize(part) {
			if !e.wait(reply.TokenDelay) || !e.emit("response.reasoning_summary_text.delta", with(at, "delta", d)) {
				e.gone()
				return nil, false
			}
		}
		done := map[string]any{"type": "summary_text", "text": part}
		e.emit("response.reasoning_summary_text.done", with(at, "text", part))
		e.emit("response.reasoning_summary_part.done", with(at, "part", done))
		summary = append(summary, done)
	}
	item := map[string]any{"id": id, "type": "reasoning", "summary": summary}
	return item, e.emit("response.output_item.done", map[string]any{"output_index": 0, "item": item})
}

// message streams the assistant message item: its text deltas, then its
// annotations.
func (e *responseEvents) message(reply Reply, index int) (map[string]any, bool) {
	id := "msg_fake"
	at := map[string]any{"item_id": id, "output_index": index, "content_index": 0}
	if !e.emit("response.output_item.added", map[string]any{"output_index": index, "item": map[string]any{
		"id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": []any{}}}) ||
		!e.emit("response.content_part.added", with(at, "part", map[string]any{"type": "output_text", "text": "", "annotations": []any{}})) {
		e.gone()
		return nil, false
	}
	if !e.tokens(reply, func(tok string) bool {
		return e.emit("response.output_text.delta", with(with(at, "delta", tok), "logprobs", []any{}))
	}) {
		return nil, false
	}
	text := strings.Join(reply.Tokens, "")
	annotations := make([]any, len(reply.Citations))
	for i, c := range reply.Citations {
		annotations[i] = map[string]any{"type": "url_citation", "url": c.URL, "title": c.Title, "start_index": 0, "end_index": len(text)}
		e.emit("response.output_text.annotation.added", with(with(at, "annotation_index", i), "annotation", annotations[i]))
	}
	part := map[string]any{"type": "output_text", "text": text, "annotations": annotations, "logprobs": []any{}}
	e.emit("response.output_text.done", with(at, "text", text))
	e.emit("response.content_part.done", with(at, "part", part))
	item := map[string]any{"id": id, "type": "message", "status": "completed", "role": "assistant", "content": []any{part}}
	return item, e.emit("response.output_item.done", map[string]any{"output_index": index, "item": item})
}

// functionCall streams one function_call item: added, its arguments, done.
func (e *responseEvents) functionCall(c Call, n, index int) (map[string]any, bool) {
	id := fmt.Sprintf("fc_fake_%d", n)
	item := map[string]any{"id": id, "type": "function_call", "status": "in_progress",
		"call_id": fmt.Sprintf("call_fake_%d", n), "name": c.Name, "arguments": ""}
	at := map[string]any{"item_id": id, "output_index": index}
	if !e.emit("response.output_item.added", map[string]any{"output_index": index, "item": with(item, "arguments", "")}) ||
		!e.emit("response.function_call_arguments.delta", with(at, "delta", c.Arguments)) ||
		!e.emit("response.function_call_arguments.done", with(at, "arguments", c.Arguments)) {
		e.gone()
		return nil, false
	}
	item["arguments"], item["status"] = c.Arguments, "completed"
	return item, e.emit("response.output_item.done", map[string]any{"output_index": index, "item": item})
}

// with returns a copy of m with key set to v.
func with(m map[string]any, key string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, x := range m {
		out[k] = x
	}
	out[key] = v
	return out
}
