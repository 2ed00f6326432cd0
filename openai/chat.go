package openai

import (
	"context"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/chatbot-dev/chatbot/conversation"
)

// openChat starts a Chat Completions stream, for servers without the Responses API.
func (c *Client) openChat(ctx context.Context, req conversation.ModelRequest) (modelStream, error) {
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
	stream, err := c.api.CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{
		Model:           req.Model,
		Messages:        msgs,
		Stream:          true,
		StreamOptions:   &goopenai.StreamOptions{IncludeUsage: true},
		ReasoningEffort: c.opt.ReasoningEffort,
	})
	if err != nil {
		return nil, err
	}
	return chatStream{stream}, nil
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

// chatStream reads Chat Completions chunks: text deltas, a finish reason, then a
// usage chunk and [DONE].
type chatStream struct{ *goopenai.ChatCompletionStream }

func (s chatStream) read(st *streamState) error {
	resp, err := s.Recv()
	if err != nil {
		return err
	}
	if resp.Usage != nil {
		st.answer.Usage = conversation.Usage{PromptTokens: resp.Usage.PromptTokens, CompletionTokens: resp.Usage.CompletionTokens}
	}
	for _, ch := range resp.Choices {
		st.finished = st.finished || ch.FinishReason != ""
		st.text(ch.Delta.Content)
	}
	return nil
}
