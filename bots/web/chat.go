package web

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/chatbot-dev/chatbot/conversation"
)

// routes is the page's handler: security headers on every answer, cross-origin
// POSTs refused, and the sub-path taken off.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /link/{token}", s.linkPage)
	mux.HandleFunc("POST /link", s.linkLogin)
	mux.HandleFunc("GET /static/{name}", s.assets.serve)
	mux.HandleFunc("POST /send", s.api(s.send))
	mux.HandleFunc("GET /c/{id}", s.conv(s.conversationPage))
	mux.HandleFunc("GET /c/{id}/older", s.conv(s.older))
	mux.HandleFunc("GET /c/{id}/events", s.conv(s.events))
	mux.HandleFunc("GET /c/{id}/file/{sha}", s.conv(s.file))
	mux.HandleFunc("GET /c/{id}/export", s.conv(s.export))
	mux.HandleFunc("POST /c/{id}/stop", s.conv(s.stop))
	mux.HandleFunc("POST /c/{id}/regenerate", s.conv(s.regenerate))
	mux.HandleFunc("POST /c/{id}/edit", s.conv(s.edit))
	mux.HandleFunc("POST /c/{id}/rename", s.conv(s.rename))
	mux.HandleFunc("POST /c/{id}/delete", s.conv(s.deleteConversation))
	mux.HandleFunc("/", s.notFound)
	cop := http.NewCrossOriginProtection()
	if err := cop.AddTrustedOrigin(s.origin); err != nil {
		s.log.Warn("web: trusted origin", "origin", s.origin, "err", err)
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.Warn("web: cross-origin request refused", "path", r.URL.Path, "origin", r.Header.Get("Origin"))
		http.Error(w, "Cross-origin request refused.", http.StatusForbidden)
	}))
	return s.headers(cop.Handler(s.stripBase(mux)))
}

// notFound answers a path the page does not have: 404 for a logged-in user;
// without a session, as every other request of the page, a redirect to the
// login form (GET) or 401.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.user(w, r) != "":
		http.Error(w, "Not found.", http.StatusNotFound)
	case r.Method == http.MethodGet && !wantsJSON(r):
		http.Redirect(w, r, s.base+"/", http.StatusSeeOther)
	default:
		writeJSON(w, http.StatusUnauthorized, errText("Please log in again."))
	}
}

// stripBase serves the page at its sub-path: it takes the sub-path off the
// request's path, and serves a path without it as it is (a proxy may have
// taken it off already).
func (s *Server) stripBase(h http.Handler) http.Handler {
	if s.base == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == s.base {
			http.Redirect(w, r, s.base+"/", http.StatusMovedPermanently)
			return
		}
		if rest, ok := strings.CutPrefix(r.URL.Path, s.base+"/"); ok {
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/" + rest
			r2.URL.RawPath = ""
			h.ServeHTTP(w, r2)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// csp allows the page's own scripts, styles and pictures only, no inline
// script or style, no framing, and DOM writes only through the page's
// Trusted Types policy.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types chatbot"

// headers sets the security headers of every answer.
func (s *Server) headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if s.secure {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		h.ServeHTTP(w, r)
	})
}

// api runs fn for a logged-in user; others get 401.
func (s *Server) api(fn func(w http.ResponseWriter, r *http.Request, user string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user := s.user(w, r)
		if user == "" {
			writeJSON(w, http.StatusUnauthorized, errText("Please log in again."))
			return
		}
		fn(w, r, user)
	}
}

// convRef is one of the user's conversations.
type convRef struct {
	ID    string
	Chat  conversation.ChatID
	Title string
}

// conv runs fn for a logged-in user's conversation {id}. Pages redirect
// others to the login page; other requests get 401, and a conversation that
// is not the user's 404.
func (s *Server) conv(fn func(w http.ResponseWriter, r *http.Request, user string, c convRef)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user := s.user(w, r)
		if user == "" {
			if r.Method == http.MethodGet && !wantsJSON(r) && r.Header.Get("Accept") != "text/event-stream" {
				http.Redirect(w, r, s.base+"/", http.StatusSeeOther)
				return
			}
			writeJSON(w, http.StatusUnauthorized, errText("Please log in again."))
			return
		}
		id := r.PathValue("id")
		chat, title, err := s.store.WebConversation(r.Context(), user, id)
		if err != nil {
			s.serverError(w, r, "read conversation", err)
			return
		}
		if chat == "" {
			if r.Method == http.MethodGet && !wantsJSON(r) {
				http.Redirect(w, r, s.base+"/", http.StatusSeeOther)
				return
			}
			writeJSON(w, http.StatusNotFound, errText("There is no such conversation."))
			return
		}
		fn(w, r, user, convRef{ID: id, Chat: chat, Title: title})
	}
}

