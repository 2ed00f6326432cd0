package openai

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestEventLineFilter(t *testing.T) {
	long := strings.Repeat("x", 10000)
	tests := []struct{ in, want string }{
		{"event: response.created\ndata: {\"a\":1}\n\n", "data: {\"a\":1}\n\n"},
		{"data: [DONE]\n\n", "data: [DONE]\n\n"},
		{"event: " + long + "\ndata: " + long + "\n\nevent: x\n", "data: " + long + "\n\n"},
		{"eve", "eve"},
		{"event: cut", ""},
		{": comment\nevent:x\ndata: 1\n", ": comment\ndata: 1\n"},
	}
	for _, tt := range tests {
		for name, r := range map[string]io.Reader{
			"whole":    strings.NewReader(tt.in),
			"one byte": iotest.OneByteReader(strings.NewReader(tt.in)),
		} {
			f := newEventLineFilter(io.NopCloser(r))
			got, err := io.ReadAll(iotest.OneByteReader(f))
			if err != nil || string(got) != tt.want {
				t.Errorf("%s %.40q: got %.60q, %v; want %.60q", name, tt.in, got, err, tt.want)
			}
			got2, _ := io.ReadAll(newEventLineFilter(io.NopCloser(strings.NewReader(tt.in))))
			if string(got2) != tt.want {
				t.Errorf("big reads %.40q: got %.60q", tt.in, got2)
			}
		}
	}
}
