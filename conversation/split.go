package conversation

import (
	"strings"
	"unicode/utf8"
)

// SplitMarkdown cuts a Markdown text into chunks that each satisfy fits, for
// platforms that limit a message's length. It cuts at a paragraph break where one
// lies in the second half of a chunk, else at a line break, else inside the line
// (at a space where it can). A code fence open at a cut is closed at the end of the
// chunk and reopened, with its language, at the start of the next, so that every
// chunk renders on its own. fits should render the chunk as the platform will and
// measure it; a search over line counts calls it O(log lines) times per chunk.
// Joined back, the chunks give the text again, but for the added fence lines and
// whitespace at the cuts.
func SplitMarkdown(text string, fits func(chunk string) bool) []string {
	if fits(text) {
		return []string{text}
	}
	s := splitter{fits: fits, lines: strings.SplitAfter(text, "\n")}
	s.fence = make([]string, len(s.lines))
	open := ""
	for i, l := range s.lines {
		open = fenceAfter(open, l)
		s.fence[i] = open
	}
	for s.start < len(s.lines) {
		s.next()
	}
	return s.chunks
}

// splitter walks the text's lines, emitting chunks.
type splitter struct {
	fits   func(string) bool
	lines  []string
	fence  []string // the fence open after each line ("" = none)
	start  int      // the first line not yet emitted
	reopen string   // the fence line the next chunk starts with, if any
	chunks []string
}

// chunk renders reopen, lines[start:start+n] and the closing fence they need.
func (s *splitter) chunk(n int) string {
	open := s.reopen
	if n > 0 {
		open = s.fence[s.start+n-1]
	}
	return withFences(s.reopen, strings.Join(s.lines[s.start:s.start+n], ""), open)
}

// withFences wraps body in the reopened fence and the fence close that open needs.
func withFences(reopen, body, open string) string {
	var b strings.Builder
	b.WriteString(reopen)
	b.WriteString(body)
	if open != "" {
		if b.Len() > 0 && !strings.HasSuffix(body, "\n") {
			b.WriteByte('\n')
		}
		b.WriteString(fenceMarker(open))
	}
	return b.String()
}

// next emits one chunk: the most lines that fit, cut back to a paragraph break.
func (s *splitter) next() {
	rest := len(s.lines) - s.start
	n := s.mostLinesFitting(rest)
	if n == 0 {
		s.cutLine()
		return
	}
	if n < rest {
		// A shorter chunk may still render longer (a link definition moved out
		// of it), so it is kept only if it fits too.
		if cut := s.paragraphCut(n); cut < n && s.fits(s.chunk(cut)) {
			n = cut
		}
	}
	s.emit(s.chunk(n), s.fence[s.start+n-1])
	s.start += n
}

// mostLinesFitting finds the largest n ≤ max with chunk(n) fitting, by galloping
// then bisecting (fits is monotonic in n for any sane platform).
func (s *splitter) mostLinesFitting(max int) int {
	lo, hi := 0, 1 // chunk(lo) fits (or lo = 0); find the first hi that does not
	for hi <= max && s.fits(s.chunk(hi)) {
		lo, hi = hi, min(hi*2, max+1)
		if lo == max {
			return max
		}
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if s.fits(s.chunk(mid)) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// paragraphCut moves a cut after n lines back to the last blank line outside code,
// if it lies in the second half of the chunk.
func (s *splitter) paragraphCut(n int) int {
	size := 0
	for _, l := range s.lines[s.start : s.start+n] {
		size += len(l)
	}
	kept := size
	for k := n - 1; k > 0; k-- {
		kept -= len(s.lines[s.start+k])
		if kept < size/2 {
			break
		}
		if strings.TrimSpace(s.lines[s.start+k-1]) == "" && s.fence[s.start+k-1] == "" {
			return k
		}
	}
	return n
}

// cutLine emits the longest head of a line too long for a chunk of its own (cut at
// a space in its second half if there is one) and keeps the rest as the line.
func (s *splitter) cutLine() {
	line := s.lines[s.start]
	open := s.reopen // the fence the line is in
	_, first := utf8.DecodeRuneInString(line)
	if !s.fits(withFences(s.reopen, line[:first], open)) {
		s.reopen, open = "", "" // fence lines alone do not fit: go on without them
	}
	lo, hi := 0, len(line) // line[:lo] fits
	for lo < hi {
		mid := (lo + hi + 1) / 2
		for mid > lo && mid < len(line) && !utf8.RuneStart(line[mid]) {
			mid--
		}
		if mid == lo {
			break
		}
		if s.fits(withFences(s.reopen, line[:mid], open)) {
			lo = mid
		} else {
			hi = mid - 1
			for hi > lo && hi < len(line) && !utf8.RuneStart(line[hi]) {
				hi--
			}
		}
	}
	if lo == 0 { // not even one character fits: emit it anyway to make progress
		lo = first
	}
	if sp := strings.LastIndexByte(line[:lo], ' '); sp >= lo/2 && sp > 0 && lo < len(line) {
		lo = sp + 1
	}
	s.emit(withFences(s.reopen, line[:lo], open), open)
	if lo == len(line) {
		s.start++
	} else {
		s.lines[s.start] = line[lo:]
	}
}

// emit appends a chunk and sets the fence the next one reopens.
func (s *splitter) emit(chunk, open string) {
	if strings.TrimSpace(chunk) != "" {
		s.chunks = append(s.chunks, chunk)
	}
	s.reopen = ""
	if open != "" {
		s.reopen = strings.TrimRight(open, "\n") + "\n"
	}
}

// fenceAfter returns the fence open after line, given the one open before it.
func fenceAfter(open, line string) string {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return open
	}
	t = strings.TrimRight(t, " \t\r\n")
	if open == "" {
		if fenceMarker(t) != "" {
			return t
		}
		return ""
	}
	marker := fenceMarker(open)
	if strings.HasPrefix(t, marker) && strings.Trim(t, marker[:1]) == "" {
		return ""
	}
	return open
}

// fenceMarker returns the ``` or ~~~ run a fence line starts with ("" if none).
func fenceMarker(line string) string {
	line = strings.TrimLeft(line, " ")
	for _, c := range []byte{'`', '~'} {
		n := 0
		for n < len(line) && line[n] == c {
			n++
		}
		if n >= 3 && (c == '~' || !strings.ContainsRune(line[n:], '`')) {
			return line[:n]
		}
	}
	return ""
}
