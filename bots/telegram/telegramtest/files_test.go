package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// newClient returns go-telegram/bot pointed at s.
func newClient(t *testing.T, s *Server) *bot.Bot {
	t.Helper()
	b, err := bot.New(s.Token, bot.WithServerURL(s.URL), bot.WithSkipGetMe())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pngOf(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(0, 0, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func TestGetFileAndDownload(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	c := newClient(t, s)
	ctx := context.Background()
	alice := User{ID: 1, FirstName: "Alice"}
	pic := pngOf(t, 640, 480)
	m := s.Inject(Incoming{From: alice, Media: Photo(pic), Caption: "look"})
	if len(m.Photo) != 2 || m.Photo[0].Width >= m.Photo[1].Width || m.Photo[1].Width != 640 || m.Photo[1].FileSize != int64(len(pic)) {
		t.Fatalf("photo sizes = %+v, want a thumbnail then 640×480 of %d bytes", m.Photo, len(pic))
	}

	f, err := c.GetFile(ctx, &bot.GetFileParams{FileID: m.Photo[1].FileID})
	if err != nil {
		t.Fatal(err)
	}
	if f.FileSize != int64(len(pic)) || !strings.HasPrefix(f.FilePath, "photos/") {
		t.Errorf("getFile = %+v", f)
	}
	status, body := get(t, c.FileDownloadLink(f))
	if status != http.StatusOK || !bytes.Equal(body, pic) {
		t.Errorf("download: %d, %d bytes; want 200 and the photo's %d bytes", status, len(body), len(pic))
	}
	if d := s.Downloads(); len(d) != 1 || d[0].Path != f.FilePath || d[0].Bytes != len(pic) {
		t.Errorf("downloads = %+v", d)
	}

	// Unknown paths, a wrong token, an unknown file_id.
	for _, url := range []string{s.URL + "/file/bot" + s.Token + "/photos/file_999.jpg",
		s.URL + "/file/bot1:wrong/" + f.FilePath} {
		status, body := get(t, url)
		if status != http.StatusNotFound || !strings.Contains(string(body), `"description":"Not Found"`) {
			t.Errorf("GET %s = %d %s, want 404 Not Found", url, status, body)
		}
	}
	_, err = c.GetFile(ctx, &bot.GetFileParams{FileID: "nope"})
	if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), InvalidFileID) {
		t.Errorf("getFile of an unknown id: %v", err)
	}

	// Over 20 MB: getFile refuses, as Telegram does; file_size may be left out.
	big := s.Inject(Incoming{From: alice, Media: &Media{Kind: "document", Name: "big.bin", Data: make([]byte, MaxDownloadSize+1), NoSize: true}})
	if big.Document.FileSize != 0 {
		t.Errorf("NoSize sent file_size %d", big.Document.FileSize)
	}
	_, err = c.GetFile(ctx, &bot.GetFileParams{FileID: big.Document.FileID})
	if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), "Bad Request: file is too big") {
		t.Errorf("getFile of 20 MB + 1: %v, want Bad Request: file is too big", err)
	}

	// A fault on downloads.
	s.SetDownloadFault(func(string) int { return http.StatusInternalServerError })
	if status, _ := get(t, c.FileDownloadLink(f)); status != http.StatusInternalServerError {
		t.Errorf("faulty download = %d, want 500", status)
	}
}

func TestMediaKinds(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	alice := User{ID: 1, FirstName: "Alice"}
	v := s.Inject(Incoming{From: alice, Media: Voice([]byte("OggS voice"))})
	a := s.Inject(Incoming{From: alice, Media: Audio("song.mp3", "audio/mpeg", []byte("ID3"))})
	n := s.Inject(Incoming{From: alice, Media: VideoNote([]byte("mp4"))})
	d := s.Inject(Incoming{From: alice, Media: Document("a.pdf", "application/pdf", []byte("%PDF-1.4"))})
	switch {
	case v.Voice == nil || v.Voice.MimeType != "audio/ogg" || v.Voice.FileSize != 10:
		t.Errorf("voice = %+v", v.Voice)
	case a.Audio == nil || a.Audio.FileName != "song.mp3" || a.Audio.MimeType != "audio/mpeg":
		t.Errorf("audio = %+v", a.Audio)
	case n.VideoNote == nil || n.VideoNote.Length == 0 || n.VideoNote.MimeType != "":
		t.Errorf("video note = %+v", n.VideoNote)
	case d.Document == nil || d.Document.FileName != "a.pdf" || d.Document.FileSize != 8:
		t.Errorf("document = %+v", d.Document)
	}
	// As the library reads them.
	var um models.Message
	raw := `{"message_id":1,"date":1,"chat":{"id":1,"type":"private"},"voice":{"file_id":"X","file_unique_id":"U","duration":3,"mime_type":"audio/ogg","file_size":10}}`
	if err := json.Unmarshal([]byte(raw), &um); err != nil || um.Voice == nil || um.Voice.FileSize != 10 {
		t.Errorf("library reads voice: %+v, %v", um.Voice, err)
	}
}

