package web

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
)

//go:embed templates/*.html
var templateFS embed.FS

// pages renders the page's templates.
type pages struct {
	t *template.Template
}

func newPages(a *assets) (*pages, error) {
	t, err := template.New("").Funcs(template.FuncMap{
		"asset": a.url,
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web templates: %w", err)
	}
	return &pages{t: t}, nil
}

// pageData is what the page template shows.
type pageData struct {
	Base  string
	Title string

	// The login page.
	Login     bool
	Error     string
	LinkToken string
	NoUsers   bool // nobody may log in with a password

	// The chat.
	User     string
	Convs    []convItem
	Conv     *convRef
	Messages []msgView
	Before   uint64 // the sequence number older messages load from (0: none)
	Last     string // the id of the last stream event the page shows
	Busy     bool
	Models   []option
	Personas []option
	MaxFiles string
}

type convItem struct {
	ID, Title string
	Active    bool
}

type option struct {
	Value, Label string
	Selected     bool
}

// msgView is a message as the page shows it.
type msgView struct {
	Role      string
	Text      string          // the user's
	Blocks    []template.HTML // the assistant's, rendered
	Files     []fileView
	FileBase  string
	Turn      int64 // the live turn it shows (0: a stored message)
	Pending   bool  // a reply that has not started
	Streaming bool  // a reply being written
}

// render writes a page with status.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var b bytes.Buffer
	if err := s.pages.t.ExecuteTemplate(&b, name, data); err != nil {
		s.serverError(w, r, "render "+name, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// loginPage shows the login form, with a note when msg is set.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "login.html", pageData{Base: s.base, Title: "Log in", Login: true, Error: msg, NoUsers: len(s.users) == 0})
}

// linkPage shows a login link's page. The link is used up only when the page
// posts it (its script does so at once), so that a link preview that fetches
// the URL does not use it up.
func (s *Server) linkPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "login.html", pageData{Base: s.base, Title: "Log in", Login: true, LinkToken: r.PathValue("token")})
}

// chatPage shows the chat: the user's conversations and c (nil: a new chat).
func (s *Server) chatPage(w http.ResponseWriter, r *http.Request, user string, c *convRef) {
	ctx := r.Context()
	data := pageData{Base: s.base, Title: "New chat", User: displayName(user), Conv: c, MaxFiles: byteSize(s.opt.MaxFileBytes)}
	err := s.store.WebConversations(ctx, user, func(id string, _ conversation.ChatID, title string, _ time.Time) error {
		data.Convs = append(data.Convs, convItem{ID: id, Title: or(title, "Untitled"), Active: c != nil && c.ID == id})
		return nil
	})
	if err != nil {
		s.serverError(w, r, "list conversations", err)
		return
	}
	var settings conversation.ChatSettings
	if c != nil {
		data.Title = or(c.Title, "Untitled")
		if settings, err = s.store.ChatSettings(ctx, c.Chat); err != nil {
			s.serverError(w, r, "read settings", err)
			return
		}
		if data.Messages, data.Before, data.Last, data.Busy, err = s.messages(r, *c); err != nil {
			s.serverError(w, r, "read history", err)
			return
		}
	}
	data.Models, data.Personas = s.pickers(settings)
	s.render(w, r, http.StatusOK, "chat.html", data)
}

// messages returns the newest page of c's messages with the live turn, the
// cursor of older messages, the id of the stream event they show, and
// whether a reply is being written.
func (s *Server) messages(r *http.Request, c convRef) (views []msgView, before uint64, last string, busy bool, err error) {
	var st turnState
	if l := s.hub.get(c.Chat, false); l != nil {
		st, _ = l.state()
	}
	msgs, first, err := s.store.HistoryPage(r.Context(), c.Chat, 0, pageSize)
	if err != nil {
		return nil, 0, "", false, err
	}
	if len(msgs) == pageSize && first > 1 {
		before = first
	}
	fileBase := s.base + "/c/" + c.ID + "/file/"
	views = s.views(r.Context(), c, msgs)
	if st.turn == 0 {
		return views, before, "", false, nil
	}
	last = fmt.Sprintf("%d.%d", st.turn, st.version)
	if st.finished {
		return views, before, last, false, nil // stored, or failed and not kept
	}
	// The engine stores the turn just before it is done with it: the turn is
	// stored when the newest stored question was asked after it started, and
	// then the stored pair shows it.
	stored := false
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == conversation.RoleUser {
			stored = !msgs[i].Time.Before(st.started)
			for j := i; j < len(views); j++ {
				if stored {
					views[j].Turn = st.turn
				}
			}
			break
		}
	}
	if !stored {
		views = append(views,
			msgView{Role: "user", Text: st.user.Text, Files: st.user.Files, FileBase: fileBase, Turn: st.turn},
			msgView{Role: "assistant", Blocks: htmlBlocks(st.blocks), Turn: st.turn, Pending: len(st.blocks) == 0 && !st.done, Streaming: !st.done})
	}
	return views, before, last, !st.done, nil
}

