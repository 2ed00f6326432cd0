package slackfake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/chatbot-dev/chatbot/bots/slack/slackfake"
)

// receiveEvents delivers the fake's events over the Events API to a channel of
// parsed events.
func receiveEvents(t *testing.T, s *slackfake.Server) <-chan slackevents.EventsAPIEvent {
	t.Helper()
	got := make(chan slackevents.EventsAPIEvent, 10)
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
		if err != nil {
			t.Errorf("parse event: %v", err)
			return
		}
		got <- ev
	})
	srv := &http.Server{Handler: app}
	ln := listen(t)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	s.SetEventsURL("http://"+ln.Addr().String()+"/slack/events", "s3cret")
	return got
}

func TestFilesInEventsAsSlackGoReadsThem(t *testing.T) {
	s, _ := newFake(t, slackfake.Options{})
	events := receiveEvents(t, s)
	png := []byte("\x89PNG\r\n\x1a\nnot really")
	s.PostFiles("C1", "U1", "<@"+s.Options().BotUserID+"> what is this?",
		slackfake.File{Name: "photo.png", Mimetype: "image/png", Data: png},
		slackfake.File{Name: "audio_message.webm", Mimetype: "audio/webm", Subtype: "slack_audio", Data: []byte("webm")})

	var msg *slackevents.MessageEvent
	var mention *slackevents.AppMentionEvent
	for range 2 { // delivered concurrently, in either order
		switch e := (<-events).InnerEvent.Data.(type) {
		case *slackevents.MessageEvent:
			msg = e
		case *slackevents.AppMentionEvent:
			mention = e
		}
	}
	if msg == nil || mention == nil {
		t.Fatalf("events: message %v, app_mention %v", msg, mention)
	}
	if msg.SubType != "file_share" || len(msg.Message.Files) != 2 {
		t.Fatalf("message event: subtype %q, %d files", msg.SubType, len(msg.Message.Files))
	}
	f := msg.Message.Files[0]
	if f.Name != "photo.png" || f.Mimetype != "image/png" || f.Filetype != "png" || f.Size != len(png) ||
		!strings.HasPrefix(f.URLPrivateDownload, s.URL+"/files-pri/") || f.ID == "" {
		t.Errorf("file %+v", f)
	}
	if len(mention.Files) != 2 || mention.Files[1].Mimetype != "audio/webm" {
		t.Errorf("app_mention files %+v", mention.Files)
	}
}

func TestDownloadsNeedTheBotToken(t *testing.T) {
	s, api := newFake(t, slackfake.Options{NoEcho: true})
	events := receiveEvents(t, s)
	data := bytes.Repeat([]byte("pdf "), 1000)
	s.PostFiles("D1", "U1", "", slackfake.File{Name: "a.pdf", Mimetype: "application/pdf", Data: data})
	f := (<-events).InnerEvent.Data.(*slackevents.MessageEvent).Message.Files[0]

	var got bytes.Buffer
	if err := api.GetFileContext(context.Background(), f.URLPrivateDownload, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Errorf("downloaded %d bytes, want the file's %d", got.Len(), len(data))
	}
	if n := s.Downloads(f.ID); n != 1 {
		t.Errorf("%d downloads counted, want 1", n)
	}

	// Without the token, Slack sends the browser to its sign-in page.
	resp, err := http.Get(f.URLPrivateDownload)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(page), "Sign in") {
		t.Errorf("without a token: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), page)
	}
	// A wrong token: slack-go reports the redirect to the sign-in page.
	wrong := slack.New("xoxb-wrong", slack.OptionAPIURL(s.APIURL()))
	if err := wrong.GetFileContext(context.Background(), f.URLPrivateDownload, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "sign-in") {
		t.Errorf("wrong token: %v, want the sign-in redirect", err)
	}
	if n := s.Downloads(f.ID); n != 1 {
		t.Errorf("%d downloads counted, want the refused ones not counted", n)
	}
}

