// Package terminal is the adapter for trying the bot out in a terminal: each input
// line is a message, and the reply streams to the output as it grows.
package terminal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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

// Options are what Run reads, writes and listens to.
type Options struct {
	In  io.Reader
	Out io.Writer
	// Prompt, when not empty, is written before each line; it also marks an
	// interactive terminal (a status line, dimmed reasoning).
	Prompt string
	// Interrupts are Ctrl-C presses.
	Interrupts <-chan os.Signal
	// ImageDir is where /image saves its pictures (created when needed).
	ImageDir string
}

// Run reads lines from o.In until it ends or ctx is done, sends each to h, and
// streams the replies to o.Out. An interrupt (Ctrl-C) while a reply is being
// written stops it, as /stop does; an interrupt while none is, or a second one
// before the stopped reply ends, ends Run.
func Run(ctx context.Context, h handler, o Options) error {
	ctx, cancel := context.WithCancel(ctx)
	var stopping sync.WaitGroup // the /stop requests sent; they end with ctx
	defer stopping.Wait()
	defer cancel()
	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() { // a blocked read cannot be interrupted; ctx ends the loop instead
		sc := bufio.NewScanner(o.In)
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
		fmt.Fprint(o.Out, o.Prompt)
		select {
		case <-ctx.Done():
			return nil
		case <-o.Interrupts:
			fmt.Fprintln(o.Out)
			return nil
		case err := <-readErr:
			if o.Prompt != "" {
				fmt.Fprintln(o.Out)
			}
			return err
		case line := <-lines:
			if strings.TrimSpace(line) == "" {
				continue
			}
			if !answer(ctx, h, o, line, &stopping) {
				return nil
			}
		}
	}
}

// answer sends line to h and waits for the reply, sending /stop at an interrupt.
// It reports false when Run should end: ctx is done, or a second interrupt came.
func answer(ctx context.Context, h handler, o Options, line string, stopping *sync.WaitGroup) bool {
	r := &reply{out: o.Out, tty: o.Prompt != "", imageDir: o.ImageDir}
	r.thinking()
	req := conversation.Request{Chat: Chat, UserID: "terminal", Text: line, Private: true, Reply: r, UpdateEvery: updateEvery}
	done := make(chan error, 1)
	// The turn goes on after Run ends; the engine's shutdown ends it.
	go func() { done <- h.Handle(context.WithoutCancel(ctx), req) }()
	stopped := false
	for {
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintf(o.Out, "(error: %v)\n", err)
			}
			return true
		case <-o.Interrupts:
			if stopped {
				return false
			}
			stopped = true
			// The turn ends with what was written and the stopped mark; the
			// command's own answer ("Stopped.") would only repeat it.
			stop := conversation.Request{Chat: Chat, UserID: "terminal", Text: "/" + conversation.CommandStop, Private: true, Reply: discard{}}
			stopping.Go(func() { _ = h.Handle(ctx, stop) })
		case <-ctx.Done():
			return false
		}
	}
}

// discard is a reply nobody sees.
type discard struct{}

func (discard) Update(context.Context, string) error { return nil }
func (discard) Finish(context.Context, string) error { return nil }

var (
	_ conversation.Reply      = (*reply)(nil)
	_ conversation.ImageReply = (*reply)(nil)
)

// ANSI codes for an interactive terminal.
const (
	dim       = "\x1b[2m"
	plain     = "\x1b[0m"
	clearLine = "\r\x1b[K"
)

// reply prints the part of the text not printed yet. When a text does not extend
// what is on screen (a note replaced the partial reply), it starts a new line.
// On a terminal (tty), a status line shows until the first text, and a
// reasoning summary is dimmed.
type reply struct {
	mu       sync.Mutex
	out      io.Writer
	tty      bool
	imageDir string
	status   bool // the thinking line is on screen
	printed  string
}

// thinking shows a status line until the first text.
func (r *reply) thinking() {
	if r.tty {
		io.WriteString(r.out, dim+"thinking…"+plain)
		r.status = true
	}
}

func (r *reply) Update(ctx context.Context, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.show(r.render(text))
	return nil
}

func (r *reply) Finish(ctx context.Context, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	shown := r.render(text)
	r.show(shown)
	if r.tty && strings.HasPrefix(shown, dim) && !strings.Contains(shown, plain) {
		io.WriteString(r.out, plain) // a reply that is all reasoning
	}
	_, err := fmt.Fprintln(r.out)
	return err
}

// render marks the reasoning summary: dimmed on a terminal. The dimming stays
// open while the summary grows, so that each text extends the one before.
func (r *reply) render(text string) string {
	summary, answer := conversation.SplitReasoning(text)
	if summary == "" {
		return text
	}
	on, off := "", ""
	if r.tty {
		on, off = dim, plain
	}
	shown := on + conversation.ReasoningMark + summary
	if answer != "" {
		shown += off + "\n\n" + answer
	}
	return shown
}

func (r *reply) show(text string) {
	if r.status {
		io.WriteString(r.out, clearLine)
		r.status = false
	}
	if rest, ok := strings.CutPrefix(text, r.printed); ok {
		io.WriteString(r.out, rest)
	} else {
		fmt.Fprintf(r.out, "\n%s", text)
	}
	r.printed = text
}

// Drawing shows that a picture is being made.
func (r *reply) Drawing(context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status {
		io.WriteString(r.out, clearLine+dim+"drawing…"+plain)
	}
}

// FinishImage saves the picture as a PNG in the image folder and prints its
// caption and path.
func (r *reply) FinishImage(ctx context.Context, img conversation.Attachment, caption string) error {
	path, err := savePicture(r.imageDir, img)
	if err != nil {
		return r.Finish(ctx, caption+"\n(could not save the picture: "+err.Error()+")")
	}
	return r.Finish(ctx, caption+"\nsaved to "+path)
}

// savePicture writes img into dir under a name that does not exist yet.
func savePicture(dir string, img conversation.Attachment) (string, error) {
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	ext := ".png"
	if sub, ok := strings.CutPrefix(img.MIME, "image/"); ok && sub != "png" {
		ext = "." + sub
	}
	f, err := os.CreateTemp(dir, "picture-"+time.Now().Format("20060102-150405")+"-*"+ext)
	if err != nil {
		return "", err
	}
	_, err = f.Write(img.Data)
	return f.Name(), errors.Join(err, f.Close())
}
