// Package terminal is the adapter for trying the bot out in a terminal: each input
// line is a message, and the reply streams to the output as it grows.
package terminal

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
)

// Chat is the terminal's one conversation.
const Chat conversation.ChatID = "terminal:local"

// updateEvery is the terminal's pace: it has no rate limit, only readability.
const updateEvery = 50 * time.Millisecond

// handler is the part of the engine the terminal uses.
type handler interface {
	Handle(ctx context.Context, req conversation.Request) error
}

// Run reads lines from in until it ends or ctx is done, sends each to h, and
// streams the replies to out. prompt, when not empty, is written before each line.
func Run(ctx context.Context, h handler, in io.Reader, out io.Writer, prompt string) error {
	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() { // a blocked read cannot be interrupted; ctx ends the loop instead
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		readErr <- sc.Err()
	}()
	for {
		fmt.Fprint(out, prompt)
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			if prompt != "" {
				fmt.Fprintln(out)
			}
			return err
		case line := <-lines:
			if strings.TrimSpace(line) == "" {
				continue
			}
			r := &reply{out: out}
			req := conversation.Request{Chat: Chat, UserID: "terminal", Text: line, Reply: r, UpdateEvery: updateEvery}
			if err := h.Handle(context.WithoutCancel(ctx), req); err != nil {
				fmt.Fprintf(out, "(error: %v)\n", err)
			}
		}
	}
}

var _ conversation.Reply = (*reply)(nil)

// reply prints the part of the text not printed yet. When a text does not extend
// what is on screen (a note replaced the partial reply), it starts a new line.
type reply struct {
	mu      sync.Mutex
	out     io.Writer
	printed string
}

func (r *reply) Update(ctx context.Context, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.show(text)
	return nil
}

func (r *reply) Finish(ctx context.Context, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.show(text)
	_, err := fmt.Fprintln(r.out)
	return err
}

func (r *reply) show(text string) {
	if rest, ok := strings.CutPrefix(text, r.printed); ok {
		io.WriteString(r.out, rest)
	} else {
		fmt.Fprintf(r.out, "\n%s", text)
	}
	r.printed = text
}