// wantsJSON reports whether the request comes from the page's script.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// home is the login form, or, logged in, a new chat.
func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	user := s.user(w, r)
	if user == "" {
		s.loginPage(w, r, http.StatusOK, "")
		return
	}
	s.chatPage(w, r, user, nil)
}

// conversationPage shows a conversation.
func (s *Server) conversationPage(w http.ResponseWriter, r *http.Request, user string, c convRef) {
	s.chatPage(w, r, user, &c)
}

// sendAnswer is what /send answers: the conversation the message went to and
// its turn, or a command's answer.
type sendAnswer struct {
	Conversation string   `json:"conversation,omitempty"`
	Title        string   `json:"title,omitempty"`
	Turn         int64    `json:"turn,omitempty"`
	Command      bool     `json:"command,omitempty"`
	HTML         string   `json:"html,omitempty"`
	Choices      []choice `json:"choices,omitempty"`
	Reload       bool     `json:"reload,omitempty"`
}

type choice struct {
	Label   string `json:"label"`
	Command string `json:"command"`
	Current bool   `json:"current,omitempty"`
}

// send takes a message (text and files) from the page. A command is answered
// at once; a message starts a turn, whose reply the page follows on the
// conversation's event stream. Without a conversation id it starts a new
// conversation, titled from the message.
func (s *Server) send(w http.ResponseWriter, r *http.Request, user string) {
	text, files, ok := s.readMessage(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	id := r.FormValue("conversation")
	var c convRef
	if id != "" {
		chat, title, err := s.store.WebConversation(ctx, user, id)
		if err != nil {
			s.serverError(w, r, "read conversation", err)
			return
		}
		if chat == "" {
			writeJSON(w, http.StatusNotFound, errText("There is no such conversation."))
			return
		}
		c = convRef{ID: id, Chat: chat, Title: title}
	}
	if isCommand(text) && len(files) == 0 {
		chat := c.Chat
		if chat == "" {
			chat = chatOf(user, "new") // a command before the first message: nothing to keep
		}
		s.command(w, r, user, chat, text)
		return
	}
	if c.ID == "" {
		c.ID = randomID(10)
		c.Chat, c.Title = chatOf(user, c.ID), titleOf(text, files)
		if err := s.store.PutWebConversation(ctx, user, c.ID, c.Chat, c.Title, time.Now()); err != nil {
			s.serverError(w, r, "create conversation", err)
			return
		}
		s.applyPicks(ctx, user, c.Chat, r.FormValue("model"), r.FormValue("persona"))
	}
	turn, err := s.startTurn(ctx, user, c, text, files, false)
	if err != nil {
		s.turnError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sendAnswer{Conversation: c.ID, Title: c.Title, Turn: turn})
}

// cleanText is a message's text with plain line breaks, without blank lines
// before it and spaces after it.
func cleanText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.TrimLeft(strings.TrimRight(s, " \t\n"), "\n")
}

