package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/chatbot-dev/chatbot/mcp"
)

// stdioServerEnv makes the test binary an MCP server on stdio (stdio_test.go).
const stdioServerEnv = "CHATBOT_MCP_TEST_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(stdioServerEnv) == "1" {
		os.Exit(runStdioServer())
	}
	goleak.VerifyTestMain(m)
}

// toolServer is an in-process MCP server with tools that misbehave on purpose.
type toolServer struct {
	*sdk.Server
	name string

	slowStarted   chan struct{} // the slow tool runs
	slowCancelled chan struct{} // the slow tool saw its ctx end
	release       chan struct{} // lets the hang tool return

	mu        sync.Mutex
	conn      sdk.Connection // the server's end of the last session
	sessions  []*sdk.ServerSession
	dials     int
	failDials int // the next failDials dials fail
}

var objectSchema = json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}}}`)

func text(s string) *sdk.CallToolResult {
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: s}}}
}

// newToolServer builds a server whose echo answers "NAME: TEXT".
func newToolServer(t testing.TB, name string) *toolServer {
	ts := &toolServer{
		Server:        sdk.NewServer(&sdk.Implementation{Name: name, Version: "test"}, nil),
		name:          name,
		slowStarted:   make(chan struct{}, 1),
		slowCancelled: make(chan struct{}, 1),
		release:       make(chan struct{}),
	}
	ts.AddTool(&sdk.Tool{Name: "echo", Description: "Echoes text.", InputSchema: objectSchema},
		func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			var a struct{ Text string }
			if err := json.Unmarshal(req.Params.Arguments, &a); err != nil {
				return nil, err
			}
			return text(name + ": " + a.Text), nil
		})
	ts.AddTool(&sdk.Tool{Name: "slow", Description: "Waits until cancelled.", InputSchema: objectSchema},
		func(ctx context.Context, _ *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			ts.slowStarted <- struct{}{}
			<-ctx.Done()
			ts.slowCancelled <- struct{}{}
			return nil, ctx.Err()
		})
	ts.AddTool(&sdk.Tool{Name: "hang", Description: "Ignores cancellation.", InputSchema: objectSchema},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			<-ts.release
			return text("late"), nil
		})
	ts.AddTool(&sdk.Tool{Name: "fail", Description: "Fails.", InputSchema: objectSchema},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			r := text("disk full")
			r.IsError = true
			return r, nil
		})
	ts.AddTool(&sdk.Tool{Name: "huge", Description: "Says a lot.", InputSchema: objectSchema},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return text(strings.Repeat("é", 100_000)), nil
		})
	ts.AddTool(&sdk.Tool{Name: "media", Description: "Shows things.", InputSchema: objectSchema},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{
				&sdk.TextContent{Text: "a chart:"},
				&sdk.ImageContent{MIMEType: "image/png", Data: make([]byte, 2048)},
				&sdk.EmbeddedResource{Resource: &sdk.ResourceContents{URI: "file:///notes.txt", MIMEType: "text/plain", Text: "some notes"}},
				&sdk.EmbeddedResource{Resource: &sdk.ResourceContents{URI: "file:///a.bin", Blob: []byte{1, 2, 3}}},
				&sdk.ResourceLink{Name: "report", URI: "https://example.com/report"},
			}}, nil
		})
	ts.AddTool(&sdk.Tool{Name: "crash", Description: "Breaks the connection.", InputSchema: objectSchema},
		func(ctx context.Context, _ *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			ts.mu.Lock()
			conn := ts.conn
			ts.mu.Unlock()
			_ = conn.Close()
			<-ctx.Done()
			return nil, ctx.Err()
		})
	t.Cleanup(func() {
		close(ts.release)
		ts.mu.Lock()
		sessions := ts.sessions
		ts.mu.Unlock()
		for _, ss := range sessions {
			_ = ss.Close()
		}
		for ss := range ts.Sessions() { // HTTP sessions, some orphaned on purpose
			_ = ss.Close()
		}
	})
	return ts
}

// dial connects a new in-memory session, as Servers' dial hook.
func (ts *toolServer) dial(ctx context.Context) (sdk.Transport, error) {
	ts.mu.Lock()
	ts.dials++
	fail := ts.failDials > 0
	if fail {
		ts.failDials--
	}
	ts.mu.Unlock()
	if fail {
		return nil, errors.New("connection refused")
	}
	client, server := sdk.NewInMemoryTransports()
	ss, err := ts.Connect(ctx, &spyTransport{Transport: server, ts: ts}, nil)
	if err != nil {
		return nil, err
	}
	ts.mu.Lock()
	ts.sessions = append(ts.sessions, ss)
	ts.mu.Unlock()
	return client, nil
}

func (ts *toolServer) dialCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.dials
}

func (ts *toolServer) setFailDials(n int) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.failDials = n
}

// spyTransport keeps the server's end of the connection, for the crash tool.
type spyTransport struct {
	sdk.Transport
	ts *toolServer
}

func (t *spyTransport) Connect(ctx context.Context) (sdk.Connection, error) {
	c, err := t.Transport.Connect(ctx)
	t.ts.mu.Lock()
	t.ts.conn = c
	t.ts.mu.Unlock()
	return c, err
}

// fakeClock is the backoff's clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer is a log shared by goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// rig is a Servers on in-memory toolServers.
type rig struct {
	*mcp.Servers
	clock   *fakeClock
	changed chan string
	log     *syncBuffer
}

// newRig runs Servers on the given toolServers, one config each (configs[i]
// for servers[i]; a config's transport is replaced by the in-memory one).
func newRig(t testing.TB, opt mcp.Options, configs []mcp.ServerConfig, servers ...*toolServer) *rig {
	t.Helper()
	r := &rig{clock: &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}, changed: make(chan string, 16), log: &syncBuffer{}}
	byName := map[string]*toolServer{}
	for i, ts := range servers {
		byName[configs[i].Name] = ts
	}
	dial := func(ctx context.Context, cfg mcp.ServerConfig) (sdk.Transport, error) {
		ts := byName[cfg.Name]
		if ts == nil {
			return nil, fmt.Errorf("no test server %q", cfg.Name)
		}
		return ts.dial(ctx)
	}
	opt.Logger = slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opt = mcp.Hooks(opt, dial, r.clock.now, func(name string) {
		select {
		case r.changed <- name:
		default:
		}
	})
	s, err := mcp.New(configs, opt)
	if err != nil {
		t.Fatal(err)
	}
	r.Servers = s
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("log:\n%s", r.log.String())
		}
	})
	return r
}

// inMemory is a config whose transport the rig replaces.
func inMemory(name string, allowed ...string) mcp.ServerConfig {
	return mcp.ServerConfig{Name: name, Command: []string{"in-memory"}, AllowedTools: allowed}
}

// names lists the tools' names.
func names(t testing.TB, s *mcp.Servers) []string {
	t.Helper()
	tools, err := s.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var out []string
	for _, tool := range tools {
		out = append(out, tool.Name)
	}
	return out
}

func testLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
