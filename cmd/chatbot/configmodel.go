package main

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

// modelNames checks openai.models: names without spaces, as /model NAME takes them.
func modelNames(models []string) error {
	for _, m := range models {
		if m == "" || strings.ContainsFunc(m, unicode.IsSpace) {
			return fmt.Errorf("model names may not be empty or hold spaces, got %q", m)
		}
	}
	return nil
}

// effort checks openai.reasoning_effort: empty (not sent) or one lowercase word,
// as the API's levels are (minimal, low, medium, high…); the model judges the rest.
func effort(s string) error {
	for _, r := range s {
		if r < 'a' || r > 'z' {
			return fmt.Errorf("must be a level such as low, medium or high, got %q", s)
		}
	}
	return nil
}

// webSearch checks openai.web_search: the built-in tool exists only on the
// Responses API.
func webSearch(on bool, api string) error {
	if on && api == "chat" {
		return fmt.Errorf("the built-in web_search tool needs the Responses API; " +
			"set openai.api to auto or responses, or turn web_search off")
	}
	return nil
}

// reasoningSummary checks openai.reasoning_summary: only the Responses API
// streams a reasoning summary.
func reasoningSummary(on bool, api string) error {
	if on && api == "chat" {
		return fmt.Errorf("reasoning summaries need the Responses API; " +
			"set openai.api to auto or responses, or turn reasoning_summary off")
	}
	return nil
}

// personaChecks checks each persona: a name that /persona NAME can take and a
// prompt.
func personaChecks(personas map[string]string) []keyCheck {
	names := make([]string, 0, len(personas))
	for name := range personas {
		names = append(names, name)
	}
	sort.Strings(names)
	var checks []keyCheck
	for _, name := range names {
		key := "personas." + name
		switch {
		case name == "" || strings.ContainsFunc(name, unicode.IsSpace) || len(name) > 40:
			checks = append(checks, keyCheck{key, fmt.Errorf("a persona's name must be one word of at most 40 characters")})
		case strings.EqualFold(name, "off"):
			checks = append(checks, keyCheck{key, fmt.Errorf(`"off" is reserved: /persona off goes back to openai.system_prompt`)})
		case strings.TrimSpace(personas[name]) == "":
			checks = append(checks, keyCheck{key, fmt.Errorf("must be the persona's system prompt")})
		}
	}
	return checks
}

// toolChecks checks the tools section: positive bounds, and each MCP server
// with a unique name and either a command or a URL.
func toolChecks(t ToolsConfig) []keyCheck {
	checks := []keyCheck{
		{"tools.max_rounds", positive(t.MaxRounds)},
		{"tools.call_timeout", positive(int(t.CallTimeout))},
	}
	seen := map[string]bool{}
	for i, s := range t.MCPServers {
		key := fmt.Sprintf("tools.mcp_servers[%d]", i)
		var err error
		switch {
		case !serverName(s.Name):
			err = fmt.Errorf("name must be 1-32 letters, digits and '-', with single underscores between them, got %q", s.Name)
		case seen[s.Name]:
			err = fmt.Errorf("name %q is used twice", s.Name)
		case (len(s.Command) == 0) == (s.URL == ""):
			err = fmt.Errorf("set either command (a stdio server: [program, args…]) or url (a streamable-HTTP server)")
		case s.URL != "" && len(s.Env) > 0:
			err = fmt.Errorf("env is for a command's environment; a url server takes headers")
		case len(s.Command) > 0 && len(s.Headers) > 0:
			err = fmt.Errorf("headers are for a url server; a command takes env")
		case s.URL != "":
			err = checkURL(s.URL)
		}
		seen[s.Name] = true
		checks = append(checks, keyCheck{key, err})
	}
	return checks
}

// serverNameRE is an MCP server's name: it prefixes its tools ("NAME__TOOL"),
// so letters, digits and '-' with single underscores between them.
var serverNameRE = regexp.MustCompile(`^[A-Za-z0-9-]+(_[A-Za-z0-9-]+)*$`)

func serverName(s string) bool {
	return len(s) <= 32 && serverNameRE.MatchString(s)
}

// postgresURL checks store.url: empty (the bbolt file) or a PostgreSQL URL.
func postgresURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("must be a PostgreSQL URL such as postgres://chatbot:PASSWORD@db:5432/chatbot, or empty for the bbolt file at store.path")
	}
	return nil
}
