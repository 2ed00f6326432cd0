package conversation

import (
	"strings"
	"sync"
)

// shown is what a reply shows while it streams: the reasoning summary, the
// voice transcript, the answer so far and the line of the tools running now.
// The turn's goroutine writes it; the pacer composes it, only when it sends.
type shown struct {
	mu            sync.Mutex
	text, summary strings.Builder
	transcript    string
	status        string
	showCalls     bool // tool lines stay in the text
}

// compose is the whole text to show now. Without a summary, a transcript or a
// status it is the answer's own bytes, not a copy.
func (s *shown) compose() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.composeLocked(s.text.String())
}

// composeWith is the whole text to show with answer as the answer.
func (s *shown) composeWith(answer string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.composeLocked(answer)
}

func (s *shown) composeLocked(answer string) string {
	if s.status != "" {
		answer = strings.TrimRight(answer, "\n")
		if answer != "" {
			answer += "\n\n"
		}
		answer += s.status
	}
	return composeReasoning(s.summary.String(), quoteTranscript(s.transcript, answer))
}

// answer is the answer so far.
func (s *shown) answer() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.text.String()
}

func (s *shown) addText(delta string) {
	s.mu.Lock()
	s.text.WriteString(delta)
	s.mu.Unlock()
}

func (s *shown) addSummary(delta string) {
	s.mu.Lock()
	s.summary.WriteString(delta)
	s.mu.Unlock()
}

func (s *shown) setTranscript(transcript string) {
	s.mu.Lock()
	s.transcript = transcript
	s.mu.Unlock()
}

// setStatus shows the tools running now ("" when they are done). Text the
// model wrote before the calls ends its paragraph there; with showCalls the
// tools' names stay in the answer instead of a passing status.
func (s *shown) setStatus(status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status != "" && s.text.Len() > 0 && !strings.HasSuffix(s.text.String(), "\n\n") {
		s.text.WriteString("\n\n")
	}
	if !s.showCalls {
		s.status = status
		return
	}
	for _, line := range strings.Split(status, "\n") {
		if line != "" {
			s.text.WriteString("_" + strings.TrimSuffix(line, "…") + "_\n\n")
		}
	}
}
