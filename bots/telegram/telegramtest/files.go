package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	_ "image/gif"  // image.DecodeConfig of GIFs
	_ "image/jpeg" // and of JPEGs
	_ "image/png"  // and of PNGs
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Telegram's limits on files.
const (
	// MaxDownloadSize is the largest file a bot may download: getFile answers
	// "Bad Request: file is too big" for larger ones.
	MaxDownloadSize = 20 << 20
	// MaxCaptionLength is the longest caption of a photo or a document, in
	// UTF-16 code units of its visible text.
	MaxCaptionLength = 1024
	// MaxUploadSize is the largest file a bot may upload with multipart/form-data.
	MaxUploadSize = 50 << 20
)

// Telegram's wording of the file errors the fake gives.
const (
	FileTooBig         = "file is too big"
	InvalidFileID      = "invalid file_id"
	CaptionTooLong     = "message caption is too long"
	InvalidDimensions  = "PHOTO_INVALID_DIMENSIONS"
	ImageProcessFailed = "IMAGE_PROCESS_FAILED"
)

// Media is a file a user sends with a message (Incoming.Media). Make one with
// Photo, Voice, Audio, VideoNote, Video or Document.
type Media struct {
	// Kind is "photo", "voice", "audio", "video_note", "video", "animation" or
	// "document": the message field that holds it.
	Kind string
	// Name and MIME are the file_name and mime_type the message gives (those of
	// its kind that have them).
	Name, MIME string
	// Data are the file's bytes. The fake keeps the slice, without a copy: it
	// must not change while the fake serves it.
	Data []byte
	// NoSize leaves file_size out of the message and of getFile's answer, as
	// Telegram may (it is optional in both).
	NoSize bool
}

// Photo is a photo: the message lists a 90-pixel thumbnail, then the picture
// itself with data (Telegram sends a photo's sizes smallest first).
func Photo(data []byte) *Media { return &Media{Kind: "photo", Data: data} }

// Voice is a voice note (OGG with Opus, as Telegram's apps record them).
func Voice(data []byte) *Media { return &Media{Kind: "voice", MIME: "audio/ogg", Data: data} }

// Audio is a music file.
func Audio(name, mime string, data []byte) *Media {
	return &Media{Kind: "audio", Name: name, MIME: mime, Data: data}
}

// VideoNote is a round video message (MP4, without a name or a type).
func VideoNote(data []byte) *Media { return &Media{Kind: "video_note", Data: data} }

// Video is a video.
func Video(data []byte) *Media { return &Media{Kind: "video", MIME: "video/mp4", Data: data} }

// Document is a file sent as a file.
func Document(name, mime string, data []byte) *Media {
	return &Media{Kind: "document", Name: name, MIME: mime, Data: data}
}

// storedFile is a file the fake serves, by file_id.
type storedFile struct {
	id, unique string
	path       string // file_path: "photos/file_3.jpg"
	data       []byte
	noSize     bool // getFile leaves file_size out
}

// folders are where Telegram's file paths put each kind of file.
var folders = map[string]string{"photo": "photos", "voice": "voice", "audio": "music", "video_note": "video_notes",
	"video": "videos", "animation": "animations", "document": "documents", "sticker": "stickers"}

// addFile stores data as a file of kind and returns it; s.mu is held.
func (s *Server) addFile(kind, name string, data []byte) *storedFile {
	s.fileSeq++
	id := fmt.Sprintf("FILE%06d", s.fileSeq)
	ext := strings.ToLower(path.Ext(name))
	switch {
	case kind == "photo":
		ext = ".jpg"
	case kind == "voice":
		ext = ".oga"
	case kind == "video_note", kind == "video", kind == "animation":
		ext = ".mp4"
	}
	f := &storedFile{id: id, unique: "U" + id, data: data,
		path: fmt.Sprintf("%s/file_%d%s", folders[kind], s.fileSeq, ext)}
	if s.files == nil {
		s.files = make(map[string]*storedFile)
	}
	s.files[id] = f
	return f
}

// attachFile puts in.Media into m as Telegram would; s.mu is held.
func (s *Server) attachFile(m *Message, md *Media) {
	size := func(data []byte) int64 {
		if md.NoSize {
			return 0
		}
		return int64(len(data))
	}
	if md.Kind == "photo" {
		w, h := imageSize(md.Data)
		side := min(90, max(w, h)/2) // the thumbnail's longer side: smaller than the photo's
		tw, th := side, max(h*side/max(w, 1), 1)
		if h > w {
			tw, th = max(w*side/max(h, 1), 1), side
		}
		thumbData := []byte("a 90-pixel thumbnail of another photo")
		thumb := s.addFile("photo", "", thumbData)
		full := s.addFile("photo", "", md.Data)
		thumb.noSize, full.noSize = md.NoSize, md.NoSize
		m.Photo = []PhotoSize{
			{FileID: thumb.id, FileUniqueID: thumb.unique, Width: tw, Height: th, FileSize: size(thumbData)},
			{FileID: full.id, FileUniqueID: full.unique, Width: w, Height: h, FileSize: size(md.Data)},
		}
		return
	}
	f := s.addFile(md.Kind, md.Name, md.Data)
	f.noSize = md.NoSize
	file := &File{FileID: f.id, FileUniqueID: f.unique, FileName: md.Name, MimeType: md.MIME, FileSize: size(md.Data)}
	switch md.Kind {
	case "voice":
		file.FileName, file.Duration = "", 3
		m.Voice = file
	case "audio":
		file.Duration = 30
		m.Audio = file
	case "video_note":
		file.FileName, file.MimeType, file.Duration, file.Length = "", "", 5, 384
		m.VideoNote = file
	case "video":
		file.Duration, file.Width, file.Height = 10, 1280, 720
		m.Video = file
	case "animation":
		file.Duration, file.Width, file.Height = 2, 320, 240
		m.Animation = file
		doc := *file
		m.Document = &doc // Telegram sends an animation as a document too
	default:
		m.Document = file
	}
}

