package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is config.yaml. Every key is documented in the example config.yaml and the
// README; unknown keys are errors.
type Config struct {
	OpenAI   OpenAIConfig   `yaml:"openai"`
	Store    StoreConfig    `yaml:"store"`
	Telegram TelegramConfig `yaml:"telegram"`
	Slack    SlackConfig    `yaml:"slack"`
	HTTP     HTTPConfig     `yaml:"http"`
	Log      LogConfig      `yaml:"log"`
	Limits   LimitsConfig   `yaml:"limits"`
	// Personas maps a persona's name to its system prompt, for /persona.
	Personas map[string]string `yaml:"personas"`
	Tools    ToolsConfig       `yaml:"tools"`
	Web      WebConfig         `yaml:"web"`
}

// ToolsConfig is the MCP servers whose tools the model may call.
type ToolsConfig struct {
	MCPServers  []MCPServerConfig `yaml:"mcp_servers"`
	MaxRounds   int               `yaml:"max_rounds"`
	CallTimeout Duration          `yaml:"call_timeout"`
	InGroups    bool              `yaml:"in_groups"`
	ShowCalls   bool              `yaml:"show_calls"`
}

// MCPServerConfig is one MCP server: a command to run (stdio) or a URL
// (streamable HTTP).
type MCPServerConfig struct {
	Name         string            `yaml:"name"`
	Command      []string          `yaml:"command"`
	URL          string            `yaml:"url"`
	Env          map[string]string `yaml:"env"`
	Headers      map[string]string `yaml:"headers"`
	AllowedTools []string          `yaml:"allowed_tools"`
}

// OpenAIConfig is the model and the proxy it is reached through.
type OpenAIConfig struct {
	BaseURL               string     `yaml:"base_url"`
	APIKey                string     `yaml:"api_key"`
	API                   string     `yaml:"api"`
	Model                 string     `yaml:"model"`
	Models                StringList `yaml:"models"`
	ReasoningEffort       string     `yaml:"reasoning_effort"`
	ReasoningSummary      bool       `yaml:"reasoning_summary"`
	WebSearch             bool       `yaml:"web_search"`
	TranscriptionModel    string     `yaml:"transcription_model"`
	ImageModel            string     `yaml:"image_model"`
	SystemPrompt          string     `yaml:"system_prompt"`
	MaxContextTokens      int        `yaml:"max_context_tokens"`
	MaxReplyTokens        int        `yaml:"max_reply_tokens"`
	MaxConcurrentRequests int        `yaml:"max_concurrent_requests"`
	MaxRetries            *int       `yaml:"max_retries"` // absent: 3; 0: no retries
	StallTimeout          Duration   `yaml:"stall_timeout"`
	TurnTimeout           Duration   `yaml:"turn_timeout"`
}

// StoreConfig is the bbolt file.
type StoreConfig struct {
	Path                string `yaml:"path"`
	URL                 string `yaml:"url"`
	MaxMessagesPerChat  int    `yaml:"max_messages_per_chat"`
	MaxFileBytesPerChat int    `yaml:"max_file_bytes_per_chat"`
}

// TelegramConfig is the Telegram adapter; it runs when Token is set.
type TelegramConfig struct {
	Token          string   `yaml:"token"`
	APIURL         string   `yaml:"api_url"`
	AllowedUserIDs IntList  `yaml:"allowed_user_ids"`
	AllowedChatIDs IntList  `yaml:"allowed_chat_ids"`
	Mode           string   `yaml:"mode"`
	WebhookURL     string   `yaml:"webhook_url"`
	WebhookSecret  string   `yaml:"webhook_secret"`
	WebhookListen  string   `yaml:"webhook_listen"`
	Drafts         *bool    `yaml:"drafts"` // absent: true
	GroupEditEvery Duration `yaml:"group_edit_interval"`
	EditEvery      Duration `yaml:"edit_interval"`
}

