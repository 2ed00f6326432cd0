package telegram_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/chatbot-dev/chatbot/bots/telegram"
	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// jpegOf makes a real w×h JPEG whose colours depend on seed.
func jpegOf(t testing.TB, w, h, seed int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: uint8(x * seed), G: uint8(y + seed), B: uint8(seed * 40), A: 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func dataURL(mime string, data []byte) string {
	return "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(data)
}

// lastUser returns the last user message of a model call.
func lastUser(t *testing.T, r openaitest.Request) openaitest.Message {
	t.Helper()
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i]
		}
	}
	t.Fatalf("no user message in %+v", r.Messages)
	return openaitest.Message{}
}

// onePDF is a one-page PDF.
const onePDF = "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n" +
	"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n" +
	"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"

func TestPhotoWithCaption(t *testing.T) {
	h := newHarness(t)
	pic := jpegOf(t, 640, 480, 3)
	h.tg.Inject(telegramtest.Incoming{From: alice, Media: telegramtest.Photo(pic), Caption: "what is in this photo?"})
	h.waitReply(alice.ID, 1, "You said: what is in this photo?")

	got := lastUser(t, h.ai.Requests()[0])
	if got.Content != "what is in this photo?" {
		t.Errorf("model got text %q, want the caption", got.Content)
	}
	if len(got.Images) != 1 || got.Images[0] != dataURL("image/jpeg", pic) {
		t.Errorf("model got %d images, want the photo's exact bytes as a data URL", len(got.Images))
	}
	// Only the largest size was downloaded, once.
	if d := h.tg.Downloads(); len(d) != 1 || d[0].Bytes != len(pic) {
		t.Errorf("downloads = %+v, want the full photo once", d)
	}
	if a := h.tg.ChatActions(alice.ID); len(a) == 0 || a[0].Action != "typing" {
		t.Errorf("want typing while the photo downloads and the answer starts, got %+v", a)
	}
}

func TestPhotoWithoutCaptionStaysInContext(t *testing.T) {
	h := newHarness(t)
	pic := jpegOf(t, 320, 200, 5)
	h.tg.Inject(telegramtest.Incoming{From: alice, Media: telegramtest.Photo(pic)})
	h.waitReply(alice.ID, 1, "You said: ")
	first := lastUser(t, h.ai.Requests()[0])
	if len(first.Images) != 1 || first.Images[0] != dataURL("image/jpeg", pic) {
		t.Fatalf("model got images %d, want the photo", len(first.Images))
	}
	if !strings.Contains(first.Content, "describe") {
		t.Errorf("a photo without a caption reached the model as %q, want it asked to describe it", first.Content)
	}

	h.say(alice, telegramtest.Chat{}, "and what colour is it?")
	h.waitReply(alice.ID, 2, "You said: and what colour is it?")
	var withImage []string
	for _, m := range h.ai.Requests()[1].Messages {
		if m.Role == "user" && len(m.Images) > 0 {
			withImage = append(withImage, m.Images...)
		}
	}
	if len(withImage) != 1 || withImage[0] != dataURL("image/jpeg", pic) {
		t.Errorf("the follow-up's context holds %d images, want the earlier photo", len(withImage))
	}
	if n := len(h.tg.Downloads()); n != 1 {
		t.Errorf("%d downloads, want 1: the follow-up takes the photo from the store", n)
	}
}

func TestPhotoInGroup(t *testing.T) {
	h := newHarness(t)
	me := "@" + h.tg.Bot.Username
	pic := jpegOf(t, 100, 100, 7)
	h.tg.Inject(telegramtest.Incoming{From: bob, Chat: club, Media: telegramtest.Photo(pic), Caption: "just my cat"})
	m := h.tg.Inject(telegramtest.Incoming{From: bob, Chat: club, Media: telegramtest.Photo(pic), Caption: me + " what breed is it?"})
	msgs := h.waitReply(club.ID, 1, "You said: Bob: what breed is it?")
	if msgs[0].ReplyTo != m.MessageID {
		t.Errorf("the answer quotes %d, want the photo %d", msgs[0].ReplyTo, m.MessageID)
	}
	if got := lastUser(t, h.ai.Requests()[0]); len(got.Images) != 1 || got.Images[0] != dataURL("image/jpeg", pic) {
		t.Errorf("model got %d images, want the photo", len(got.Images))
	}
	if n := len(h.tg.CallsTo("getFile")); n != 1 {
		t.Errorf("getFile called %d times, want once: a photo that does not call the bot is not downloaded", n)
	}
}

