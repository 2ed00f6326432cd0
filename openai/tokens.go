package openai

import (
	"fmt"
	"strings"
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

// encodings memoizes the loaded encodings by name: building one takes about a
// second and it is immutable (and safe for concurrent use) once built.
var encodings sync.Map // encoding name → *tiktoken.Tiktoken

// TokenCounter counts tokens with the configured model's encoding, offline.
type TokenCounter struct {
	enc *tiktoken.Tiktoken
}

// NewTokenCounter loads the encoding of model (or o200k_base for an unknown one).
func NewTokenCounter(model string) (*TokenCounter, error) {
	useOfflineBPE()
	name := encodingName(model)
	if enc, ok := encodings.Load(name); ok {
		return &TokenCounter{enc: enc.(*tiktoken.Tiktoken)}, nil
	}
	enc, err := tiktoken.GetEncoding(name)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", name, err)
	}
	actual, _ := encodings.LoadOrStore(name, enc)
	return &TokenCounter{enc: actual.(*tiktoken.Tiktoken)}, nil
}

// Count returns the number of tokens in text; special-token markers count as text.
func (t *TokenCounter) Count(text string) int {
	return len(t.enc.EncodeOrdinary(text))
}

// encodingName is the encoding tiktoken knows for model (the longest matching
// prefix wins), else the fallback.
func encodingName(model string) string {
	if name, ok := tiktoken.MODEL_TO_ENCODING[model]; ok {
		return name
	}
	name, longest := fallbackEncoding, 0
	for prefix, enc := range tiktoken.MODEL_PREFIX_TO_ENCODING {
		if strings.HasPrefix(model, prefix) && len(prefix) > longest {
			name, longest = enc, len(prefix)
		}
	}
	return name
}
