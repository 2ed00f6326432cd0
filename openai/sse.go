package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	goopenai "github.com/sashabaranov/go-openai"
)

// Sizes of an event stream reader's buffer. A stream waiting for the model
// holds only the small one; a longer line (a Responses API item or completed
// event carries the whole reply) grows it for as long as that line is read.
const (
	sseSmallBuffer = 512
	sseMaxLine     = 16 << 20
	sseMaxJunk     = 4 << 10 // kept of the lines that are neither data nor SSE fields
	sseMaxNoData   = 300     // lines in a row that carry no data, before giving up
)

var (
	errLineTooLong = errors.New("event stream line too long")
	dataPrefix     = []byte("data:")
	donePayload    = []byte("[DONE]")
	errorPrefix    = []byte(`{"error":`)
)

// sseReader reads the data lines of a server-sent event stream (OpenAI's
// streams on both APIs). It drops event:, id: and retry: lines, comments and
// blank lines at once. Other lines are kept (the first few KB) in case the body
// is an error sent without data: prefixes; a data line that is an error object
// is returned as the *goopenai.APIError it holds, as are such kept lines when
// the body ends.
type sseReader struct {
	body       io.ReadCloser
	buf        []byte // buf[start:end] is read and not consumed yet
	start, end int
	junk       []byte
	noData     int
	err        error // the body's read error, once it came
}

func newSSEReader(body io.ReadCloser) *sseReader {
	return &sseReader{body: body}
}

// next returns the payload of the next data line, valid until the next call;
// io.EOF at "[DONE]" or at the end of the body (a last line without its newline
// is dropped, as it may be cut).
func (r *sseReader) next() ([]byte, error) {
	for {
		line, err := r.line()
		if err != nil {
			return nil, r.endError(err)
		}
		payload, ok := bytes.CutPrefix(line, dataPrefix)
		if !ok {
			if err := r.other(line); err != nil {
				return nil, err
			}
			continue
		}
		r.noData = 0
		payload = bytes.TrimLeft(payload, " \t")
		switch {
		case bytes.Equal(payload, donePayload):
			return nil, io.EOF
		case bytes.HasPrefix(payload, errorPrefix):
			if err := decodeError(payload); err != nil {
				return nil, err
			}
		}
		return payload, nil
	}
}

// other handles a line that is not data: SSE fields and comments are dropped,
// anything else is kept (a little of it) for endError.
func (r *sseReader) other(line []byte) error {
	if len(line) == 0 {
		return nil
	}
	for _, field := range [][]byte{[]byte(":"), []byte("event:"), []byte("id:"), []byte("retry:")} {
		if bytes.HasPrefix(line, field) {
			return nil
		}
	}
	if r.noData++; r.noData > sseMaxNoData {
		return goopenai.ErrTooManyEmptyStreamMessages
	}
	if room := sseMaxJunk - len(r.junk); room > 0 {
		r.junk = append(r.junk, line[:min(len(line), room)]...)
	}
	return nil
}

// endError is the error that ends the stream: the API error the body held
// outside data lines, if any, else err.
func (r *sseReader) endError(err error) error {
	if len(r.junk) > 0 {
		if apiErr := decodeError(r.junk); apiErr != nil {
			return apiErr
		}
	}
	return err
}

// decodeError returns the API error b holds as {"error": {...}}, or nil.
func decodeError(b []byte) error {
	var res goopenai.ErrorResponse
	if json.Unmarshal(b, &res) != nil || res.Error == nil {
		return nil
	}
	return fmt.Errorf("model stream: %w", res.Error)
}

// line returns the next line without its end (\n or \r\n) and surrounding
// spaces.
func (r *sseReader) line() ([]byte, error) {
	scanned := 0
	for {
		if i := bytes.IndexByte(r.buf[r.start+scanned:r.end], '\n'); i >= 0 {
			line := r.buf[r.start : r.start+scanned+i]
			r.start += scanned + i + 1
			return bytes.TrimSpace(line), nil
		}
		scanned = r.end - r.start
		if r.err != nil {
			return nil, r.err
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// fill reads more of the body into the buffer: the small buffer while only
// short lines come, a larger one while a long line is read.
func (r *sseReader) fill() error {
	pending := r.end - r.start
	switch {
	case r.buf == nil:
		r.buf = make([]byte, sseSmallBuffer)
	case len(r.buf) > sseSmallBuffer && pending <= sseSmallBuffer/2:
		// The long line is over: back to the small buffer.
		small := make([]byte, sseSmallBuffer)
		r.end = copy(small, r.buf[r.start:r.end])
		r.buf, r.start = small, 0
	case r.end == len(r.buf) && pending > len(r.buf)/2:
		if len(r.buf) >= sseMaxLine {
			return errLineTooLong
		}
		grown := make([]byte, 2*len(r.buf))
		r.end = copy(grown, r.buf[r.start:r.end])
		r.buf, r.start = grown, 0
	case r.end == len(r.buf):
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	n, err := r.body.Read(r.buf[r.end:])
	r.end += n
	if err != nil {
		r.err = err
	}
	if n == 0 && err != nil {
		return err
	}
	return nil
}

// Close closes the body and drops the buffer.
func (r *sseReader) Close() error {
	r.buf, r.junk = nil, nil
	return r.body.Close()
}
