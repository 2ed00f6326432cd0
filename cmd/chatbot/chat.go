package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"golang.org/x/term"

	"github.com/chatbot-dev/chatbot/bots/terminal"
)

// chat talks to the model in the terminal through the same engine and store as
// serve: one line a message, the reply streamed to stdout, exit at end of input.
func (m *Main) chat(ctx context.Context, cfg *Config, log *slog.Logger) error {
	c, err := openCore(cfg, log, nil)
	if err != nil {
		return err
	}
	prompt := ""
	if isTerminal(m.Stdin) {
		prompt = "> "
		m.Stdout.Write([]byte("Chatting with " + cfg.OpenAI.Model + ". /reset forgets, /help helps, Ctrl-D quits.\n"))
	}
	err = terminal.Run(ctx, c.engine, m.Stdin, m.Stdout, prompt)
	return errors.Join(err, c.close(shutdownGrace))
}

// isTerminal reports whether v is a terminal (not a pipe, a file or /dev/null).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
