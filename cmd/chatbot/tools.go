package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/mcp"
)

// newTools starts the MCP servers of tools.mcp_servers in the background; nil
// when none is configured.
func newTools(cfg *Config, log *slog.Logger) (*mcp.Servers, error) {
	if len(cfg.Tools.MCPServers) == 0 {
		return nil, nil
	}
	configs := make([]mcp.ServerConfig, len(cfg.Tools.MCPServers))
	for i, s := range cfg.Tools.MCPServers {
		configs[i] = mcp.ServerConfig{Name: s.Name, Command: s.Command, URL: s.URL, Env: s.Env,
			Headers: s.Headers, AllowedTools: s.AllowedTools}
	}
	return mcp.New(configs, mcp.Options{CallTimeout: time.Duration(cfg.Tools.CallTimeout), Logger: log})
}

// engineTools is servers as the engine's tools: a nil interface when there are
// none (a nil *mcp.Servers in the interface would not be nil).
func engineTools(servers *mcp.Servers) conversation.Tools {
	if servers == nil {
		return nil
	}
	return servers
}

// checkTools starts each MCP server and lists its tools, or says why it failed.
func checkTools(ctx context.Context, cfg *Config) []result {
	servers, err := newTools(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return []result{{verdict: fail, name: "tools", text: err.Error()}}
	}
	if servers == nil {
		return nil
	}
	defer servers.Close()
	var out []result
	for _, st := range servers.Check(ctx) {
		name := "tools " + st.Name
		if st.Err != nil {
			out = append(out, result{verdict: warn, name: name, text: fmt.Sprintf("%s server failed: %v", st.Transport, st.Err),
				hints: []string{"the bot runs without this server's tools until it starts"}})
			continue
		}
		r := result{verdict: pass, name: name, text: fmt.Sprintf("%s server ready in %s: %s", st.Transport, ms(st.Ready), strings.Join(st.Tools, ", "))}
		if len(st.Unknown) > 0 {
			r.verdict, r.hints = warn, []string{"allowed_tools names tools this server does not have: " + strings.Join(st.Unknown, ", ")}
		}
		out = append(out, r)
	}
	return out
}