// imageSize reads an image's dimensions, 1280×960 when it cannot.
func imageSize(data []byte) (w, h int) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return 1280, 960
	}
	return cfg.Width, cfg.Height
}

// getFile answers with the file's size and path; a file over 20 MB gets
// Telegram's "file is too big".
func (s *Server) getFile(_ context.Context, p params) (any, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[strings.TrimSpace(p["file_id"])]
	switch {
	case f == nil:
		return nil, BadRequest(InvalidFileID)
	case len(f.data) > MaxDownloadSize:
		return nil, BadRequest(FileTooBig)
	}
	info := FileInfo{FileID: f.id, FileUniqueID: f.unique, FileSize: int64(len(f.data)), FilePath: f.path}
	if f.noSize {
		info.FileSize = 0
	}
	return info, nil
}

// Download is one request for a file at /file/bot<token>/<file_path>.
type Download struct {
	Path   string // the file_path asked for
	Status int    // the HTTP status answered
	Bytes  int    // the bytes of the body sent
	At     time.Time
}

// SetDownloadDelay makes every download wait d (counted as running) before
// its body is sent, so that tests can see how many run at once.
func (s *Server) SetDownloadDelay(d time.Duration) {
	s.mu.Lock()
	s.dlDelay = d
	s.mu.Unlock()
}

// SetDownloadFault installs f, which sees the file_path of every download; a
// status other than 0 is answered instead of the file (for example 500, or
// 404 for a path Telegram no longer serves).
func (s *Server) SetDownloadFault(f func(path string) int) {
	s.mu.Lock()
	s.dlFault = f
	s.mu.Unlock()
}

// Downloads returns the file downloads so far, oldest first.
func (s *Server) Downloads() []Download {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.downloads)
}

// MaxConcurrentDownloads is the most downloads that ran at once so far.
func (s *Server) MaxConcurrentDownloads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dlMax
}

// serveFile answers GET /file/bot<token>/<file_path> with the file's bytes,
// or 404 {"ok":false,"error_code":404,"description":"Not Found"} for a wrong
// token or an unknown path, as Telegram does.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, rest string) {
	token, filePath, _ := strings.Cut(rest, "/")
	s.mu.Lock()
	var f *storedFile
	for _, sf := range s.files {
		if sf.path == filePath {
			f = sf
			break
		}
	}
	status := http.StatusOK
	switch {
	case token != s.Token || f == nil || r.Method != http.MethodGet && r.Method != http.MethodHead:
		status = http.StatusNotFound
	case len(f.data) > MaxDownloadSize:
		status = http.StatusBadRequest
	}
	if s.dlFault != nil && status == http.StatusOK {
		if st := s.dlFault(filePath); st != 0 {
			status = st
		}
	}
	d := Download{Path: filePath, Status: status, At: time.Now()}
	delay := s.dlDelay
	s.dlRunning++
	s.dlMax = max(s.dlMax, s.dlRunning)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.dlRunning--
		s.downloads = append(s.downloads, d)
		s.mu.Unlock()
	}()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		case <-s.closed:
		}
	}
	switch status {
	case http.StatusOK:
	case http.StatusNotFound:
		writeAnswer(w, nil, errNotFound)
		return
	case http.StatusBadRequest:
		writeAnswer(w, nil, BadRequest(FileTooBig))
		return
	default:
		writeAnswer(w, nil, &APIError{Code: status, Description: http.StatusText(status)})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
	if r.Method == http.MethodHead {
		return
	}
	n, _ := w.Write(f.data)
	d.Bytes = n
}

// UploadedFile is a file part of a multipart request.
type UploadedFile struct {
	Filename string
	Data     []byte
}

type uploadsKey struct{}

// uploadsFrom returns the file parts of the request being answered, by field.
func uploadsFrom(ctx context.Context) map[string]UploadedFile {
	m, _ := ctx.Value(uploadsKey{}).(map[string]UploadedFile)
	return m
}

// Upload is a photo or a document the bot sent (sendPhoto, sendDocument).
type Upload struct {
	Method    string // "sendPhoto" or "sendDocument"
	MessageID int
	ThreadID  int
	ReplyTo   int    // the message it replies to, 0 if none
	Filename  string // as the multipart part names it
	Data      []byte // the bytes uploaded
	Caption   string // the visible caption
	At        time.Time
}