// SlackConfig is the Slack adapter; it runs when BotToken is set.
type SlackConfig struct {
	BotToken                     string     `yaml:"bot_token"`
	AppToken                     string     `yaml:"app_token"`
	APIURL                       string     `yaml:"api_url"`
	Mode                         string     `yaml:"mode"`
	SigningSecret                string     `yaml:"signing_secret"`
	EventsListen                 string     `yaml:"events_listen"`
	AllowedUserIDs               StringList `yaml:"allowed_user_ids"`
	AllowedChannelIDs            StringList `yaml:"allowed_channel_ids"`
	ReplyInThreadsWithoutMention *bool      `yaml:"reply_in_threads_without_mention"`
	NativeStreaming              *bool      `yaml:"native_streaming"` // absent: true
	// SuggestedPrompts are offered when someone opens the app's conversation.
	SuggestedPrompts []SlackPromptConfig `yaml:"suggested_prompts"`
}

// SlackPromptConfig is one suggested prompt: its title, and the message it sends.
type SlackPromptConfig struct {
	Title   string `yaml:"title"`
	Message string `yaml:"message"`
}

// HTTPConfig is the health and metrics endpoint.
type HTTPConfig struct {
	Listen string `yaml:"listen"`
}

// LogConfig is the logger.
type LogConfig struct {
	Level   string `yaml:"level"`
	Format  string `yaml:"format"`
	Content bool   `yaml:"content"`
}

// LimitsConfig bounds what users may spend.
type LimitsConfig struct {
	DailyTokensPerUser int  `yaml:"daily_tokens_per_user"`
	DailyImagesPerUser *int `yaml:"daily_images_per_user"`
	MaxFileBytes       int  `yaml:"max_file_bytes"`
	MaxTextFileBytes   int  `yaml:"max_text_file_bytes"`
}

// Defaults of the keys the contract gives one.
const (
	defaultOpenAIURL   = "https://api.openai.com/v1"
	defaultTelegramURL = "https://api.telegram.org"
	defaultSlackURL    = "https://slack.com/api/"
	defaultModel       = "gpt-5.4-mini"
)

// setDefaults fills the keys left empty.
func (c *Config) setDefaults() {
	o := &c.OpenAI
	o.BaseURL = or(o.BaseURL, defaultOpenAIURL)
	o.API = or(o.API, "auto")
	o.Model = or(o.Model, defaultModel)
	if !slices.Contains(o.Models, o.Model) {
		o.Models = append(StringList{o.Model}, o.Models...)
	}
	o.MaxContextTokens = orInt(o.MaxContextTokens, 16000)
	o.MaxReplyTokens = orInt(o.MaxReplyTokens, 1024)
	o.MaxConcurrentRequests = orInt(o.MaxConcurrentRequests, 256)
	if o.MaxRetries == nil {
		three := 3
		o.MaxRetries = &three
	}
	o.StallTimeout = Duration(orDur(time.Duration(o.StallTimeout), 60*time.Second))
	o.TurnTimeout = Duration(orDur(time.Duration(o.TurnTimeout), 5*time.Minute))
	c.Store.Path = or(c.Store.Path, "data/chatbot.db")
	c.Store.MaxMessagesPerChat = orInt(c.Store.MaxMessagesPerChat, 500)
	c.Store.MaxFileBytesPerChat = orInt(c.Store.MaxFileBytesPerChat, 64<<20)
	o.TranscriptionModel = or(o.TranscriptionModel, "gpt-transcribe")
	o.ImageModel = or(o.ImageModel, "gpt-image-2")
	c.Tools.MaxRounds = orInt(c.Tools.MaxRounds, 8)
	c.Tools.CallTimeout = Duration(orDur(time.Duration(c.Tools.CallTimeout), 60*time.Second))
	l := &c.Limits
	l.MaxFileBytes = orInt(l.MaxFileBytes, 20<<20)
	l.MaxTextFileBytes = orInt(l.MaxTextFileBytes, 1<<20)
	if l.DailyImagesPerUser == nil {
		twenty := 20
		l.DailyImagesPerUser = &twenty
	}
	t := &c.Telegram
	t.APIURL = or(t.APIURL, defaultTelegramURL)
	t.Mode = or(t.Mode, "polling")
	t.EditEvery = Duration(orDur(time.Duration(t.EditEvery), time.Second))
	t.GroupEditEvery = Duration(orDur(time.Duration(t.GroupEditEvery), 3*time.Second))
	if t.Drafts == nil {
		yes := true
		t.Drafts = &yes
	}
	s := &c.Slack
	s.APIURL = or(s.APIURL, defaultSlackURL)
	s.Mode = or(s.Mode, "socket")
	if s.ReplyInThreadsWithoutMention == nil {
		yes := true
		s.ReplyInThreadsWithoutMention = &yes
	}
	if s.NativeStreaming == nil {
		yes := true
		s.NativeStreaming = &yes
	}
	c.Log.Level = or(c.Log.Level, "info")
	c.Log.Format = or(c.Log.Format, "auto")
}

