package slackfake

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Slack's documented limits.
const (
	maxTextChars          = 40000 // text of a message
	maxSectionChars       = 3000  // text of a section block
	maxMarkdownBlockChars = 12000 // all markdown blocks of a message, together
	maxStreamChars        = 12000 // markdown_text of one stream call
)

// response is a Web API answer.
type response struct {
	status     int
	retryAfter int // seconds, for 429
	body       map[string]any
}

func ok(fields map[string]any) response {
	body := map[string]any{"ok": true}
	for k, v := range fields {
		body[k] = v
	}
	return response{status: http.StatusOK, body: body}
}

func fail(code string) response {
	return response{status: http.StatusOK, body: map[string]any{"ok": false, "error": code}}
}

// serveAPI answers POST /api/{method}, taking arguments as a form or JSON and the
// token as a Bearer header or the token argument, as Slack does.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	p, token, err := params(r)
	s.mu.Lock()
	s.calls[method]++
	s.mu.Unlock()
	if f := s.faultFor(method, p); f != nil {
		writeFault(w, f)
		return
	}
	var res response
	switch h, known := s.handlers()[method]; {
	case err != nil:
		res = fail("invalid_form_data")
	case !known:
		res = fail("unknown_method")
	default:
		if code := s.checkToken(method, token); code != "" {
			res = fail(code)
		} else if limited := s.limit(method, p.Get("channel")+p.Get("channel_id")); limited != nil {
			res = *limited
		} else {
			res = h(p)
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if res.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(res.retryAfter))
	}
	w.WriteHeader(res.status)
	_ = json.NewEncoder(w).Encode(res.body)
}

// params reads a request's arguments and token.
func params(r *http.Request) (url.Values, string, error) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return nil, "", err
	}
	p := url.Values{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case ct == "application/json" && len(strings.TrimSpace(string(body))) > 0:
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, "", err
		}
		for k, v := range m {
			if str, ok := v.(string); ok {
				p.Set(k, str)
			} else {
				b, _ := json.Marshal(v)
				p.Set(k, string(b))
			}
		}
	case ct != "application/json":
		if p, err = url.ParseQuery(string(body)); err != nil {
			return nil, "", err
		}
	}
	for k, v := range r.URL.Query() {
		p[k] = v
	}
	if t := p.Get("token"); t != "" && token == "" {
		token = t
	}
	return p, token, nil
}

// checkToken returns Slack's error for a missing or wrong token, or "".
func (s *Server) checkToken(method, token string) string {
	want := s.opt.BotToken
	if method == "apps.connections.open" {
		want = s.opt.AppToken
	}
	switch {
	case token == "":
		return "not_authed"
	case token == want:
		return ""
	case token == s.opt.BotToken || token == s.opt.AppToken:
		return "not_allowed_token_type"
	default:
		return "invalid_auth"
	}
}

func (s *Server) handlers() map[string]func(url.Values) response {
	return map[string]func(url.Values) response{
		"auth.test":                             s.authTest,
		"apps.connections.open":                 s.connectionsOpen,
		"chat.postMessage":                      s.postMessage,
		"chat.update":                           s.update,
		"chat.postEphemeral":                    s.postEphemeral,
		"chat.startStream":                      s.startStream,
		"chat.appendStream":                     s.appendStream,
		"chat.stopStream":                       s.stopStream,
		"assistant.threads.setStatus":           s.setStatus,
		"assistant.threads.setSuggestedPrompts": s.setSuggestedPrompts,
		"assistant.threads.setTitle":            s.setTitle,
		"agents.sessions.setStatus":             s.setSessionStatus,
		"users.info":                            s.usersInfo,
		"chat.delete":                           s.deleteMessage,
		"files.info":                            s.filesInfo,
		"files.getUploadURLExternal":            s.getUploadURLExternal,
		"files.completeUploadExternal":          s.completeUploadExternal,
	}
}

func (s *Server) authTest(url.Values) response {
	return ok(map[string]any{"url": "https://fake.slack.com/", "team": "Fake Workspace",
		"user": s.opt.BotName, "team_id": s.opt.TeamID, "user_id": s.opt.BotUserID,
		"bot_id": s.opt.BotID, "is_enterprise_install": false})
}

func (s *Server) usersInfo(p url.Values) response {
	s.mu.Lock()
	name, found := s.users[p.Get("user")]
	s.mu.Unlock()
	if !found {
		return fail("user_not_found")
	}
	id := p.Get("user")
	return ok(map[string]any{"user": map[string]any{
		"id": id, "team_id": s.opt.TeamID, "name": strings.ToLower(name), "real_name": name,
		"profile": map[string]any{"display_name": name, "real_name": name}}})
}