// drawnNote matches the engine's note in the history that a picture was drawn.
var drawnNote = regexp.MustCompile(`^\[I drew a picture for the prompt (".*") and posted it\.\]$`)

// views renders stored messages.
func (s *Server) views(ctx context.Context, c convRef, msgs []conversation.Message) []msgView {
	fileBase := s.base + "/c/" + c.ID + "/file/"
	views := make([]msgView, 0, len(msgs))
	for _, m := range msgs {
		v := msgView{Role: string(m.Role), FileBase: fileBase}
		switch m.Role {
		case conversation.RoleUser:
			v.Text = userText(m)
			for _, a := range m.Attachments {
				v.Files = append(v.Files, fileView{Name: a.Name, SHA: a.SHA256, Image: a.Kind == conversation.AttachImage})
			}
		case conversation.RoleAssistant:
			v.Blocks = htmlBlocks(s.md.blocks(m.Content))
			if sha := s.drawn(ctx, c.Chat, m.Content); sha != "" {
				v.Blocks = append(v.Blocks, template.HTML(drawnFigure(fileBase+sha, m.Content)))
			}
		default:
			continue
		}
		views = append(views, v)
	}
	return views
}

// drawn returns the picture an assistant message says was drawn, if kept.
func (s *Server) drawn(ctx context.Context, chat conversation.ChatID, content string) string {
	m := drawnNote.FindStringSubmatch(content)
	if m == nil {
		return ""
	}
	prompt, err := strconv.Unquote(m[1])
	if err != nil {
		return ""
	}
	sha, err := s.store.WebImageFor(ctx, chat, prompt)
	if err != nil {
		s.log.Warn("web: read picture", "err", err)
	}
	return sha
}

// htmlBlocks marks rendered blocks as safe HTML: markdown made them so.
func htmlBlocks(blocks []string) []template.HTML {
	out := make([]template.HTML, len(blocks))
	for i, b := range blocks {
		out[i] = template.HTML(b)
	}
	return out
}

// older answers the page's request for the messages before ?before=.
func (s *Server) older(w http.ResponseWriter, r *http.Request, user string, c convRef) {
	var before uint64
	fmt.Sscan(r.URL.Query().Get("before"), &before)
	if before == 0 {
		writeJSON(w, http.StatusBadRequest, errText("Which messages?"))
		return
	}
	msgs, first, err := s.store.HistoryPage(r.Context(), c.Chat, before, pageSize)
	if err != nil {
		s.serverError(w, r, "read history", err)
		return
	}
	var b bytes.Buffer
	if err := s.pages.t.ExecuteTemplate(&b, "messages", s.views(r.Context(), c, msgs)); err != nil {
		s.serverError(w, r, "render messages", err)
		return
	}
	next := uint64(0)
	if len(msgs) == pageSize && first > 1 {
		next = first
	}
	writeJSON(w, http.StatusOK, struct {
		HTML   string `json:"html"`
		Before uint64 `json:"before"`
	}{b.String(), next})
}

// pickers lists the models and personas a conversation may pick, with its own
// marked.
func (s *Server) pickers(cs conversation.ChatSettings) (models, personas []option) {
	if len(s.opt.Models) > 1 {
		current := s.opt.Models[0]
		if slices.Contains(s.opt.Models, cs.Model) {
			current = cs.Model
		}
		for _, m := range s.opt.Models {
			models = append(models, option{Value: m, Label: m, Selected: m == current})
		}
	}
	if len(s.opt.Personas) > 0 {
		personas = append(personas, option{Value: "off", Label: "Default persona", Selected: !slices.Contains(s.opt.Personas, cs.Persona)})
		for _, p := range s.opt.Personas {
			personas = append(personas, option{Value: p, Label: p, Selected: p == cs.Persona})
		}
	}
	return models, personas
}

// displayName is how the page names a user.
func displayName(user string) string {
	if user == ownerUser {
		return "owner"
	}
	if name, ok := strings.CutPrefix(user, "web:"); ok {
		return name
	}
	return user
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
