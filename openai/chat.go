package openai

import (
	"context"
	"encoding/json"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/chatbot-dev/chatbot/conversation"
)

// openChat starts a Chat Completions stream, for servers without the Responses API.
func (c *Client) openChat(ctx context.Context, req *conversation.ModelRequest, retryAfter *time.Duration) (modelStream, error) {
	msgs := make([]goopenai.ChatCompletionMessage, 0, len(req.Messages)+1)
	if req.Instructions != "" {
		msgs = append(msgs, goopenai.ChatCompletionMessage{Role: string(conversation.RoleSystem), Content: req.Instructions})
	}
	for _, m := range req.Messages {
		msg, err := chatMessage(m)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, msg)
	}
	msgs = append(msgs, roundMessages(req.Rounds)...)
	var tools []goopenai.Tool
	for _, t := range req.Tools {
		tools = append(tools, goopenai.Tool{Type: goopenai.ToolTypeFunction, Function: &goopenai.FunctionDefinition{
			Name: t.Name, Description: t.Description, Parameters: t.Parameters}})
	}
	var choice any
	if req.NoMoreCalls && len(tools) > 0 {
		choice = "none"
	}
	r := goopenai.ChatCompletionRequest{
		Model:           req.Model,
		Messages:        msgs,
		Tools:           tools,
		ToolChoice:      choice,
		Stream:          true,
		StreamOptions:   &goopenai.StreamOptions{IncludeUsage: true},
		ReasoningEffort: c.opt.ReasoningEffort,
	}
	if err := goopenai.NewReasoningValidator().Validate(r); err != nil {
		return nil, err
	}
	body, err := c.openStream(ctx, "/chat/completions", r, retryAfter)
	if err != nil {
		return nil, err
	}
	return &chatStream{sseReader: sseReader{body: body}}, nil
}

// roundMessages are a turn's tool rounds as Chat Completions messages: the
// assistant's tool calls, then one tool message per result.
func roundMessages(rounds []conversation.ToolRound) []goopenai.ChatCompletionMessage {
	var msgs []goopenai.ChatCompletionMessage
	for _, r := range rounds {
		calls := make([]goopenai.ToolCall, len(r.Calls))
		for i, c := range r.Calls {
			calls[i] = goopenai.ToolCall{ID: c.ID, Type: goopenai.ToolTypeFunction,
				Function: goopenai.FunctionCall{Name: c.Name, Arguments: c.Arguments}}
		}
		msgs = append(msgs, goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleAssistant, ToolCalls: calls})
		for i, c := range r.Calls {
			msgs = append(msgs, goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleTool, ToolCallID: c.ID, Content: r.Results[i]})
		}
	}
	return msgs
}

// errPDFNeedsResponses refuses a PDF on Chat Completions, which has no file parts.
var errPDFNeedsResponses = &conversation.Error{Text: "Reading PDFs needs the Responses API, and the model " +
	"server at openai.base_url offers only Chat Completions. Send the text instead, or ask the bot's owner to " +
	"use a server with the Responses API (openai.api: auto or responses)."}

// chatMessage is m on Chat Completions: images as image_url parts.
func chatMessage(m conversation.Message) (goopenai.ChatCompletionMessage, error) {
	msg := goopenai.ChatCompletionMessage{Role: string(m.Role)}
	if len(m.Attachments) == 0 || m.Role != conversation.RoleUser {
		msg.Content = userContent(m)
		return msg, nil
	}
	msg.MultiContent = []goopenai.ChatMessagePart{{Type: goopenai.ChatMessagePartTypeText, Text: userContent(m)}}
	for _, a := range m.Attachments {
		switch {
		case a.Data == nil:
		case a.Kind == conversation.AttachPDF:
			return msg, errPDFNeedsResponses
		case a.Kind == conversation.AttachImage:
			msg.MultiContent = append(msg.MultiContent, goopenai.ChatMessagePart{Type: goopenai.ChatMessagePartTypeImageURL,
				ImageURL: &goopenai.ChatMessageImageURL{URL: dataURL(a), Detail: goopenai.ImageURLDetailAuto}})
		}
	}
	return msg, nil
}

// chatStream reads Chat Completions chunks: text and tool-call deltas, a finish
// reason, then a usage chunk and [DONE].
type chatStream struct {
	sseReader
	calls []conversation.ToolCall // by the deltas' index
}

func (s *chatStream) read(st *streamState) error {
	data, err := s.next()
	if err != nil {
		return err
	}
	return s.chunk(st, data)
}

// chunk takes one chunk in. (Apart from read: see responseStream.event.)
func (s *chatStream) chunk(st *streamState, data []byte) error {
	var resp goopenai.ChatCompletionStreamResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		return err
	}
	if resp.Usage != nil {
		st.answer.Usage = conversation.Usage{PromptTokens: resp.Usage.PromptTokens, CompletionTokens: resp.Usage.CompletionTokens}
	}
	for _, ch := range resp.Choices {
		st.text(ch.Delta.Content)
		for _, tc := range ch.Delta.ToolCalls {
			s.addCall(tc)
		}
		if ch.FinishReason != "" {
			st.finished = true
			st.answer.Calls = s.calls
		}
	}
	return nil
}

// maxCallsPerRound bounds the tool calls read from one answer.
const maxCallsPerRound = 64

// addCall adds a tool-call delta: the first names the call, later ones extend
// its arguments.
func (s *chatStream) addCall(tc goopenai.ToolCall) {
	i := len(s.calls)
	if tc.Index != nil {
		i = *tc.Index
	}
	if i < 0 || i >= maxCallsPerRound {
		return // no model asks for that many at once: a broken stream
	}
	for len(s.calls) <= i {
		s.calls = append(s.calls, conversation.ToolCall{})
	}
	c := &s.calls[i]
	if tc.ID != "" {
		c.ID = tc.ID
	}
	if tc.Function.Name != "" {
		c.Name = tc.Function.Name
	}
	c.Arguments += tc.Function.Arguments
}
