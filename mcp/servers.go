// Package mcp offers the tools of the MCP servers the owner configured to the
// conversation engine, through the official Go SDK
// (github.com/modelcontextprotocol/go-sdk). A server is either a child process
// spoken to over stdio or a streamable-HTTP endpoint.
//
// Every tool is offered to the model as "SERVER__TOOL" (see [ToolName]), so that
// names never clash across servers and never depend on which servers are up.
package mcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatbot-dev/chatbot/conversation"
)

var _ conversation.Tools = (*Servers)(nil)

// Defaults of [Options].
const (
	DefaultCallTimeout    = 60 * time.Second
	DefaultStartTimeout   = 30 * time.Second
	DefaultMaxOutputBytes = 16 << 10
)

// Errors at the package's boundary.
var (
	// ErrClosed is returned by calls after Close.
	ErrClosed = errors.New("mcp servers are closed")
	// ErrUnknownTool is returned by Call for a name that no server offers now.
	ErrUnknownTool = errors.New("no such tool")
	// ErrTimeout is returned by Call when a tool did not answer within
	// Options.CallTimeout.
	ErrTimeout = errors.New("tool timed out")
)

// ServerConfig is one entry of tools.mcp_servers. Exactly one of Command and
// URL is set.
type ServerConfig struct {
	// Name prefixes the server's tools ("NAME__TOOL"): letters, digits and
	// '-', with single underscores between them, at most 32 characters.
	Name string
	// Command is the argv of a stdio server, started as a child process.
	Command []string
	// URL is the endpoint of a streamable-HTTP server.
	URL string
	// Env is added to a stdio server's environment, which otherwise holds only
	// a few harmless variables of the bot's own: PATH, HOME, USER, LOGNAME,
	// SHELL, TERM, LANG, LC_ALL, LC_CTYPE, TZ, TMPDIR, the proxy variables and
	// Windows' system ones. The bot's secrets stay out unless listed here.
	Env map[string]string
	// Headers are sent with every request to an HTTP server (Authorization…).
	Headers map[string]string
	// AllowedTools are the MCP names of the tools to offer; empty offers all.
	AllowedTools []string
}

// Options tune [Servers]. Zero values take the defaults.
type Options struct {
	// CallTimeout bounds one Call, a restart of its server included.
	CallTimeout time.Duration
	// StartTimeout bounds starting a server: spawning or reaching it, the MCP
	// handshake and the first tools/list.
	StartTimeout time.Duration
	// MaxOutputBytes caps a tool's output; longer output is cut at a rune
	// boundary and ends with a note "[output cut at N of M bytes]".
	MaxOutputBytes int
	// Logger receives start failures, crashes and the servers' stderr (debug).
	Logger *slog.Logger

	// Test hooks.
	dial    func(ctx context.Context, cfg ServerConfig) (sdk.Transport, error)
	now     func() time.Time
	changed func(server string) // after a server said its tool list changed
}

// Servers runs the configured MCP servers and offers their tools. It starts
// every server in the background at New; a server that fails to start is
// logged, left out of List and tried again on a later use (after 5 s, then
// longer, up to 5 min); a server that exits is restarted on its next use.
// Its methods are safe for concurrent use.
type Servers struct {
	opt     Options
	log     *slog.Logger
	servers []*server
	byName  map[string]*server
	http    *http.Transport

	root   context.Context // ends at Close: stops starts and calls
	cancel context.CancelFunc
	mu     sync.Mutex // guards closed with wg.Add
	closed bool
	wg     sync.WaitGroup // start and watch goroutines
}

