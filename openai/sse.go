package openai

import (
	"bufio"
	"bytes"
	"io"
)

// eventPrefix starts the line that names a server-sent event.
var eventPrefix = []byte("event:")

// eventLineFilter drops the "event:" lines of a server-sent event stream. The
// Responses API names each event twice (the event: line and the data's type),
// and go-openai's stream reader keeps every line that is not data: in a buffer
// for the stream's whole life (its error accumulator): about 35 bytes an event,
// tens of kilobytes a reply. Data lines pass through unchanged and at once.
type eventLineFilter struct {
	r       *bufio.Reader
	body    io.Closer
	midLine bool // inside a line being passed through
}

func newEventLineFilter(body io.ReadCloser) *eventLineFilter {
	return &eventLineFilter{r: bufio.NewReaderSize(body, 4096), body: body}
}

func (f *eventLineFilter) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for !f.midLine {
		head, _ := f.r.Peek(len(eventPrefix)) // fewer at the end: not an event line
		if !bytes.Equal(head, eventPrefix) {
			break
		}
		if err := f.skipLine(); err != nil {
			return 0, err
		}
	}
	if f.r.Buffered() == 0 {
		if _, err := f.r.Peek(1); err != nil {
			return 0, err
		}
	}
	buf, _ := f.r.Peek(min(f.r.Buffered(), len(p)))
	f.midLine = true
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf, f.midLine = buf[:i+1], false
	}
	n := copy(p, buf)
	f.r.Discard(n)
	return n, nil
}

// skipLine discards the rest of the line, however long.
func (f *eventLineFilter) skipLine() error {
	for {
		_, err := f.r.ReadSlice('\n')
		if err != bufio.ErrBufferFull {
			return err
		}
	}
}

func (f *eventLineFilter) Close() error { return f.body.Close() }
