package mcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatbot-dev/chatbot/mcp"
)

var openAIName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// allTools are the toolServer's tools in the order it lists them (by name).
var allTools = []string{"crash", "echo", "fail", "hang", "huge", "media", "slow"}

func prefixed(server string, tools ...string) []string {
	var out []string
	for _, t := range tools {
		out = append(out, server+"__"+t)
	}
	return out
}

func TestListAndCall(t *testing.T) {
	a, b := newToolServer(t, "a"), newToolServer(t, "b")
	r := newRig(t, mcp.Options{}, []mcp.ServerConfig{inMemory("a"), inMemory("b")}, a, b)
	ctx := context.Background()

	tools, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tool := range tools {
		got = append(got, tool.Name)
		if !openAIName.MatchString(tool.Name) {
			t.Errorf("name %q is not a valid OpenAI function name", tool.Name)
		}
		var schema map[string]any
		if err := json.Unmarshal(tool.Parameters, &schema); err != nil || schema["type"] != "object" || schema["properties"] == nil {
			t.Errorf("%s: parameters %s, want an object schema with properties", tool.Name, tool.Parameters)
		}
		if tool.Description == "" {
			t.Errorf("%s: no description", tool.Name)
		}
	}
	want := append(prefixed("a", allTools...), prefixed("b", allTools...)...)
	if !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}

	// The same tool name on two servers: each call reaches its own server,
	// and calls may run at once.
	var wg sync.WaitGroup
	for i := range 20 {
		server := []string{"a", "b"}[i%2]
		wg.Go(func() {
			out, err := r.Call(ctx, server+"__echo", `{"text":"hi"}`)
			if err != nil || out != server+": hi" {
				t.Errorf("Call(%s__echo) = %q, %v; want %q", server, out, err, server+": hi")
			}
		})
	}
	wg.Wait()
	if a.dialCount() != 1 || b.dialCount() != 1 {
		t.Errorf("dials = %d, %d; want one session per server", a.dialCount(), b.dialCount())
	}
}

func TestCallResults(t *testing.T) {
	ts := newToolServer(t, "a")
	r := newRig(t, mcp.Options{MaxOutputBytes: 1001}, []mcp.ServerConfig{inMemory("a")}, ts)
	ctx := context.Background()

	t.Run("text", func(t *testing.T) {
		for _, args := range []string{`{"text":"x"}`, ` {"text":"x"} `} {
			if got, err := r.Call(ctx, "a__echo", args); err != nil || got != "a: x" {
				t.Errorf("Call(echo, %s) = %q, %v", args, got, err)
			}
		}
		if got, err := r.Call(ctx, "a__echo", ""); err != nil || got != "a: " {
			t.Errorf("Call(echo, no arguments) = %q, %v", got, err)
		}
	})
	t.Run("isError", func(t *testing.T) {
		_, err := r.Call(ctx, "a__fail", "{}")
		var te *mcp.ToolError
		if !errors.As(err, &te) || err.Error() != "disk full" || te.Tool != "a__fail" {
			t.Errorf("Call(fail) error = %#v, want a *ToolError with the text %q", err, "disk full")
		}
	})
	t.Run("huge", func(t *testing.T) {
		got, err := r.Call(ctx, "a__huge", "{}")
		if err != nil {
			t.Fatal(err)
		}
		body, note, _ := strings.Cut(got, "\n")
		// "é" is two bytes: 1001 bytes end inside one, so the cut is at 1000.
		if len(body) != 1000 || !utf8.ValidString(body) || note != "[output cut at 1000 of 200000 bytes]" {
			t.Errorf("output: %d bytes of text, valid %v, note %q", len(body), utf8.ValidString(body), note)
		}
	})
	t.Run("media", func(t *testing.T) {
		got, err := r.Call(ctx, "a__media", "{}")
		want := "a chart:\n" +
			"[image: image/png, 2.0 KiB, not shown]\n" +
			"[resource file:///notes.txt]\nsome notes\n" +
			"[resource file:///a.bin: unknown type, 3 bytes, not shown]\n" +
			"[resource link: report https://example.com/report]"
		if err != nil || got != want {
			t.Errorf("Call(media) = %q, %v\nwant %q", got, err, want)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		for _, name := range []string{"a__nope", "nope", "zz__echo", "__echo", "a_echo"} {
			if _, err := r.Call(ctx, name, "{}"); !errors.Is(err, mcp.ErrUnknownTool) {
				t.Errorf("Call(%q) error = %v, want ErrUnknownTool", name, err)
			}
		}
	})
	t.Run("bad arguments", func(t *testing.T) {
		for _, args := range []string{`[1]`, `"x"`, `{"text":`, `null`} {
			if _, err := r.Call(ctx, "a__echo", args); err == nil || !strings.Contains(err.Error(), "not a JSON object") {
				t.Errorf("Call(echo, %s) error = %v", args, err)
			}
		}
	})
}

func TestCallTimeout(t *testing.T) {
	ts := newToolServer(t, "a")
	r := newRig(t, mcp.Options{CallTimeout: 50 * time.Millisecond}, []mcp.ServerConfig{inMemory("a")}, ts)
	_, err := r.Call(context.Background(), "a__hang", "{}")
	if !errors.Is(err, mcp.ErrTimeout) || !strings.Contains(err.Error(), "did not answer within 50ms") {
		t.Errorf("Call(hang) error = %v, want ErrTimeout", err)
	}
}

func TestCallCancel(t *testing.T) {
	ts := newToolServer(t, "a")
	r := newRig(t, mcp.Options{}, []mcp.ServerConfig{inMemory("a")}, ts)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := r.Call(ctx, "a__slow", "{}")
		errc <- err
	}()
	<-ts.slowStarted
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Call(slow) error = %v, want context.Canceled", err)
	}
	<-ts.slowCancelled // the server was told to stop
	// The session outlives a cancelled call.
	if got, err := r.Call(context.Background(), "a__echo", `{"text":"still here"}`); err != nil || got != "a: still here" {
		t.Errorf("Call(echo) after a cancel = %q, %v", got, err)
	}
	if n := ts.dialCount(); n != 1 {
		t.Errorf("dials = %d, want 1", n)
	}
}

