// Command chatbot serves an OpenAI model to Telegram and Slack through the owner's
// proxy, checks a set-up, or chats in the terminal.
//
//	chatbot [serve|check|chat] [-config FILE]
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// One channel, registered before anything runs, receives every signal, so that
	// two signals close together count as two (the buffer keeps both).
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	m := NewMain(os.Stdin, os.Stdout, os.Stderr)
	m.Signals = signals
	os.Exit(m.Main(context.Background(), os.Args[1:]))
}

// Main is the program, with its input and outputs, so tests can drive it.
type Main struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv looks up environment variables for ${VAR} in the config.
	LookupEnv func(string) (string, bool)
	// Signals are the process's SIGINT and SIGTERM (nil: none). The first stops
	// the command gracefully, the second exits at once; in `chat`, Ctrl-C stops
	// the reply in progress instead, and quits when no reply is.
	Signals <-chan os.Signal

	command    string
	configPath string
	exit       func(code int) // exits the process at the second signal
}

// NewMain returns a Main reading the real environment.
func NewMain(stdin io.Reader, stdout, stderr io.Writer) *Main {
	return &Main{Stdin: stdin, Stdout: stdout, Stderr: stderr, LookupEnv: os.LookupEnv, exit: os.Exit}
}

// Main parses args, runs the command until ctx ends, and returns the exit code.
func (m *Main) Main(ctx context.Context, args []string) int {
	if err := m.ParseFlags(args); err != nil {
		if err == errHelp {
			return 0
		}
		fmt.Fprintln(m.Stderr, "chatbot:", err)
		return 2
	}
	ctx, stop := m.watchSignals(ctx)
	defer stop()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(m.Stderr, "chatbot:", err)
		return 1
	}
	return 0
}

// watchSignals returns ctx cancelled at the first of m.Signals; the second
// exits the process at once, with code 130. The chat command reads the signals
// itself (Ctrl-C stops a reply). stop ends the watch.
func (m *Main) watchSignals(ctx context.Context) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	if m.Signals == nil || m.command == "chat" {
		return ctx, cancel
	}
	done := make(chan struct{})
	go func() {
		for n := 1; ; n++ {
			select {
			case <-m.Signals:
			case <-done:
				return
			}
			if n == 1 {
				cancel()
				continue
			}
			fmt.Fprintln(m.Stderr, "chatbot: second signal, exiting now")
			if m.exit != nil {
				m.exit(130)
			} else {
				os.Exit(130)
			}
			return
		}
	}()
	return ctx, func() { close(done); cancel() }
}
