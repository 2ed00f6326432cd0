package mcp_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/mcp"
)

// everythingJS is the entry point of npm's @modelcontextprotocol/server-everything,
// installed by `npm ci` in testdata/everything.
var everythingJS = filepath.Join("testdata", "everything", "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")

// requireEverything skips the test when node or the npm package is missing,
// except on CI (CI=true), which must run it. It returns the server's argv.
func requireEverything(t testing.TB) []string {
	t.Helper()
	var missing []string
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node is not on PATH")
	}
	if _, err := os.Stat(everythingJS); err != nil {
		missing = append(missing, "mcp/"+filepath.ToSlash(everythingJS)+" is missing (run npm ci in mcp/testdata/everything)")
	}
	if len(missing) > 0 {
		msg := "the MCP end-to-end test needs server-everything: " + strings.Join(missing, "; ")
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	abs, err := filepath.Abs(everythingJS)
	if err != nil {
		t.Fatal(err)
	}
	return []string{"node", abs, "stdio"}
}

// TestEverything runs the real third-party server over stdio.
func TestEverything(t *testing.T) {
	argv := requireEverything(t)
	t.Setenv("CHATBOT_TEST_SECRET", "sk-must-not-leak")
	log := &syncBuffer{}
	began := time.Now()
	s, err := mcp.New([]mcp.ServerConfig{{
		Name:    "everything",
		Command: argv,
		Env:     map[string]string{"CHATBOT_E2E": "yes"},
	}}, mcp.Options{Logger: testLogger(log), StartTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		closing := time.Now()
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		t.Logf("Close took %s", time.Since(closing).Round(time.Millisecond))
		if t.Failed() {
			t.Logf("log:\n%s", log.String())
		}
	})
	ctx := context.Background()

	tools, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d tools ready %s after New", len(tools), time.Since(began).Round(time.Millisecond))
	var got []string
	defer func() { t.Logf("tools: %v", got) }()
	for _, tool := range tools {
		got = append(got, tool.Name)
		if !openAIName.MatchString(tool.Name) {
			t.Errorf("name %q is not valid for OpenAI", tool.Name)
		}
	}
	for _, want := range []string{"everything__echo", "everything__get-sum", "everything__get-tiny-image", "everything__get-env"} {
		if !slices.Contains(got, want) {
			t.Errorf("List = %v, want %s in it", got, want)
		}
	}

	for _, tt := range []struct{ tool, args, want string }{
		{"everything__echo", `{"message":"hello from Go"}`, "Echo: hello from Go"},
		{"everything__get-sum", `{"a":2,"b":3}`, "The sum of 2 and 3 is 5."},
	} {
		if out, err := s.Call(ctx, tt.tool, tt.args); err != nil || out != tt.want {
			t.Errorf("Call(%s, %s) = %q, %v; want %q", tt.tool, tt.args, out, err, tt.want)
		}
	}
	if out, err := s.Call(ctx, "everything__get-tiny-image", `{}`); err != nil || !strings.Contains(out, "[image: image/png, ") {
		t.Errorf("Call(get-tiny-image) = %q, %v; want a note for the image", out, err)
	}
	env, err := s.Call(ctx, "everything__get-env", `{}`)
	if err != nil || !strings.Contains(env, `"CHATBOT_E2E": "yes"`) || strings.Contains(env, "sk-must-not-leak") {
		t.Errorf("the server's environment = %q, %v; want CHATBOT_E2E and not CHATBOT_TEST_SECRET", env, err)
	}
	_, err = s.Call(ctx, "everything__get-sum", `{"a":"two","b":3}`)
	var te *mcp.ToolError
	if !errors.As(err, &te) {
		t.Errorf("Call(get-sum) with a string = %v, want the tool's error", err)
	}
	t.Logf("get-sum's own error: %v", err)

	st := s.Check(ctx)
	if st[0].Err != nil || len(st[0].Tools) != len(tools) {
		t.Errorf("Check = %+v", st[0])
	}
}