// keyCheck is the verdict on one key's value.
type keyCheck struct {
	key string
	err error
}

// validate checks values, naming the key of the first bad one.
func (c *Config) validate() error {
	checks := []keyCheck{
		{"openai.base_url", checkURL(c.OpenAI.BaseURL)},
		{"openai.api", oneOf(c.OpenAI.API, "auto", "responses", "chat")},
		{"openai.model", nonEmpty(c.OpenAI.Model)},
		{"openai.models", modelNames(c.OpenAI.Models)},
		{"openai.reasoning_effort", effort(c.OpenAI.ReasoningEffort)},
		{"openai.web_search", webSearch(c.OpenAI.WebSearch, c.OpenAI.API)},
		{"openai.reasoning_summary", reasoningSummary(c.OpenAI.ReasoningSummary, c.OpenAI.API)},
		{"openai.max_context_tokens", positive(c.OpenAI.MaxContextTokens)},
		{"openai.max_reply_tokens", positive(c.OpenAI.MaxReplyTokens)},
		{"openai.max_reply_tokens", below(c.OpenAI.MaxReplyTokens, c.OpenAI.MaxContextTokens, "openai.max_context_tokens")},
		{"openai.max_concurrent_requests", positive(c.OpenAI.MaxConcurrentRequests)},
		{"openai.max_retries", notNegative(*c.OpenAI.MaxRetries)},
		{"openai.stall_timeout", positive(int(c.OpenAI.StallTimeout))},
		{"openai.turn_timeout", positive(int(c.OpenAI.TurnTimeout))},
		{"store.path", nonEmpty(c.Store.Path)},
		{"store.url", postgresURL(c.Store.URL)},
		{"store.max_messages_per_chat", positive(c.Store.MaxMessagesPerChat)},
		{"telegram.api_url", checkURL(c.Telegram.APIURL)},
		{"telegram.mode", oneOf(c.Telegram.Mode, "polling", "webhook")},
		{"telegram.edit_interval", positive(int(c.Telegram.EditEvery))},
		{"telegram.group_edit_interval", positive(int(c.Telegram.GroupEditEvery))},
		{"slack.api_url", checkURL(c.Slack.APIURL)},
		{"slack.mode", oneOf(c.Slack.Mode, "socket", "events")},
		{"log.level", oneOf(c.Log.Level, "debug", "info", "warn", "error")},
		{"log.format", oneOf(c.Log.Format, "auto", "text", "json")},
		{"limits.daily_tokens_per_user", notNegative(c.Limits.DailyTokensPerUser)},
		{"limits.daily_images_per_user", notNegative(*c.Limits.DailyImagesPerUser)},
		{"limits.max_file_bytes", positive(c.Limits.MaxFileBytes)},
		{"limits.max_text_file_bytes", positive(c.Limits.MaxTextFileBytes)},
		{"store.max_file_bytes_per_chat", positive(c.Store.MaxFileBytesPerChat)},
		{"http.listen", listenAddr(c.HTTP.Listen)},
	}
	if c.Telegram.Token != "" && c.Telegram.Mode == "webhook" {
		checks = append(checks,
			keyCheck{"telegram.webhook_url", checkURL(c.Telegram.WebhookURL)},
			keyCheck{"telegram.webhook_secret", webhookSecret(c.Telegram.WebhookSecret)},
			keyCheck{"telegram.webhook_listen", nonEmpty(c.Telegram.WebhookListen)})
	}
	if c.Slack.BotToken != "" {
		if c.Slack.Mode == "events" {
			checks = append(checks,
				keyCheck{"slack.signing_secret", nonEmpty(c.Slack.SigningSecret)},
				keyCheck{"slack.events_listen", nonEmpty(c.Slack.EventsListen)})
		} else {
			checks = append(checks, keyCheck{"slack.app_token", prefixed(c.Slack.AppToken, "xapp-")})
		}
	}
	checks = append(checks, slackPromptChecks(c.Slack.SuggestedPrompts)...)
	checks = append(checks, personaChecks(c.Personas)...)
	checks = append(checks, toolChecks(c.Tools)...)
	checks = append(checks, webChecks(c.Web)...)
	for _, ch := range checks {
		if ch.err != nil {
			return fmt.Errorf("config: %s: %w", ch.key, ch.err)
		}
	}
	return nil
}

