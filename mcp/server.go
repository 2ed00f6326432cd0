package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatbot-dev/chatbot/conversation"
)

// After a failed start, a server is not tried again for minBackoff, then twice
// as long after each further failure, up to maxBackoff.
const (
	minBackoff = 5 * time.Second
	maxBackoff = 5 * time.Minute
	// maxTools bounds one server's tools/list (pages included).
	maxTools = 1000
)

// server is one configured MCP server and its current session, if any.
type server struct {
	cfg     ServerConfig
	allowed map[string]bool // nil: all
	parent  *Servers
	log     *slog.Logger

	mu       sync.Mutex
	sess     *session      // the live session, nil when down
	starting chan struct{} // closed when the start in flight ends
	err      error         // why the last start failed or the last session ended
	logged   string        // the last failure logged as a warning
	retryAt  time.Time     // no start before this after a failed one
	backoff  time.Duration
}

// session is one connection to a server, from start to exit.
type session struct {
	cs     *sdk.ClientSession
	stderr *tail         // a stdio child's stderr; nil for HTTP
	done   chan struct{} // closed when the connection has ended
	ready  time.Duration

	changes atomic.Uint64 // tools/list_changed notifications seen
	listMu  chan struct{} // a lock that honours ctx
	list    *offer        // the last listing, for changes == list.gen
}

// offer is a server's tools as the model sees them.
type offer struct {
	gen     uint64
	tools   []conversation.Tool
	mcpName map[string]string // model's name → MCP name
	unknown []string          // allowed_tools the server does not have
}

// startLocked starts the server in the background unless it is running,
// starting or closed. v.mu is held.
func (v *server) startLocked() {
	if v.sess != nil || v.starting != nil {
		return
	}
	done := make(chan struct{})
	if v.parent.goTracked(func() { v.start(done) }) {
		v.starting = done
	}
}

// start connects, lists the tools and installs the session.
func (v *server) start(done chan struct{}) {
	s := v.parent
	began := s.opt.now()
	ctx, cancel := context.WithTimeout(s.root, s.opt.StartTimeout)
	sess, err := v.connect(ctx)
	if err == nil {
		_, err = sess.offer(ctx, v)
		if err != nil {
			_ = sess.cs.Close()
			err = fmt.Errorf("list tools: %w", err)
		}
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && s.root.Err() == nil {
		err = fmt.Errorf("not ready within %s: %w", s.opt.StartTimeout, err)
	}
	cancel()
	if err != nil && sess.stderr != nil {
		err = sess.stderr.annotate(err)
	}

	v.mu.Lock()
	v.starting = nil
	orphan := err == nil && !s.goTracked(func() { v.watch(sess) }) // Close came first
	if orphan {
		err = ErrClosed
	}
	if err != nil {
		if s.root.Err() != nil {
			err = ErrClosed
		}
		v.err = fmt.Errorf("mcp server %s: start: %w", v.cfg.Name, err)
		v.backoff = min(max(2*v.backoff, minBackoff), maxBackoff)
		v.retryAt = s.opt.now().Add(v.backoff)
		if s.root.Err() == nil {
			v.logFailure(v.err, "mcp server failed to start; its tools are left out", "retry_in", v.backoff)
		}
	} else {
		sess.ready = s.opt.now().Sub(began)
		v.sess, v.err, v.backoff, v.retryAt = sess, nil, 0, time.Time{}
		v.log.Info("mcp server ready", "tools", len(sess.list.tools), "took", sess.ready.Round(time.Millisecond))
	}
	close(done)
	v.mu.Unlock()
	if orphan {
		_ = sess.cs.Close()
	}
}

// watch waits for a session's end and notes a crash.
func (v *server) watch(sess *session) {
	err := sess.cs.Wait()
	close(sess.done)
	v.drop(sess, err)
}

// awaitExit waits a little, after a call broke the connection, for the child
// to exit, so that its last words on stderr are read. An error the server
// answered with does not wait.
func (sess *session) awaitExit(ctx context.Context, err error) {
	var answered *jsonrpc.Error
	if errors.As(err, &answered) {
		return
	}
	t := time.NewTimer(exitGrace)
	defer t.Stop()
	select {
	case <-sess.done:
	case <-t.C:
	case <-ctx.Done():
	}
}

// exitGrace bounds awaitExit.
const exitGrace = time.Second

// drop forgets a session that ended (its next use starts a new one) and closes
// it. A session that Close or an earlier drop took away is left alone.
func (v *server) drop(sess *session, cause error) {
	v.mu.Lock()
	current := v.sess == sess
	if current {
		v.sess = nil
		msg := "exited"
		if cause != nil {
			msg = "exited: " + cause.Error()
		}
		v.err = errors.New("mcp server " + v.cfg.Name + " " + msg)
		if sess.stderr != nil {
			v.err = sess.stderr.annotate(v.err)
		}
		v.logged = v.err.Error()
		v.log.Warn("mcp server exited; it restarts on next use", "err", v.err)
	}
	v.mu.Unlock()
	if current {
		_ = sess.cs.Close()
	}
}

// session returns the live session, starting the server if needed and waiting
// for a start in flight. After a failed start it answers the failure at once
// until the backoff ends, unless now is set.
func (v *server) session(ctx context.Context, now bool) (*session, error) {
	v.mu.Lock()
	if v.sess != nil {
		defer v.mu.Unlock()
		return v.sess, nil
	}
	if v.starting == nil && !now && v.err != nil && v.parent.opt.now().Before(v.retryAt) {
		defer v.mu.Unlock()
		return nil, v.err
	}
	v.startLocked()
	done := v.starting
	v.mu.Unlock()
	if done == nil {
		return nil, ErrClosed
	}
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.sess != nil {
		return v.sess, nil
	}
	if v.err == nil {
		return nil, ErrClosed
	}
	return nil, v.err
}

// logUnavailable logs why List left a server out.
func (v *server) logUnavailable(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.logFailure(err, "mcp server unavailable; its tools are left out")
}

// logFailure logs a server's failure as a warning when its text is new, else
// at debug level: a server down for an hour logs one warning. v.mu is held.
func (v *server) logFailure(err error, msg string, args ...any) {
	args = append(args, "err", err)
	if v.logged == err.Error() {
		v.log.Debug(msg, args...)
		return
	}
	v.logged = err.Error()
	v.log.Warn(msg, args...)
}

// offer returns the live session and its tools, refreshed if the server said
// they changed. A session found dead is replaced once.
func (v *server) offer(ctx context.Context, now bool) (*session, *offer, error) {
	for attempt := 0; ; attempt++ {
		sess, err := v.session(ctx, now)
		if err != nil {
			return nil, nil, err
		}
		o, err := sess.offer(ctx, v)
		if err == nil {
			return sess, o, nil
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if neverSent(err) && attempt == 0 {
			v.drop(sess, err)
			continue
		}
		return nil, nil, fmt.Errorf("mcp server %s: list tools: %w", v.cfg.Name, err)
	}
}

// call runs the tool the model knows as name.
func (v *server) call(ctx context.Context, name string, args json.RawMessage) (*sdk.CallToolResult, error) {
	for attempt := 0; ; attempt++ {
		sess, o, err := v.offer(ctx, false)
		if err != nil {
			return nil, err
		}
		tool, ok := o.mcpName[name]
		if !ok {
			return nil, fmt.Errorf("%w: %s (server %s does not offer it now)", ErrUnknownTool, name, v.cfg.Name)
		}
		res, err := sess.cs.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: args})
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// A request that never ran may be tried once more on a new
		// session. Any other failure may have happened mid-call: the tool
		// may have crashed its server, and running it again could do the
		// same.
		if neverSent(err) && attempt == 0 {
			v.drop(sess, err)
			continue
		}
		err = fmt.Errorf("tool %s failed: %w", name, err)
		if sess.stderr != nil {
			sess.awaitExit(ctx, err)
			err = sess.stderr.annotate(err)
		}
		return nil, err
	}
}