func TestCrashRestarts(t *testing.T) {
	ts := newToolServer(t, "a")
	r := newRig(t, mcp.Options{}, []mcp.ServerConfig{inMemory("a")}, ts)
	ctx := context.Background()
	_, err := r.Call(ctx, "a__crash", "{}")
	var te *mcp.ToolError
	if err == nil || errors.As(err, &te) || errors.Is(err, mcp.ErrTimeout) {
		t.Errorf("Call(crash) error = %v, want a failure of the server", err)
	}
	t.Logf("Call(crash): %v", err)
	if got, err := r.Call(ctx, "a__echo", `{"text":"back"}`); err != nil || got != "a: back" {
		t.Errorf("Call(echo) after the crash = %q, %v", got, err)
	}
	if n := ts.dialCount(); n != 2 {
		t.Errorf("dials = %d, want 2 (a restart)", n)
	}
	if !slices.Equal(names(t, r.Servers), prefixed("a", allTools...)) {
		t.Errorf("List after a restart = %v", names(t, r.Servers))
	}
}

func TestListChanged(t *testing.T) {
	ts := newToolServer(t, "a")
	r := newRig(t, mcp.Options{}, []mcp.ServerConfig{inMemory("a")}, ts)
	ctx := context.Background()
	if got := names(t, r.Servers); !slices.Contains(got, "a__echo") {
		t.Fatalf("List = %v", got)
	}

	ts.AddTool(&sdk.Tool{Name: "late", Description: "Came later.", InputSchema: objectSchema},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) { return text("late one"), nil })
	<-r.changed
	if got := names(t, r.Servers); !slices.Contains(got, "a__late") {
		t.Errorf("List after tools/list_changed = %v, want a__late in it", got)
	}
	if got, err := r.Call(ctx, "a__late", "{}"); err != nil || got != "late one" {
		t.Errorf("Call(late) = %q, %v", got, err)
	}

	ts.RemoveTools("echo")
	<-r.changed
	if got := names(t, r.Servers); slices.Contains(got, "a__echo") {
		t.Errorf("List after echo went = %v", got)
	}
	if _, err := r.Call(ctx, "a__echo", "{}"); !errors.Is(err, mcp.ErrUnknownTool) {
		t.Errorf("Call(echo) after it went: %v, want ErrUnknownTool", err)
	}
	if n := ts.dialCount(); n != 1 {
		t.Errorf("dials = %d, want 1", n)
	}
}

