package mcp_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatbot-dev/chatbot/mcp"
)

// runStdioServer serves MCP on stdin/stdout: the test binary as a child.
func runStdioServer() int {
	s := sdk.NewServer(&sdk.Implementation{Name: "stdio-test", Version: "test"}, nil)
	s.AddTool(&sdk.Tool{Name: "echo", InputSchema: objectSchema}, func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		return text("pid " + fmt.Sprint(os.Getpid()) + ": " + string(req.Params.Arguments)), nil
	})
	s.AddTool(&sdk.Tool{Name: "env", InputSchema: objectSchema}, func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		return text(strings.Join(os.Environ(), "\n")), nil
	})
	s.AddTool(&sdk.Tool{Name: "crash", InputSchema: objectSchema}, func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		fmt.Fprintln(os.Stderr, "panic: the tool broke everything")
		os.Exit(3)
		return nil, nil
	})
	s.AddTool(&sdk.Tool{Name: "hang", InputSchema: objectSchema}, func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		time.Sleep(time.Hour) // deaf to cancellation and to stdin's end
		return nil, nil
	})
	fmt.Fprintln(os.Stderr, "stdio test server starting")
	if err := s.Run(context.Background(), &sdk.StdioTransport{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestStdio runs the test binary itself as a stdio server: a real child
// process, its environment, its crash and its restart.
func TestStdio(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHATBOT_TEST_SECRET", "sk-must-not-leak")
	log := &syncBuffer{}
	s, err := mcp.New([]mcp.ServerConfig{{
		Name:    "local",
		Command: []string{exe, "-test.run=^$"},
		// GORACE: a race-enabled child sleeps 1 s at exit by default.
		Env: map[string]string{stdioServerEnv: "1", "GREETING": "hello", "GORACE": "atexit_sleep_ms=0"},
	}}, mcp.Options{Logger: testLogger(log)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		began := time.Now()
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		t.Logf("Close took %s", time.Since(began))
		if t.Failed() || testing.Verbose() {
			t.Logf("log:\n%s", log.String())
		}
	})
	ctx := context.Background()

	if got := names(t, s); !slices.Equal(got, []string{"local__crash", "local__echo", "local__env", "local__hang"}) {
		t.Fatalf("List = %v", got)
	}
	env, err := s.Call(ctx, "local__env", "{}")
	if err != nil {
		t.Fatal(err)
	}
	vars := strings.Split(env, "\n")
	if !slices.Contains(vars, "GREETING=hello") || strings.Contains(env, "sk-must-not-leak") {
		t.Errorf("the child's environment:\n%s\nwant GREETING=hello and no CHATBOT_TEST_SECRET", env)
	}
	first, err := s.Call(ctx, "local__echo", `{"text":"a"}`)
	if err != nil {
		t.Fatal(err)
	}

	_, err = s.Call(ctx, "local__crash", "{}")
	if err == nil || !strings.Contains(err.Error(), "the tool broke everything") {
		t.Errorf("Call(crash) error = %v, want the child's last words", err)
	}
	t.Logf("Call(crash): %v", err)
	second, err := s.Call(ctx, "local__echo", `{"text":"b"}`)
	if err != nil {
		t.Fatalf("Call(echo) after the crash: %v", err)
	}
	pid := func(s string) string { return strings.Fields(s)[1] }
	if pid(first) == pid(second) {
		t.Errorf("same child before and after the crash: %q, %q", first, second)
	}
	if !strings.Contains(log.String(), "stdio test server starting") {
		t.Error("the child's stderr is not in the debug log")
	}
}

func TestStdioStartFails(t *testing.T) {
	s, err := mcp.New([]mcp.ServerConfig{
		{Name: "missing", Command: []string{"/nonexistent/mcp-server"}},
		{Name: "quits", Command: []string{"sh", "-c", "echo 'cannot find config.json' >&2; exit 1"}},
	}, mcp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := names(t, s); len(got) != 0 {
		t.Errorf("List = %v", got)
	}
	st := s.Check(context.Background())
	if st[0].Err == nil || !strings.Contains(st[0].Err.Error(), "/nonexistent/mcp-server") {
		t.Errorf("Check missing = %+v", st[0])
	}
	if st[1].Err == nil || !strings.Contains(st[1].Err.Error(), "cannot find config.json") {
		t.Errorf("Check quits = %+v, want its stderr in the error", st[1])
	}
	t.Logf("Check: %v; %v", st[0].Err, st[1].Err)
}

// TestStdioHungChild: Close stops a child that ignores both the cancelled call
// and the end of its stdin (SIGTERM after a grace period).
func TestStdioHungChild(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s, err := mcp.New([]mcp.ServerConfig{{
		Name:    "local",
		Command: []string{exe, "-test.run=^$"},
		Env:     map[string]string{stdioServerEnv: "1", "GORACE": "atexit_sleep_ms=0"},
	}}, mcp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.Call(ctx, "local__hang", "{}")
		errc <- err
	}()
	names(t, s) // the server is up; the call is on its way
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Call(hang) = %v, want context.Canceled", err)
	}
	began := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %s", time.Since(began).Round(time.Millisecond))
}

// TestStdioDeafChild: a child that never answers and ignores the end of its
// stdin is stopped with SIGTERM after a grace period, so Check and Close end.
func TestStdioDeafChild(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep command")
	}
	s, err := mcp.New([]mcp.ServerConfig{{Name: "deaf", Command: []string{"sleep", "3600"}}},
		mcp.Options{StartTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	st := s.Check(context.Background())
	if st[0].Err == nil || !strings.Contains(st[0].Err.Error(), "not ready within 100ms") {
		t.Errorf("Check = %+v", st[0])
	}
	t.Logf("Check: %v", st[0].Err)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
