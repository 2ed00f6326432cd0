package slackfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// File is a file a user shares with a message (PostFiles), as Slack hosts it:
// its bytes are served at url_private_download to requests that carry the bot
// token.
type File struct {
	ID       string // default a new id, F…
	Name     string // e.g. "photo.png"
	Title    string // default Name
	Mimetype string // e.g. "image/png"
	Filetype string // Slack's short type, e.g. "png"; default from Name
	// Subtype marks Slack's own recordings: "slack_audio" for an audio clip,
	// "slack_video" for a video clip.
	Subtype string
	Data    []byte
	// Size is the size the event reports; default len(Data). A test may set
	// another to see whether the app trusts it.
	Size int
	// CheckFileInfo sends the file in the event as Slack does in some shared
	// (Slack Connect) channels: only its id, with file_access
	// "check_file_info"; the app must call files.info for the rest.
	CheckFileInfo bool
	// External makes it a file linked from another service (Google Drive, …):
	// is_external true, its url_private outside Slack, nothing to download.
	External bool
}

// Upload is a file the app uploaded with the external upload flow
// (files.getUploadURLExternal, the upload URL, files.completeUploadExternal).
type Upload struct {
	FileID   string
	Filename string // as given to files.getUploadURLExternal
	Length   int    // as given to files.getUploadURLExternal
	Title    string // as given to files.completeUploadExternal
	AltText  string
	Data     []byte // the bytes posted to the upload URL
	// Channel, ThreadTS and InitialComment are where and with what text
	// files.completeUploadExternal shared it; TS is the message that shows it.
	Channel, ThreadTS, InitialComment, TS string
}

// pendingUpload is an upload URL handed out and not completed yet.
type pendingUpload struct {
	Upload
	uploaded bool
	done     bool
}

// signInPath is where downloads without a valid token are redirected, as
// files.slack.com sends them to the workspace's sign-in page.
const signInPath = "/signin"

// signInPage is the HTML Slack answers instead of a file the request may not
// read.
const signInPage = `<!DOCTYPE html>
<html lang="en-US"><head><meta charset="utf-8"><title>Slack</title></head>
<body><h1>Sign in to Fake Workspace</h1><form action="/signin" method="post">
<input type="email" name="email"><button type="submit">Sign in with email</button></form></body></html>
`

// PostFiles posts a message with files as user at the top level of channel (a
// message with subtype file_share, its files in "files"), and app_mention when
// the text mentions the bot outside a DM.
func (s *Server) PostFiles(channel, user, text string, files ...File) UserMessage {
	return s.postFiles(channel, "", user, text, files)
}

// PostFilesInThread posts a message with files as user in a thread.
func (s *Server) PostFilesInThread(channel, threadTS, user, text string, files ...File) UserMessage {
	return s.postFiles(channel, threadTS, user, text, files)
}

func (s *Server) postFiles(channel, thread, user, text string, files []File) UserMessage {
	s.mu.Lock()
	var objs []any
	for _, f := range files {
		f := s.addFile(f, user)
		if f.CheckFileInfo {
			objs = append(objs, map[string]any{"id": f.ID, "mode": "file_access", "file_access": "check_file_info",
				"created": 0, "timestamp": 0, "user": ""})
			continue
		}
		objs = append(objs, s.fileJSON(f))
	}
	ts := s.addUserMessage(channel, thread, user, text)
	msgID := s.nextID("msg-")
	s.mu.Unlock()
	ev := map[string]any{"type": "message", "subtype": "file_share", "client_msg_id": msgID, "text": text,
		"files": objs, "upload": false, "user": user, "display_as_bot": false, "ts": ts,
		"channel": channel, "event_ts": ts, "channel_type": channelType(channel)}
	if thread != "" {
		ev["thread_ts"] = thread
	}
	um := UserMessage{Channel: channel, TS: ts, ThreadTS: thread}
	um.Events = append(um.Events, s.sendEvent(ev))
	if channelType(channel) != "im" && strings.Contains(text, "<@"+s.opt.BotUserID+">") {
		mention := map[string]any{"type": "app_mention", "text": text, "files": objs, "upload": false,
			"user": user, "ts": ts, "team": s.opt.TeamID, "channel": channel, "event_ts": ts}
		if thread != "" {
			mention["thread_ts"] = thread
		}
		um.Events = append(um.Events, s.sendEvent(mention))
	}
	return um
}