func TestAllowedTools(t *testing.T) {
	a, b := newToolServer(t, "a"), newToolServer(t, "b")
	r := newRig(t, mcp.Options{}, []mcp.ServerConfig{inMemory("a", "echo", "missing"), inMemory("b")}, a, b)
	ctx := context.Background()
	if got, want := names(t, r.Servers), append([]string{"a__echo"}, prefixed("b", allTools...)...); !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
	if _, err := r.Call(ctx, "a__fail", "{}"); !errors.Is(err, mcp.ErrUnknownTool) {
		t.Errorf("Call of a tool not allowed: %v, want ErrUnknownTool", err)
	}
	if _, err := r.Call(ctx, "b__fail", "{}"); err == nil || err.Error() != "disk full" {
		t.Errorf("Call(b__fail) = %v", err)
	}
	st := r.Check(ctx)
	if st[0].Err != nil || !slices.Equal(st[0].Tools, []string{"a__echo"}) || !slices.Equal(st[0].Unknown, []string{"missing"}) {
		t.Errorf("Check a = %+v", st[0])
	}
}

func TestOddToolNames(t *testing.T) {
	ts := newToolServer(t, "a")
	long := strings.Repeat("x", 70)
	for _, n := range []string{"weird.name/x", "weird_name_x", "ünïcode", long} {
		ts.AddTool(&sdk.Tool{Name: n, InputSchema: objectSchema},
			func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
				return text("I am " + n), nil
			})
	}
	r := newRig(t, mcp.Options{}, []mcp.ServerConfig{inMemory("a")}, ts)
	tools, err := r.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, tool := range tools {
		if !openAIName.MatchString(tool.Name) || seen[tool.Name] {
			t.Errorf("name %q: invalid or twice", tool.Name)
		}
		seen[tool.Name] = true
	}
	for _, n := range []string{"weird.name/x", "weird_name_x", "ünïcode", long} {
		name := mcp.ToolName("a", n)
		if !seen[name] {
			t.Errorf("List lacks %q for %q", name, n)
			continue
		}
		if got, err := r.Call(context.Background(), name, "{}"); err != nil || got != "I am "+n {
			t.Errorf("Call(%q) = %q, %v; want the tool %q", name, got, err, n)
		}
	}
}

func TestToolName(t *testing.T) {
	long := strings.Repeat("y", 80)
	for _, tt := range []struct{ server, tool, want string }{
		{"github", "create_issue", "github__create_issue"},
		{"fs", "read-file", "fs__read-file"},
		{"fs", "read.file", "fs__read_file_dd32cdf5"},
		{"s", long, "s__" + strings.Repeat("y", 64-3-9) + "_e8730587"},
	} {
		got := mcp.ToolName(tt.server, tt.tool)
		if got != tt.want || !openAIName.MatchString(got) {
			t.Errorf("ToolName(%q, %q) = %q, want %q", tt.server, tt.tool, got, tt.want)
		}
		if got2 := mcp.ToolName(tt.server, tt.tool); got2 != got {
			t.Errorf("ToolName is not stable: %q, %q", got, got2)
		}
	}
	if mcp.ToolName("fs", "read.file") == mcp.ToolName("fs", "read/file") {
		t.Error("read.file and read/file share a name")
	}
	if mcp.ToolName("s", long) == mcp.ToolName("s", long+"z") {
		t.Error("two long names that differ at the end share a name")
	}
}

func TestStartFailure(t *testing.T) {
	a, b := newToolServer(t, "a"), newToolServer(t, "b")
	a.setFailDials(1)
	r := newRig(t, mcp.Options{}, []mcp.ServerConfig{inMemory("a"), inMemory("b")}, a, b)

	// The failing server is left out; the other is offered.
	if got := names(t, r.Servers); !slices.Equal(got, prefixed("b", allTools...)) {
		t.Errorf("List = %v, want b's tools only", got)
	}
	if _, err := r.Call(context.Background(), "a__echo", "{}"); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Call(a__echo) while a is down = %v", err)
	}
	names(t, r.Servers)
	if n := a.dialCount(); n != 1 {
		t.Errorf("dials during the backoff = %d, want 1", n)
	}
	if n := strings.Count(r.log.String(), "level=WARN"); n != 1 || !strings.Contains(r.log.String(), "level=WARN msg=\"mcp server failed to start") {
		t.Errorf("%d warnings, want 1 that a failed to start", n)
	}

	// After the backoff, the next use tries again.
	r.clock.advance(5 * time.Second)
	if got := names(t, r.Servers); !slices.Equal(got, append(prefixed("a", allTools...), prefixed("b", allTools...)...)) {
		t.Errorf("List after the backoff = %v", got)
	}
	if n := a.dialCount(); n != 2 {
		t.Errorf("dials = %d, want 2", n)
	}
}

