package mcp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatbot-dev/chatbot/mcp"
)

// TestHTTP reaches a streamable-HTTP server that wants a bearer token.
func TestHTTP(t *testing.T) {
	ts := newToolServer(t, "remote")
	handler := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return ts.Server }, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	changed := make(chan string, 4)
	s, err := mcp.New([]mcp.ServerConfig{
		{Name: "remote", URL: srv.URL, Headers: map[string]string{"Authorization": "Bearer s3cret"}},
		{Name: "nokey", URL: srv.URL},
	}, mcp.Hooks(mcp.Options{}, nil, nil, func(name string) {
		select {
		case changed <- name:
		default:
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	if got := names(t, s); !slices.Equal(got, prefixed("remote", allTools...)) {
		t.Errorf("List = %v", got)
	}
	if got, err := s.Call(ctx, "remote__echo", `{"text":"over HTTP"}`); err != nil || got != "remote: over HTTP" {
		t.Errorf("Call(echo) = %q, %v", got, err)
	}
	if _, err := s.Call(ctx, "remote__fail", `{}`); err == nil || err.Error() != "disk full" {
		t.Errorf("Call(fail) = %v", err)
	}

	// A tool added on the server is announced over HTTP too.
	ts.AddTool(&sdk.Tool{Name: "late", InputSchema: objectSchema},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return text("late"), nil
		})
	if name := <-changed; name != "remote" {
		t.Errorf("tools/list_changed from %q", name)
	}
	if got := names(t, s); !slices.Contains(got, "remote__late") {
		t.Errorf("List after tools/list_changed = %v", got)
	}
	st := s.Check(ctx)
	if st[0].Err != nil || st[0].Transport != "http" {
		t.Errorf("Check remote = %+v", st[0])
	}
	if st[1].Err == nil || !strings.Contains(st[1].Err.Error(), "Unauthorized") {
		t.Errorf("Check nokey = %+v, want a 401", st[1])
	}
	t.Logf("Check nokey: %v", st[1].Err)
}

// TestHTTPServerRestart: a server that forgot the session (it restarted) gets
// a new one, and the call that found out still runs.
func TestHTTPServerRestart(t *testing.T) {
	ts := newToolServer(t, "remote")
	var handler atomic.Pointer[sdk.StreamableHTTPHandler]
	restart := func() {
		handler.Store(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return ts.Server }, nil))
	}
	restart()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	log := &syncBuffer{}
	s, err := mcp.New([]mcp.ServerConfig{{Name: "remote", URL: srv.URL}}, mcp.Options{Logger: testLogger(log)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if got, err := s.Call(ctx, "remote__echo", `{"text":"one"}`); err != nil || got != "remote: one" {
		t.Fatalf("Call = %q, %v", got, err)
	}
	restart()
	if got, err := s.Call(ctx, "remote__echo", `{"text":"two"}`); err != nil || got != "remote: two" {
		t.Errorf("Call after the server restarted = %q, %v\nlog:\n%s", got, err, log.String())
	}
}
