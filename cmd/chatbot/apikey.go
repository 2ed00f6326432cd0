package main

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
)

// errNoAPIKey says which key is empty and where the example config reads it from.
var errNoAPIKey = errors.New("openai.api_key is empty: set it to your OpenAI key or your Worker's PROXY_TOKEN " +
	"(the example config.yaml reads it from the environment: api_key: ${OPENAI_API_KEY}, so export OPENAI_API_KEY=...)")

// checkAPIKey refuses an empty openai.api_key, unless openai.base_url points at
// a server on this machine or the local network (a local OpenAI-compatible
// server such as Ollama may need no key): every other service refuses a call
// without one, and the user would only see that the model cannot be reached.
func checkAPIKey(o OpenAIConfig) error {
	if strings.TrimSpace(o.APIKey) != "" || localHost(hostOf(o.BaseURL)) {
		return nil
	}
	return errNoAPIKey
}

// localHost reports whether host (with or without a port) is a loopback or
// private address, localhost, a name without a dot (a container or a machine on
// the LAN, such as "ollama") or a name under a local-only domain.
func localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast()
	}
	if host == "" {
		return false
	}
	if !strings.Contains(host, ".") {
		return true
	}
	for _, suffix := range []string{".localhost", ".local", ".lan", ".internal", ".home.arpa"} {
		if strings.HasSuffix(host, suffix) {
			return true
		}
	}
	return false
}

// checkKeyMissing stands in for checkModel when openai.api_key is empty and
// must not be (checkAPIKey): the calls would only be refused.
func checkKeyMissing(_ context.Context, cfg *Config) []result {
	return []result{
		{verdict: fail, name: "api key", text: checkAPIKey(cfg.OpenAI).Error(),
			hints: []string{"a key may be left empty only for a server on this machine or the local network (openai.base_url)"}},
		{verdict: skip, name: "proxy", text: "not tried: set openai.api_key first"},
	}
}
