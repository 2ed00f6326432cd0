package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/chatbot-dev/chatbot/bots/web"
)

// passwd reads a password and prints its hash for web.users: from a
// terminal it asks twice without echo; otherwise it reads one line of
// standard input. Only the hash goes to standard output.
func (m *Main) passwd() error {
	var password string
	if f, ok := m.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		first, err := askPassword(f, m.Stderr, "Password for the web chat: ")
		if err != nil {
			return err
		}
		again, err := askPassword(f, m.Stderr, "Again: ")
		if err != nil {
			return err
		}
		if first != again {
			return errors.New("passwd: the two passwords differ")
		}
		password = first
	} else {
		line, err := bufio.NewReader(m.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("passwd: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	hash, err := web.HashPassword(password)
	if err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	fmt.Fprintln(m.Stdout, hash)
	return nil
}

func askPassword(f *os.File, prompt io.Writer, text string) (string, error) {
	fmt.Fprint(prompt, text)
	p, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("passwd: %w", err)
	}
	return string(p), nil
}
