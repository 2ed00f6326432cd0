package conversation

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// The platform-neutral commands. Adapters map their own forms ("/reset@bot",
// Slack's "@bot reset") onto these texts.
const (
	CommandStart   = "start"
	CommandHelp    = "help"
	CommandReset   = "reset"
	CommandStop    = "stop"
	CommandUsage   = "usage"
	CommandModel   = "model"
	CommandPersona = "persona"
)

// parseCommand reports the command a text starts with, if any, and its argument.
// "/reset@bot" counts; an unknown "/word" is not a command and goes to the model
// like any text.
func parseCommand(text string) (cmd, arg string, ok bool) {
	t := strings.TrimSpace(text)
	if !strings.HasPrefix(t, "/") {
		return "", "", false
	}
	word, rest, _ := strings.Cut(t[1:], " ")
	if w, r, found := strings.Cut(word, "\n"); found {
		word, rest = w, r+" "+rest
	}
	word, _, _ = strings.Cut(word, "@")
	switch word = strings.ToLower(word); word {
	case CommandStart, CommandHelp, CommandReset, CommandStop, CommandUsage, CommandModel, CommandPersona, CommandImage, CommandWeb:
		return word, strings.TrimSpace(rest), true
	}
	return "", "", false
}

// IsCommand reports whether text is one of the engine's commands.
func IsCommand(text string) bool {
	_, _, ok := parseCommand(text)
	return ok
}

// command answers a command at once, without waiting for the chat's running turn.
func (e *Engine) command(ctx context.Context, req *Request, cmd, arg string) error {
	switch cmd {
	case CommandReset:
		e.cancelTurn(ctx, req.Chat, errReset)
		if err := e.history.Reset(ctx, req.Chat); err != nil {
			err = fmt.Errorf("reset history: %w", err)
			return errors.Join(err, e.finishNow(ctx, req.Reply, "I could not clear the context. Please try again."))
		}
		return e.finishNow(ctx, req.Reply, resetText)
	case CommandStop:
		if e.cancelTurn(ctx, req.Chat, errStopped) {
			return e.finishNow(ctx, req.Reply, "Stopped.")
		}
		return e.finishNow(ctx, req.Reply, stopIdleText)
	case CommandUsage:
		return e.finishNow(ctx, req.Reply, e.usageText(ctx, req.UserID))
	case CommandModel:
		return e.modelCommand(ctx, *req, arg)
	case CommandPersona:
		return e.personaCommand(ctx, *req, arg)
	case CommandWeb:
		return e.webCommand(ctx, *req)
	default:
		return e.finishNow(ctx, req.Reply, e.HelpText(ctx, req.Chat))
	}
}