func TestSendPhotoAndDocument(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	c := newClient(t, s)
	ctx := context.Background()
	alice := User{ID: 1, FirstName: "Alice"}
	s.AddChat(PrivateChat(alice))
	pic := pngOf(t, 64, 48)

	m, err := c.SendPhoto(ctx, &bot.SendPhotoParams{ChatID: alice.ID,
		Photo: &models.InputFileUpload{Filename: "image.png", Data: bytes.NewReader(pic)}, Caption: "🎨 a fox"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Photo) != 1 || m.Photo[0].Width != 64 || m.Caption != "🎨 a fox" {
		t.Errorf("sendPhoto answered %+v", m)
	}
	ups := s.Uploads(alice.ID)
	if len(ups) != 1 || ups[0].Method != "sendPhoto" || !bytes.Equal(ups[0].Data, pic) || ups[0].Filename != "image.png" ||
		ups[0].Caption != "🎨 a fox" {
		t.Errorf("uploads = %+v", ups)
	}
	if msgs := s.BotMessages(alice.ID); len(msgs) != 1 || msgs[0].Upload == nil || msgs[0].Last().Text != "🎨 a fox" {
		t.Errorf("bot messages = %+v", msgs)
	}

	// Captions: 1024 characters in UTF-16 units.
	_, err = c.SendPhoto(ctx, &bot.SendPhotoParams{ChatID: alice.ID,
		Photo: &models.InputFileUpload{Filename: "p.png", Data: bytes.NewReader(pic)}, Caption: strings.Repeat("😀", 513)})
	if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), CaptionTooLong) {
		t.Errorf("a 1026-unit caption: %v, want %q", err, CaptionTooLong)
	}
	if _, err = c.SendPhoto(ctx, &bot.SendPhotoParams{ChatID: alice.ID,
		Photo: &models.InputFileUpload{Filename: "p.png", Data: bytes.NewReader(pic)}, Caption: strings.Repeat("😀", 512)}); err != nil {
		t.Errorf("a 1024-unit caption: %v", err)
	}

	// Not a picture; dimensions Telegram refuses.
	for _, tt := range []struct {
		data []byte
		want string
	}{{[]byte("not an image"), ImageProcessFailed}, {pngOf(t, 2100, 100), InvalidDimensions}} {
		_, err := c.SendPhoto(ctx, &bot.SendPhotoParams{ChatID: alice.ID,
			Photo: &models.InputFileUpload{Filename: "p.png", Data: bytes.NewReader(tt.data)}})
		if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("sendPhoto: %v, want %q", err, tt.want)
		}
	}
	// A document takes any bytes.
	if _, err := c.SendDocument(ctx, &bot.SendDocumentParams{ChatID: alice.ID,
		Document: &models.InputFileUpload{Filename: "wide.png", Data: bytes.NewReader(pngOf(t, 2100, 100))}}); err != nil {
		t.Fatal(err)
	}
	if ups := s.Uploads(alice.ID); len(ups) != 3 || ups[2].Method != "sendDocument" || ups[2].Filename != "wide.png" {
		t.Errorf("uploads = %d, last %+v", len(ups), ups[len(ups)-1])
	}
	if _, err := c.SendPhoto(ctx, &bot.SendPhotoParams{ChatID: alice.ID, Photo: &models.InputFileString{Data: "unknown"}}); err == nil {
		t.Error("sendPhoto without a photo succeeded")
	}
}
