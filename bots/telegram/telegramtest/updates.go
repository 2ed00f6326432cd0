package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Incoming is what a user sends; Inject turns it into an update.
type Incoming struct {
	// Chat is where it is sent; the zero Chat is the private chat with From.
	Chat Chat
	From User
	Text string
	// Entities of Text; when nil, mentions (@name) and commands (/cmd) are found in
	// Text as Telegram does.
	Entities []MessageEntity
	// ThreadID is the forum topic the message is sent in (0 = none).
	ThreadID int
	// ReplyTo is the id of a message in the same chat that this one replies to.
	ReplyTo int
	// A photo (with an optional Caption), a sticker, a voice note or a document,
	// each with placeholder content (a tiny JPEG, "OggS…", a one-page PDF).
	Photo, Sticker, Voice, Document bool
	// Media is a file with its content (Photo, Voice, Document, ...); it takes
	// the place of the flags above.
	Media   *Media
	Caption string
	// MediaGroupID puts the message in an album: the messages of one album
	// share it (Telegram sends each photo or file of an album as a message).
	MediaGroupID string
	// NewChatMembers makes a service message.
	NewChatMembers []User
	// Edit, when not 0, sends an edited_message update for that message id.
	Edit int
}

// PrivateChat is the private chat between u and the bot.
func PrivateChat(u User) Chat {
	return Chat{ID: u.ID, Type: "private", FirstName: u.FirstName, LastName: u.LastName, Username: u.Username}
}

// Group is a basic group chat.
func Group(id int64, title string) Chat { return Chat{ID: id, Type: "group", Title: title} }

// Supergroup is a supergroup, a forum if forum is set.
func Supergroup(id int64, title string, forum bool) Chat {
	return Chat{ID: id, Type: "supergroup", Title: title, IsForum: forum}
}

// Inject queues the update a user's message makes and returns the message.
func (s *Server) Inject(in Incoming) Message {
	if in.Chat.ID == 0 {
		in.Chat = PrivateChat(in.From)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chat(in.Chat)
	from := in.From
	m := Message{Date: time.Now().Unix(), Chat: c.chat, From: &from, Text: in.Text, Entities: in.Entities,
		Caption: in.Caption, NewChatMembers: in.NewChatMembers, MediaGroupID: in.MediaGroupID}
	if in.Text != "" && in.Entities == nil {
		m.Entities = findEntities(in.Text)
	}
	if in.Caption != "" {
		m.CaptionEntities = findEntities(in.Caption)
	}
	s.attachMedia(&m, in)
	if in.ThreadID != 0 {
		m.MessageThreadID, m.IsTopicMessage = in.ThreadID, true
		m.ReplyToMessage = &Message{MessageID: in.ThreadID, MessageThreadID: in.ThreadID, From: &from,
			Chat: c.chat, Date: m.Date, IsTopicMessage: true, ForumTopicCreated: &ForumTopic{Name: "Topic"}}
	}
	if in.ReplyTo != 0 {
		if r, ok := c.msgs[in.ReplyTo]; ok {
			quoted := r.msg
			quoted.ReplyToMessage = nil
			m.ReplyToMessage = &quoted
		}
	}
	u := Update{Message: &m}
	if in.Edit != 0 {
		m.MessageID, m.EditDate = in.Edit, m.Date
		u = Update{EditedMessage: &m}
	} else {
		c.nextMsg++
		m.MessageID = c.nextMsg
		c.msgs[m.MessageID] = &stored{msg: m}
	}
	s.push(u)
	return m
}

// InjectUpdate queues any update; its update_id is set by the fake and returned.
func (s *Server) InjectUpdate(u Update) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.push(u)
}

// push queues u and wakes long polls and the webhook; s.mu is held.
func (s *Server) push(u Update) int64 {
	u.UpdateID = s.nextID
	s.nextID++
	s.queue = append(s.queue, u)
	close(s.wake)
	s.wake = make(chan struct{})
	return u.UpdateID
}

