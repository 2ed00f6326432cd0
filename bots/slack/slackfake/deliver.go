package slackfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// delivery is one event or slash command on its way to the app, with its
// attempts.
type delivery struct {
	envelope string // envelope id
	eventID  string // "" for slash commands
	kind     string // events_api, slash_commands or interactive
	payload  map[string]any
	attempts int           // sends so far
	acks     int           // acknowledgements so far
	failed   bool          // all attempts went unacknowledged
	ackc     chan struct{} // closed by the acknowledgement of the current send
}

// Post posts text as user at the top level of channel and delivers the events
// Slack sends for it: message (message.channels, .groups or .im), and
// app_mention when it mentions the bot outside a DM.
func (s *Server) Post(channel, user, text string) UserMessage {
	return s.post(channel, "", user, text)
}

// PostInThread posts text as user in the thread threadTS of channel.
func (s *Server) PostInThread(channel, threadTS, user, text string) UserMessage {
	return s.post(channel, threadTS, user, text)
}

// Seed adds a message by user without delivering any event, as history from
// before the app was installed; it returns the message's ts.
func (s *Server) Seed(channel, user, text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addUserMessage(channel, "", user, text)
}

// addUserMessage adds a user's message; the caller holds s.mu.
func (s *Server) addUserMessage(channel, thread, user, text string) string {
	if _, ok := s.channels[channel]; !ok {
		s.channels[channel] = nil
	}
	ts := s.nextTS()
	s.channels[channel] = append(s.channels[channel], &Message{Channel: channel, TS: ts, ThreadTS: thread,
		User: user, Text: text, History: []string{text}, At: []time.Time{time.Now()}})
	return ts
}

func (s *Server) post(channel, thread, user, text string) UserMessage {
	s.mu.Lock()
	ts := s.addUserMessage(channel, thread, user, text)
	msgID := s.nextID("msg-")
	s.mu.Unlock()
	ev := map[string]any{"type": "message", "client_msg_id": msgID, "text": text, "user": user,
		"ts": ts, "team": s.opt.TeamID, "channel": channel, "event_ts": ts, "channel_type": channelType(channel)}
	if thread != "" {
		ev["thread_ts"] = thread
	}
	um := UserMessage{Channel: channel, TS: ts, ThreadTS: thread}
	um.Events = append(um.Events, s.sendEvent(ev))
	if channelType(channel) != "im" && strings.Contains(text, "<@"+s.opt.BotUserID+">") {
		mention := map[string]any{"type": "app_mention", "text": text, "user": user, "ts": ts,
			"team": s.opt.TeamID, "channel": channel, "event_ts": ts}
		if thread != "" {
			mention["thread_ts"] = thread
		}
		um.Events = append(um.Events, s.sendEvent(mention))
	}
	return um
}

// echo delivers the events Slack sends for the bot's own post or edit (prev is
// the text before an edit, "" for a post).
func (s *Server) echo(m Message, prev string) {
	if s.opt.NoEcho {
		return
	}
	ev := messageJSON(&m)
	ev["channel"], ev["channel_type"], ev["event_ts"], ev["team"] = m.Channel, channelType(m.Channel), m.TS, s.opt.TeamID
	if prev != "" {
		s.mu.Lock()
		ts := s.nextTS()
		s.mu.Unlock()
		old := messageJSON(&m)
		old["text"] = prev
		ev = map[string]any{"type": "message", "subtype": "message_changed", "hidden": true,
			"channel": m.Channel, "channel_type": channelType(m.Channel), "ts": ts, "event_ts": ts,
			"message": messageJSON(&m), "previous_message": old}
	}
	s.sendEvent(ev)
}

// SendEvent delivers any inner event (a message with a subtype, another bot's
// message, …) wrapped as Slack wraps it, and returns its event id.
func (s *Server) SendEvent(inner map[string]any) string {
	return s.sendEvent(inner)
}

