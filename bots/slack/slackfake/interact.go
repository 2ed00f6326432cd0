package slackfake

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// kindInteractive is the Socket Mode envelope type of interaction payloads.
const kindInteractive = "interactive"

// Press clicks the button actionID of the bot's message ts in channel, as user,
// and delivers the block_actions payload Slack sends for it: over Socket Mode an
// "interactive" envelope, over the Events API (the app's interactivity Request
// URL) a signed form post with the JSON in its payload field. Slack does not
// send an interaction again when the app fails to acknowledge it (the user sees
// an error instead); Redeliver with the returned trigger id sends it again, as a
// duplicate delivery would. It fails when the message or button does not exist.
func (s *Server) Press(channel, ts, user, actionID string) (string, error) {
	s.mu.Lock()
	m := s.message(channel, ts)
	if m == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("slackfake: no message %s in %s", ts, channel)
	}
	if m.BotID != s.opt.BotID {
		s.mu.Unlock()
		return "", errors.New("slackfake: the message is not the app's: its buttons go to another app")
	}
	msg := copyMessage(m)
	var pressed *Button
	for _, b := range msg.Buttons() {
		if b.ActionID == actionID {
			pressed = &b
			break
		}
	}
	if pressed == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("slackfake: message %s has no button %q", ts, actionID)
	}
	action := map[string]any{"type": "button", "block_id": pressed.BlockID, "action_id": pressed.ActionID,
		"text":  map[string]any{"type": "plain_text", "text": pressed.Text, "emoji": true},
		"value": pressed.Value}
	if pressed.Style != "" {
		action["style"] = pressed.Style
	}
	return s.interact(channel, user, msg, action), nil
}

// PressFeedback clicks the thumbs up (positive) or down of the bot's message
// ts in channel, as user: the block_actions payload of a feedback_buttons
// element carries the button's value. It fails when the message has no
// feedback buttons.
func (s *Server) PressFeedback(channel, ts, user string, positive bool) (string, error) {
	s.mu.Lock()
	m := s.message(channel, ts)
	if m == nil || m.BotID != s.opt.BotID {
		s.mu.Unlock()
		return "", fmt.Errorf("slackfake: no message of the app %s in %s", ts, channel)
	}
	msg := copyMessage(m)
	fb := msg.Feedback()
	if len(fb) == 0 {
		s.mu.Unlock()
		return "", fmt.Errorf("slackfake: message %s has no feedback buttons", ts)
	}
	text, value := fb[0].NegativeText, fb[0].NegativeValue
	if positive {
		text, value = fb[0].PositiveText, fb[0].PositiveValue
	}
	action := map[string]any{"type": "feedback_buttons", "block_id": fb[0].BlockID, "action_id": fb[0].ActionID,
		"text": map[string]any{"type": "plain_text", "text": text, "emoji": true}, "value": value}
	return s.interact(channel, user, msg, action), nil
}

// interact delivers the block_actions payload of action on msg by user and
// returns its trigger id; the caller holds s.mu, which it releases.
func (s *Server) interact(channel, user string, msg Message, action map[string]any) string {
	ts := msg.TS
	trigger := fmt.Sprintf("%d.%s.fake", time.Now().Unix(), s.nextID(""))
	action["action_ts"] = s.nextTS()
	name := strings.ToLower(s.users[user])
	container := map[string]any{"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false}
	if msg.ThreadTS != "" {
		container["thread_ts"] = msg.ThreadTS
	}
	message := messageJSON(&msg)
	message["team"], message["app_id"] = s.opt.TeamID, s.opt.AppID
	channelName := strings.ToLower(channel)
	if channelType(channel) == "im" {
		channelName = "directmessage"
	}
	d := &delivery{envelope: s.nextID("env-"), eventID: trigger, kind: kindInteractive, payload: map[string]any{
		"type": "block_actions", "token": "fake-verification-token", "api_app_id": s.opt.AppID,
		"user":       map[string]any{"id": user, "username": name, "name": name, "team_id": s.opt.TeamID},
		"team":       map[string]any{"id": s.opt.TeamID, "domain": "fake"},
		"enterprise": nil, "is_enterprise_install": false,
		"container": container, "trigger_id": trigger,
		"channel":      map[string]any{"id": channel, "name": channelName},
		"message":      message,
		"state":        map[string]any{"values": map[string]any{}},
		"response_url": s.URL + "/actions/" + s.opt.AppID + "/" + trigger,
		"actions":      []any{action},
	}}
	s.events[trigger] = d
	s.deliveries = append(s.deliveries, d)
	s.mu.Unlock()
	s.start(d, 0)
	return trigger
}