// addFile stores a user's file, defaults filled in; the caller holds s.mu.
func (s *Server) addFile(f File, user string) File {
	if f.ID == "" {
		f.ID = s.nextID("F")
	}
	if f.Title == "" {
		f.Title = f.Name
	}
	if f.Filetype == "" {
		f.Filetype = strings.TrimPrefix(path.Ext(f.Name), ".")
	}
	if f.Size == 0 {
		f.Size = len(f.Data)
	}
	s.files[f.ID] = &storedFile{File: f, user: user, created: time.Now().Unix()}
	return f
}

// storedFile is a file the fake hosts.
type storedFile struct {
	File
	user    string
	created int64
}

// filePath is the path of a file's url_private_download on the fake's host.
func (s *Server) filePath(f File) string {
	return "/files-pri/" + s.opt.TeamID + "-" + f.ID + "/download/" + url.PathEscape(f.Name)
}

// fileJSON is a file object as events and files.info show it; the caller holds
// s.mu.
func (s *Server) fileJSON(f File) map[string]any {
	sf := s.files[f.ID]
	j := map[string]any{"id": f.ID, "created": sf.created, "timestamp": sf.created, "name": f.Name,
		"title": f.Title, "mimetype": f.Mimetype, "filetype": f.Filetype, "pretty_type": strings.ToUpper(f.Filetype),
		"user": sf.user, "user_team": s.opt.TeamID, "editable": false, "size": f.Size, "mode": "hosted",
		"is_external": false, "external_type": "", "is_public": false, "public_url_shared": false,
		"display_as_bot": false, "username": "",
		"url_private":          s.URL + "/files-pri/" + s.opt.TeamID + "-" + f.ID + "/" + url.PathEscape(f.Name),
		"url_private_download": s.URL + s.filePath(f),
		"permalink":            "https://fake.slack.com/files/" + sf.user + "/" + f.ID + "/" + url.PathEscape(f.Name)}
	if f.Subtype != "" {
		j["subtype"] = f.Subtype
		if f.Subtype == "slack_audio" {
			j["media_display_type"] = "audio"
		}
	}
	if f.External {
		j["mode"], j["is_external"], j["external_type"] = "external", true, "gdrive"
		j["url_private"] = "https://docs.google.com/document/d/" + f.ID
		delete(j, "url_private_download")
	}
	return j
}

// filesInfo answers files.info with a user's file or one the app uploaded.
func (s *Server) filesInfo(p url.Values) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, found := s.files[p.Get("file")]
	if !found {
		return fail("file_not_found")
	}
	return ok(map[string]any{"file": s.fileJSON(f.File), "comments": []any{},
		"paging": map[string]any{"count": 0, "total": 0, "page": 1, "pages": 0}})
}

// serveFile answers GET /files-pri/{team}-{id}/download/{name} (and the
// url_private form without /download/): the file's bytes for a request with the
// bot token, else a redirect to the sign-in page, as files.slack.com does.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/files-pri/")
	key, _, _ := strings.Cut(rest, "/")
	id := strings.TrimPrefix(key, s.opt.TeamID+"-")
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	f, found := s.files[id]
	allowed := token == s.opt.BotToken && !s.opt.NoFilesRead
	failing := found && allowed && s.failDownloads[id] > 0
	if failing {
		s.failDownloads[id]--
	}
	if found && allowed {
		s.downloads[id]++
		s.inflight++
		s.maxInflight = max(s.maxInflight, s.inflight)
	}
	s.mu.Unlock()
	switch {
	case !allowed:
		if s.opt.SignInWithoutRedirect {
			writeSignIn(w)
			return
		}
		http.Redirect(w, r, s.URL+signInPath+"?redir="+url.QueryEscape(r.URL.Path), http.StatusFound)
		return
	case !found:
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()
	if !s.wait(s.opt.DownloadDelay) {
		return
	}
	if failing {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "<html><body><h1>Service Unavailable</h1></body></html>")
		return
	}
	w.Header().Set("Content-Type", f.Mimetype)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.Data)))
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
	_, _ = w.Write(f.Data)
}

// serveSignIn answers the sign-in page that downloads without the token land on.
func (s *Server) serveSignIn(w http.ResponseWriter, _ *http.Request) { writeSignIn(w) }

func writeSignIn(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, signInPage)
}

// Downloads returns how often a file's bytes were served (downloads refused for
// a missing token not counted).
func (s *Server) Downloads(fileID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downloads[fileID]
}

// MaxConcurrentDownloads returns the most file downloads served at once so far.
func (s *Server) MaxConcurrentDownloads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInflight
}

// FailDownloads makes the next n downloads of a file answer 503 with an HTML
// page, as Slack's load balancers do.
func (s *Server) FailDownloads(fileID string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failDownloads[fileID] += n
}