// fileType is an upload's media type: as the browser sent it, else from its
// name, else from its first bytes.
func fileType(name, sent string, data []byte) string {
	if sent != "" && sent != "application/octet-stream" {
		return sent
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return http.DetectContentType(data)
}

// isCommand reports whether text is an engine command answered at once (every
// one but /image, which is a turn).
func isCommand(text string) bool {
	_, image := imagePrompt(text)
	return conversation.IsCommand(text) && !image
}

// imagePrompt returns the prompt of an /image command, as the engine reads it.
func imagePrompt(text string) (string, bool) {
	t := strings.TrimSpace(text)
	word, rest, _ := strings.Cut(t, " ")
	if w, r, found := strings.Cut(word, "\n"); found {
		word, rest = w, r+" "+rest
	}
	word, _, _ = strings.Cut(word, "@")
	if !strings.EqualFold(word, "/"+conversation.CommandImage) {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// readMessage reads the message and its files from a multipart form, bounding
// each file to MaxFileBytes. On false it has answered.
func (s *Server) readMessage(w http.ResponseWriter, r *http.Request) (string, []conversation.Attachment, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, int64(maxFiles*s.opt.MaxFileBytes+1<<20))
	err := r.ParseMultipartForm(8 << 20)
	if errors.Is(err, http.ErrNotMultipart) {
		err = r.ParseForm()
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeJSON(w, http.StatusRequestEntityTooLarge, errText("That is too much at once: send at most %d files of up to %s each.", maxFiles, byteSize(s.opt.MaxFileBytes)))
		return "", nil, false
	case err != nil:
		writeJSON(w, http.StatusBadRequest, errText("The message could not be read. Please try again."))
		return "", nil, false
	}
	text := cleanText(r.FormValue("message"))
	var files []conversation.Attachment
	if r.MultipartForm != nil {
		heads := r.MultipartForm.File["files"]
		if len(heads) > maxFiles {
			writeJSON(w, http.StatusRequestEntityTooLarge, errText("Send at most %d files at once.", maxFiles))
			return "", nil, false
		}
		for _, fh := range heads {
			if fh.Size > int64(s.opt.MaxFileBytes) {
				writeJSON(w, http.StatusRequestEntityTooLarge, errText("The file %s is too large (%s); the limit is %s.", fh.Filename, byteSize(int(fh.Size)), byteSize(s.opt.MaxFileBytes)))
				return "", nil, false
			}
			f, err := fh.Open()
			if err != nil {
				s.serverError(w, r, "open upload", err)
				return "", nil, false
			}
			data, err := io.ReadAll(io.LimitReader(f, int64(s.opt.MaxFileBytes)+1))
			f.Close()
			if err != nil {
				s.serverError(w, r, "read upload", err)
				return "", nil, false
			}
			files = append(files, conversation.NewAttachment(fh.Filename, fileType(fh.Filename, fh.Header.Get("Content-Type"), data), data))
		}
	}
	if strings.TrimSpace(text) == "" && len(files) == 0 {
		writeJSON(w, http.StatusBadRequest, errText("Write a message or attach a file."))
		return "", nil, false
	}
	return text, files, true
}

// startTurn starts a turn of user in c with text and files; redo drops the
// last turn first (regenerate, edit), whose files come again unless files
// are given. It returns the turn's number.
func (s *Server) startTurn(ctx context.Context, user string, c convRef, text string, files []conversation.Attachment, redo bool) (int64, error) {
	started := time.Now()
	l, turn, err := s.hub.begin(ctx, c.Chat, started, func() (turnSpec, error) {
		if redo {
			last, found, err := s.store.DropLastTurn(ctx, c.Chat)
			if err != nil {
				return turnSpec{}, err
			}
			if !found {
				return turnSpec{}, errNothingToRedo
			}
			if text == "" {
				text = userText(last)
			}
			if files == nil {
				files = s.storedFiles(ctx, c.Chat, last.Attachments)
			}
		}
		spec := turnSpec{redo: redo, fileBase: s.base + "/c/" + c.ID + "/file/", user: userView{Text: text}}
		for _, f := range files {
			if spec.files == nil {
				spec.files = make(map[string]file)
			}
			spec.files[f.SHA256] = file{mime: f.MIME, data: f.Data}
			spec.user.Files = append(spec.user.Files, fileView{Name: f.Name, SHA: f.SHA256, Image: f.Kind == conversation.AttachImage})
		}
		return spec, nil
	})
	if err != nil {
		return 0, err
	}
	if err := s.store.PutWebConversation(ctx, user, c.ID, c.Chat, "", started); err != nil {
		s.log.Warn("web: touch conversation", "err", err)
	}
	rep := turnReply{l: l, turn: turn}
	if prompt, ok := imagePrompt(text); ok {
		rep.keep = func(ctx context.Context, img conversation.Attachment) error {
			return s.store.PutWebImage(ctx, c.Chat, prompt, img.SHA256, img.Data)
		}
	}
	req := conversation.Request{
		Chat: c.Chat, UserID: user, Text: text, Files: files, Private: true,
		Reply: rep, UpdateEvery: s.opt.UpdateEvery,
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// The turn belongs to the server, not to the request: it goes on when
		// the browser leaves. Only Stop (or the engine's shutdown) ends it.
		err := s.engine.Handle(context.Background(), req)
		l.handledTurn(turn, time.Now())
		if err != nil && !errors.Is(err, conversation.ErrClosed) {
			s.log.Warn("web: handle message", "chat", string(c.Chat), "err", err)
		}
	}()
	return turn, nil
}

var errNothingToRedo = errors.New("no question to answer again")

// turnError answers a turn that could not start.
func (s *Server) turnError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errBusy):
		writeJSON(w, http.StatusConflict, errText("Still answering your previous message. Wait for it, or press Stop."))
	case errors.Is(err, errNothingToRedo):
		writeJSON(w, http.StatusConflict, errText("There is no question to answer again here."))
	case errors.Is(err, context.Canceled):
	default:
		s.serverError(w, r, "start turn", err)
	}
}

