package openai

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	goopenai "github.com/sashabaranov/go-openai"
)

// readAll returns the payloads of r's data lines and the error that ended them.
func readAll(r *sseReader) ([]string, error) {
	var out []string
	for {
		data, err := r.next()
		if err != nil {
			return out, err
		}
		out = append(out, string(data))
	}
}

func TestSSEReader(t *testing.T) {
	long := strings.Repeat("x", 10000)
	tests := []struct {
		name, in string
		want     []string
	}{
		{"event lines", "event: response.created\ndata: {\"a\":1}\n\n", []string{`{"a":1}`}},
		{"done", "data: 1\n\ndata: [DONE]\n\ndata: 2\n\n", []string{"1"}},
		{"long lines", "event: " + long + "\ndata: " + long + "\n\nevent: x\ndata: short\n", []string{long, "short"}},
		{"fields, comments and CRLF", ": comment\r\nid: 7\r\nretry: 100\r\nevent:x\r\ndata:1\r\n\r\n", []string{"1"}},
		{"a last line cut", "data: 1\n\ndata: 2", []string{"1"}},
		{"nothing", "", nil},
		{"not a stream", `{"id":"c","object":"chat.completion"}`, nil},
	}
	for _, tt := range tests {
		for how, body := range map[string]func() io.Reader{
			"whole":    func() io.Reader { return strings.NewReader(tt.in) },
			"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(tt.in)) },
			"halves":   func() io.Reader { return iotest.HalfReader(strings.NewReader(tt.in)) },
		} {
			got, err := readAll(newSSEReader(io.NopCloser(body())))
			if !errors.Is(err, io.EOF) || strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("%s, %s: got %.60q, %v; want %.60q and EOF", tt.name, how, got, err, tt.want)
			}
		}
	}
}

func TestSSEReaderErrors(t *testing.T) {
	apiError := `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`
	tests := []struct {
		name, in string
		code     string // of the *goopenai.APIError; "" for another error
	}{
		{"an error data line", "data: 1\n\ndata: " + apiError + "\n\n", "rate_limit_exceeded"},
		{"an error body without data:", apiError + "\n", "rate_limit_exceeded"},
		{"endless lines without data", strings.Repeat("junk\n", sseMaxNoData+1), ""},
	}
	for _, tt := range tests {
		_, err := readAll(newSSEReader(io.NopCloser(strings.NewReader(tt.in))))
		var apiErr *goopenai.APIError
		switch {
		case tt.code != "" && (!errors.As(err, &apiErr) || apiErr.Code != tt.code):
			t.Errorf("%s: got %v, want the API error %s", tt.name, err, tt.code)
		case tt.code == "" && (err == nil || errors.Is(err, io.EOF)):
			t.Errorf("%s: got %v, want an error", tt.name, err)
		}
	}
}

// While a stream waits, its reader holds the small buffer, even after a long
// line.
func TestSSEReaderLetsLongLinesGo(t *testing.T) {
	long := strings.Repeat("x", 20000)
	r := newSSEReader(io.NopCloser(strings.NewReader("data: " + long + "\n\ndata: 1\n\ndata: 2\n\n")))
	for _, want := range []string{long, "1", "2"} {
		got, err := r.next()
		if err != nil || string(got) != want {
			t.Fatalf("got %.20q, %v; want %.20q", got, err, want)
		}
	}
	if _, err := r.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("got %v, want EOF", err)
	}
	if len(r.buf) > sseSmallBuffer {
		t.Errorf("the reader holds %d bytes after the long line, want %d", len(r.buf), sseSmallBuffer)
	}
}
