package mcp

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Stopping a stdio child: after its stdin closes it has terminateAfter to exit
// before SIGTERM, then as long again before SIGKILL; its stderr is read for
// waitDelay more after it exits (a grandchild may hold it open).
const (
	terminateAfter = 3 * time.Second
	waitDelay      = 2 * time.Second
)

// connect opens a session to the server. The session it returns is never nil:
// on failure it still holds the child's stderr, which says why.
func (v *server) connect(ctx context.Context) (*session, error) {
	sess := &session{listMu: make(chan struct{}, 1), done: make(chan struct{})}
	var t sdk.Transport
	switch {
	case v.parent.opt.dial != nil:
		var err error
		if t, err = v.parent.opt.dial(ctx, v.cfg); err != nil {
			return sess, err
		}
	case len(v.cfg.Command) > 0:
		sess.stderr = &tail{log: v.log}
		cmd := exec.Command(v.cfg.Command[0], v.cfg.Command[1:]...)
		cmd.Env = childEnv(os.Environ(), v.cfg.Env)
		cmd.Stderr = sess.stderr
		cmd.WaitDelay = waitDelay
		t = &sdk.CommandTransport{Command: cmd, TerminateDuration: terminateAfter}
	default:
		t = &sdk.StreamableClientTransport{
			Endpoint:   v.cfg.URL,
			HTTPClient: &http.Client{Transport: &headerTransport{base: v.parent.http, headers: v.cfg.Headers}},
		}
	}
	client := sdk.NewClient(clientImpl(), &sdk.ClientOptions{
		Logger: v.log,
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
			sess.changes.Add(1)
			if f := v.parent.opt.changed; f != nil {
				f(v.cfg.Name)
			}
		},
		// No roots, sampling or elicitation: the bot offers the server nothing.
		Capabilities: &sdk.ClientCapabilities{},
	})
	cs, err := client.Connect(ctx, t, nil)
	if err != nil {
		return sess, err
	}
	sess.cs = cs
	return sess, nil
}

// inherited are the variables a stdio server inherits from the bot's
// environment; everything else it gets comes from its env in the config, so
// that the bot's own secrets (API keys, tokens) never reach a server by
// accident.
func inherited() []string {
	return []string{
		"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LC_ALL", "LC_CTYPE",
		"TZ", "TMPDIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
		// Windows
		"APPDATA", "HOMEDRIVE", "HOMEPATH", "LOCALAPPDATA", "PATHEXT", "PROCESSOR_ARCHITECTURE",
		"PROGRAMFILES", "SYSTEMDRIVE", "SYSTEMROOT", "TEMP", "TMP", "USERNAME", "USERPROFILE", "COMSPEC",
	}
}

// childEnv is the inherited part of environ plus extra, extra winning.
func childEnv(environ []string, extra map[string]string) []string {
	keep := make(map[string]bool)
	for _, k := range inherited() {
		if runtime.GOOS == "windows" {
			k = strings.ToUpper(k)
		}
		keep[k] = true
	}
	env := make([]string, 0, len(keep)+len(extra))
	for _, kv := range environ {
		k, _, ok := strings.Cut(kv, "=")
		if runtime.GOOS == "windows" {
			k = strings.ToUpper(k)
		}
		if _, set := extra[k]; ok && keep[k] && !set {
			env = append(env, kv)
		}
	}
	for k, val := range extra {
		env = append(env, k+"="+val)
	}
	return env
}

// headerTransport adds the configured headers to every request.
type headerTransport struct {
	base    http.RoundTripper
	headers map[string]string
}

func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(t.headers) > 0 {
		req = req.Clone(req.Context())
		for k, val := range t.headers {
			req.Header.Set(k, val)
		}
	}
	return t.base.RoundTrip(req)
}

// tail keeps the end of a child's stderr for error messages and logs its
// lines at debug level.
type tail struct {
	log  *slog.Logger
	mu   sync.Mutex
	buf  []byte // the last tailBytes bytes
	line []byte // the line being written
}

const (
	tailBytes = 2048
	maxLogged = 512 // bytes of one logged line
)

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailBytes {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailBytes:]...)
	}
	for rest := p; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			if len(t.line) < maxLogged {
				t.line = append(t.line, rest[:min(len(rest), maxLogged-len(t.line))]...)
			}
			break
		}
		if len(t.line) < maxLogged {
			t.line = append(t.line, rest[:min(i, maxLogged-len(t.line))]...)
		}
		t.log.Debug("mcp server stderr", "line", strings.ToValidUTF8(string(t.line), "?"))
		t.line = t.line[:0]
		rest = rest[i+1:]
	}
	return len(p), nil
}

// last returns the last few lines of stderr, at most 500 bytes.
func (t *tail) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(strings.ToValidUTF8(string(t.buf), "?"))
	if len(s) > 500 {
		s = s[len(s)-500:]
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
		s = strings.ToValidUTF8(s, "")
	}
	return s
}

// annotate adds the end of stderr to err, if there is any.
func (t *tail) annotate(err error) error {
	if s := t.last(); s != "" {
		return &stderrError{err: err, stderr: s}
	}
	return err
}

// stderrError is an error with what the child said on stderr.
type stderrError struct {
	err    error
	stderr string
}

func (e *stderrError) Error() string {
	return e.err.Error() + " (stderr: " + strings.ReplaceAll(e.stderr, "\n", " | ") + ")"
}

func (e *stderrError) Unwrap() error { return e.err }