// checkText validates a message's text and blocks as Slack does.
func checkText(p url.Values) string {
	text, blocks := p.Get("text"), p.Get("blocks")
	if strings.TrimSpace(text) == "" && noBlocks(blocks) {
		return "no_text"
	}
	if utf8.RuneCountInString(text) > maxTextChars {
		return "msg_too_long"
	}
	if blocks == "" {
		return ""
	}
	return checkBlocks(blocks)
}

// setBlocks applies a call's blocks argument to m: blocks replace the message's
// ones, "[]" removes them, and without the argument they are kept, as
// chat.update does. The caller holds s.mu.
func setBlocks(m *Message, p url.Values) {
	if !p.Has("blocks") {
		return
	}
	if raw := p.Get("blocks"); noBlocks(raw) {
		m.Blocks = ""
	} else {
		m.Blocks = withBlockIDs(raw)
	}
}

// withBlockIDs gives every block without a block_id one, as Slack does.
func withBlockIDs(raw string) string {
	var bs []map[string]any
	if json.Unmarshal([]byte(raw), &bs) != nil {
		return raw
	}
	for i, b := range bs {
		if id, _ := b["block_id"].(string); id == "" {
			b["block_id"] = fmt.Sprintf("g%d%s", i, strconv.FormatInt(time.Now().UnixNano()%1e6, 36))
		}
	}
	out, err := json.Marshal(bs)
	if err != nil {
		return raw
	}
	return string(out)
}

// botMessage adds a message by the bot to channel; the caller holds s.mu.
func (s *Server) botMessage(channel, thread, text string) *Message {
	ts := s.nextTS()
	m := &Message{Channel: channel, TS: ts, ThreadTS: thread, User: s.opt.BotUserID,
		BotID: s.opt.BotID, Text: text, History: []string{text}, At: []time.Time{time.Now()}}
	s.channels[channel] = append(s.channels[channel], m)
	s.clearStatus(channel, thread)
	return m
}

// setText records a new text of m; the caller holds s.mu.
func setText(m *Message, text string) {
	m.Text = text
	m.History = append(m.History, text)
	m.At = append(m.At, time.Now())
}

func (s *Server) postMessage(p url.Values) response {
	channel := p.Get("channel")
	s.mu.Lock()
	_, known := s.channels[channel]
	s.mu.Unlock()
	if !known {
		return fail("channel_not_found")
	}
	if code := checkText(p); code != "" {
		return fail(code)
	}
	s.mu.Lock()
	bm := s.botMessage(channel, p.Get("thread_ts"), p.Get("text"))
	setBlocks(bm, p)
	m := copyMessage(bm)
	s.mu.Unlock()
	s.echo(m, "")
	return ok(map[string]any{"channel": channel, "ts": m.TS, "message": messageJSON(&m)})
}

func (s *Server) update(p url.Values) response {
	if wait, limited := s.takeUpdate(); limited {
		return response{status: http.StatusTooManyRequests, retryAfter: wait,
			body: map[string]any{"ok": false, "error": "ratelimited"}}
	}
	channel, ts, text := p.Get("channel"), p.Get("ts"), p.Get("text")
	s.mu.Lock()
	_, known := s.channels[channel]
	m := s.message(channel, ts)
	var code string
	switch {
	case !known:
		code = "channel_not_found"
	case m == nil:
		code = "message_not_found"
	case m.BotID != s.opt.BotID || m.Streaming:
		code = "cant_update_message"
	default:
		code = checkText(p)
	}
	var prev string
	var now Message
	if code == "" {
		prev = m.Text
		setBlocks(m, p)
		setText(m, text)
		now = copyMessage(m)
	}
	s.mu.Unlock()
	if code != "" {
		return fail(code)
	}
	s.echo(now, prev)
	return ok(map[string]any{"channel": channel, "ts": ts, "text": text,
		"message": messageJSON(&now)})
}

// deleteMessage is chat.delete: a bot deletes its own messages.
func (s *Server) deleteMessage(p url.Values) response {
	channel, ts := p.Get("channel"), p.Get("ts")
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs, known := s.channels[channel]
	if !known {
		return fail("channel_not_found")
	}
	for i, m := range msgs {
		if m.TS != ts {
			continue
		}
		if m.BotID != s.opt.BotID {
			return fail("cant_delete_message")
		}
		s.channels[channel] = slices.Delete(msgs, i, i+1)
		s.deleted++
		return ok(map[string]any{"channel": channel, "ts": ts})
	}
	return fail("message_not_found")
}