// storedFiles loads the kept bytes of a stored message's attachments.
func (s *Server) storedFiles(ctx context.Context, chat conversation.ChatID, atts []conversation.Attachment) []conversation.Attachment {
	var files []conversation.Attachment
	for _, a := range atts {
		data, err := s.store.Blob(ctx, chat, a.SHA256)
		if err != nil || data == nil {
			continue
		}
		files = append(files, conversation.NewAttachment(a.Name, a.MIME, data))
	}
	return files
}

// applyPicks sets a new conversation's model and persona, picked before its
// first message.
func (s *Server) applyPicks(ctx context.Context, user string, chat conversation.ChatID, model, persona string) {
	var cmds []string
	if model != "" && len(s.opt.Models) > 0 && model != s.opt.Models[0] {
		cmds = append(cmds, "/model "+model)
	}
	if persona != "" && persona != "off" {
		cmds = append(cmds, "/persona "+persona)
	}
	for _, cmd := range cmds {
		if _, err := s.runCommand(ctx, user, chat, cmd); err != nil {
			s.log.Warn("web: apply pick", "command", cmd, "err", err)
		}
	}
}

// command answers a command from the page at once.
func (s *Server) command(w http.ResponseWriter, r *http.Request, user string, chat conversation.ChatID, text string) {
	rep, err := s.runCommand(r.Context(), user, chat, text)
	if err != nil && !errors.Is(err, conversation.ErrClosed) {
		s.log.Warn("web: command", "chat", string(chat), "err", err)
	}
	ans := sendAnswer{Command: true, HTML: s.md.html(rep.text)}
	for _, c := range rep.choices {
		ans.Choices = append(ans.Choices, choice{Label: c.Label, Command: c.Command, Current: c.Current})
	}
	word, _, _ := strings.Cut(strings.TrimSpace(strings.ToLower(text)), " ")
	ans.Reload = word == "/"+conversation.CommandReset
	writeJSON(w, http.StatusOK, ans)
}

// runCommand runs a command in chat and returns its answer.
func (s *Server) runCommand(ctx context.Context, user string, chat conversation.ChatID, text string) (*captureReply, error) {
	rep := &captureReply{}
	err := s.engine.Handle(context.WithoutCancel(ctx), conversation.Request{
		Chat: chat, UserID: user, Text: text, Private: true, Reply: rep, UpdateEvery: s.opt.UpdateEvery,
	})
	return rep, err
}

// captureReply keeps a command's answer and its choices.
type captureReply struct {
	mu      sync.Mutex
	text    string
	choices []conversation.Choice
}

var _ conversation.ChoiceReply = (*captureReply)(nil)

func (c *captureReply) Update(_ context.Context, text string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.text = text
	return nil
}

func (c *captureReply) Finish(ctx context.Context, text string) error { return c.Update(ctx, text) }

func (c *captureReply) FinishChoices(_ context.Context, text string, choices []conversation.Choice) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.text, c.choices = text, choices
	return nil
}

// stop stops the reply being written.
func (s *Server) stop(w http.ResponseWriter, r *http.Request, user string, c convRef) {
	if _, err := s.runCommand(r.Context(), user, c.Chat, "/"+conversation.CommandStop); err != nil {
		s.log.Warn("web: stop", "chat", string(c.Chat), "err", err)
	}
	w.WriteHeader(http.StatusNoContent)
}