func TestPDFAndTextFiles(t *testing.T) {
	h := newHarness(t)
	h.tg.Inject(telegramtest.Incoming{From: alice, Media: telegramtest.Document("report.pdf", "application/pdf", []byte(onePDF)),
		Caption: "summarise this"})
	h.waitReply(alice.ID, 1, "You said: summarise this")
	got := lastUser(t, h.ai.Requests()[0])
	if len(got.Files) != 1 || got.Files[0].Name != "report.pdf" || got.Files[0].DataURL != dataURL("application/pdf", []byte(onePDF)) {
		t.Errorf("model got files %+v, want report.pdf's exact bytes", got.Files)
	}

	csv := "name,score\nann,3\nbob,5\n"
	h.tg.Inject(telegramtest.Incoming{From: alice, Media: telegramtest.Document("scores.csv", "text/csv", []byte(csv))})
	h.waitReply(alice.ID, 2, "scores.csv")
	got = lastUser(t, h.ai.Requests()[1])
	if !strings.Contains(got.Content, "File scores.csv:") || !strings.Contains(got.Content, "ann,3\nbob,5") || len(got.Files) != 0 {
		t.Errorf("model got %q (files %d), want the CSV inline with its name", got.Content, len(got.Files))
	}
}

func TestUnsupportedFile(t *testing.T) {
	h := newHarness(t)
	zip := []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00 a zip archive")
	h.tg.Inject(telegramtest.Incoming{From: alice, Media: telegramtest.Document("archive.zip", "application/zip", zip)})
	msgs := h.waitReply(alice.ID, 1, "archive.zip")
	if text := msgs[0].Last().Text; !strings.Contains(text, "I can't read archive.zip") || !strings.Contains(text, "PDF") {
		t.Errorf("note = %q, want what the bot reads", text)
	}
	h.tg.Inject(telegramtest.Incoming{From: alice, Media: telegramtest.Video([]byte("a video"))})
	h.waitReply(alice.ID, 2, "I can't read videos")
	if n := len(h.ai.Requests()); n != 0 {
		t.Errorf("model called %d times, want none", n)
	}
	if n := len(h.tg.CallsTo("getFile")); n != 0 {
		t.Errorf("getFile called %d times: a file the bot cannot read is not downloaded", n)
	}
}

func TestTooLargeFiles(t *testing.T) {
	h := newHarness(t, adapter(func(o *telegram.Options) { o.MaxFileBytes = 1 << 20 }))
	h.tg.Inject(telegramtest.Incoming{From: alice, Media: telegramtest.Document("big.pdf", "application/pdf", make([]byte, 2<<20))})
	msgs := h.waitReply(alice.ID, 1, "too large")
	if text := msgs[0].Last().Text; !strings.Contains(text, "(2 MB)") || !strings.Contains(text, "up to 1 MB") {
		t.Errorf("note = %q, want the size and the limit", text)
	}
	// Its size not told: the download stops at the Content-Length (readBounded
	// stops after the limit when there is none).
	h.tg.Inject(telegramtest.Incoming{From: alice, Media: &telegramtest.Media{Kind: "document", Name: "big.txt",
		MIME: "text/plain", Data: bytes.Repeat([]byte("x"), 3<<20), NoSize: true}})
	msgs = h.waitReply(alice.ID, 2, "too large")
	if text := msgs[1].Last().Text; !strings.Contains(text, "(3 MB)") {
		t.Errorf("note = %q, want the size", text)
	}
	if n := len(h.ai.Requests()); n != 0 {
		t.Errorf("model called %d times, want none", n)
	}
	h.waitFor("the download's record", func() bool { return len(h.tg.Downloads()) > 0 })
	if d := h.tg.Downloads(); len(d) != 1 || len(h.tg.CallsTo("getFile")) != 1 {
		t.Errorf("downloads %+v and %d getFile calls, want only the file of unknown size downloaded", d, len(h.tg.CallsTo("getFile")))
	}
}