// sendEvent wraps an inner event in an event_callback and delivers it; it
// returns the event id.
func (s *Server) sendEvent(inner map[string]any) string {
	s.mu.Lock()
	id := s.nextID("Ev")
	d := &delivery{envelope: s.nextID("env-"), eventID: id, kind: "events_api", payload: map[string]any{
		"token": "fake-verification-token", "team_id": s.opt.TeamID, "api_app_id": s.opt.AppID,
		"event": inner, "type": "event_callback", "event_id": id, "event_time": time.Now().Unix(),
		"authorizations": []any{map[string]any{"team_id": s.opt.TeamID, "user_id": s.opt.BotUserID,
			"is_bot": true, "is_enterprise_install": false}},
		"is_ext_shared_channel": false}}
	s.events[id] = d
	s.deliveries = append(s.deliveries, d)
	s.mu.Unlock()
	s.start(d, 0)
	return id
}

// Slash runs a slash command as user in channel and returns its trigger id.
func (s *Server) Slash(channel, user, command, text string) string {
	s.mu.Lock()
	if _, ok := s.channels[channel]; !ok {
		s.channels[channel] = nil
	}
	trigger := s.nextID("trigger-")
	d := &delivery{envelope: s.nextID("env-"), kind: "slash_commands", payload: map[string]any{
		"token": "fake-verification-token", "team_id": s.opt.TeamID, "team_domain": "fake",
		"channel_id": channel, "channel_name": strings.ToLower(channel), "user_id": user,
		"user_name": strings.ToLower(s.users[user]), "command": command, "text": text,
		"api_app_id": s.opt.AppID, "is_enterprise_install": "false",
		"response_url": s.URL + "/commands/" + trigger, "trigger_id": trigger}}
	s.deliveries = append(s.deliveries, d)
	s.mu.Unlock()
	s.start(d, 0)
	return trigger
}

// Redeliver sends an event again with retry_attempt incremented (X-Slack-Retry-Num
// over the Events API), as Slack does when it did not see the acknowledgement.
// Given a trigger id (Press), it sends the interaction again as it was.
func (s *Server) Redeliver(eventID string) {
	s.mu.Lock()
	d := s.events[eventID]
	var next int
	if d != nil {
		next = d.attempts
	}
	s.mu.Unlock()
	if d != nil {
		s.start(d, next)
	}
}

// Acked reports whether the app acknowledged an event at least once.
func (s *Server) Acked(eventID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.events[eventID]
	return d != nil && d.acks > 0
}

// Failed reports whether Slack gave up on an event or interaction: every attempt
// went unacknowledged (for an interaction, the one attempt; the user saw an
// error in Slack).
func (s *Server) Failed(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.events[id]
	return d != nil && d.failed && d.acks == 0
}

// Sends returns how often an event was sent to the app.
func (s *Server) Sends(eventID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.events[eventID]; d != nil {
		return d.attempts
	}
	return 0
}

// start delivers d in the background, from attempt first on.
func (s *Server) start(d *delivery, first int) {
	select {
	case <-s.done:
		return
	default:
	}
	s.workers.Go(func() { s.run(d, first) })
}

// run sends d until it is acknowledged, MaxRetries times more at most.
func (s *Server) run(d *delivery, first int) {
	reason := ""
	if first > 0 {
		reason = "timeout"
	}
	retries := s.opt.MaxRetries
	if d.kind == kindInteractive {
		retries = 0 // Slack shows the user an error instead
	}
	for attempt := first; attempt <= first+retries; attempt++ {
		if attempt > first {
			if i := attempt - first - 1; i < len(s.opt.RetryDelays) && !s.wait(s.opt.RetryDelays[i]) {
				return
			}
		}
		s.mu.Lock()
		eventsURL, secret := s.eventsURL, s.secret
		s.mu.Unlock()
		var done bool
		if eventsURL != "" {
			done, reason = s.postEvent(eventsURL, secret, d, attempt, reason)
		} else {
			done, reason = s.sendEnvelope(d, attempt, reason)
		}
		if done {
			return
		}
	}
	s.mu.Lock()
	d.failed = true
	s.mu.Unlock()
}