// slackPromptChecks checks slack.suggested_prompts: Slack shows up to four,
// each with a title and a message.
func slackPromptChecks(prompts []SlackPromptConfig) []keyCheck {
	if len(prompts) > 4 {
		return []keyCheck{{"slack.suggested_prompts", fmt.Errorf("Slack shows at most 4, got %d", len(prompts))}}
	}
	var checks []keyCheck
	for i, p := range prompts {
		key := fmt.Sprintf("slack.suggested_prompts[%d]", i)
		checks = append(checks, keyCheck{key + ".title", nonEmpty(p.Title)}, keyCheck{key + ".message", nonEmpty(p.Message)})
	}
	return checks
}

func or(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

func orInt(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

func orDur(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func nonEmpty(s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("must be set")
	}
	return nil
}

func positive(n int) error {
	if n <= 0 {
		return fmt.Errorf("must be greater than zero, got %d", n)
	}
	return nil
}

func notNegative(n int) error {
	if n < 0 {
		return fmt.Errorf("must not be negative, got %d", n)
	}
	return nil
}

func below(n, limit int, limitKey string) error {
	if n >= limit {
		return fmt.Errorf("must be less than %s (%d), got %d", limitKey, limit, n)
	}
	return nil
}

func oneOf(s string, allowed ...string) error {
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	return fmt.Errorf("must be one of %s, got %q", strings.Join(allowed, ", "), s)
}

func prefixed(s, prefix string) error {
	if !strings.HasPrefix(s, prefix) {
		return fmt.Errorf("must be set to a token starting with %q (or set slack.mode: events)", prefix)
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an http(s) URL, got %q", s)
	}
	return nil
}

// listenAddr accepts an empty address (off) or host:port, e.g. 127.0.0.1:9090 or :9090.
func listenAddr(s string) error {
	if s == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(s)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		return fmt.Errorf("must be host:port, e.g. 127.0.0.1:9090 or :9090, got %q", s)
	}
	return nil
}

// webhookSecret follows Telegram's rule for secret_token: 1-256 of A-Z a-z 0-9 _ -.
func webhookSecret(s string) error {
	if len(s) == 0 || len(s) > 256 {
		return fmt.Errorf("must be 1 to 256 characters")
	}
	for _, r := range s {
		ok := r == '_' || r == '-' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')
		if !ok {
			return fmt.Errorf("may hold only A-Z, a-z, 0-9, _ and -")
		}
	}
	return nil
}

// readConfig loads, expands, defaults and validates the file at path.
func readConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parseConfig(data, os.LookupEnv)
}
