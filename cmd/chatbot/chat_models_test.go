package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// modelsConfig adds models, personas, a system prompt and a reasoning effort.
const modelsConfig = `  models: [gpt-5.4-mini, gpt-5.5]
  system_prompt: Be brief.
  reasoning_effort: low
personas:
  pirate: Talk like a pirate.
`

func modelsFake(t *testing.T) *openaitest.Server {
	fake := openaitest.NewServer()
	t.Cleanup(fake.Close)
	fake.APIKey = "sk-test-key"
	fake.Models = []string{"gpt-5.4-mini", "gpt-5.5"}
	return fake
}

// configWith writes a config with openaiExtra under the openai section (it may
// go on with other sections) and a store in a temporary folder.
func configWith(t *testing.T, fake *openaitest.Server, openaiExtra string) string {
	return writeConfigOpenAI(t, fake, openaiExtra+"store:\n  path: "+filepath.Join(t.TempDir(), "bot.db")+"\n")
}

func TestChatOnTheResponsesAPI(t *testing.T) {
	fake := modelsFake(t)
	code, out, errOut := run(t, "hi\n", "chat", "-config", configWith(t, fake, modelsConfig))
	if code != 0 || !strings.Contains(out, "You said: hi") {
		t.Fatalf("exit %d, stdout %q: %s", code, out, errOut)
	}
	req := fake.Requests()[0]
	if req.API != "responses" || req.Field("store") != false || req.Instructions != "Be brief." ||
		req.Field("reasoning.effort") != "low" {
		t.Errorf("request: api %s, store %v, instructions %q, effort %v", req.API, req.Field("store"),
			req.Instructions, req.Field("reasoning.effort"))
	}
}

func TestChatFallsBackToChatCompletions(t *testing.T) {
	fake := modelsFake(t)
	fake.NoResponses = true
	code, out, errOut := run(t, "one\ntwo\n", "chat", "-config", configWith(t, fake, ""))
	if code != 0 || !strings.Contains(out, "You said: one") || !strings.Contains(out, "You said: two") {
		t.Fatalf("exit %d, stdout %q: %s", code, out, errOut)
	}
	for _, r := range fake.Requests() {
		if r.API != "chat" {
			t.Errorf("a call went to %s after the fallback", r.API)
		}
	}
}

func TestChatModelAndPersonaPersist(t *testing.T) {
	fake := modelsFake(t)
	path := configWith(t, fake, modelsConfig)
	code, out, errOut := run(t, "/model gpt-5.5\n/persona pirate\n/model gpt-4o\n/reset\n", "chat", "-config", path)
	if code != 0 || !strings.Contains(out, "Model for this chat: gpt-5.5.") || !strings.Contains(out, "gpt-5.4-mini, gpt-5.5") {
		t.Fatalf("exit %d, stdout %q: %s", code, out, errOut)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("%d model calls for commands alone", n)
	}
	if code, _, errOut = run(t, "ahoy\n", "chat", "-config", path); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	req := fake.Requests()[0]
	if req.Model != "gpt-5.5" || req.Instructions != "Talk like a pirate." {
		t.Errorf("after a restart: model %q, instructions %q", req.Model, req.Instructions)
	}
}

func TestChatRejectedParameterNamesTheKey(t *testing.T) {
	fake := modelsFake(t)
	fake.Enqueue(openaitest.Error(400, "unsupported_parameter", "Unsupported parameter: 'reasoning.effort' is not supported with this model."))
	_, out, _ := run(t, "hi\n", "chat", "-config", configWith(t, fake, modelsConfig))
	if !strings.Contains(out, "openai.reasoning_effort") {
		t.Errorf("stdout = %q, want the key to change", out)
	}
}

func TestChatImageSavesThePicture(t *testing.T) {
	fake := modelsFake(t)
	path := configWith(t, fake, "")
	code, out, errOut := run(t, "/image a red fox\n", "chat", "-config", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	_, saved, ok := strings.Cut(out, "saved to ")
	saved, _, _ = strings.Cut(saved, "\n")
	if !ok || !strings.Contains(out, "🎨 a red fox") {
		t.Fatalf("stdout %q: want the caption and the saved path", out)
	}
	data, err := os.ReadFile(saved)
	if err != nil || !bytes.Equal(data, fake.Images()[0]) {
		t.Errorf("saved file %s: %d bytes, %v; want the image the model sent", saved, len(data), err)
	}
}
