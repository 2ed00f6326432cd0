// Package web is the owner's own web chat: a page served by the bot, on the
// same engine and store as Telegram and Slack. Everything it serves is embedded
// in the binary; Markdown is rendered on the server; replies stream to the
// page over server-sent events and are written on the server whatever the
// browser does, so a closed tab, a sleeping phone or a second tab all find
// the reply where it is.
//
// People log in with a name and password from web.users, or with a one-time
// link that /web answers in a Telegram private chat or a Slack DM; such a
// user's web identity is their platform identity, and their platform chat is
// one of their web conversations.
package web

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
)

// Handler is the part of the engine the web chat uses.
type Handler interface {
	Handle(ctx context.Context, req conversation.Request) error
}

// Store keeps the web chat's state and reads the histories. *store.DB is one.
type Store interface {
	conversation.BlobStore
	ChatSettings(ctx context.Context, chat conversation.ChatID) (conversation.ChatSettings, error)
	Reset(ctx context.Context, chat conversation.ChatID) error
	HistoryPage(ctx context.Context, chat conversation.ChatID, before uint64, max int) ([]conversation.Message, uint64, error)
	DropLastTurn(ctx context.Context, chat conversation.ChatID) (conversation.Message, bool, error)

	CreateWebSession(ctx context.Context, token, user string, expires time.Time) error
	WebSession(ctx context.Context, token string, now time.Time) (user string, expires time.Time, err error)
	ExtendWebSession(ctx context.Context, token string, expires time.Time) error
	DeleteWebSession(ctx context.Context, token string) error

	CreateWebLoginToken(ctx context.Context, token, user string, chat conversation.ChatID, expires time.Time) error
	TakeWebLoginToken(ctx context.Context, token string, now time.Time) (user string, chat conversation.ChatID, err error)

	PutWebConversation(ctx context.Context, user, id string, chat conversation.ChatID, title string, updated time.Time) error
	LinkWebConversation(ctx context.Context, user, id string, chat conversation.ChatID, title string, updated time.Time) (string, error)
	WebConversation(ctx context.Context, user, id string) (chat conversation.ChatID, title string, err error)
	WebConversations(ctx context.Context, user string, fn func(id string, chat conversation.ChatID, title string, updated time.Time) error) error
	DeleteWebConversation(ctx context.Context, user, id string) error

	PutWebImage(ctx context.Context, chat conversation.ChatID, prompt, sha string, data []byte) error
	WebImageFor(ctx context.Context, chat conversation.ChatID, prompt string) (string, error)
	WebImage(ctx context.Context, chat conversation.ChatID, sha string) ([]byte, error)
	DeleteWebImages(ctx context.Context, chat conversation.ChatID) error
}

// User is one entry of web.users.
type User struct {
	Name         string
	PasswordHash string // from chatbot passwd (bcrypt)
}

// Options configure the web chat.
type Options struct {
	// Listen is the address Run serves on (web.listen).
	Listen string
	// PublicURL is where browsers reach the page (web.public_url): it makes the
	// login links, sets the cookie's path and Secure flag, and its path is the
	// sub-path the page is served at. Empty means http://localhost on Listen's port.
	PublicURL string
	// Users may log in with a password.
	Users []User
	// Allowed, when set, says whether a platform user (who logged in with a
	// link from /web) may still use the page; it is asked on every request.
	Allowed func(user string) bool
	// Models are the models a conversation may pick (the first is the
	// default); Personas the personas' names. Both feed the pickers.
	Models   []string
	Personas []string
	// MaxFileBytes bounds each attached file (limits.max_file_bytes). Default 20 MB.
	MaxFileBytes int
	// SessionTTL is how long a session lasts without use. Default 30 days.
	SessionTTL time.Duration
	// UpdateEvery paces the reply's updates. Default 50 ms.
	UpdateEvery time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock of sessions, tokens and login limits; default time.Now.
	Now func() time.Time
}

// Defaults.
const (
	DefaultMaxFileBytes = 20 << 20
	DefaultSessionTTL   = 30 * 24 * time.Hour
	// LinkTTL is how long a login link from /web works.
	LinkTTL = 10 * time.Minute
	// maxFiles bounds the files of one message.
	maxFiles = 8
	// pageSize is how many messages a page shows at first and loads at a time.
	pageSize = 40
)