// attachMedia puts in's file into m; s.mu is held.
func (s *Server) attachMedia(m *Message, in Incoming) {
	switch {
	case in.Media != nil:
		s.attachFile(m, in.Media)
	case in.Photo:
		s.attachFile(m, Photo(placeholderJPEG))
	case in.Sticker:
		f := s.addFile("sticker", "", []byte("RIFF\x00\x00\x00\x00WEBP"))
		m.Sticker = &File{FileID: f.id, FileUniqueID: f.unique, Type: "regular", Width: 512, Height: 512}
	case in.Voice:
		s.attachFile(m, Voice([]byte("OggS\x00\x02 a placeholder voice note")))
	case in.Document:
		s.attachFile(m, Document("file.pdf", "application/pdf", []byte(placeholderPDF)))
	}
}

// placeholderJPEG is an 8×8 grey JPEG.
var placeholderJPEG = func() []byte {
	var b bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	_ = jpeg.Encode(&b, img, nil)
	return b.Bytes()
}()

// placeholderPDF is a one-page PDF.
const placeholderPDF = "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n" +
	"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n" +
	"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"

// PollConflicts counts the getUpdates calls that overlapped one in progress
// (which then ended with 409 Conflict, as Telegram does when two bot instances
// poll): more than one poller at a time.
func (s *Server) PollConflicts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conflicts
}

// Pending counts the updates not confirmed (polling) or not delivered (webhook).
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

func (s *Server) getUpdates(ctx context.Context, p params) (any, *APIError) {
	offset, _ := p.int64("offset")
	limit := p.int("limit")
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	timer := time.NewTimer(time.Duration(max(p.int("timeout"), 0)) * time.Second)
	defer timer.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hook.url != "" {
		return nil, &APIError{Code: 409, Description: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"}
	}
	if raw := p["allowed_updates"]; raw != "" {
		var allowed []string
		if json.Unmarshal([]byte(raw), &allowed) == nil {
			s.allowed = allowed
		}
	}
	if s.poller != nil {
		close(s.poller) // two getUpdates at once: the first ends with 409 Conflict
		s.conflicts++
	}
	mine := make(chan struct{})
	s.poller = mine
	defer func() {
		if s.poller == mine {
			s.poller = nil
		}
	}()
	for {
		s.confirm(offset)
		if got := s.deliverable(limit); len(got) > 0 {
			return got, nil
		}
		wake := s.wake
		s.mu.Unlock()
		var apiErr *APIError
		done := false
		select {
		case <-wake:
		case <-mine:
			apiErr = &APIError{Code: 409, Description: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}
		case <-ctx.Done():
			done = true
		case <-s.closed:
			done = true
		case <-timer.C:
			done = true
		}
		s.mu.Lock()
		if apiErr != nil {
			return nil, apiErr
		}
		if done {
			return []Update{}, nil
		}
	}
}

// confirm forgets the updates before offset (the last -offset ones are kept when
// offset is negative); s.mu is held.
func (s *Server) confirm(offset int64) {
	switch {
	case offset < 0:
		if n := int(-offset); n < len(s.queue) {
			s.queue = s.queue[len(s.queue)-n:]
		}
	case offset > 0:
		i := 0
		for i < len(s.queue) && s.queue[i].UpdateID < offset {
			i++
		}
		s.queue = s.queue[i:]
	}
}

// deliverable returns up to limit queued updates of the allowed kinds, dropping the
// others as Telegram never stores them; s.mu is held.
func (s *Server) deliverable(limit int) []Update {
	kept := s.queue[:0]
	var out []Update
	for _, u := range s.queue {
		if !s.allowedKind(u.kind()) {
			continue
		}
		kept = append(kept, u)
		if len(out) < limit {
			out = append(out, u)
		}
	}
	s.queue = kept
	return out
}

func (s *Server) allowedKind(kind string) bool {
	if len(s.allowed) == 0 {
		return true
	}
	return slices.Contains(s.allowed, kind)
}

// webhook is the webhook in force.
type webhook struct {
	url, secret string
	allowed     []string
	stop        chan struct{}
	lastError   string
	lastErrorAt int64
	deliveries  []Delivery
}

// Delivery is one POST of an update to the webhook.
type Delivery struct {
	UpdateID int64
	Status   int // the HTTP status, 0 when the request failed
	At       time.Time
}

func (s *Server) setWebhook(_ context.Context, p params) (any, *APIError) {
	u, secret := p["url"], p["secret_token"]
	if u == "" {
		return s.deleteWebhook(context.Background(), p)
	}
	if parsed, err := url.Parse(u); err != nil || (parsed.Scheme != "https" && parsed.Scheme != "http") || parsed.Host == "" {
		// Telegram requires https; the fake takes http too, for loopback tests.
		return nil, BadRequest("bad webhook: An HTTPS URL must be provided for webhook")
	}
	if err := checkSecret(secret); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopWebhook()
	if p.bool("drop_pending_updates") {
		s.queue = nil
	}
	var allowed []string
	_ = json.Unmarshal([]byte(p["allowed_updates"]), &allowed)
	if len(allowed) > 0 {
		s.allowed = allowed
	}
	s.hook = webhook{url: u, secret: secret, allowed: allowed, stop: make(chan struct{}), deliveries: s.hook.deliveries}
	if s.poller != nil {
		close(s.poller)
		s.poller = nil
	}
	s.wg.Add(1)
	go s.deliver(u, secret, s.hook.stop)
	return true, nil
}

func checkSecret(secret string) *APIError {
	if len(secret) > 256 {
		return BadRequest("secret token is too long")
	}
	for _, r := range secret {
		if !(r == '_' || r == '-' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')) {
			return BadRequest("secret token contains unallowed characters")
		}
	}
	return nil
}

// stopWebhook ends the delivery loop of the webhook in force; s.mu is held.
func (s *Server) stopWebhook() {
	if s.hook.stop != nil {
		close(s.hook.stop)
	}
	s.hook.url, s.hook.secret, s.hook.stop = "", "", nil
}

func (s *Server) deleteWebhook(_ context.Context, p params) (any, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopWebhook()
	if p.bool("drop_pending_updates") {
		s.queue = nil
	}
	return true, nil
}

// WebhookInfo is what getWebhookInfo answers.
type WebhookInfo struct {
	URL                  string   `json:"url"`
	HasCustomCertificate bool     `json:"has_custom_certificate"`
	PendingUpdateCount   int      `json:"pending_update_count"`
	LastErrorDate        int64    `json:"last_error_date,omitempty"`
	LastErrorMessage     string   `json:"last_error_message,omitempty"`
	MaxConnections       int      `json:"max_connections,omitempty"`
	AllowedUpdates       []string `json:"allowed_updates,omitempty"`
}

func (s *Server) getWebhookInfo(context.Context, params) (any, *APIError) {
	return s.WebhookInfo(), nil
}

// WebhookInfo returns the webhook's state as getWebhookInfo shows it.
func (s *Server) WebhookInfo() WebhookInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := WebhookInfo{URL: s.hook.url, PendingUpdateCount: len(s.queue), AllowedUpdates: s.hook.allowed}
	if s.hook.url != "" {
		info.MaxConnections = 40
		info.LastErrorDate, info.LastErrorMessage = s.hook.lastErrorAt, s.hook.lastError
	}
	return info
}

