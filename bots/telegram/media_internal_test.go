package telegram

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestReadBounded(t *testing.T) {
	const limit = 1000
	tests := []struct {
		name       string
		size, hint int64
		tooBig     bool
	}{
		{"exact hint", 600, 600, false},
		{"no hint", 600, 0, false},
		{"hint too small", 900, 100, false},
		{"hint over the limit", 600, 5000, false},
		{"at the limit", limit, limit, false},
		{"one over", limit + 1, 0, true},
		{"far over, lying hint", 50 * limit, 10, true},
		{"empty", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := bytes.Repeat([]byte{7}, int(tt.size))
			r := &countingReader{r: bytes.NewReader(data)}
			got, err := readBounded(r, tt.hint, limit)
			var tb *tooBigError
			if tt.tooBig {
				if !errors.As(err, &tb) {
					t.Fatalf("err = %v, want a tooBigError", err)
				}
				if r.n > limit+1 {
					t.Errorf("read %d bytes, want at most limit+1 = %d", r.n, limit+1)
				}
				return
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes, %v; want the %d bytes", len(got), err, len(data))
			}
			if tt.hint > 0 && tt.hint == tt.size && cap(got) != int(tt.size)+1 {
				t.Errorf("cap %d, want the hint's %d: no growth when the size is known", cap(got), tt.size+1)
			}
		})
	}
}

func TestClipCaption(t *testing.T) {
	short := "🎨 a fox"
	if got := clipCaption(short); got != short {
		t.Errorf("clipCaption(%q) = %q", short, got)
	}
	long := "🎨 " + string(bytes.Repeat([]byte("é"), 2000))
	got := clipCaption(long)
	if n := utf16Len(got); n > maxCaptionLen || n < maxCaptionLen-2 {
		t.Errorf("clipped caption is %d UTF-16 units, want just under %d", n, maxCaptionLen)
	}
}

func TestSizeText(t *testing.T) {
	for n, want := range map[int64]string{900: "900 bytes", 12 << 10: "12 KB", 20 << 20: "20 MB", 3<<20 + 400<<10: "3.4 MB"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}
