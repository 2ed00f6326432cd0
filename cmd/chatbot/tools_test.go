package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// everythingArgv is the command of npm's @modelcontextprotocol/server-everything
// (installed by `npm ci` in mcp/testdata/everything). Without it the test
// skips, or fails on CI (CI=true).
func everythingArgv(t *testing.T) []string {
	t.Helper()
	js, _ := filepath.Abs(filepath.Join("..", "..", "mcp", "testdata", "everything", "node_modules",
		"@modelcontextprotocol", "server-everything", "dist", "index.js"))
	_, nodeErr := exec.LookPath("node")
	if _, err := os.Stat(js); err != nil || nodeErr != nil {
		msg := "needs node and server-everything: run npm ci in mcp/testdata/everything"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return []string{"node", js, "stdio"}
}

// TestChatCallsAnMCPTool: the model asks for server-everything's echo tool; the
// user sees the tool at work, its real output reaches the second model call,
// and the answer arrives — on both APIs.
func TestChatCallsAnMCPTool(t *testing.T) {
	argv := everythingArgv(t)
	for _, api := range []string{"responses", "chat"} {
		t.Run(api, func(t *testing.T) {
			fake := modelsFake(t)
			fake.NoResponses = api == "chat"
			fake.Enqueue(openaitest.Reply{Calls: []openaitest.Call{{Name: "everything__echo", Arguments: `{"message":"ping from the bot"}`}}},
				openaitest.Text("The tool said pong."))
			tools := "tools:\n  mcp_servers:\n    - name: everything\n      command: [" + strings.Join(quoteAll(argv), ", ") + "]\n" +
				"      allowed_tools: [echo, get-sum]\n"
			code, out, errOut := run(t, "say ping\n", "chat", "-config", configWith(t, fake, tools))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(out, "🔧 everything__echo") || !strings.Contains(out, "The tool said pong.") {
				t.Errorf("stdout %q: want the tool's line, then the answer", out)
			}
			reqs := fake.Requests()
			if len(reqs) != 2 || strings.Join(reqs[0].Tools, ",") != "everything__echo,everything__get-sum" {
				t.Fatalf("%d calls; tools offered %v", len(reqs), reqs[0].Tools)
			}
			last := reqs[1].Messages[len(reqs[1].Messages)-1]
			if last.Role != "tool" || !strings.Contains(last.Content, "ping from the bot") {
				t.Errorf("the second call ends with %+v, want the echo tool's output", last)
			}
		})
	}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = `"` + s + `"`
	}
	return out
}
