package openai

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/chatbot-dev/chatbot/conversation"
)

// openResponse starts a Responses API stream. Nothing is kept at OpenAI: store is
// always false, and the history goes in input every time.
func (c *Client) openResponse(ctx context.Context, req *conversation.ModelRequest, retryAfter *time.Duration) (modelStream, error) {
	input := make([]any, 0, len(req.Messages)+4*len(req.Rounds))
	for _, m := range req.Messages {
		input = append(input, goopenai.ResponseInputMessage{Type: "message", Role: string(m.Role), Content: responseContent(m)})
	}
	input = append(input, roundItems(req.Rounds)...)
	noStore := false
	r := goopenai.CreateResponseRequest{
		Model:        req.Model,
		Instructions: req.Instructions,
		Input:        input,
		Store:        &noStore,
		Stream:       true,
	}
	if c.opt.ReasoningEffort != "" || c.opt.ReasoningSummary {
		r.Reasoning = &goopenai.ResponseReasoning{Effort: c.opt.ReasoningEffort}
		if c.opt.ReasoningSummary {
			r.Reasoning.Summary = "auto"
		}
	}
	if c.opt.WebSearch {
		r.Tools = []goopenai.ResponseTool{{Type: "web_search"}}
	}
	for _, t := range req.Tools {
		r.Tools = append(r.Tools, goopenai.NewResponseFunctionTool(goopenai.FunctionDefinition{
			Name: t.Name, Description: t.Description, Parameters: t.Parameters}))
	}
	if req.NoMoreCalls && len(req.Tools) > 0 {
		r.ToolChoice = "none"
	}
	body, err := c.openStream(ctx, "/responses", r, retryAfter)
	if err != nil {
		return nil, err
	}
	return &responseStream{sseReader: sseReader{body: body}}, nil
}

// responseContent is a message's content: its text, or with attachments a list
// of parts (the text, then each image or PDF as a data: URL of its exact bytes).
func responseContent(m conversation.Message) any {
	if len(m.Attachments) == 0 || m.Role != conversation.RoleUser {
		return userContent(m)
	}
	parts := []any{goopenai.ResponseInputText{Type: "input_text", Text: userContent(m)}}
	for _, a := range m.Attachments {
		switch {
		case a.Data == nil:
		case a.Kind == conversation.AttachImage:
			parts = append(parts, goopenai.ResponseInputImage{Type: "input_image", Detail: "auto", ImageURL: dataURL(a)})
		case a.Kind == conversation.AttachPDF:
			parts = append(parts, goopenai.ResponseInputFile{Type: "input_file", Filename: pdfName(a), FileData: dataURL(a)})
		}
	}
	return parts
}

// roundItems are a turn's tool rounds as input items: each function call the
// model made, then its output.
func roundItems(rounds []conversation.ToolRound) []any {
	var items []any
	for _, r := range rounds {
		for i, call := range r.Calls {
			items = append(items,
				map[string]any{"type": "function_call", "call_id": call.ID, "name": call.Name, "arguments": call.Arguments},
				goopenai.ResponseFunctionCallOutput{Type: "function_call_output", CallID: call.ID, Output: r.Results[i]})
		}
	}
	return items
}

// responseStream reads Responses API events: text and reasoning-summary deltas,
// citations, and the completed event with the usage. It has no [DONE]: the
// stream is whole when response.completed (or .incomplete) came.
type responseStream struct {
	sseReader
	summaryParts int
	seen         map[string]bool // cited URLs
}

func (s *responseStream) read(st *streamState) error {
	data, err := s.next()
	if err != nil {
		return err
	}
	return s.event(st, data)
}

// event takes one event in. (Apart from read, whose frame stays small while
// it waits: see Client.Stream.)
func (s *responseStream) event(st *streamState, data []byte) error {
	var ev goopenai.ResponseStreamEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return err
	}
	switch ev.Type {
	case goopenai.ResponseStreamEventOutputTextDelta:
		st.text(ev.Delta)
	case goopenai.ResponseStreamEventReasoningSummaryPartAdded:
		if s.summaryParts > 0 {
			st.reasoning("\n\n")
		}
		s.summaryParts++
	case goopenai.ResponseStreamEventReasoningSummaryTextDelta:
		st.reasoning(ev.Delta)
	case goopenai.ResponseStreamEventOutputTextAnnotationAdded:
		s.cite(st, ev.Annotation)
	case goopenai.ResponseStreamEventOutputItemDone:
		if it := ev.Item; it != nil && it.Type == "function_call" {
			st.answer.Calls = append(st.answer.Calls, conversation.ToolCall{ID: it.CallID, Name: it.Name, Arguments: it.Arguments})
		}
	case goopenai.ResponseStreamEventCompleted, goopenai.ResponseStreamEventIncomplete:
		s.complete(st, ev.Response)
	case goopenai.ResponseStreamEventFailed:
		if ev.Response != nil && ev.Response.Error != nil {
			return streamError(ev.Response.Error.Code, ev.Response.Error.Message)
		}
		return streamError("server_error", "the response failed")
	case goopenai.ResponseStreamEventError:
		if ev.Error != nil {
			return streamError(ev.Error.Code, ev.Error.Message)
		}
		return streamError(ev.Code, ev.Message)
	}
	return nil
}

// complete takes the usage and any citations the deltas did not carry.
func (s *responseStream) complete(st *streamState, resp *goopenai.CreateResponseResponse) {
	st.finished = true
	if resp == nil {
		return
	}
	if u := resp.Usage; u != nil {
		st.answer.Usage = conversation.Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens}
	}
	for _, raw := range resp.Output {
		b, err := json.Marshal(raw)
		if err != nil {
			continue
		}
		var item goopenai.ResponseOutputItem
		if json.Unmarshal(b, &item) != nil || item.Type != "message" {
			continue
		}
		for _, part := range item.Content {
			for i := range part.Annotations {
				s.cite(st, &part.Annotations[i])
			}
		}
	}
}

// cite adds a url_citation's page to the sources, once per URL.
func (s *responseStream) cite(st *streamState, a *goopenai.ResponseAnnotation) {
	if a == nil || a.Type != "url_citation" || a.URL == "" {
		return
	}
	if s.seen == nil {
		s.seen = make(map[string]bool)
	}
	if s.seen[a.URL] {
		return
	}
	s.seen[a.URL] = true
	st.answer.Sources = append(st.answer.Sources, conversation.Source{URL: a.URL, Title: a.Title})
}

// streamError turns an error event into the APIError that classify understands.
func streamError(code, message string) error {
	typ := ""
	if code == "server_error" {
		typ = "server_error"
	}
	return &goopenai.APIError{Code: code, Message: message, Type: typ}
}

// noResponsesAPI reports whether err says the server has no /responses: a 404 or
// 405 that is not about the model.
func noResponsesAPI(err error) bool {
	var apiErr *goopenai.APIError
	if errors.As(err, &apiErr) {
		code, _ := apiErr.Code.(string)
		return (apiErr.HTTPStatusCode == http.StatusNotFound || apiErr.HTTPStatusCode == http.StatusMethodNotAllowed) &&
			code != "model_not_found"
	}
	var reqErr *goopenai.RequestError
	return errors.As(err, &reqErr) &&
		(reqErr.HTTPStatusCode == http.StatusNotFound || reqErr.HTTPStatusCode == http.StatusMethodNotAllowed)
}