func TestFileOverTelegramsLimit(t *testing.T) {
	h := newHarness(t, adapter(func(o *telegram.Options) { o.MaxFileBytes = 30 << 20 }))
	h.tg.Inject(telegramtest.Incoming{From: alice, Media: &telegramtest.Media{Kind: "document", Name: "huge.pdf",
		MIME: "application/pdf", Data: make([]byte, telegramtest.MaxDownloadSize+1), NoSize: true}})
	msgs := h.waitReply(alice.ID, 1, "too large")
	if text := msgs[0].Last().Text; !strings.Contains(text, "up to 20 MB") {
		t.Errorf("note = %q, want Telegram's 20 MB named", text)
	}
	if n := len(h.tg.Downloads()); n != 0 {
		t.Errorf("%d downloads, want none after getFile's refusal", n)
	}
	if n := len(h.tg.CallsTo("getFile")); n != 1 {
		t.Errorf("getFile called %d times, want once: a refusal is not tried again", n)
	}
}

func TestDownloadFailures(t *testing.T) {
	h := newHarness(t)
	pic := jpegOf(t, 64, 64, 9)
	var failures atomic.Int32
	failures.Store(1)
	h.tg.SetDownloadFault(func(string) int {
		if failures.Add(-1) >= 0 {
			return http.StatusBadGateway
		}
		return 0
	})
	h.tg.Inject(telegramtest.Incoming{From: alice, Media: telegramtest.Photo(pic), Caption: "one"})
	h.waitReply(alice.ID, 1, "You said: one")
	if d := h.tg.Downloads(); len(d) != 2 || d[0].Status != http.StatusBadGateway || d[1].Status != http.StatusOK {
		t.Errorf("downloads = %+v, want a failure then the file", d)
	}

	h.tg.SetDownloadFault(func(string) int { return http.StatusInternalServerError })
	h.tg.Inject(telegramtest.Incoming{From: alice, Media: telegramtest.Photo(pic), Caption: "two"})
	msgs := h.waitReply(alice.ID, 2, "I could not get your photo from Telegram")
	if n := len(h.tg.Downloads()); n != 4 {
		t.Errorf("%d downloads, want two tries of the second photo", n)
	}
	if n := len(h.ai.Requests()); n != 1 {
		t.Errorf("model called %d times, want only for the first photo", n)
	}
	// The bot goes on serving.
	h.tg.SetDownloadFault(nil)
	h.say(alice, telegramtest.Chat{}, "still there?")
	h.waitReply(alice.ID, 3, "You said: still there?")
	checkHTML(t, msgs)
}

// failingTransport fails every request as a broken network does: its error
// quotes the URL, which holds the bot token.
type failingTransport struct{}

func (failingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("dial %s: connection refused", req.URL)
}

func TestDownloadErrorsHideTheToken(t *testing.T) {
	h := newHarness(t, adapter(func(o *telegram.Options) { o.DownloadClient = &http.Client{Transport: failingTransport{}} }))
	h.tg.Inject(telegramtest.Incoming{From: alice, Media: telegramtest.Photo(jpegOf(t, 32, 32, 2))})
	h.waitReply(alice.ID, 1, "I could not get your photo from Telegram")
	if !strings.Contains(h.logs.String(), "download failed") || !strings.Contains(h.logs.String(), conversation.Redacted) {
		t.Errorf("the failure is not logged with the token redacted:\n%s", h.logs.String())
	}
	// (The harness fails the test if the token appears in the logs.)
}

func TestVoiceTranscribedAndAnswered(t *testing.T) {
	h := newHarness(t)
	ogg := []byte("OggS\x00\x02 a voice note of a few seconds")
	h.tg.Inject(telegramtest.Incoming{From: alice, Media: telegramtest.Voice(ogg)})
	want := openaitest.Transcript("voice.ogg", len(ogg))
	msgs := h.waitReply(alice.ID, 1, "You said: "+want)
	if text := msgs[0].Last().Text; !strings.HasPrefix(text, "🎤 "+want) {
		t.Errorf("reply = %q, want the transcript quoted first", text)
	}
	if ents := msgs[0].Last().Entities; len(ents) == 0 || !strings.Contains(ents[0].Type, "blockquote") {
		t.Errorf("the transcript is not a quote: %+v", ents)
	}
	ups := h.ai.Uploads()
	if len(ups) != 1 || !bytes.Equal(ups[0].Data, ogg) || ups[0].Filename != "voice.ogg" || ups[0].Model != "gpt-transcribe" {
		t.Errorf("transcription uploads = %+v, want the voice note's bytes", ups)
	}
	if got := lastUser(t, h.ai.Requests()[0]); got.Content != want {
		t.Errorf("model got %q, want the transcript as the message", got.Content)
	}

	// A video note is transcribed too.
	h.tg.Inject(telegramtest.Incoming{From: alice, Media: telegramtest.VideoNote([]byte("a round video"))})
	h.waitReply(alice.ID, 2, "You said: "+openaitest.Transcript("video_note.mp4", len("a round video")))
	checkHTML(t, h.tg.BotMessages(alice.ID))
}

