package slack

import (
	"bytes"
	"os"
	"slices"
	"testing"

	slackgo "github.com/slack-go/slack"
	"go.yaml.in/yaml/v3"
)

// TestManifest checks that the app manifest asks for what the adapter uses.
func TestManifest(t *testing.T) {
	data, err := os.ReadFile("manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Features struct {
			AppHome struct {
				MessagesTab bool `yaml:"messages_tab_enabled"`
			} `yaml:"app_home"`
			BotUser struct {
				DisplayName string `yaml:"display_name"`
			} `yaml:"bot_user"`
			SlashCommands []struct {
				Command string `yaml:"command"`
			} `yaml:"slash_commands"`
		} `yaml:"features"`
		OAuth struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
		Settings struct {
			Events struct {
				Bot []string `yaml:"bot_events"`
			} `yaml:"event_subscriptions"`
			Interactivity struct {
				Enabled bool `yaml:"is_enabled"`
			} `yaml:"interactivity"`
			SocketMode bool `yaml:"socket_mode_enabled"`
		} `yaml:"settings"`
	}
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"app_mentions:read", "chat:write", "im:history", "im:read", "im:write",
		"channels:history", "groups:history", "users:read", "commands", "files:read", "files:write", "assistant:write"} {
		if !slices.Contains(m.OAuth.Scopes.Bot, s) {
			t.Errorf("scope %s missing", s)
		}
	}
	for _, e := range []string{"app_mention", "message.im", "message.channels", "message.groups",
		"app_home_opened", "agent_session_stopped"} {
		if !slices.Contains(m.Settings.Events.Bot, e) {
			t.Errorf("event %s missing", e)
		}
	}
	if !m.Settings.SocketMode || !m.Features.AppHome.MessagesTab || m.Features.BotUser.DisplayName == "" {
		t.Errorf("socket mode %v, messages tab %v, bot user %q", m.Settings.SocketMode,
			m.Features.AppHome.MessagesTab, m.Features.BotUser.DisplayName)
	}
	if !m.Settings.Interactivity.Enabled {
		t.Errorf("interactivity off: the model and persona buttons would never reach the bot")
	}
	if len(m.Features.SlashCommands) != 1 || m.Features.SlashCommands[0].Command != "/reset" {
		t.Errorf("slash commands %+v, want /reset", m.Features.SlashCommands)
	}
}

// TestManifestAsSlackGoReadsIt: every key of the manifest is one slack-go's
// manifest type knows, and the app is declared an agent (agent_view, the
// messaging experience Slack gives new apps), so that it has agent sessions,
// suggested prompts and titles.
func TestManifestAsSlackGoReadsIt(t *testing.T) {
	data, err := os.ReadFile("manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m slackgo.Manifest
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("slack-go's manifest type does not read the manifest: %v", err)
	}
	if m.Features.AgentView == nil || m.Features.AgentView.AgentDescription == "" {
		t.Errorf("no agent_view with a description: %+v", m.Features)
	}
	if m.Features.AssistantView != nil {
		t.Errorf("assistant_view is the legacy experience, not for new apps")
	}
	if !m.Settings.SocketModeEnabled || !m.Settings.Interactivity.IsEnabled || !m.Features.AppHome.MessagesTabEnabled {
		t.Errorf("settings %+v, app home %+v", m.Settings, m.Features.AppHome)
	}
}
