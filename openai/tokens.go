package openai

import (
	"fmt"
	"sync"

	"github.com/pkoukk/tiktoken-go"
	tiktokenloader "github.com/pkoukk/tiktoken-go-loader"

	"github.com/chatbot-dev/chatbot/conversation"
)

var _ conversation.TokenCounter = (*TokenCounter)(nil)

// fallbackEncoding is used for models tiktoken does not know (gpt-5, compatible
// services): the encoding of OpenAI's current models.
const fallbackEncoding = "o200k_base"

// useOfflineBPE makes tiktoken read the BPE files embedded in tiktoken-go-loader
// instead of downloading them; the library keeps the loader in a global.
var useOfflineBPE = sync.OnceFunc(func() {
	tiktoken.SetBpeLoader(tiktokenloader.NewOfflineLoader())
})

// TokenCounter counts tokens with the configured model's encoding, offline.
type TokenCounter struct {
	enc *tiktoken.Tiktoken
}

// NewTokenCounter loads the encoding of model (or o200k_base for an unknown one).
func NewTokenCounter(model string) (*TokenCounter, error) {
	useOfflineBPE()
	enc, err := tiktoken.EncodingForModel(model)
	if err != nil {
		enc, err = tiktoken.GetEncoding(fallbackEncoding)
	}
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	return &TokenCounter{enc: enc}, nil
}

// Count returns the number of tokens in text; special-token markers count as text.
func (t *TokenCounter) Count(text string) int {
	return len(t.enc.EncodeOrdinary(text))
}