func TestPrivateFlagOffersTools(t *testing.T) {
	h := newHarness(t, engineConfig(func(c *conversation.Config) { c.Tools = clockTool{} }))
	h.say(alice, telegramtest.Chat{}, "hello")
	h.waitReply(alice.ID, 1, "You said: hello")
	h.say(bob, club, "@"+h.tg.Bot.Username+" hello")
	h.waitReply(club.ID, 1, "You said: Bob: hello")
	reqs := h.ai.Requests()
	if !slices.Contains(reqs[0].Tools, "clock") || len(reqs[1].Tools) != 0 {
		t.Errorf("tools offered: private %v, group %v; want them in the private chat only", reqs[0].Tools, reqs[1].Tools)
	}
}

// clockTool is a tool that tells the time.
type clockTool struct{}

func (clockTool) List(context.Context) ([]conversation.Tool, error) {
	return []conversation.Tool{{Name: "clock", Description: "The time now", Parameters: []byte(`{"type":"object","properties":{}}`)}}, nil
}

func (clockTool) Call(context.Context, string, string) (string, error) { return "12:00", nil }

func TestImageCommand(t *testing.T) {
	h := newHarness(t)
	h.say(alice, telegramtest.Chat{}, "/image a red fox in the snow")
	h.waitFor("the picture", func() bool { return len(h.tg.Uploads(alice.ID)) == 1 })
	up := h.tg.Uploads(alice.ID)[0]
	if imgs := h.ai.Images(); len(imgs) != 1 || !bytes.Equal(up.Data, imgs[0]) {
		t.Errorf("uploaded %d bytes, want exactly the picture the model made", len(up.Data))
	}
	if up.Method != "sendPhoto" || up.Caption != "🎨 a red fox in the snow" || up.ReplyTo != 0 {
		t.Errorf("upload = %s caption %q replying to %d", up.Method, up.Caption, up.ReplyTo)
	}
	if calls := h.ai.ImageCalls(); len(calls) != 1 || calls[0].Prompt != "a red fox in the snow" || calls[0].Model != "gpt-image-2" {
		t.Errorf("image calls = %+v", calls)
	}
	var drawing bool
	for _, a := range h.tg.ChatActions(alice.ID) {
		drawing = drawing || a.Action == "upload_photo"
		if a.Action == "upload_photo" && a.At.After(up.At) {
			t.Errorf("upload_photo shown after the picture: %+v", a)
		}
	}
	if !drawing {
		t.Errorf("no upload_photo action while drawing: %+v", h.tg.ChatActions(alice.ID))
	}

	// In a group: the picture answers the command; a follow-up knows of it.
	m := h.say(bob, club, "/image@"+h.tg.Bot.Username+" a cat")
	h.waitFor("the group's picture", func() bool { return len(h.tg.Uploads(club.ID)) == 1 })
	if got := h.tg.Uploads(club.ID)[0]; got.ReplyTo != m.MessageID || got.Caption != "🎨 a cat" {
		t.Errorf("group picture replies to %d with %q, want the command %d", got.ReplyTo, got.Caption, m.MessageID)
	}
	h.tg.Inject(telegramtest.Incoming{From: alice, Chat: forum, ThreadID: 7, Text: "/image a map"})
	h.waitFor("the topic's picture", func() bool { return len(h.tg.Uploads(forum.ID)) == 1 })
	if got := h.tg.Uploads(forum.ID)[0]; got.ThreadID != 7 {
		t.Errorf("the picture went to topic %d, want 7", got.ThreadID)
	}
	h.say(bob, club, "@"+h.tg.Bot.Username+" make it bigger")
	h.waitReply(club.ID, 2, "make it bigger")
	var history []string
	for _, msg := range h.ai.Requests()[0].Messages {
		history = append(history, msg.Content)
	}
	if !strings.Contains(strings.Join(history, "\n"), "a cat") {
		t.Errorf("the follow-up's context %q does not say a picture of a cat was made", history)
	}
}

