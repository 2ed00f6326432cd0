package conversation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// ChatSettings are one chat's choices, kept across restarts and /reset.
type ChatSettings struct {
	// Model is the chat's model; empty means the configured default.
	Model string `json:"model,omitempty"`
	// Persona names an entry of the configured personas; empty means none.
	Persona string `json:"persona,omitempty"`
}

// Settings stores each chat's settings. store.DB implements it.
type Settings interface {
	ChatSettings(ctx context.Context, chat ChatID) (ChatSettings, error)
	SetChatSettings(ctx context.Context, chat ChatID, s ChatSettings) error
}

// memorySettings keeps settings in memory, for an engine built without a store.
type memorySettings struct {
	mu    sync.Mutex
	chats map[ChatID]ChatSettings
}

func (m *memorySettings) ChatSettings(_ context.Context, chat ChatID) (ChatSettings, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.chats[chat], nil
}

func (m *memorySettings) SetChatSettings(_ context.Context, chat ChatID, s ChatSettings) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.chats == nil {
		m.chats = make(map[ChatID]ChatSettings)
	}
	m.chats[chat] = s
	return nil
}

// Choice is one button under an answer: pressing it sends Command as if the user
// had typed it.
type Choice struct {
	Label   string
	Command string
	// Current marks the option in use.
	Current bool
}

// ChoiceReply is a Reply that can show choices as buttons under its final text.
// It is optional: a Reply without it gets the text alone, which always lists the
// options too.
type ChoiceReply interface {
	FinishChoices(ctx context.Context, text string, choices []Choice) error
}

// withChoices makes a Reply's Finish show choices, when the Reply can.
type withChoices struct {
	Reply
	choices []Choice
}

func (w withChoices) Finish(ctx context.Context, text string) error {
	if cr, ok := w.Reply.(ChoiceReply); ok && len(w.choices) > 0 {
		return cr.FinishChoices(ctx, text, w.choices)
	}
	return w.Reply.Finish(ctx, text)
}

// personaOff is the /persona argument that goes back to the configured prompt.
const personaOff = "off"

// chatSetup is what a turn uses of the chat's settings: the model and the
// instructions, both already checked against the configuration.
type chatSetup struct {
	model        string
	persona      string
	instructions string
}

// setup returns chat's model and instructions. A stored model or persona that is
// no longer configured falls back to the default.
func (e *Engine) setup(ctx context.Context, chat ChatID) (chatSetup, error) {
	s, err := e.settings.ChatSettings(ctx, chat)
	if err != nil {
		return chatSetup{}, &Error{Text: "I could not read this chat's settings. Please try again.",
			Err: fmt.Errorf("load settings: %w", err)}
	}
	cs := chatSetup{model: e.model.Name(), instructions: e.cfg.SystemPrompt}
	if slices.Contains(e.models(), s.Model) {
		cs.model = s.Model
	}
	if prompt, ok := e.cfg.Personas[s.Persona]; ok {
		cs.persona, cs.instructions = s.Persona, prompt
	}
	return cs, nil
}

// models lists the models a chat may pick; the default is always among them.
func (e *Engine) models() []string {
	if len(e.cfg.Models) == 0 {
		return []string{e.model.Name()}
	}
	return e.cfg.Models
}