// regenerate answers the last question again, in place of the last answer.
func (s *Server) regenerate(w http.ResponseWriter, r *http.Request, user string, c convRef) {
	turn, err := s.startTurn(r.Context(), user, c, "", nil, true)
	if err != nil {
		s.turnError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sendAnswer{Conversation: c.ID, Turn: turn})
}

// edit replaces the last question with a new text (its files stay) and
// answers it.
func (s *Server) edit(w http.ResponseWriter, r *http.Request, user string, c convRef) {
	text := cleanText(r.PostFormValue("message"))
	if strings.TrimSpace(text) == "" {
		writeJSON(w, http.StatusBadRequest, errText("Write the question to send."))
		return
	}
	turn, err := s.startTurn(r.Context(), user, c, text, nil, true)
	if err != nil {
		s.turnError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sendAnswer{Conversation: c.ID, Turn: turn})
}

// rename gives a conversation a new title.
func (s *Server) rename(w http.ResponseWriter, r *http.Request, user string, c convRef) {
	title := cleanTitle(r.PostFormValue("title"))
	if title == "" {
		writeJSON(w, http.StatusBadRequest, errText("The title is empty."))
		return
	}
	if err := s.store.PutWebConversation(r.Context(), user, c.ID, c.Chat, title, time.Time{}); err != nil {
		s.serverError(w, r, "rename conversation", err)
		return
	}
	writeJSON(w, http.StatusOK, sendAnswer{Conversation: c.ID, Title: title})
}

