package openai

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pkoukk/tiktoken-go"

	"github.com/chatbot-dev/chatbot/conversation"
)

// texts are the kinds of text the counting tests use, n runes of each.
func texts(n int) map[string]string {
	prose := "The bot streams each reply into one message that grows in place, while tokens arrive.\n\n"
	code := "func main() {\n\tfor i := 0; i < 10; i++ {\n\t\tfmt.Println(i) // count\n\t}\n}\n"
	mixed := "한국어 문장과 English words, 中文字符 and numbers 12345 side by side. "
	cut := func(s string) string { return string([]rune(strings.Repeat(s, n/utf8.RuneCountInString(s)+1))[:n]) }
	return map[string]string{
		"hangul": cut("한"),
		"cjk":    cut("字"),
		"ascii":  cut("a"),
		"spaces": cut(" "),
		"prose":  cut(prose),
		"code":   cut(code),
		"mixed":  cut(mixed),
	}
}

// recorder wraps a counter's encode and notes the length of every chunk.
func recorder(t *testing.T) (*TokenCounter, *[]int) {
	t.Helper()
	tc, err := NewTokenCounter("gpt-4o-mini")
	if err != nil {
		t.Fatal(err)
	}
	var chunks []int
	inner := tc.encode
	tc.encode = func(s string) int {
		if !utf8.ValidString(s) && utf8.ValidString(strings.ToValidUTF8(s, "")) {
			t.Errorf("a chunk was cut inside a rune: %q", s)
		}
		chunks = append(chunks, len(s))
		return inner(s)
	}
	return tc, &chunks
}

// The tokenizer's cost grows with the square of what it is given at once, so
// Count must hand it bounded chunks that cover the text exactly once: the work
// (the sum of the squared chunk lengths) then grows linearly with the text.
func TestCountWorkIsBoundedChunks(t *testing.T) {
	for name, text := range texts(40000) {
		t.Run(name, func(t *testing.T) {
			tc, chunks := recorder(t)
			if tc.Count(text) <= 0 {
				t.Fatal("counted no tokens")
			}
			total, work := 0, 0
			for _, n := range *chunks {
				if n > maxChunkBytes {
					t.Errorf("a chunk of %d bytes, want at most %d", n, maxChunkBytes)
				}
				total += n
				work += n * n
			}
			if total != len(text) {
				t.Errorf("chunks cover %d bytes of %d", total, len(text))
			}
			if limit := len(text) * maxChunkBytes; work > limit {
				t.Errorf("work %d (sum of squared chunk lengths), want at most %d", work, limit)
			}
			if min := len(text) / maxChunkBytes; len(*chunks) < min {
				t.Errorf("%d chunks, want at least %d", len(*chunks), min)
			}
		})
	}
}

// Cutting before a space that starts a word changes nothing (the encodings cut
// there too); a cut inside a run of letters may add about a token.
func TestChunkedCountMatchesWholeText(t *testing.T) {
	useOfflineBPE()
	enc, err := tiktoken.GetEncoding("o200k_base")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := NewTokenCounter("gpt-4o-mini")
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range texts(6000) {
		whole := len(enc.EncodeOrdinary(text))
		got := tc.Count(text)
		cuts := len(text)/(maxChunkBytes/2) + 1
		switch name {
		case "prose", "code", "mixed":
			if got != whole {
				t.Errorf("%s: %d tokens in chunks, %d whole; want equal", name, got, whole)
			}
		default:
			if got < whole || got > whole+cuts {
				t.Errorf("%s: %d tokens in chunks, %d whole; want between %d and %d", name, got, whole, whole, whole+cuts)
			}
		}
	}
	if got := tc.Count("Hello, world!"); got != 4 {
		t.Errorf("Count(Hello, world!) = %d, want 4", got)
	}
}

// CountAtMost stops once the count passes its limit, and when its context ends.
func TestCountAtMostStopsEarly(t *testing.T) {
	text := texts(400000)["hangul"]
	tc, chunks := recorder(t)
	n, err := tc.CountAtMost(context.Background(), text, 1000)
	if err != nil || n <= 1000 {
		t.Fatalf("CountAtMost = %d, %v; want more than 1000", n, err)
	}
	counted := 0
	for _, b := range *chunks {
		counted += b
	}
	// A Hangul syllable is 3 bytes and at least half a token: 1,000 tokens are
	// passed within 6,000 bytes; allow twice that.
	if counted > 12000 {
		t.Errorf("%d bytes of %d counted to pass 1,000 tokens", counted, len(text))
	}

	*chunks = nil
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tc.CountAtMost(ctx, text, -1); err != context.Canceled {
		t.Errorf("cancelled count returned %v", err)
	}
	if len(*chunks) >= checkEvery {
		t.Errorf("%d chunks counted after the context ended, want fewer than %d", len(*chunks), checkEvery)
	}
}

// The engine refuses a message by its length alone when it has more than
// conversation.MaxTokenRunes runes per token of room: no token of the encodings
// the bot uses is longer.
func TestNoTokenLongerThanMaxTokenRunes(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes every token of two encodings")
	}
	useOfflineBPE()
	for _, name := range []string{"o200k_base", "cl100k_base"} {
		enc, err := tiktoken.GetEncoding(name)
		if err != nil {
			t.Fatal(err)
		}
		longest := 0
		for id := range 201000 {
			longest = max(longest, utf8.RuneCountInString(enc.Decode([]int{id})))
		}
		if longest > conversation.MaxTokenRunes {
			t.Errorf("%s has a token of %d runes, more than conversation.MaxTokenRunes = %d", name, longest, conversation.MaxTokenRunes)
		}
	}
}

// BenchmarkCount shows the cost per rune staying flat as the text grows, in
// wall time (ns/rune) and in CPU time of the process, garbage collection
// included (cpu-ns/rune, steadier on a busy machine). The whole/ cases count the
// text in one piece, as Count did before it chunked: their cost grows with the
// square of a run without spaces (40,000 Hangul characters: about 10 CPU-seconds).
//
//	go test ./openai -run XXX -bench Count -benchtime 3x
func BenchmarkCount(b *testing.B) {
	tc, err := NewTokenCounter("gpt-4o-mini")
	if err != nil {
		b.Fatal(err)
	}
	enc, err := tiktoken.GetEncoding("o200k_base")
	if err != nil {
		b.Fatal(err)
	}
	counters := []struct {
		name  string
		count func(string) int
	}{
		{"chunked", tc.Count},
		{"whole", func(s string) int { return len(enc.EncodeOrdinary(s)) }},
	}
	for _, c := range counters {
		for _, kind := range []string{"hangul", "cjk", "ascii", "prose"} {
			for _, n := range []int{1000, 10000, 40000} {
				text := texts(n)[kind]
				b.Run(fmt.Sprintf("%s/%s/%d", c.name, kind, n), func(b *testing.B) {
					b.SetBytes(int64(len(text)))
					cpu0 := cpuTime()
					for b.Loop() {
						c.count(text)
					}
					perRune := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) / float64(n) }
					b.ReportMetric(perRune(b.Elapsed()), "ns/rune")
					b.ReportMetric(perRune(cpuTime()-cpu0), "cpu-ns/rune")
				})
			}
		}
	}
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