// New checks the configs and starts every server in the background. Its errors
// name the config key, e.g. "tools.mcp_servers[1].url: …". Call Close when done.
func New(configs []ServerConfig, opt Options) (*Servers, error) {
	if err := validate(configs); err != nil {
		return nil, err
	}
	if opt.CallTimeout <= 0 {
		opt.CallTimeout = DefaultCallTimeout
	}
	if opt.StartTimeout <= 0 {
		opt.StartTimeout = DefaultStartTimeout
	}
	if opt.MaxOutputBytes <= 0 {
		opt.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.now == nil {
		opt.now = time.Now
	}
	s := &Servers{
		opt:    opt,
		log:    opt.Logger,
		byName: make(map[string]*server, len(configs)),
		http:   http.DefaultTransport.(*http.Transport).Clone(),
	}
	s.root, s.cancel = context.WithCancel(context.Background())
	for _, c := range configs {
		v := &server{cfg: c, parent: s, log: s.log.With("mcp_server", c.Name)}
		if len(c.AllowedTools) > 0 {
			v.allowed = make(map[string]bool, len(c.AllowedTools))
			for _, t := range c.AllowedTools {
				v.allowed[t] = true
			}
		}
		s.servers = append(s.servers, v)
		s.byName[c.Name] = v
	}
	for _, v := range s.servers {
		v.mu.Lock()
		v.startLocked()
		v.mu.Unlock()
	}
	return s, nil
}

// serverName is what a server's name may be: it never holds "__", the
// separator of tool names, nor starts or ends with '_'.
var serverName = regexp.MustCompile(`^[a-zA-Z0-9-]+(_[a-zA-Z0-9-]+)*$`)

const maxServerName = 32

func validate(configs []ServerConfig) error {
	seen := make(map[string]bool, len(configs))
	for i, c := range configs {
		key := fmt.Sprintf("tools.mcp_servers[%d]", i)
		switch {
		case c.Name == "":
			return fmt.Errorf("%s.name: missing", key)
		case len(c.Name) > maxServerName || !serverName.MatchString(c.Name):
			return fmt.Errorf("%s.name: %q: use at most %d letters, digits, '-' and single '_' between them", key, c.Name, maxServerName)
		case seen[c.Name]:
			return fmt.Errorf("%s.name: %q is used twice", key, c.Name)
		case len(c.Command) == 0 && c.URL == "":
			return fmt.Errorf("%s: set command (a stdio server) or url (a streamable-HTTP server)", key)
		case len(c.Command) > 0 && c.URL != "":
			return fmt.Errorf("%s: set command or url, not both", key)
		}
		seen[c.Name] = true
		if len(c.Command) > 0 {
			if c.Command[0] == "" {
				return fmt.Errorf("%s.command: the program is empty", key)
			}
			if len(c.Headers) > 0 {
				return fmt.Errorf("%s.headers: only for url servers (use env for a command)", key)
			}
		} else {
			u, err := url.Parse(c.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("%s.url: %q is not an http(s) URL", key, c.URL)
			}
			if len(c.Env) > 0 {
				return fmt.Errorf("%s.env: only for command servers (use headers for a url)", key)
			}
		}
		for k := range c.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				return fmt.Errorf("%s.env: %q is not a variable name", key, k)
			}
		}
		for k := range c.Headers {
			if k == "" || strings.ContainsAny(k, ": \t\r\n") {
				return fmt.Errorf("%s.headers: %q is not a header name", key, k)
			}
		}
		for j, t := range c.AllowedTools {
			if strings.TrimSpace(t) == "" {
				return fmt.Errorf("%s.allowed_tools[%d]: empty", key, j)
			}
		}
	}
	return nil
}

