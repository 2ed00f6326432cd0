package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

var errHelp = errors.New("help requested")

const usage = `Usage: chatbot [serve|check|chat|health|passwd|store check|store repair] [-config FILE]
       (the flag may also come first: chatbot -config FILE check)

Commands:
  serve   run every platform whose token is set (the default)
  check   verify the key, the proxy, the model, the platform tokens, the store and
          http.listen; exit 1 on failure
  chat    talk to the model in the terminal, with the same engine and store
  health  ask a running bot's http.listen /healthz (for container health checks)
  passwd  read a password (one line of standard input; on a terminal, asked twice)
          and print its hash for web.users
  store check   read the whole store file and report any damage (bot stopped)
  store repair  copy the readable chats of a damaged store to a new file (bot stopped)

Flags:
`

var commands = []string{"serve", "check", "chat", "health", "passwd", "store check", "store repair"}

// ParseFlags reads "[command] [-config FILE]", or the flag before the command;
// the command defaults to serve.
func (m *Main) ParseFlags(args []string) error {
	m.command = ""
	fs := flag.NewFlagSet("chatbot", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&m.configPath, "config", "config.yaml", "the config file")
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(m.Stdout, usage)
				fs.SetOutput(m.Stdout)
				fs.PrintDefaults()
				return errHelp
			}
			return fmt.Errorf("%w\n\n%s", err, strings.TrimSpace(usage))
		}
		if fs.NArg() == 0 {
			break
		}
		if m.command != "" {
			return fmt.Errorf("unexpected argument %q (usage: chatbot %s -config FILE)", fs.Arg(0), m.command)
		}
		m.command, args = fs.Arg(0), fs.Args()[1:] // the flags may go on after the command
		if m.command == "store" && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			m.command, args = "store "+args[0], args[1:] // store check, store repair
		}
	}
	if m.command == "" {
		m.command = "serve"
	}
	for _, c := range commands {
		if m.command == c {
			return nil
		}
	}
	return fmt.Errorf("unknown command %q: use one of %s", m.command, strings.Join(commands, ", "))
}
