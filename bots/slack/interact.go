package slack

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"

	slackgo "github.com/slack-go/slack"

	"github.com/chatbot-dev/chatbot/conversation"
)

// serveInteraction takes an interaction payload posted to the events URL (the
// app's interactivity Request URL, Bolt's convention): a form whose payload
// field is the JSON. The signature was checked; Slack waits 3 seconds at most.
func (a *Adapter) serveInteraction(ctx context.Context, w http.ResponseWriter, form url.Values) {
	var cb slackgo.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	a.spawn(ctx, func(ctx context.Context) { a.onInteraction(ctx, cb) })
	w.WriteHeader(http.StatusOK)
}

// pressed is a press of one of the bot's choice buttons.
type pressed struct {
	key     string // what makes the press unique, for deduplication
	team    string
	channel string
	thread  string // the thread of the buttons' message; "" at a DM's top level
	message string // ts of the buttons' message
	user    string
	dm      bool
	command string // the button's value: the engine command it runs
	shown   string // the buttons' message's text (mrkdwn)
}

// choicePress reads a block_actions payload; ok is false when it is not a press
// of one of the bot's choice buttons in a conversation it answers in.
func (a *Adapter) choicePress(cb slackgo.InteractionCallback) (p pressed, ok bool) {
	if cb.Type != slackgo.InteractionTypeBlockActions {
		return p, false
	}
	var act *slackgo.BlockAction
	for _, x := range cb.ActionCallback.BlockActions {
		if x != nil && strings.HasPrefix(x.ActionID, choiceActionPrefix) {
			act = x
			break
		}
	}
	if act == nil || !conversation.IsCommand(act.Value) {
		return p, false
	}
	p = pressed{
		team: cb.Team.ID, channel: cb.Container.ChannelID, thread: cb.Container.ThreadTs,
		message: cb.Container.MessageTs, user: cb.User.ID, command: act.Value, shown: cb.Message.Text,
	}
	if p.team == "" {
		p.team = a.team
	}
	if p.channel == "" {
		p.channel = cb.Channel.ID
	}
	if p.message == "" {
		p.message = cb.Message.Timestamp
	}
	if p.thread == "" {
		p.thread = cb.Message.ThreadTimestamp
	}
	p.dm = strings.HasPrefix(p.channel, "D")
	// A trigger id is unique per press; without one, the action's own time.
	p.key = cb.TriggerID
	if p.key == "" {
		p.key = p.channel + ":" + p.message + ":" + p.user + ":" + act.ActionTs
	}
	if p.channel == "" || p.message == "" || p.user == "" || cb.Container.IsEphemeral {
		return p, false
	}
	// The bot's choices are posted in a thread, or at a DM's top level.
	return p, p.dm || p.thread != ""
}

// onInteraction handles an interaction payload, from either mode: a press of a
// choice button runs the button's command in the conversation of the buttons'
// message, as if the user had written it there, once per press, and only for
// users the allowlists let in. The buttons' message then shows the new state.
func (a *Adapter) onInteraction(ctx context.Context, cb slackgo.InteractionCallback) {
	if kind, key, ok := feedbackPress(cb); ok {
		a.onFeedback(ctx, cb, kind, key)
		return
	}
	p, ok := a.choicePress(cb)
	if !ok {
		a.trace("ignored", "interaction:"+cb.TriggerID)
		return
	}
	if a.seen(ctx, "action:"+p.key) {
		a.trace("duplicate", p.key)
		return
	}
	if note := a.denied(p.user, p.channel, p.dm); note != "" {
		a.finish(ctx, &ephemeral{api: a.api, channel: p.channel, user: p.user, thread: p.thread}, note)
		a.trace("denied", p.user)
		return
	}
	in := incoming{team: p.team, channel: p.channel, user: p.user, dm: p.dm, threadTS: p.thread}
	chat := chatID(p.team, p.channel, p.thread)
	req := conversation.Request{Chat: chat, UserID: "slack:" + p.user, Text: p.command,
		Reply: a.newReply(in, p.thread), UpdateEvery: a.cfg.UpdateEvery}
	if err := a.engine.Handle(ctx, req); err != nil && !errors.Is(err, conversation.ErrClosed) {
		a.log.Warn("slack: handle button", "chat", string(chat), "err", err)
	}
	a.refreshChoices(ctx, p, in)
	a.trace("pressed", p.key)
}

// refreshChoices makes the buttons' message show the conversation's state after
// a press: the engine lists the choices again into that message (chat.update),
// so the current one is marked; for a command that lists nothing, the buttons go.
// Refreshes of one message run one at a time, so the last shows the latest state.
func (a *Adapter) refreshChoices(ctx context.Context, p pressed, in incoming) {
	defer a.refreshing.lock(p.channel + ":" + p.message)()
	word := strings.ToLower(strings.Fields(p.command)[0])
	rep := a.newReply(in, p.thread)
	rep.native = false
	rep.msgs = []posted{{ts: p.message, buttons: true}}
	switch strings.TrimPrefix(word, "/") {
	case conversation.CommandModel, conversation.CommandPersona:
		req := conversation.Request{Chat: chatID(p.team, p.channel, p.thread), UserID: "slack:" + p.user,
			Text: word, Reply: rep, UpdateEvery: a.cfg.UpdateEvery}
		if err := a.engine.Handle(ctx, req); err != nil && !errors.Is(err, conversation.ErrClosed) {
			a.log.Warn("slack: show the choices again", "err", err)
		}
	default:
		text := p.shown
		if strings.TrimSpace(text) == "" {
			text = "_(chosen)_"
		}
		if err := rep.edit(ctx, 0, text, true, nil); err != nil {
			a.log.Warn("slack: remove the buttons", "err", err)
		}
	}
}

// keyedMutex serialises work per key, holding an entry only while it is in use.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	sync.Mutex
	users int
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.users++
	k.mu.Unlock()
	e.Lock()
	return func() {
		e.Unlock()
		k.mu.Lock()
		if e.users--; e.users == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