// List returns the tools on offer now, server by server in config order. It
// waits for servers that are starting (bounded by ctx and StartTimeout) and
// leaves out, with a log line, those that fail. Its only errors are ErrClosed
// and ctx's.
func (s *Servers) List(ctx context.Context) ([]conversation.Tool, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	offers := make([]*offer, len(s.servers))
	var wg sync.WaitGroup
	for i, v := range s.servers {
		wg.Go(func() {
			_, o, err := v.offer(ctx, false)
			if err != nil {
				if ctx.Err() == nil && !s.isClosed() {
					v.logUnavailable(err)
				}
				return
			}
			offers[i] = o
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.isClosed() {
		return nil, ErrClosed
	}
	var tools []conversation.Tool
	for _, o := range offers {
		if o != nil {
			tools = append(tools, o.tools...)
		}
	}
	if len(tools) > maxModelTools {
		s.log.Warn("mcp servers offer more tools than OpenAI takes in one request: narrow them with allowed_tools",
			"tools", len(tools), "limit", maxModelTools)
	}
	return tools, nil
}

// maxModelTools is OpenAI's limit of functions in one request.
const maxModelTools = 128

// Call runs the tool the model knows as name (as List named it) with the JSON
// object arguments and returns its output as text, cut to MaxOutputBytes.
// The call is bounded by CallTimeout (ErrTimeout) and by ctx; a tool's own
// failure is a *ToolError whose text is the tool's message; an unknown name
// wraps ErrUnknownTool; a server that cannot be reached or crashes is an error
// too. Call restarts a server that had exited.
func (s *Servers) Call(ctx context.Context, name, arguments string) (string, error) {
	if s.isClosed() {
		return "", ErrClosed
	}
	v := s.serverOf(name)
	if v == nil {
		return "", fmt.Errorf("%w: %s", ErrUnknownTool, name)
	}
	args, err := parseArguments(arguments)
	if err != nil {
		return "", fmt.Errorf("tool %s: %w", name, err)
	}
	callCtx, cancel := context.WithTimeout(ctx, s.opt.CallTimeout)
	defer cancel()
	stop := context.AfterFunc(s.root, cancel)
	defer stop()

	res, err := v.call(callCtx, name, args)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return "", fmt.Errorf("tool %s: %w", name, ctx.Err())
	case s.isClosed():
		return "", ErrClosed
	case errors.Is(callCtx.Err(), context.DeadlineExceeded):
		return "", fmt.Errorf("tool %s did not answer within %s: %w", name, s.opt.CallTimeout, ErrTimeout)
	default:
		return "", err
	}
	text := resultText(res)
	if res.IsError {
		msg := capText(strings.TrimSpace(text), s.opt.MaxOutputBytes)
		if msg == "" {
			msg = "tool " + name + " failed without a message"
		}
		return "", &ToolError{Tool: name, Message: msg}
	}
	return capText(text, s.opt.MaxOutputBytes), nil
}

// ToolError is a tool's own report that it failed (an MCP result with
// isError): its text is the tool's message, meant for the model.
type ToolError struct {
	Tool    string // the name the model called
	Message string
}

func (e *ToolError) Error() string { return e.Message }

// serverOf finds the server of a tool name as List made it.
func (s *Servers) serverOf(name string) *server {
	i := strings.Index(name, sep)
	if i <= 0 {
		return nil
	}
	return s.byName[name[:i]]
}

// Close stops every server and waits for them: in-flight calls end at once
// with an error, stdio children get their stdin closed and, if they linger,
// SIGTERM then SIGKILL. It is safe to call more than once.
func (s *Servers) Close() error {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if already {
		s.wg.Wait()
		return nil
	}
	s.cancel()
	var wg sync.WaitGroup
	for _, v := range s.servers {
		v.mu.Lock()
		sess := v.sess
		v.sess = nil
		v.mu.Unlock()
		if sess != nil {
			wg.Go(func() {
				if err := sess.cs.Close(); err != nil {
					v.log.Debug("mcp server stopped", "err", err)
				}
			})
		}
	}
	wg.Wait()
	s.wg.Wait()
	s.http.CloseIdleConnections()
	return nil
}

func (s *Servers) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// goTracked runs f in a goroutine that Close waits for, unless closed.
func (s *Servers) goTracked(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Go(f)
	return true
}

// clientImpl names this client to servers.
func clientImpl() *sdk.Implementation {
	version := "dev"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	return &sdk.Implementation{Name: "chatbot", Version: version}
}