func TestBackoffGrows(t *testing.T) {
	a := newToolServer(t, "a")
	a.setFailDials(3)
	r := newRig(t, mcp.Options{}, []mcp.ServerConfig{inMemory("a")}, a)
	names(t, r.Servers) // waits for the first start: fails, retry after 5 s
	for i, wait := range []time.Duration{5 * time.Second, 10 * time.Second} {
		r.clock.advance(wait - time.Second)
		names(t, r.Servers)
		if n := a.dialCount(); n != i+1 {
			t.Fatalf("dials %s into a %s backoff = %d, want %d", wait-time.Second, wait, n, i+1)
		}
		r.clock.advance(time.Second)
		names(t, r.Servers)
		if n := a.dialCount(); n != i+2 {
			t.Fatalf("dials after a %s backoff = %d, want %d", wait, n, i+2)
		}
	}
}

func TestCheck(t *testing.T) {
	a, b := newToolServer(t, "a"), newToolServer(t, "b")
	b.setFailDials(2)
	r := newRig(t, mcp.Options{}, []mcp.ServerConfig{inMemory("a", "echo"), inMemory("b")}, a, b)
	names(t, r.Servers) // b's start at New has failed: Check tries again at once
	st := r.Check(context.Background())
	if len(st) != 2 {
		t.Fatalf("Check = %+v", st)
	}
	if st[0].Name != "a" || st[0].Transport != "stdio" || st[0].Err != nil || !slices.Equal(st[0].Tools, []string{"a__echo"}) {
		t.Errorf("Check a = %+v", st[0])
	}
	if st[1].Name != "b" || st[1].Err == nil || !strings.Contains(st[1].Err.Error(), "connection refused") || st[1].Tools != nil {
		t.Errorf("Check b = %+v", st[1])
	}
	if n := b.dialCount(); n != 2 {
		t.Errorf("b dials = %d, want 2", n)
	}
}

func TestCloseStopsCalls(t *testing.T) {
	ts := newToolServer(t, "a")
	r := newRig(t, mcp.Options{}, []mcp.ServerConfig{inMemory("a")}, ts)
	errc := make(chan error, 2)
	go func() {
		_, err := r.Call(context.Background(), "a__slow", "{}")
		errc <- err
	}()
	go func() {
		_, err := r.Call(context.Background(), "a__hang", "{}")
		errc <- err
	}()
	<-ts.slowStarted
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errc; !errors.Is(err, mcp.ErrClosed) {
			t.Errorf("a call running at Close: %v, want ErrClosed", err)
		}
	}
	if _, err := r.List(context.Background()); !errors.Is(err, mcp.ErrClosed) {
		t.Errorf("List after Close: %v", err)
	}
	if _, err := r.Call(context.Background(), "a__echo", "{}"); !errors.Is(err, mcp.ErrClosed) {
		t.Errorf("Call after Close: %v", err)
	}
	if st := r.Check(context.Background()); !errors.Is(st[0].Err, mcp.ErrClosed) {
		t.Errorf("Check after Close: %+v", st)
	}
}

