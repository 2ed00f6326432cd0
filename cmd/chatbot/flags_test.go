package main

import (
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args          []string
		command, path string
		err           string
	}{
		{[]string{"check", "-config", "c.yaml"}, "check", "c.yaml", ""},
		{[]string{"-config", "c.yaml", "check"}, "check", "c.yaml", ""},
		{[]string{"-config=c.yaml", "chat"}, "chat", "c.yaml", ""},
		{[]string{"-config", "c.yaml"}, "serve", "c.yaml", ""},
		{nil, "serve", "config.yaml", ""},
		{[]string{"-config", "c.yaml", "check", "chat"}, "", "", `unexpected argument "chat"`},
		{[]string{"-config", "c.yaml", "dance"}, "", "", `unknown command "dance"`},
	}
	for _, tt := range tests {
		m := &Main{}
		err := m.ParseFlags(tt.args)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.args, err, tt.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tt.args, err)
		case m.command != tt.command || m.configPath != tt.path:
			t.Errorf("%q: command %q config %q, want %q %q", tt.args, m.command, m.configPath, tt.command, tt.path)
		}
	}
}