// neverSent tells a failure of a session that had ended before the request
// (a closed connection; an HTTP server that no longer knows the session, say
// after its restart): the request did not run, and the session is dead.
func neverSent(err error) bool {
	return errors.Is(err, sdk.ErrConnectionClosed) || errors.Is(err, sdk.ErrSessionMissing)
}

// offer lists the session's tools unless its listing is current.
func (sess *session) offer(ctx context.Context, v *server) (*offer, error) {
	select {
	case sess.listMu <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-sess.listMu }()
	gen := sess.changes.Load()
	if sess.list != nil && sess.list.gen == gen {
		return sess.list, nil
	}
	var tools []*sdk.Tool
	for t, err := range sess.cs.Tools(ctx, nil) {
		if err != nil {
			return nil, err
		}
		if len(tools) == maxTools {
			v.log.Warn("mcp server lists too many tools; the rest are left out", "limit", maxTools)
			break
		}
		tools = append(tools, t)
	}
	o := v.makeOffer(tools)
	o.gen = gen
	sess.list = o
	return o, nil
}

// makeOffer turns a server's tools into functions for the model.
func (v *server) makeOffer(tools []*sdk.Tool) *offer {
	o := &offer{mcpName: make(map[string]string, len(tools))}
	have := make(map[string]bool, len(tools))
	for _, t := range tools {
		have[t.Name] = true
		if v.allowed != nil && !v.allowed[t.Name] {
			continue
		}
		name := ToolName(v.cfg.Name, t.Name)
		if _, dup := o.mcpName[name]; dup {
			v.log.Warn("mcp server lists a tool twice; the second is left out", "tool", t.Name)
			continue
		}
		params, err := parameters(t.InputSchema)
		if err != nil {
			v.log.Warn("mcp tool has an unusable input schema; left out", "tool", t.Name, "err", err)
			continue
		}
		desc := t.Description
		if desc == "" {
			desc = t.Title
		}
		o.mcpName[name] = t.Name
		o.tools = append(o.tools, conversation.Tool{Name: name, Description: desc, Parameters: params})
	}
	for _, a := range v.cfg.AllowedTools {
		if !have[a] {
			o.unknown = append(o.unknown, a)
		}
	}
	return o
}

// parameters turns an input schema into an object schema OpenAI accepts:
// "type": "object" with "properties", even when the server sent none.
func parameters(schema any) (json.RawMessage, error) {
	var m map[string]any
	switch s := schema.(type) {
	case nil:
	case map[string]any:
		m = s
	default:
		b, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("not an object schema: %w", err)
		}
	}
	if m == nil {
		m = map[string]any{}
	}
	if t, ok := m["type"]; ok && t != "object" {
		return nil, fmt.Errorf("type is %v, not object", t)
	}
	if _, ok := m["type"]; !ok || m["properties"] == nil {
		c := make(map[string]any, len(m)+2)
		for k, val := range m {
			c[k] = val
		}
		c["type"] = "object"
		if c["properties"] == nil {
			c["properties"] = map[string]any{}
		}
		m = c
	}
	return json.Marshal(m)
}

// parseArguments checks that the model's arguments are one JSON object; empty
// means no arguments.
func parseArguments(arguments string) (json.RawMessage, error) {
	a := strings.TrimSpace(arguments)
	if a == "" {
		return json.RawMessage("{}"), nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(a), &m); err != nil || m == nil {
		return nil, errors.New("the arguments are not a JSON object")
	}
	return json.RawMessage(a), nil
}