// Server is the web chat. It is an http.Handler; Run serves it on Options.Listen.
type Server struct {
	opt    Options
	engine Handler
	store  Store
	log    *slog.Logger
	md     *markdown
	base   string // the sub-path, without a trailing slash ("" at the root)
	origin string // scheme://host of PublicURL
	secure bool
	users  map[string]string // name → hash
	// dummyHash is compared against for an unknown name.
	dummyHash func() []byte
	limits    *loginLimits
	hub       *hub
	handler   http.Handler
	assets    *assets
	pages     *pages

	ctx    context.Context // ends at Close: streams end, turns go on in the engine
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ready  atomic.Bool
}

// New returns the web chat on engine and store.
func New(opt Options, engine Handler, st Store) (*Server, error) {
	if opt.MaxFileBytes <= 0 {
		opt.MaxFileBytes = DefaultMaxFileBytes
	}
	if opt.SessionTTL <= 0 {
		opt.SessionTTL = DefaultSessionTTL
	}
	if opt.UpdateEvery <= 0 {
		opt.UpdateEvery = 50 * time.Millisecond
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	public, err := PublicURL(opt.PublicURL, opt.Listen)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	u, _ := url.Parse(public)
	s := &Server{
		opt: opt, engine: engine, store: st, log: opt.Logger,
		md:     newMarkdown(),
		base:   strings.TrimSuffix(u.Path, "/"),
		origin: u.Scheme + "://" + u.Host,
		secure: u.Scheme == "https",
		users:  make(map[string]string, len(opt.Users)),
		limits: newLoginLimits(),
	}
	for _, usr := range opt.Users {
		s.users[usr.Name] = usr.PasswordHash
	}
	s.dummyHash = dummyHash(opt.Users)
	s.opt.PublicURL = public
	s.hub = newHub(s.md)
	s.assets = newAssets(s.base)
	if s.pages, err = newPages(s.assets); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.handler = s.routes()
	return s, nil
}

// PublicURL returns web.public_url with a trailing slash, or, when it is
// empty, the local URL of listen (http://localhost:PORT/).
func PublicURL(public, listen string) (string, error) {
	if public == "" {
		_, port, err := net.SplitHostPort(listen)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			return "", fmt.Errorf("web.listen must be host:port, e.g. 127.0.0.1:8080 or :8080, got %q", listen)
		}
		public = "http://localhost:" + port + "/"
	}
	u, err := url.Parse(public)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("web.public_url must be an http(s) URL without a query, got %q", public)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u.String(), nil
}

// ServeHTTP serves the page at its sub-path. A request whose path still has the
// sub-path is served as well as one whose proxy took it off.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Run serves on Options.Listen until ctx ends, then closes the streams and
// shuts the server down. Replies being written go on in the engine.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opt.Listen)
	if err != nil {
		return fmt.Errorf("web.listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
	}
	s.log.Info("web chat", "listen", ln.Addr().String(), "url", s.opt.PublicURL)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.logOwnerLink(ctx)
	s.ready.Store(true)
	janitor := time.NewTicker(time.Minute)
	defer janitor.Stop()
loop:
	for {
		select {
		case err := <-errc:
			s.ready.Store(false)
			s.Close()
			return fmt.Errorf("web: %w", err)
		case <-janitor.C:
			s.sweep()
		case <-ctx.Done():
			break loop
		}
	}
	s.ready.Store(false)
	s.cancel() // streams end, so Shutdown need not wait for them
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	<-errc
	s.Close()
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// Ready reports whether Run is listening.
func (s *Server) Ready() bool { return s.ready.Load() }

// Close ends the streams and waits for the turns started from the page to
// hand over to the engine's shutdown.
func (s *Server) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// sweep forgets finished turns and idle login limits.
func (s *Server) sweep() {
	now := s.opt.Now()
	s.hub.sweep(now)
	s.limits.sweep(now)
}

// randomID returns n random bytes as lowercase base32 without padding.
func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// chatOf is the ChatID of a new web conversation id of user.
func chatOf(user, id string) conversation.ChatID {
	return conversation.ChatID("web:" + strings.TrimPrefix(user, "web:") + ":" + id)
}
