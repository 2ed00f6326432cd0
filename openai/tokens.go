package openai

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/pkoukk/tiktoken-go"
	tiktokenloader "github.com/pkoukk/tiktoken-go-loader"

	"github.com/chatbot-dev/chatbot/conversation"
)

var (
	_ conversation.TokenCounter   = (*TokenCounter)(nil)
	_ conversation.BoundedCounter = (*TokenCounter)(nil)
)

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
//
// tiktoken's cost grows with the square of a piece's length (a run of letters
// with no space: 40,000 Hangul characters took 8 CPU-seconds), so text is counted
// in chunks of at most maxChunkBytes, cut where the encoding would cut anyway
// (before a space that starts a word) when there is such a place, else at a rune
// boundary. The sum of the chunks' counts equals the whole text's count when
// every cut is of the first kind, and may exceed it by about a token per cut of
// the second kind (one per maxChunkBytes of text without a space, such as a run
// of Hangul): a small over-estimate, on the safe side of the budget. The cost
// per character then stays flat: see BenchmarkCount.
type TokenCounter struct {
	// encode counts the tokens of one chunk (tests count the work through it).
	encode func(chunk string) int
}

// maxChunkBytes bounds the text tiktoken sees at once; see TokenCounter.
const maxChunkBytes = 128

// NewTokenCounter loads the encoding of model (or o200k_base for an unknown one).
func NewTokenCounter(model string) (*TokenCounter, error) {
	useOfflineBPE()
	name := encodingName(model)
	enc, ok := encodings.Load(name)
	if !ok {
		loaded, err := tiktoken.GetEncoding(name)
		if err != nil {
			return nil, fmt.Errorf("load tokenizer %s: %w", name, err)
		}
		enc, _ = encodings.LoadOrStore(name, loaded)
	}
	tk := enc.(*tiktoken.Tiktoken)
	return &TokenCounter{encode: func(chunk string) int { return len(tk.EncodeOrdinary(chunk)) }}, nil
}

// Count returns the number of tokens in text; special-token markers count as text.
func (t *TokenCounter) Count(text string) int {
	n, _ := t.CountAtMost(context.Background(), text, -1)
	return n
}

// checkEvery is how many chunks are counted between two looks at the context.
const checkEvery = 16

// CountAtMost counts text's tokens like Count, but stops as soon as the count
// passes limit (a negative limit: never) and returns the count so far, which is
// then above limit. It stops with ctx's error when ctx ends.
func (t *TokenCounter) CountAtMost(ctx context.Context, text string, limit int) (int, error) {
	n := 0
	for i := 0; text != ""; i++ {
		if i%checkEvery == checkEvery-1 {
			if err := ctx.Err(); err != nil {
				return n, err
			}
		}
		var chunk string
		chunk, text = cutChunk(text, maxChunkBytes)
		n += t.encode(chunk)
		if limit >= 0 && n > limit {
			return n, nil
		}
	}
	return n, nil
}

// cutChunk splits off the head of text, at most max bytes (or one rune, if that
// is longer): up to the last space within it that is followed by something other
// than a space, if that space lies in its second half (the encodings' pattern
// starts a piece there: " word"), else at the last rune boundary.
func cutChunk(text string, max int) (chunk, rest string) {
	if len(text) <= max {
		return text, ""
	}
	for i := max; i > max/2; i-- {
		if text[i-1] == ' ' && !startsWithSpace(text[i:]) {
			return text[:i-1], text[i-1:]
		}
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	if cut == 0 { // never happens with valid UTF-8 and max ≥ 4; make progress anyway
		_, size := utf8.DecodeRuneInString(text)
		cut = size
	}
	return text[:cut], text[cut:]
}

// startsWithSpace reports whether s starts with white space (or with a broken
// rune, where no cut is taken either).
func startsWithSpace(s string) bool {
	r, size := utf8.DecodeRuneInString(s)
	return unicode.IsSpace(r) || (r == utf8.RuneError && size <= 1)
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