// takeUpdate counts a chat.update against the workspace's window, or returns
// the seconds to wait when the window is full.
func (s *Server) takeUpdate() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for len(s.updates) > 0 && now.Sub(s.updates[0]) >= s.opt.UpdateWindow {
		s.updates = s.updates[1:]
	}
	if len(s.updates) < s.opt.UpdateLimit {
		s.updates = append(s.updates, now)
		return 0, false
	}
	s.limited++
	s.limitedBy["chat.update"]++
	wait := s.updates[0].Add(s.opt.UpdateWindow).Sub(now)
	return max(1, int(math.Ceil(wait.Seconds()))), true
}

func (s *Server) postEphemeral(p url.Values) response {
	channel, user := p.Get("channel"), p.Get("user")
	s.mu.Lock()
	_, known := s.channels[channel]
	s.mu.Unlock()
	switch {
	case !known:
		return fail("channel_not_found")
	case user == "":
		return fail("user_not_found")
	}
	if code := checkText(p); code != "" {
		return fail(code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ephemerals = append(s.ephemerals, Ephemeral{Channel: channel, User: user,
		ThreadTS: p.Get("thread_ts"), Text: p.Get("text")})
	return ok(map[string]any{"message_ts": s.nextTS()})
}

func (s *Server) startStream(p url.Values) response {
	channel, text := p.Get("channel"), p.Get("markdown_text")
	s.mu.Lock()
	_, known := s.channels[channel]
	s.mu.Unlock()
	switch {
	case !known:
		return fail("channel_not_found")
	case channelType(channel) != "im" && (p.Get("recipient_user_id") == "" || p.Get("recipient_team_id") == ""):
		return fail("invalid_arguments") // required when streaming to channels
	case utf8.RuneCountInString(text) > maxStreamChars:
		return fail("msg_too_long")
	}
	s.mu.Lock()
	m := s.botMessage(channel, p.Get("thread_ts"), text)
	m.Streaming, m.Streamed = true, true
	s.mu.Unlock()
	return ok(map[string]any{"channel": channel, "ts": m.TS})
}

func (s *Server) appendStream(p url.Values) response {
	if p.Get("markdown_text") == "" {
		return fail("invalid_arguments")
	}
	return s.streamTo(p, false)
}

func (s *Server) stopStream(p url.Values) response {
	if raw := p.Get("blocks"); raw != "" && !noBlocks(raw) {
		if code := checkBlocks(raw); code != "" {
			return fail(code)
		}
	}
	return s.streamTo(p, true)
}

// streamTo appends markdown_text to a streaming message, and stops the stream.
func (s *Server) streamTo(p url.Values, stop bool) response {
	channel, ts, text := p.Get("channel"), p.Get("ts"), p.Get("markdown_text")
	if utf8.RuneCountInString(text) > maxStreamChars {
		return fail("msg_too_long")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, known := s.channels[channel]; !known {
		return fail("channel_not_found")
	}
	m := s.message(channel, ts)
	switch {
	case m == nil:
		return fail("message_not_found")
	case !m.Streaming:
		return fail("message_not_in_streaming_state")
	}
	if text != "" {
		setText(m, m.Text+text)
	}
	m.Streaming = !stop
	if stop {
		setBlocks(m, p)
		// Stopping the stream takes the thread's agent session out of processing.
		if se := s.sessions[channel+":"+m.ThreadTS]; se != nil && se.Status == "processing" {
			se.Status = "active"
		}
	}
	return ok(map[string]any{"channel": channel, "ts": ts})
}

func (s *Server) setStatus(p url.Values) response {
	channel, thread := p.Get("channel_id"), p.Get("thread_ts")
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, known := s.channels[channel]; !known {
		return fail("channel_not_found")
	}
	if thread == "" || s.message(channel, thread) == nil {
		return fail("invalid_thread_ts")
	}
	s.statuses = append(s.statuses, Status{Channel: channel, ThreadTS: thread, Status: p.Get("status")})
	return ok(nil)
}

// clearStatus clears a thread's status, as a reply by the bot does; the caller
// holds s.mu.
func (s *Server) clearStatus(channel, thread string) {
	for i := len(s.statuses) - 1; i >= 0; i-- {
		st := s.statuses[i]
		if st.Channel == channel && st.ThreadTS == thread {
			if st.Status != "" {
				s.statuses = append(s.statuses, Status{Channel: channel, ThreadTS: thread})
			}
			return
		}
	}
}

// messageJSON is a message as the Web API and events show it.
func messageJSON(m *Message) map[string]any {
	j := map[string]any{"type": "message", "text": m.Text, "user": m.User, "ts": m.TS}
	if m.ThreadTS != "" {
		j["thread_ts"] = m.ThreadTS
	}
	if m.BotID != "" {
		j["bot_id"] = m.BotID
	}
	if m.Blocks != "" {
		var blocks any
		if json.Unmarshal([]byte(m.Blocks), &blocks) == nil {
			j["blocks"] = blocks
		}
	}
	return j
}