// deleteConversation removes a conversation from the list and forgets a web
// conversation's history. A platform chat's history stays: it is the
// platform chat's (/reset there forgets it).
func (s *Server) deleteConversation(w http.ResponseWriter, r *http.Request, user string, c convRef) {
	if strings.HasPrefix(string(c.Chat), "web:") {
		s.runCommand(r.Context(), user, c.Chat, "/"+conversation.CommandStop)
		if err := errors.Join(s.store.Reset(r.Context(), c.Chat), s.store.DeleteWebImages(r.Context(), c.Chat)); err != nil {
			s.serverError(w, r, "reset conversation", err)
			return
		}
	}
	if err := s.store.DeleteWebConversation(r.Context(), user, c.ID); err != nil {
		s.serverError(w, r, "delete conversation", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// turnEvent is one event of a conversation's stream: the turn's reply from
// block From on (the page keeps the blocks before), and the user's message
// when the page may not have it.
type turnEvent struct {
	Turn   int64     `json:"turn"`
	Redo   bool      `json:"redo,omitempty"`
	User   *userView `json:"user,omitempty"`
	From   int       `json:"from"`
	Blocks []string  `json:"blocks"`
	Done   bool      `json:"done"`
}

// pingEvery keeps idle streams open through proxies.
const pingEvery = 25 * time.Second

// events streams a conversation's replies as server-sent events. Each event's
// id is "turn.version"; a page that reconnects with Last-Event-ID (or ?last=
// on its first connection) gets only what changed since, else the whole reply
// so far.
func (s *Server) events(w http.ResponseWriter, r *http.Request, user string, c convRef) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "Streaming is not supported.", http.StatusInternalServerError)
		return
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last")
	}
	sentTurn, sentVersion := parseEventID(last)
	var sent []string // the blocks this stream sent, once it sent the whole reply
	whole := false

	l := s.hub.watch(c.Chat)
	defer s.hub.unwatch(l)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "retry: 1500\n\n")
	flusher.Flush()
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		st, changed := l.state()
		if st.turn != 0 && (st.turn != sentTurn || st.version != sentVersion) {
			ev := turnEvent{Turn: st.turn, Redo: st.redo, Done: st.done}
			if st.turn == sentTurn && whole {
				ev.From = firstDiff(sent, st.blocks)
			} else {
				ev.User = &st.user
			}
			ev.Blocks = st.blocks[ev.From:]
			if ev.Blocks == nil {
				ev.Blocks = []string{}
			}
			data, _ := json.Marshal(ev)
			if _, err := fmt.Fprintf(w, "id: %d.%d\nevent: turn\ndata: %s\n\n", st.turn, st.version, data); err != nil {
				return
			}
			flusher.Flush()
			sentTurn, sentVersion, sent, whole = st.turn, st.version, st.blocks, true
		}
		select {
		case <-changed:
		case <-ping.C:
			if _, err := io.WriteString(w, ": ping\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// firstDiff is the index of the first block that differs between a and b.
func firstDiff(a, b []string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

func parseEventID(id string) (turn int64, version int) {
	t, v, ok := strings.Cut(id, ".")
	if !ok {
		return 0, 0
	}
	turn, err1 := strconv.ParseInt(t, 10, 64)
	version, err2 := strconv.Atoi(v)
	if err1 != nil || err2 != nil {
		return 0, 0
	}
	return turn, version
}

// file serves an attachment of the conversation: a picture as itself, any
// other file as a download.
func (s *Server) file(w http.ResponseWriter, r *http.Request, user string, c convRef) {
	sha := r.PathValue("sha")
	if _, err := hex.DecodeString(sha); err != nil || len(sha) != 64 {
		http.Error(w, "Not found.", http.StatusNotFound)
		return
	}
	data, err := s.store.Blob(r.Context(), c.Chat, sha)
	if err != nil {
		s.serverError(w, r, "read file", err)
		return
	}
	if data == nil {
		if data, err = s.store.WebImage(r.Context(), c.Chat, sha); err != nil {
			s.serverError(w, r, "read picture", err)
			return
		}
	}
	if data == nil {
		if l := s.hub.get(c.Chat, false); l != nil {
			if f, ok := l.file(sha); ok {
				data = f.data
			}
		}
	}
	if data == nil {
		http.Error(w, "Not found.", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private, max-age=604800, immutable")
	switch mime := http.DetectContentType(data); mime {
	case "image/png", "image/jpeg", "image/gif", "image/webp":
		h.Set("Content-Type", mime)
	default:
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", "attachment")
	}
	w.Write(data)
}

// export downloads the conversation as Markdown.
func (s *Server) export(w http.ResponseWriter, r *http.Request, user string, c convRef) {
	var all []conversation.Message
	for before := uint64(0); ; {
		msgs, first, err := s.store.HistoryPage(r.Context(), c.Chat, before, 500)
		if err != nil {
			s.serverError(w, r, "read history", err)
			return
		}
		all = append(msgs, all...)
		if len(msgs) < 500 || first <= 1 {
			break
		}
		before = first
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", c.Title)
	for _, m := range all {
		who := "**You**"
		if m.Role == conversation.RoleAssistant {
			who = "**Assistant**"
		}
		fmt.Fprintf(&b, "%s (%s):\n\n%s\n\n", who, m.Time.UTC().Format("2006-01-02 15:04 UTC"), strings.TrimSpace(userText(m)))
		for _, a := range m.Attachments {
			fmt.Fprintf(&b, "_(attached: %s)_\n\n", a.Name)
		}
		b.WriteString("---\n\n")
	}
	h := w.Header()
	h.Set("Content-Type", "text/markdown; charset=utf-8")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fileName(c.Title)+".md"))
	h.Set("Cache-Control", "no-store")
	io.WriteString(w, b.String())
}

// fileName makes a safe file name of a title.
func fileName(title string) string {
	var b strings.Builder
	for _, r := range title {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ' && b.Len() > 0:
			b.WriteRune('-')
		}
		if b.Len() >= 60 {
			break
		}
	}
	if b.Len() == 0 {
		return "conversation"
	}
	return strings.TrimRight(b.String(), "-")
}

// titleOf makes a conversation's title from its first message.
func titleOf(text string, files []conversation.Attachment) string {
	if t := cleanTitle(text); t != "" {
		return t
	}
	if len(files) > 0 {
		return files[0].Name
	}
	return "New chat"
}

// cleanTitle is the first line of text, at most 60 characters.
func cleanTitle(text string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(text), "\n")
	line = strings.TrimSpace(line)
	if utf8.RuneCountInString(line) > 60 {
		r := []rune(line)
		line = strings.TrimSpace(string(r[:59])) + "…"
	}
	return line
}

// noCaption starts the text the engine gives a file sent without one.
const noCaption = "(No text came with this file:"

// userText is a message's text as the page shows it: without the note the
// engine puts in for a file sent without text.
func userText(m conversation.Message) string {
	if m.Role == conversation.RoleUser && len(m.Attachments) > 0 && strings.HasPrefix(m.Content, noCaption) {
		return ""
	}
	return m.Content
}

// byteSize writes n bytes for people.
func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