func TestCloseWhileStarting(t *testing.T) {
	// A server whose start never ends: Close must not wait for it.
	block := make(chan struct{})
	dial := func(ctx context.Context, _ mcp.ServerConfig) (sdk.Transport, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-block:
			return nil, errors.New("unreachable")
		}
	}
	s, err := mcp.New([]mcp.ServerConfig{inMemory("a")}, mcp.Hooks(mcp.Options{}, dial, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.List(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a cancelled ctx: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNoServers(t *testing.T) {
	s, err := mcp.New(nil, mcp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if tools, err := s.List(context.Background()); err != nil || len(tools) != 0 {
		t.Errorf("List = %v, %v", tools, err)
	}
	if _, err := s.Call(context.Background(), "a__echo", "{}"); !errors.Is(err, mcp.ErrUnknownTool) {
		t.Errorf("Call: %v", err)
	}
}

func TestValidate(t *testing.T) {
	cmd := []string{"server"}
	for _, tt := range []struct {
		configs []mcp.ServerConfig
		want    string
	}{
		{[]mcp.ServerConfig{{Command: cmd}}, "tools.mcp_servers[0].name: missing"},
		{[]mcp.ServerConfig{{Name: "a__b", Command: cmd}}, "tools.mcp_servers[0].name: \"a__b\""},
		{[]mcp.ServerConfig{{Name: "_a", Command: cmd}}, "tools.mcp_servers[0].name"},
		{[]mcp.ServerConfig{{Name: "a.b", Command: cmd}}, "tools.mcp_servers[0].name"},
		{[]mcp.ServerConfig{{Name: strings.Repeat("a", 33), Command: cmd}}, "tools.mcp_servers[0].name"},
		{[]mcp.ServerConfig{{Name: "a", Command: cmd}, {Name: "a", Command: cmd}}, "tools.mcp_servers[1].name: \"a\" is used twice"},
		{[]mcp.ServerConfig{{Name: "a"}}, "tools.mcp_servers[0]: set command"},
		{[]mcp.ServerConfig{{Name: "a", Command: cmd, URL: "http://x"}}, "tools.mcp_servers[0]: set command or url, not both"},
		{[]mcp.ServerConfig{{Name: "a", Command: []string{""}}}, "tools.mcp_servers[0].command"},
		{[]mcp.ServerConfig{{Name: "a", URL: "ftp://x"}}, "tools.mcp_servers[0].url"},
		{[]mcp.ServerConfig{{Name: "a", URL: "localhost:3000"}}, "tools.mcp_servers[0].url"},
		{[]mcp.ServerConfig{{Name: "a", URL: "http://x", Env: map[string]string{"A": "b"}}}, "tools.mcp_servers[0].env"},
		{[]mcp.ServerConfig{{Name: "a", Command: cmd, Headers: map[string]string{"A": "b"}}}, "tools.mcp_servers[0].headers"},
		{[]mcp.ServerConfig{{Name: "a", Command: cmd, Env: map[string]string{"A=B": "b"}}}, "tools.mcp_servers[0].env"},
		{[]mcp.ServerConfig{{Name: "a", URL: "http://x", Headers: map[string]string{"Bad Name": "b"}}}, "tools.mcp_servers[0].headers"},
		{[]mcp.ServerConfig{{Name: "a", Command: cmd, AllowedTools: []string{"x", " "}}}, "tools.mcp_servers[0].allowed_tools[1]"},
	} {
		_, err := mcp.New(tt.configs, mcp.Options{})
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("New(%+v) error = %v, want %q…", tt.configs, err, tt.want)
		}
	}
	s, err := mcp.New([]mcp.ServerConfig{
		{Name: "file-system_2", Command: []string{"/nonexistent/mcp-server"}},
		{Name: "remote", URL: "https://mcp.example.com/mcp", Headers: map[string]string{"Authorization": "Bearer x"}},
	}, mcp.Options{})
	if err != nil {
		t.Fatalf("New with good configs: %v", err)
	}
	s.Close()
}

func TestCapText(t *testing.T) {
	for _, tt := range []struct {
		in   string
		max  int
		want string
	}{
		{"hello", 5, "hello"},
		{"hello!", 5, "hello\n[output cut at 5 of 6 bytes]"},
		{"ééé", 3, "é\n[output cut at 2 of 6 bytes]"},
		{"日本語", 5, "日\n[output cut at 3 of 9 bytes]"},
		{"日本語", 1, "\n[output cut at 0 of 9 bytes]"},
	} {
		if got := mcp.CapText(tt.in, tt.max); got != tt.want {
			t.Errorf("capText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestChildEnv(t *testing.T) {
	environ := []string{"PATH=/bin", "HOME=/root", "OPENAI_API_KEY=sk-secret", "TELEGRAM_TOKEN=123:abc", "LANG=C.UTF-8", "TZ=UTC"}
	got := mcp.ChildEnv(environ, map[string]string{"GITHUB_TOKEN": "ghp", "TZ": "Europe/Paris"})
	slices.Sort(got)
	want := []string{"GITHUB_TOKEN=ghp", "HOME=/root", "LANG=C.UTF-8", "PATH=/bin", "TZ=Europe/Paris"}
	if !slices.Equal(got, want) {
		t.Errorf("childEnv = %v, want %v", got, want)
	}
}

func TestStartTimeout(t *testing.T) {
	// A server that reads everything and never answers.
	var pipes []io.Closer
	dial := func(context.Context, mcp.ServerConfig) (sdk.Transport, error) {
		fromServer, toClient := io.Pipe()
		fromClient, toServer := io.Pipe()
		go io.Copy(io.Discard, fromClient)
		pipes = append(pipes, fromServer, toClient, fromClient, toServer)
		return &sdk.IOTransport{Reader: fromServer, Writer: toServer}, nil
	}
	s, err := mcp.New([]mcp.ServerConfig{inMemory("mute")}, mcp.Hooks(mcp.Options{StartTimeout: 50 * time.Millisecond}, dial, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(t, s); len(got) != 0 {
		t.Errorf("List = %v", got)
	}
	st := s.Check(context.Background())
	if st[0].Err == nil || !strings.Contains(st[0].Err.Error(), "not ready within 50ms") {
		t.Errorf("Check = %+v", st[0])
	}
	s.Close()
	for _, p := range pipes {
		p.Close()
	}
}
