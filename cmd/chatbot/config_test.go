package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestExampleConfigParses(t *testing.T) {
	data, err := os.ReadFile("../../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, vars := range []map[string]string{
		{},
		{"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "https://ai.example.workers.dev/v1",
			"TELEGRAM_BOT_TOKEN": "123:abc", "TELEGRAM_ALLOWED_USER_IDS": "42, 43",
			"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"},
	} {
		cfg, err := parseConfig(data, env(vars))
		if err != nil {
			t.Fatalf("with %v: %v", vars, err)
		}
		if len(vars) > 0 {
			if cfg.OpenAI.BaseURL != vars["OPENAI_BASE_URL"] || cfg.Telegram.Token != "123:abc" {
				t.Errorf("env not expanded: %+v", cfg.OpenAI)
			}
			if got := cfg.Telegram.AllowedUserIDs; len(got) != 2 || got[0] != 42 || got[1] != 43 {
				t.Errorf("allowed_user_ids = %v", got)
			}
		} else if cfg.OpenAI.BaseURL != defaultOpenAIURL || cfg.Telegram.Token != "" {
			t.Errorf("unset vars should leave defaults: base_url %q token %q", cfg.OpenAI.BaseURL, cfg.Telegram.Token)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := parseConfig([]byte("openai:\n  api_key: k\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key       string
		got, want any
	}{
		{"openai.base_url", cfg.OpenAI.BaseURL, "https://api.openai.com/v1"},
		{"telegram.api_url", cfg.Telegram.APIURL, "https://api.telegram.org"},
		{"telegram.mode", cfg.Telegram.Mode, "polling"},
		{"slack.api_url", cfg.Slack.APIURL, "https://slack.com/api/"},
		{"slack.native_streaming", *cfg.Slack.NativeStreaming, true},
		{"slack.suggested_prompts", len(cfg.Slack.SuggestedPrompts), 0},
		{"slack.mode", cfg.Slack.Mode, "socket"},
		{"store.max_messages_per_chat", cfg.Store.MaxMessagesPerChat, 500},
		{"openai.stall_timeout", time.Duration(cfg.OpenAI.StallTimeout), time.Minute},
		{"slack.reply_in_threads_without_mention", *cfg.Slack.ReplyInThreadsWithoutMention, true},
		{"telegram.drafts", *cfg.Telegram.Drafts, true},
		{"openai.model", cfg.OpenAI.Model, "gpt-5.4-mini"},
		{"openai.api", cfg.OpenAI.API, "auto"},
		{"openai.models", strings.Join(cfg.OpenAI.Models, ","), "gpt-5.4-mini"},
		{"openai.reasoning_effort", cfg.OpenAI.ReasoningEffort, ""},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.key, tt.got, tt.want)
		}
	}
}

func TestConfigExpandsEnvIntoTypedValues(t *testing.T) {
	yaml := "openai:\n  max_context_tokens: ${CTX}\n  stall_timeout: ${STALL}\n  system_prompt: \"costs $5, ${WHO}\"\n"
	cfg, err := parseConfig([]byte(yaml), env(map[string]string{"CTX": "8000", "STALL": "15s", "WHO": "Ana"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OpenAI.MaxContextTokens != 8000 || time.Duration(cfg.OpenAI.StallTimeout) != 15*time.Second {
		t.Errorf("got %d and %v", cfg.OpenAI.MaxContextTokens, cfg.OpenAI.StallTimeout)
	}
	if cfg.OpenAI.SystemPrompt != "costs $5, Ana" {
		t.Errorf("system_prompt = %q", cfg.OpenAI.SystemPrompt)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		yaml string
		key  string
	}{
		{"openai:\n  modle: gpt-4o\n", "openai.modle"},
		{"telegramm:\n  token: x\n", "telegramm"},
		{"openai:\n  max_context_tokens: lots\n", "openai.max_context_tokens"},
		{"openai:\n  max_context_tokens: -5\n", "openai.max_context_tokens"},
		{"openai:\n  max_reply_tokens: 20000\n", "openai.max_reply_tokens"},
		{"openai:\n  base_url: ftp://example.com\n", "openai.base_url"},
		{"openai:\n  stall_timeout: forever\n", "openai.stall_timeout"},
		{"store:\n  max_messages_per_chat: -1\n", "store.max_messages_per_chat"},
		{"telegram:\n  mode: hook\n", "telegram.mode"},
		{"telegram:\n  allowed_user_ids: [12, abc]\n", "telegram.allowed_user_ids"},
		{"telegram:\n  token: t\n  mode: webhook\n  webhook_secret: s\n  webhook_listen: :8443\n", "telegram.webhook_url"},
		{"telegram:\n  token: t\n  mode: webhook\n  webhook_url: https://x.example/tg\n  webhook_secret: 'has space'\n  webhook_listen: :8443\n", "telegram.webhook_secret"},
		{"slack:\n  bot_token: xoxb-1\n", "slack.app_token"},
		{"slack:\n  bot_token: xoxb-1\n  mode: events\n  events_listen: :3000\n", "slack.signing_secret"},
		{"slack:\n  mode: rtm\n", "slack.mode"},
		{"log:\n  level: loud\n", "log.level"},
		{"http: 8080\n", "http"},
		{"limits:\n  daily_tokens_per_user: -1\n", "limits.daily_tokens_per_user"},
		{"openai:\n  api: completions\n", "openai.api"},
		{"openai:\n  api: chat\n  web_search: true\n", "openai.web_search"},
		{"openai:\n  api: chat\n  reasoning_summary: true\n", "openai.reasoning_summary"},
		{"openai:\n  reasoning_effort: 'very high'\n", "openai.reasoning_effort"},
		{"openai:\n  models: ['gpt 5']\n", "openai.models"},
		{"personas:\n  'off': be quiet\n", "personas.off"},
		{"personas:\n  pirate: ''\n", "personas.pirate"},
		{"personas: [a, b]\n", "personas"},
		{"tools:\n  mcp_servers:\n    - name: notes\n", "tools.mcp_servers[0]"},
		{"tools:\n  mcp_servers:\n    - name: a\n      url: http://x/mcp\n    - name: a\n      url: http://y/mcp\n", "tools.mcp_servers[1]"},
		{"tools:\n  mcp_servers:\n    - name: 'bad name'\n      command: [x]\n", "tools.mcp_servers[0]"},
		{"tools:\n  max_rounds: -1\n", "tools.max_rounds"},
		{"tools:\n  mcp_server: []\n", "tools.mcp_server"},
		{"http:\n  listen: 9090\n", "http.listen"},
		{"http:\n  listen: localhost:http-alt\n", "http.listen"},
	}
	for _, tt := range tests {
		_, err := parseConfig([]byte(tt.yaml), env(nil))
		if err == nil || !strings.Contains(err.Error(), tt.key) {
			t.Errorf("%q: err = %v, want it to name %s", tt.yaml, err, tt.key)
		}
	}
}

func TestConfigSecretsNotInErrors(t *testing.T) {
	_, err := parseConfig([]byte("openai:\n  api_key: ${KEY}\n  max_retries: ${KEY}\n"), env(map[string]string{"KEY": "sk-very-secret"}))
	if err == nil || !strings.Contains(err.Error(), "openai.max_retries") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "sk-very") {
		t.Errorf("error shows the value of a secret: %v", err)
	}
}

// FuzzParseConfig: any input gives a config or an error naming what is wrong,
// never a panic.
func FuzzParseConfig(f *testing.F) {
	example, _ := os.ReadFile("../../config.yaml")
	f.Add(string(example))
	f.Add("openai:\n  max_context_tokens: ${N}\n")
	f.Add("telegram: [1, 2]\n")
	f.Add("slack:\n  allowed_user_ids: {a: b}\n")
	f.Add("openai: &a\n  model: *a\n")
	f.Add("\xff\xfe")
	f.Fuzz(func(t *testing.T, yaml string) {
		cfg, err := parseConfig([]byte(yaml), env(map[string]string{"N": "12"}))
		if err == nil && cfg == nil {
			t.Fatal("nil config without an error")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "config: ") {
			t.Fatalf("error without the config: prefix: %v", err)
		}
	})
}

// TestConfigMaxRetries: absent means 3 retries, 0 means none.
func TestConfigMaxRetries(t *testing.T) {
	for yaml, want := range map[string]int{
		"openai:\n  model: m\n":              3,
		"openai:\n  max_retries: ${UNSET}\n": 3,
		"openai:\n  max_retries: 0\n":        0,
		"openai:\n  max_retries: 5\n":        5,
	} {
		cfg, err := parseConfig([]byte(yaml), env(nil))
		if err != nil {
			t.Fatalf("%q: %v", yaml, err)
		}
		if got := *cfg.OpenAI.MaxRetries; got != want {
			t.Errorf("%q: max_retries %d, want %d", yaml, got, want)
		}
	}
}

// TestChatMaxRetriesZeroMeansNone: openai.max_retries: 0 makes one call only.
func TestChatMaxRetriesZeroMeansNone(t *testing.T) {
	fake := openaitest.NewServer()
	defer fake.Close()
	fake.APIKey = "sk-test-key"
	fake.SetHandler(func(openaitest.Request) openaitest.Reply {
		return openaitest.Error(500, "", "The server had an error while processing your request.")
	})
	path := writeConfigOpenAI(t, fake, "  max_retries: 0\nstore:\n  path: "+filepath.Join(t.TempDir(), "bot.db")+"\n")
	code, out, errOut := run(t, "hello\n", "chat", "-config", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := len(fake.Requests()); n != 1 {
		t.Errorf("%d model calls with max_retries: 0, want 1\n%s", n, out)
	}
}

// TestSlackConfig: native streaming can be turned off, the example config
// offers four prompts, and prompts Slack would refuse are errors naming the key.
func TestSlackConfig(t *testing.T) {
	cfg, err := parseConfig([]byte("slack:\n  native_streaming: false\n"), env(nil))
	if err != nil || *cfg.Slack.NativeStreaming {
		t.Errorf("native_streaming: false gave %v, %v", cfg.Slack.NativeStreaming, err)
	}
	example, _ := os.ReadFile("../../config.yaml")
	cfg, err = parseConfig(example, env(nil))
	if err != nil || len(cfg.Slack.SuggestedPrompts) != 4 || cfg.Slack.SuggestedPrompts[0].Title == "" {
		t.Errorf("example prompts %+v, %v", cfg.Slack.SuggestedPrompts, err)
	}
	for yaml, key := range map[string]string{
		"slack:\n  suggested_prompts:\n    - {title: a, message: b}\n    - {title: a, message: b}\n    - {title: a, message: b}\n    - {title: a, message: b}\n    - {title: a, message: b}\n": "slack.suggested_prompts",
		"slack:\n  suggested_prompts:\n    - {title: a}\n": "slack.suggested_prompts[0].message",
	} {
		if _, err := parseConfig([]byte(yaml), env(nil)); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: %v, want an error naming %s", yaml, err, key)
		}
	}
}
