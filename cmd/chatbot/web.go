package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/chatbot-dev/chatbot/bots/web"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/store"
	"github.com/chatbot-dev/chatbot/store/postgres"
)

// Both stores keep the web chat's state.
var (
	_ web.Store = (*store.DB)(nil)
	_ web.Store = (*postgres.Store)(nil)
)

// WebConfig is the web chat; it runs when Listen is set.
type WebConfig struct {
	Listen    string          `yaml:"listen"`
	PublicURL string          `yaml:"public_url"`
	Users     []WebUserConfig `yaml:"users"`
}

// WebUserConfig is one user of the web chat, with a hash from chatbot passwd.
type WebUserConfig struct {
	Name         string `yaml:"name"`
	PasswordHash string `yaml:"password_hash"`
}

// webChecks checks the web section: a public URL the page can be served at, and
// users with names and hashes.
func webChecks(w WebConfig) []keyCheck {
	var checks []keyCheck
	if w.Listen != "" {
		checks = append(checks, keyCheck{"web.listen", listenAddr(w.Listen)})
		if _, err := web.PublicURL(w.PublicURL, w.Listen); w.PublicURL != "" && err != nil {
			checks = append(checks, keyCheck{"web.public_url", errors.New("must be an http(s) URL without a query, e.g. https://chat.example.com/")})
		}
	}
	seen := map[string]bool{}
	for i, u := range w.Users {
		key := fmt.Sprintf("web.users[%d]", i)
		checks = append(checks,
			keyCheck{key + ".name", webUserName(u.Name, seen)},
			keyCheck{key + ".password_hash", web.CheckHash(u.PasswordHash)})
	}
	return checks
}

// webUserName checks a web user's name: one word without ":" or "/" (they
// separate the parts of ids), not taken yet.
func webUserName(name string, seen map[string]bool) error {
	if name == "" || strings.ContainsAny(name, ":/ \t\n") || len(name) > 64 {
		return fmt.Errorf("must be a name of up to 64 characters without spaces, ':' or '/', got %q", name)
	}
	if seen[name] {
		return fmt.Errorf("%q is listed twice", name)
	}
	seen[name] = true
	return nil
}

// webLinks makes the login links /web answers with, when the web chat is on.
func webLinks(cfg *Config, db botStore) conversation.LoginLinks {
	st, ok := db.(web.Store)
	if cfg.Web.Listen == "" || !ok {
		return nil
	}
	public, err := web.PublicURL(cfg.Web.PublicURL, cfg.Web.Listen)
	if err != nil {
		return nil // validate refused it already
	}
	return web.NewLinks(public, st)
}

// newWeb builds the web chat when web.listen is set (nil otherwise).
func newWeb(_ context.Context, d deps) (platform, error) {
	w := d.cfg.Web
	if w.Listen == "" {
		return nil, nil
	}
	users := make([]web.User, len(w.Users))
	for i, u := range w.Users {
		users[i] = web.User{Name: u.Name, PasswordHash: u.PasswordHash}
	}
	personas := make([]string, 0, len(d.cfg.Personas))
	for name := range d.cfg.Personas {
		personas = append(personas, name)
	}
	slices.Sort(personas)
	st, ok := d.db.(web.Store)
	if !ok {
		return nil, fmt.Errorf("web.listen: the web chat cannot keep its state in %s", d.db.Path())
	}
	s, err := web.New(web.Options{
		Listen:       w.Listen,
		PublicURL:    w.PublicURL,
		Users:        users,
		Allowed:      platformAllows(d.cfg),
		Models:       d.cfg.OpenAI.Models,
		Personas:     personas,
		MaxFileBytes: d.cfg.Limits.MaxFileBytes,
		Logger:       d.log.With("platform", "web"),
	}, d.engine, st)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// platformAllows says whether a user who logged in with a link from /web is
// still allowed on their platform: the platform still runs, and its allowlist
// (if any) still lists them.
func platformAllows(cfg *Config) func(user string) bool {
	return func(user string) bool {
		platform, id, _ := strings.Cut(user, ":")
		switch platform {
		case "telegram":
			n, err := strconv.ParseInt(id, 10, 64)
			return cfg.Telegram.Token != "" && err == nil &&
				(slices.Contains(cfg.Telegram.AllowedUserIDs, n) || slices.Contains(cfg.Telegram.AllowedChatIDs, n))
		case "slack":
			users := cfg.Slack.AllowedUserIDs
			return cfg.Slack.BotToken != "" && (len(users) == 0 || slices.Contains(users, id))
		}
		return false
	}
}
