package mcp

import (
	"context"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Hooks sets the test hooks of opt: dial replaces the transports of the config
// (in-memory servers), now the clock of the backoff, changed is told when a
// server said its tools changed.
func Hooks(opt Options, dial func(context.Context, ServerConfig) (sdk.Transport, error), now func() time.Time, changed func(string)) Options {
	opt.dial, opt.now, opt.changed = dial, now, changed
	return opt
}

var (
	ChildEnv = childEnv
	CapText  = capText
)
