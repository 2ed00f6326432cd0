package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/term"

	"github.com/chatbot-dev/chatbot/bots/terminal"
)

// chat talks to the model in the terminal through the same engine and store as
// serve: one line a message, the reply streamed to stdout, exit at end of input.
// Ctrl-C (m.Signals) stops the reply in progress; while none is, it quits.
func (m *Main) chat(ctx context.Context, cfg *Config, log *slog.Logger) error {
	c, err := openCore(ctx, cfg, log, nil)
	if err != nil {
		return err
	}
	prompt := ""
	if isTerminal(m.Stdin) {
		prompt = "> "
		m.Stdout.Write([]byte("Chatting with " + cfg.OpenAI.Model + ". /reset forgets, /help helps, " +
			"Ctrl-C stops a reply, Ctrl-D quits.\n"))
	}
	err = terminal.Run(ctx, c.engine, terminal.Options{In: m.Stdin, Out: m.Stdout, Prompt: prompt,
		Interrupts: m.Signals, ImageDir: filepath.Join(filepath.Dir(cfg.Store.Path), "pictures")})
	// Every reply has ended, unless Run was told to quit during one: cut it.
	return errors.Join(err, c.close(0))
}

// isTerminal reports whether v is a terminal (not a pipe, a file or /dev/null).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