func TestDownloadsWithoutFilesRead(t *testing.T) {
	for _, noRedirect := range []bool{false, true} {
		s, api := newFake(t, slackfake.Options{NoEcho: true, NoFilesRead: true, SignInWithoutRedirect: noRedirect})
		events := receiveEvents(t, s)
		s.PostFiles("D1", "U1", "", slackfake.File{Name: "a.txt", Mimetype: "text/plain", Data: []byte("hello")})
		f := (<-events).InnerEvent.Data.(*slackevents.MessageEvent).Message.Files[0]
		var got bytes.Buffer
		err := api.GetFileContext(context.Background(), f.URLPrivateDownload, &got)
		switch {
		case !noRedirect && (err == nil || !strings.Contains(err.Error(), "sign-in")):
			t.Errorf("redirect: %v, want the sign-in redirect reported", err)
		case noRedirect && (err != nil || !strings.Contains(got.String(), "<!DOCTYPE html>")):
			t.Errorf("no redirect: %v, %q, want the sign-in page as the body", err, got.String())
		}
	}
}

func TestFailingDownloadsAndFilesInfo(t *testing.T) {
	s, api := newFake(t, slackfake.Options{NoEcho: true})
	events := receiveEvents(t, s)
	s.PostFiles("D1", "U1", "", slackfake.File{ID: "F1", Name: "notes.md", Mimetype: "text/markdown",
		Data: []byte("# hi"), CheckFileInfo: true})
	f := (<-events).InnerEvent.Data.(*slackevents.MessageEvent).Message.Files[0]
	if f.URLPrivateDownload != "" || f.ID != "F1" {
		t.Fatalf("check_file_info file %+v, want only its id", f)
	}
	info, _, _, err := api.GetFileInfoContext(context.Background(), "F1", 0, 0)
	if err != nil || info.URLPrivateDownload == "" || info.Size != 4 {
		t.Fatalf("files.info: %+v, %v", info, err)
	}
	if _, _, _, err := api.GetFileInfoContext(context.Background(), "F404", 0, 0); err == nil || err.Error() != "file_not_found" {
		t.Errorf("unknown file: %v", err)
	}
	s.FailDownloads("F1", 1)
	var status slack.StatusCodeError
	if err := api.GetFileContext(context.Background(), info.URLPrivateDownload, io.Discard); !errors.As(err, &status) || status.Code != 503 {
		t.Errorf("failing download: %v, want 503", err)
	}
	var got bytes.Buffer
	if err := api.GetFileContext(context.Background(), info.URLPrivateDownload, &got); err != nil || got.String() != "# hi" {
		t.Errorf("second download: %v %q", err, got.String())
	}
}

func TestExternalUploadFlow(t *testing.T) {
	s, api := newFake(t, slackfake.Options{NoEcho: true})
	_, parent, err := api.PostMessage("C1", slack.MsgOptionText("thread", false))
	if err != nil {
		t.Fatal(err)
	}
	pic := bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 5000)
	sum, err := api.UploadFileContext(context.Background(), slack.UploadFileParameters{
		Filename: "picture.png", FileSize: len(pic), Reader: bytes.NewReader(pic), Title: "picture.png",
		InitialComment: "🎨 a cat", Channel: "C1", ThreadTimestamp: parent})
	if err != nil {
		t.Fatal(err)
	}
	ups := s.Uploads()
	if len(ups) != 1 {
		t.Fatalf("%d uploads", len(ups))
	}
	u := ups[0]
	if u.FileID != sum.ID || !bytes.Equal(u.Data, pic) || u.Length != len(pic) || u.Channel != "C1" ||
		u.ThreadTS != parent || u.InitialComment != "🎨 a cat" || u.Filename != "picture.png" {
		t.Errorf("upload %+v (%d bytes)", u, len(u.Data))
	}
	thread := s.Thread("C1", parent)
	if len(thread) != 2 || thread[1].Text != "🎨 a cat" || len(thread[1].Files) != 1 || thread[1].Files[0] != sum.ID {
		t.Errorf("thread %+v", thread)
	}
	// A file id that was never uploaded is not shared.
	if _, err := api.CompleteUploadExternalContext(context.Background(), slack.CompleteUploadExternalParameters{
		Files: []slack.FileSummary{{ID: "F0NOPE"}}, Channel: "C1"}); err == nil {
		t.Error("completing an unknown file succeeded")
	}
	if _, err := api.GetUploadURLExternalContext(context.Background(), slack.GetUploadURLExternalParameters{
		FileName: "x.png", FileSize: 0}); err == nil {
		t.Error("an upload URL for 0 bytes")
	}
}
