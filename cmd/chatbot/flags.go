package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

var errHelp = errors.New("help requested")

const usage = `Usage: chatbot [serve|check|chat|health|store check|store repair] [-config FILE]

Commands:
  serve   run every platform whose token is set (the default)
  check   verify the proxy, the model and the platform tokens; exit 1 on failure
  chat    talk to the model in the terminal, with the same engine and store
  health  ask a running bot's http.listen /healthz (for container health checks)
  store check   read the whole store file and report any damage (bot stopped)
  store repair  copy the readable chats of a damaged store to a new file (bot stopped)

Flags:
`

var commands = []string{"serve", "check", "chat", "health", "store check", "store repair"}

// ParseFlags reads "[command] [-config FILE]"; the command defaults to serve.
func (m *Main) ParseFlags(args []string) error {
	m.command = "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		m.command, args = args[0], args[1:]
	}
	if m.command == "store" && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		m.command, args = "store "+args[0], args[1:] // store check, store repair
	}
	fs := flag.NewFlagSet("chatbot", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&m.configPath, "config", "config.yaml", "the config file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(m.Stdout, usage)
			fs.SetOutput(m.Stdout)
			fs.PrintDefaults()
			return errHelp
		}
		return fmt.Errorf("%w\n\n%s", err, strings.TrimSpace(usage))
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (the command goes first: chatbot %s -config FILE)", fs.Arg(0), m.command)
	}
	for _, c := range commands {
		if m.command == c {
			return nil
		}
	}
	return fmt.Errorf("unknown command %q: use one of %s", m.command, strings.Join(commands, ", "))
}