func TestImageCaptionFitsTelegram(t *testing.T) {
	h := newHarness(t)
	h.say(alice, telegramtest.Chat{}, "/image "+strings.Repeat("😀", 1000))
	h.waitFor("the picture", func() bool { return len(h.tg.Uploads(alice.ID)) == 1 })
	c := h.tg.Uploads(alice.ID)[0].Caption
	if n := len(utf16.Encode([]rune(c))); n > telegramtest.MaxCaptionLength || !strings.HasSuffix(c, "…") {
		t.Errorf("caption of %d UTF-16 units (ends %q), want at most 1024 and cut with …", n, c[len(c)-6:])
	}
}

func TestImageAsDocumentWhenPhotoRefused(t *testing.T) {
	h := newHarness(t)
	h.tg.SetFault(func(c telegramtest.Call) *telegramtest.APIError {
		if c.Method == "sendPhoto" {
			return telegramtest.BadRequest(telegramtest.InvalidDimensions)
		}
		return nil
	})
	h.say(alice, telegramtest.Chat{}, "/image a very wide panorama")
	h.waitFor("the picture", func() bool { return len(h.tg.Uploads(alice.ID)) == 1 })
	up := h.tg.Uploads(alice.ID)[0]
	if up.Method != "sendDocument" || !bytes.Equal(up.Data, h.ai.Images()[0]) || up.Caption != "🎨 a very wide panorama" {
		t.Errorf("upload = %s, %d bytes, %q; want the picture as a document", up.Method, len(up.Data), up.Caption)
	}
}

func TestImageWaitsOutFloodControl(t *testing.T) {
	h := newHarness(t)
	var limited atomic.Bool
	h.tg.SetFault(func(c telegramtest.Call) *telegramtest.APIError {
		if c.Method == "sendPhoto" && limited.CompareAndSwap(false, true) {
			return telegramtest.TooManyRequests(1)
		}
		return nil
	})
	h.say(alice, telegramtest.Chat{}, "/image a lighthouse")
	h.waitFor("the picture", func() bool { return len(h.tg.Uploads(alice.ID)) == 1 })
	calls := h.tg.CallsTo("sendPhoto")
	if len(calls) != 2 || calls[0].ErrorCode != 429 || calls[1].At.Sub(calls[0].At) < time.Second {
		t.Errorf("sendPhoto calls = %+v, want a 429 then the picture after retry_after", calls)
	}
}

func TestImageTakesItsTurn(t *testing.T) {
	h := newHarness(t)
	h.ai.Enqueue(openaitest.Reply{Tokens: openaitest.Tokenize("The first answer."), FirstDelay: 300 * time.Millisecond})
	h.say(alice, telegramtest.Chat{}, "first")
	h.say(alice, telegramtest.Chat{}, "/image a boat")
	h.waitFor("the picture", func() bool { return len(h.tg.Uploads(alice.ID)) == 1 })
	msgs := h.tg.BotMessages(alice.ID)
	if len(msgs) != 2 || msgs[0].Last().Text != "The first answer." || msgs[1].Upload == nil {
		t.Fatalf("bot messages = %+v, want the first answer, then the picture", msgs)
	}
	if !msgs[1].Versions[0].At.After(msgs[0].Last().At) {
		t.Error("the picture was posted before the earlier message's answer was final")
	}
}

func TestDailyImageLimit(t *testing.T) {
	h := newHarness(t, engineConfig(func(c *conversation.Config) { c.DailyImagesPerUser = 1 }))
	h.say(alice, telegramtest.Chat{}, "/image one")
	h.waitFor("the picture", func() bool { return len(h.tg.Uploads(alice.ID)) == 1 })
	h.say(alice, telegramtest.Chat{}, "/image two")
	h.waitReply(alice.ID, 2, "You have made your 1 pictures for today")
	h.say(alice, telegramtest.Chat{}, "/usage")
	h.waitReply(alice.ID, 3, "Pictures today: 1 of 1.")
	if n := len(h.ai.ImageCalls()); n != 1 {
		t.Errorf("%d image calls, want 1", n)
	}
	if n := len(h.tg.Uploads(alice.ID)); n != 1 {
		t.Errorf("%d pictures posted, want 1", n)
	}
}

func TestFileMemoryBoundsDownloads(t *testing.T) {
	const size = 256 << 10
	pic := paddedJPEG(t, size)
	users, ids := someUsers(8)
	h := newHarness(t, adapter(func(o *telegram.Options) {
		o.AllowedUserIDs = ids
		o.MaxFileBytes, o.FileMemory = size, 2*size
	}))
	h.tg.SetDownloadDelay(200 * time.Millisecond)
	for _, u := range users {
		h.tg.Inject(telegramtest.Incoming{From: u, Media: telegramtest.Photo(pic), Caption: "hi " + u.FirstName})
	}
	for _, u := range users {
		h.waitReply(u.ID, 1, "You said: hi "+u.FirstName)
	}
	if n := h.tg.MaxConcurrentDownloads(); n != 2 {
		t.Errorf("at most %d downloads ran at once, want 2 (FileMemory holds two photos)", n)
	}
}

