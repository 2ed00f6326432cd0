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
		msgs = append(msgs, goopenai.ChatCompletionMessage{Role: string(m.Role), Content: userContent(m)})
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