// getUploadURLExternal answers files.getUploadURLExternal: an upload URL on the
// fake's host and a file id.
func (s *Server) getUploadURLExternal(p url.Values) response {
	name := p.Get("filename")
	length, err := strconv.Atoi(p.Get("length"))
	switch {
	case name == "" || p.Get("length") == "":
		return fail("invalid_arguments")
	case err != nil || length <= 0:
		return fail("missing_argument") // what Slack answers for length 0
	case utf8Len(p.Get("alt_txt")) > 1000:
		return fail("alt_txt_too_large")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextID("F")
	key := s.nextID("up")
	s.pending[key] = &pendingUpload{Upload: Upload{FileID: id, Filename: name, Length: length, AltText: p.Get("alt_txt")}}
	return ok(map[string]any{"upload_url": s.URL + "/upload/v1/" + key, "file_id": id})
}

func utf8Len(s string) int { return len([]rune(s)) }

// serveUpload takes a file's bytes at its upload URL, raw or as a multipart form
// (the first file part), and answers 200 "OK - <length>".
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	s.mu.Lock()
	pu := s.pending[key]
	s.mu.Unlock()
	if pu == nil || pu.uploaded {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	data, err := uploadedBytes(r)
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	pu.Data, pu.uploaded = data, true
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "OK - %d", len(data))
}

// uploadedBytes reads an upload's body: the first file of a multipart form, or
// the raw body.
func uploadedBytes(r *http.Request) ([]byte, error) {
	body := io.LimitReader(r.Body, 1<<30)
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "multipart/form-data" {
		return io.ReadAll(body)
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err != nil {
			return nil, fmt.Errorf("no file in the form: %w", err)
		}
		if part.FileName() != "" {
			return io.ReadAll(part)
		}
	}
}

// completeUploadExternal answers files.completeUploadExternal: the uploaded
// files are shared in channel_id (in thread_ts, with initial_comment) as one
// message of the bot's, or kept private without channel_id.
func (s *Server) completeUploadExternal(p url.Values) response {
	var files []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(p.Get("files")), &files); err != nil || len(files) == 0 {
		return fail("invalid_arguments")
	}
	channel, thread, comment := p.Get("channel_id"), p.Get("thread_ts"), p.Get("initial_comment")
	if channel == "" {
		channel = p.Get("channels")
	}
	s.mu.Lock()
	if _, known := s.channels[channel]; channel != "" && !known {
		s.mu.Unlock()
		return fail("channel_not_found")
	}
	var done []*pendingUpload
	for _, f := range files {
		var pu *pendingUpload
		for _, c := range s.pending {
			if c.FileID == f.ID {
				pu = c
			}
		}
		if pu == nil || !pu.uploaded || pu.done {
			s.mu.Unlock()
			return fail("file_not_found") // the fake's answer for an id not uploaded (or already shared)
		}
		pu.Title = f.Title
		done = append(done, pu)
	}
	var summary []any
	var ids []string
	for _, pu := range done {
		pu.done = true
		ids = append(ids, pu.FileID)
		title := pu.Title
		if title == "" {
			title = pu.Filename
		}
		summary = append(summary, map[string]any{"id": pu.FileID, "title": title})
		s.files[pu.FileID] = &storedFile{File: File{ID: pu.FileID, Name: pu.Filename, Title: title,
			Mimetype: mimeOf(pu.Filename, pu.Data), Filetype: strings.TrimPrefix(path.Ext(pu.Filename), "."),
			Data: pu.Data, Size: len(pu.Data)}, user: s.opt.BotUserID, created: time.Now().Unix()}
	}
	var shared Message
	if channel != "" {
		m := s.botMessage(channel, thread, comment)
		m.Files = ids
		shared = copyMessage(m)
	}
	for _, pu := range done {
		u := pu.Upload
		u.Channel, u.ThreadTS, u.InitialComment, u.TS = channel, thread, comment, shared.TS
		s.uploads = append(s.uploads, u)
	}
	var objs []any
	for _, id := range ids {
		objs = append(objs, s.fileJSON(s.files[id].File))
	}
	s.mu.Unlock()
	if channel != "" {
		ev := messageJSON(&shared)
		ev["subtype"], ev["files"], ev["upload"] = "file_share", objs, true
		ev["channel"], ev["channel_type"], ev["event_ts"] = channel, channelType(channel), shared.TS
		s.sendEvent(ev)
	}
	return ok(map[string]any{"files": summary})
}

// mimeOf is the type Slack would give an uploaded file.
func mimeOf(name string, data []byte) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return http.DetectContentType(data)
}

// Uploads returns the files the app uploaded and shared, in order.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.uploads)
	for i := range out {
		out[i].Data = bytes.Clone(out[i].Data)
	}
	return out
}