// Uploads returns the photos and documents the bot sent to the chat, oldest first.
func (s *Server) Uploads(chatID int64) []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[chatID]
	if c == nil {
		return nil
	}
	var out []Upload
	for _, id := range c.bot {
		if u := c.msgs[id].bot.Upload; u != nil {
			out = append(out, *u)
		}
	}
	return out
}

func (s *Server) sendPhoto(ctx context.Context, p params) (any, *APIError) {
	return s.sendFile(ctx, p, "sendPhoto", "photo")
}

func (s *Server) sendDocument(ctx context.Context, p params) (any, *APIError) {
	return s.sendFile(ctx, p, "sendDocument", "document")
}

// sendFile sends the file of field (uploaded, or the file_id of a file the fake
// knows) with its caption, checked as Telegram checks them: a caption of at
// most 1024 characters, a photo that is a picture whose width and height add
// up to 10000 at most, in a ratio of 20 at most, an upload of 50 MB at most.
// (The 10 MB limit of photos is not checked: Telegram does not document its
// answer.)
func (s *Server) sendFile(ctx context.Context, p params, method, field string) (any, *APIError) {
	up, uploaded := uploadsFrom(ctx)[field]
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.lookup(p)
	if e != nil {
		return nil, e
	}
	if !uploaded {
		f := s.files[strings.TrimSpace(p[field])]
		if f == nil {
			return nil, BadRequest(fmt.Sprintf("there is no %s in the request", field))
		}
		up = UploadedFile{Filename: path.Base(f.path), Data: f.data}
	}
	if len(up.Data) > MaxUploadSize {
		return nil, &APIError{Code: http.StatusRequestEntityTooLarge, Description: "Request Entity Too Large"}
	}
	caption, ents, e := formattedCaption(p)
	if e != nil {
		return nil, e
	}
	var photo []PhotoSize
	if field == "photo" {
		cfg, _, err := image.DecodeConfig(bytes.NewReader(up.Data))
		switch {
		case err != nil:
			return nil, BadRequest(ImageProcessFailed)
		case cfg.Width+cfg.Height > 10000 || max(cfg.Width, cfg.Height) > 20*max(min(cfg.Width, cfg.Height), 1):
			return nil, BadRequest(InvalidDimensions)
		}
		f := s.addFile("photo", "", up.Data)
		photo = []PhotoSize{{FileID: f.id, FileUniqueID: f.unique, Width: cfg.Width, Height: cfg.Height,
			FileSize: int64(len(up.Data))}}
	}
	rp := replyParameters{MessageID: p.int("reply_to_message_id")}
	if raw := p["reply_parameters"]; raw != "" {
		_ = json.Unmarshal([]byte(raw), &rp)
	}
	quoted, found := c.msgs[rp.MessageID]
	if rp.MessageID != 0 && !found && !rp.AllowSendingWithoutReply {
		return nil, BadRequest("message to be replied not found")
	}
	if e := s.floodCheck(c); e != nil {
		return nil, e
	}
	c.nextMsg++
	now := time.Now()
	bot := s.Bot
	thread := p.int("message_thread_id")
	m := Message{MessageID: c.nextMsg, MessageThreadID: thread, From: &bot, Date: now.Unix(), Chat: c.chat,
		Caption: caption, CaptionEntities: ents, Photo: photo, IsTopicMessage: c.chat.IsForum && thread != 0}
	if field == "document" {
		f := s.addFile("document", up.Filename, up.Data)
		m.Document = &File{FileID: f.id, FileUniqueID: f.unique, FileName: up.Filename, FileSize: int64(len(up.Data))}
	}
	u := &Upload{Method: method, MessageID: m.MessageID, ThreadID: thread, Filename: up.Filename, Data: up.Data,
		Caption: caption, At: now}
	bm := &BotMessage{ID: m.MessageID, ThreadID: thread, Upload: u,
		Versions: []Version{{Method: method, Text: caption, Raw: p["caption"], ParseMode: p["parse_mode"], Entities: ents, At: now}}}
	if found {
		q := quoted.msg
		q.ReplyToMessage = nil
		m.ReplyToMessage, bm.ReplyTo, u.ReplyTo = &q, q.MessageID, q.MessageID
	}
	c.msgs[m.MessageID] = &stored{msg: m, bot: bm}
	c.bot = append(c.bot, m.MessageID)
	s.messageSent(c, thread)
	return m, nil
}

// formattedCaption returns the visible caption and its entities, checked as
// Telegram checks them.
func formattedCaption(p params) (string, []MessageEntity, *APIError) {
	q := params{"text": p["caption"], "parse_mode": p["parse_mode"], "entities": p["caption_entities"]}
	text, ents, e := formatted(q, true)
	switch {
	case e != nil && e.Description == "Bad Request: "+TooLong:
		return "", nil, BadRequest(CaptionTooLong)
	case e != nil:
		return "", nil, e
	case UTF16Len(text) > MaxCaptionLength:
		return "", nil, BadRequest(CaptionTooLong)
	}
	return text, ents, nil
}