// personaNames lists the configured personas, sorted.
func (e *Engine) personaNames() []string {
	names := make([]string, 0, len(e.cfg.Personas))
	for name := range e.cfg.Personas {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// modelCommand answers /model (show the choice) and /model NAME (switch).
func (e *Engine) modelCommand(ctx context.Context, req Request, arg string) error {
	cs, err := e.setup(ctx, req.Chat)
	if err != nil {
		return e.finishNow(ctx, req.Reply, UserText(err))
	}
	models := e.models()
	if arg == "" {
		var b strings.Builder
		fmt.Fprintf(&b, "Model for this chat: %s\n\nAvailable:", cs.model)
		choices := make([]Choice, len(models))
		for i, m := range models {
			fmt.Fprintf(&b, "\n• %s", m)
			choices[i] = Choice{Label: m, Command: "/model " + m, Current: m == cs.model}
		}
		b.WriteString("\n\nSwitch with /model NAME.")
		return e.finishNow(ctx, withChoices{req.Reply, choices}, b.String())
	}
	if !slices.Contains(models, arg) {
		return e.finishNow(ctx, req.Reply, fmt.Sprintf("I don't know the model %q here. This chat may use: %s.",
			arg, strings.Join(models, ", ")))
	}
	return e.saveSetting(ctx, req, func(s *ChatSettings) { s.Model = arg },
		fmt.Sprintf("Model for this chat: %s.", arg))
}

// personaCommand answers /persona, /persona NAME and /persona off.
func (e *Engine) personaCommand(ctx context.Context, req Request, arg string) error {
	names := e.personaNames()
	if len(names) == 0 {
		return e.finishNow(ctx, req.Reply, "No personas are configured. The bot's owner can add them under `personas` in config.yaml.")
	}
	switch {
	case arg == "":
		cs, err := e.setup(ctx, req.Chat)
		if err != nil {
			return e.finishNow(ctx, req.Reply, UserText(err))
		}
		return e.finishNow(ctx, withChoices{req.Reply, personaChoices(names, cs.persona)}, personaListText(names, cs.persona))
	case strings.EqualFold(arg, personaOff):
		return e.saveSetting(ctx, req, func(s *ChatSettings) { s.Persona = "" },
			"Persona off: back to the bot's default instructions.")
	case !slices.Contains(names, arg):
		return e.finishNow(ctx, req.Reply, fmt.Sprintf("I don't know the persona %q. Personas: %s (or /persona off).",
			arg, strings.Join(names, ", ")))
	}
	return e.saveSetting(ctx, req, func(s *ChatSettings) { s.Persona = arg },
		fmt.Sprintf("Persona for this chat: %s.", arg))
}

func personaChoices(names []string, current string) []Choice {
	choices := make([]Choice, 0, len(names)+1)
	for _, n := range names {
		choices = append(choices, Choice{Label: n, Command: "/persona " + n, Current: n == current})
	}
	return append(choices, Choice{Label: "off", Command: "/persona " + personaOff, Current: current == ""})
}

func personaListText(names []string, current string) string {
	var b strings.Builder
	if current == "" {
		b.WriteString("Persona for this chat: none (the bot's default instructions)\n\nAvailable:")
	} else {
		fmt.Fprintf(&b, "Persona for this chat: %s\n\nAvailable:", current)
	}
	for _, n := range names {
		fmt.Fprintf(&b, "\n• %s", n)
	}
	b.WriteString("\n\nSwitch with /persona NAME, or /persona off.")
	return b.String()
}

// saveSetting changes one of the chat's settings and confirms it with done.
func (e *Engine) saveSetting(ctx context.Context, req Request, change func(*ChatSettings), done string) error {
	s, err := e.settings.ChatSettings(ctx, req.Chat)
	if err == nil {
		change(&s)
		err = e.settings.SetChatSettings(ctx, req.Chat, s)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("save settings: %w", err),
			e.finishNow(ctx, req.Reply, "I could not save this chat's settings. Please try again."))
	}
	return e.finishNow(ctx, req.Reply, done)
}

// CommandWeb answers with a one-time login link to the web chat.
const CommandWeb = "web"

// LoginLinks issues one-time links that log a platform user into the web chat,
// where chat (their private chat) is one of their conversations. bots/web
// implements it.
type LoginLinks interface {
	LoginLink(ctx context.Context, userID string, chat ChatID) (url string, err error)
}

// webCommand answers /web in a private conversation with a login link.
func (e *Engine) webCommand(ctx context.Context, req Request) error {
	switch {
	case e.cfg.WebLinks == nil:
		return e.finishNow(ctx, req.Reply, "The web chat is not set up on this bot.")
	case !req.Private:
		return e.finishNow(ctx, req.Reply, "Send /web to me in a private chat, and I'll answer with your login link there.")
	}
	link, err := e.cfg.WebLinks.LoginLink(ctx, req.UserID, req.Chat)
	if err != nil {
		e.log.Warn("web login link", "user", req.UserID, "err", err)
		return e.finishNow(ctx, req.Reply, "I could not make a login link. Please try again.")
	}
	return e.finishNow(ctx, req.Reply, "Your login link for the web chat (it works once, for 10 minutes; this chat is there too):\n"+link)
}
