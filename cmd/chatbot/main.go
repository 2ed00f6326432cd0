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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	m := NewMain(os.Stdin, os.Stdout, os.Stderr)
	// A second signal exits at once.
	go func() {
		<-ctx.Done()
		stop()
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		<-again
		fmt.Fprintln(os.Stderr, "chatbot: second signal, exiting now")
		os.Exit(130)
	}()
	code := m.Main(ctx, os.Args[1:])
	os.Exit(code)
}

// Main is the program, with its input and outputs, so tests can drive it.
type Main struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv looks up environment variables for ${VAR} in the config.
	LookupEnv func(string) (string, bool)

	command    string
	configPath string
}

// NewMain returns a Main reading the real environment.
func NewMain(stdin io.Reader, stdout, stderr io.Writer) *Main {
	return &Main{Stdin: stdin, Stdout: stdout, Stderr: stderr, LookupEnv: os.LookupEnv}
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
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(m.Stderr, "chatbot:", err)
		return 1
	}
	return 0
}