// Deliveries returns every webhook delivery so far.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.hook.deliveries...)
}

// deliver posts queued updates to the webhook one at a time, in order, until stop.
func (s *Server) deliver(target, secret string, stop chan struct{}) {
	defer s.wg.Done()
	client := &http.Client{Timeout: 10 * time.Second}
	for {
		s.mu.Lock()
		got := s.deliverable(1)
		wake := s.wake
		s.mu.Unlock()
		if len(got) == 0 {
			select {
			case <-wake:
				continue
			case <-stop:
				return
			case <-s.closed:
				return
			}
		}
		status := post(client, target, secret, got[0])
		s.delivered(got[0].UpdateID, status, stop)
		if status < 200 || status > 299 {
			select {
			case <-time.After(s.opt.WebhookRetry):
			case <-stop:
				return
			case <-s.closed:
				return
			}
		}
	}
}

// delivered records a delivery and, when it succeeded, forgets the update.
func (s *Server) delivered(id int64, status int, stop chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook.deliveries = append(s.hook.deliveries, Delivery{UpdateID: id, Status: status, At: time.Now()})
	if status >= 200 && status <= 299 {
		if len(s.queue) > 0 && s.queue[0].UpdateID == id {
			s.queue = s.queue[1:]
		}
		return
	}
	if s.hook.stop == stop {
		s.hook.lastErrorAt = time.Now().Unix()
		s.hook.lastError = fmt.Sprintf("Wrong response from the webhook: %d %s", status, http.StatusText(status))
	}
}

func post(client *http.Client, target, secret string, u Update) int {
	body, _ := json.Marshal(u)
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