// paddedJPEG is a small JPEG padded to size bytes after its end: a picture as
// large as a big photo that costs no time to make.
func paddedJPEG(t testing.TB, size int) []byte {
	pic := jpegOf(t, 64, 48, 1)
	return append(pic, make([]byte, size-len(pic))...)
}

// someUsers returns n users and their ids, allowed with alice's.
func someUsers(n int) ([]telegramtest.User, []int64) {
	users := make([]telegramtest.User, n)
	ids := []int64{alice.ID}
	for i := range users {
		users[i] = telegramtest.User{ID: int64(8000 + i), FirstName: fmt.Sprintf("User%d", i)}
		ids = append(ids, users[i].ID)
	}
	return users, ids
}

func TestAlbumAnsweredAsOneMessage(t *testing.T) {
	h := newHarness(t)
	pics := [][]byte{jpegOf(t, 40, 30, 1), jpegOf(t, 40, 30, 2), jpegOf(t, 40, 30, 3)}
	for i, pic := range pics {
		in := telegramtest.Incoming{From: alice, Media: telegramtest.Photo(pic), MediaGroupID: "album-1"}
		if i == 0 {
			in.Caption = "which one is best?"
		}
		h.tg.Inject(in)
	}
	h.waitReply(alice.ID, 1, "You said: which one is best?")
	h.say(alice, telegramtest.Chat{}, "thanks")
	h.waitReply(alice.ID, 2, "You said: thanks")
	reqs := h.ai.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model calls, want one for the album and one for the next message", len(reqs))
	}
	got := lastUser(t, reqs[0])
	if len(got.Images) != 3 {
		t.Fatalf("the album reached the model with %d images, want 3", len(got.Images))
	}
	for i, pic := range pics {
		if got.Images[i] != dataURL("image/jpeg", pic) {
			t.Errorf("image %d is not the album's photo %d", i, i)
		}
	}
	if n := len(live(h.tg.BotMessages(alice.ID))); n != 2 {
		t.Errorf("%d bot messages, want one answer for the album and one for the next message", n)
	}

	// In a group, the caption's mention calls the bot for the whole album.
	me := "@" + h.tg.Bot.Username
	first := h.tg.Inject(telegramtest.Incoming{From: bob, Chat: club, Media: telegramtest.Photo(pics[0]),
		Caption: me + " compare these", MediaGroupID: "album-2"})
	h.tg.Inject(telegramtest.Incoming{From: bob, Chat: club, Media: telegramtest.Photo(pics[1]), MediaGroupID: "album-2"})
	msgs := h.waitReply(club.ID, 1, "You said: Bob: compare these")
	if msgs[0].ReplyTo != first.MessageID {
		t.Errorf("the answer quotes %d, want the album's first message %d", msgs[0].ReplyTo, first.MessageID)
	}
	if got := lastUser(t, h.ai.Requests()[2]); len(got.Images) != 2 {
		t.Errorf("the group's album reached the model with %d images, want 2", len(got.Images))
	}
}

func TestAlbumTooLargeTogether(t *testing.T) {
	const size = 300 << 10
	h := newHarness(t, adapter(func(o *telegram.Options) { o.MaxFileBytes, o.FileMemory = size, 2*size }))
	for range 3 {
		h.tg.Inject(telegramtest.Incoming{From: alice, Media: telegramtest.Photo(paddedJPEG(t, size)), MediaGroupID: "big"})
	}
	msgs := h.waitReply(alice.ID, 1, "too large together")
	if text := msgs[0].Last().Text; !strings.Contains(text, "Your 3 photos") || !strings.Contains(text, "600 KB at once") {
		t.Errorf("note = %q", text)
	}
	if n := len(h.tg.CallsTo("getFile")); n != 0 {
		t.Errorf("getFile called %d times, want none", n)
	}
	// The bot goes on serving, with its memory for files given back.
	h.tg.Inject(telegramtest.Incoming{From: alice, Media: telegramtest.Photo(paddedJPEG(t, size)), Caption: "one"})
	h.waitReply(alice.ID, 2, "You said: one")
}