// wait sleeps d, reporting false if the fake closed meanwhile.
func (s *Server) wait(d time.Duration) bool {
	select {
	case <-s.done:
		return false
	case <-time.After(d):
		return true
	}
}

// arm counts a send of d and returns the channel its acknowledgement closes.
func (s *Server) arm(d *delivery) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	d.attempts++
	d.ackc = make(chan struct{})
	return d.ackc
}

// acked records the acknowledgement of an envelope.
func (s *Server) acked(envelope string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.deliveries {
		if d.envelope == envelope {
			d.acks++
			if d.ackc != nil {
				close(d.ackc)
				d.ackc = nil
			}
			return
		}
	}
}

// sendEnvelope sends d over Socket Mode and waits for its acknowledgement. It
// reports whether d was acknowledged, or why not.
func (s *Server) sendEnvelope(d *delivery, attempt int, reason string) (bool, string) {
	c := s.conn()
	if c == nil {
		return true, ""
	}
	ackc := s.arm(d)
	env := map[string]any{"envelope_id": d.envelope, "type": d.kind, "payload": d.payload,
		"accepts_response_payload": d.kind == "slash_commands"}
	if d.kind == "events_api" {
		env["retry_attempt"], env["retry_reason"] = attempt, reason
	}
	if err := c.send(env); err != nil {
		c.close()
		return false, "connection_lost"
	}
	t := time.NewTimer(s.opt.AckTimeout)
	defer t.Stop()
	select {
	case <-ackc:
		return true, ""
	case <-s.done:
		return true, ""
	case <-c.gone:
		return false, "connection_lost"
	case <-t.C:
		return false, "timeout"
	}
}

// postEvent posts d to the Events API URL, signed, and reports whether the app
// answered 2xx within the ack timeout, or why not.
func (s *Server) postEvent(target, secret string, d *delivery, attempt int, reason string) (bool, string) {
	s.arm(d)
	body, ctype := eventBody(d)
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return true, ""
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", Sign(secret, ts, body))
	if attempt > 0 && d.kind != kindInteractive {
		req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(attempt))
		req.Header.Set("X-Slack-Retry-Reason", reason)
	}
	resp, err := (&http.Client{Timeout: s.opt.AckTimeout}).Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false, "http_timeout"
		}
		return false, "connection_failed"
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return false, "http_error"
	}
	s.acked(d.envelope)
	return true, ""
}

// eventBody is d as the Events API posts it: JSON for events, a form for slash
// commands, and a form whose payload field holds the JSON for interactions.
func eventBody(d *delivery) ([]byte, string) {
	switch d.kind {
	case "events_api":
		b, _ := json.Marshal(d.payload)
		return b, "application/json"
	case kindInteractive:
		b, _ := json.Marshal(d.payload)
		return []byte(url.Values{"payload": {string(b)}}.Encode()), "application/x-www-form-urlencoded"
	}
	form := url.Values{}
	for k, v := range d.payload {
		form.Set(k, v.(string))
	}
	return []byte(form.Encode()), "application/x-www-form-urlencoded"
}

// Sign returns Slack's request signature of body: v0= and the hex HMAC-SHA256 of
// "v0:<timestamp>:<body>" keyed with the signing secret.
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + timestamp + ":"))
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifyURL checks a Request URL as Slack does when it is entered: it posts a
// signed url_verification event and reports whether the challenge came back.
func (s *Server) VerifyURL(target, secret string) (bool, error) {
	challenge := "challenge-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	body, _ := json.Marshal(map[string]any{"token": "fake-verification-token",
		"challenge": challenge, "type": "url_verification"})
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", Sign(secret, ts, body))
	resp, err := (&http.Client{Timeout: s.opt.AckTimeout}).Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	var j struct {
		Challenge string `json:"challenge"`
	}
	if json.Unmarshal(got, &j) == nil && j.Challenge == challenge {
		return true, nil
	}
	return resp.StatusCode == http.StatusOK && strings.TrimSpace(string(got)) == challenge, nil
}
