package slack

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/slack/slackfake"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// testPNG is a real PNG of w×h pixels whose colour depends on seed.
func testPNG(t testing.TB, w, h, seed int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: uint8(x + seed), G: uint8(y * seed), B: uint8(seed), A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// dataBytes decodes a data: URL's bytes.
func dataBytes(t *testing.T, url string) []byte {
	t.Helper()
	_, b64, ok := strings.Cut(url, ";base64,")
	if !ok || !strings.HasPrefix(url, "data:") {
		t.Fatalf("not a base64 data URL: %.60q", url)
	}
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// lastUser returns the last user message of the i-th model request.
func (h *harness) lastUser(i int) openaitest.Message {
	h.t.Helper()
	reqs := h.ai.Requests()
	if len(reqs) <= i {
		h.t.Fatalf("%d model requests, want more than %d", len(reqs), i)
	}
	msgs := reqs[i].Messages
	for j := len(msgs) - 1; j >= 0; j-- {
		if msgs[j].Role == "user" {
			return msgs[j]
		}
	}
	h.t.Fatalf("no user message in request %d", i)
	return openaitest.Message{}
}

// finalText returns the text the last of the bot's messages in a thread shows.
func (h *harness) finalText(channel, thread string) string {
	h.t.Helper()
	texts := h.lastTexts(channel, thread)
	if len(texts) == 0 {
		h.t.Fatalf("no bot message in %s %s", channel, thread)
	}
	return texts[len(texts)-1]
}

func TestImageInDMWithText(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	pic := testPNG(t, 40, 30, 1)
	m := h.slack.PostFiles(aliceDM, alice, "what colour is this?",
		slackfake.File{ID: "F0PIC", Name: "photo.png", Mimetype: "image/png", Data: pic})
	h.answered(m)

	u := h.lastUser(0)
	if len(u.Images) != 1 || !bytes.Equal(dataBytes(t, u.Images[0]), pic) {
		t.Fatalf("model got %d images, want the photo's exact bytes", len(u.Images))
	}
	if !strings.HasPrefix(u.Images[0], "data:image/png;base64,") {
		t.Errorf("image part %.40q, want a PNG data URL", u.Images[0])
	}
	if u.Content != "what colour is this?" {
		t.Errorf("text %q, want the message's text", u.Content)
	}
	if got := h.finalText(aliceDM, ""); got != "You said: what colour is this?" {
		t.Errorf("reply %q", got)
	}
	if n := h.slack.Downloads("F0PIC"); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
}

func TestImageMentionWithoutText(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	pic := testPNG(t, 20, 20, 2)
	m := h.slack.PostFiles(general, alice, h.mention(""),
		slackfake.File{ID: "F0PIC", Name: "IMG_0001.png", Mimetype: "image/png", Data: pic})
	h.answered(m)

	u := h.lastUser(0)
	if len(u.Images) != 1 || !bytes.Equal(dataBytes(t, u.Images[0]), pic) {
		t.Fatalf("model got %d images, want the photo's exact bytes", len(u.Images))
	}
	if !strings.Contains(u.Content, "No text came with this file") {
		t.Errorf("text %q, want the engine's stand-in for no text (not the help)", u.Content)
	}
	if msgs := h.slack.BotMessages(general, m.TS); len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, "You said:") {
		t.Errorf("thread replies %+v", msgs)
	}
	// The message and app_mention events both carry the file: one download.
	if n := h.slack.Downloads("F0PIC"); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
}

func TestImageStaysForFollowUp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	pic := testPNG(t, 30, 30, 3)
	m := h.slack.PostFiles(general, alice, h.mention("look at this"),
		slackfake.File{Name: "chart.png", Mimetype: "image/png", Data: pic})
	h.answered(m)
	f := h.slack.PostInThread(general, m.TS, alice, "and what is the title?")
	h.answered(f)

	reqs := h.ai.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model requests", len(reqs))
	}
	var users []openaitest.Message
	for _, msg := range reqs[1].Messages {
		if msg.Role == "user" {
			users = append(users, msg)
		}
	}
	if len(users) != 2 || len(users[0].Images) != 1 || !bytes.Equal(dataBytes(t, users[0].Images[0]), pic) {
		t.Fatalf("follow-up's context: %d user messages, want the photo kept in the first", len(users))
	}
	if len(users[1].Images) != 0 {
		t.Errorf("the follow-up itself has %d images", len(users[1].Images))
	}
}

func TestPDFAndTextFiles(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	pdf := []byte("%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n%%EOF\n")
	m := h.slack.PostFiles(aliceDM, alice, "summarise",
		slackfake.File{Name: "report.pdf", Mimetype: "application/pdf", Filetype: "pdf", Data: pdf})
	h.answered(m)
	u := h.lastUser(0)
	if len(u.Files) != 1 || u.Files[0].Name != "report.pdf" || !bytes.Equal(dataBytes(t, u.Files[0].DataURL), pdf) {
		t.Fatalf("model's file parts %+v, want report.pdf with its bytes", u.Files)
	}

	md := "# Plan\n\n- ship it\n"
	m = h.slack.PostFiles(aliceDM, alice, "",
		slackfake.File{Name: "plan.md", Mimetype: "text/markdown", Filetype: "markdown", Data: []byte(md)})
	h.answered(m)
	u = h.lastUser(1)
	if !strings.Contains(u.Content, "File plan.md:\n```\n# Plan\n\n- ship it\n```") {
		t.Errorf("text file inline: %q", u.Content)
	}
}

func TestUnsupportedFile(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	m := h.slack.PostFiles(aliceDM, alice, "",
		slackfake.File{Name: "backup.zip", Mimetype: "application/zip", Data: []byte("PK\x03\x04\x00\x00binary")})
	h.answered(m)
	if got := h.finalText(aliceDM, ""); !strings.Contains(got, "I can't read") || !strings.Contains(got, "backup.zip") {
		t.Errorf("reply %q, want a note naming the file and what I read", got)
	}
	if n := len(h.ai.Requests()); n != 0 {
		t.Errorf("%d model requests, want none", n)
	}
}

func TestTooLargeFiles(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, func(c *Config) { c.MaxFileBytes = 10_000 })
	big := bytes.Repeat([]byte("a"), 30_000)
	m := h.slack.PostFiles(aliceDM, alice, "read this",
		slackfake.File{ID: "F0BIG", Name: "big.txt", Mimetype: "text/plain", Data: big})
	h.answered(m)
	got := h.finalText(aliceDM, "")
	if !strings.Contains(got, "too large") || !strings.Contains(got, "29 KB") || !strings.Contains(got, "10 KB") {
		t.Errorf("reply %q, want a refusal with the sizes", got)
	}
	if n := h.slack.Downloads("F0BIG"); n != 0 {
		t.Errorf("%d downloads of a file known to be too large, want none", n)
	}

	// A file larger than Slack said is cut off at the limit.
	m = h.slack.PostFiles(aliceDM, alice, "and this",
		slackfake.File{ID: "F0LIAR", Name: "small.txt", Mimetype: "text/plain", Data: big, Size: 100})
	h.answered(m)
	if got := h.finalText(aliceDM, ""); !strings.Contains(got, "too large") || !strings.Contains(got, "more than Slack said") {
		t.Errorf("reply %q, want a refusal", got)
	}
	if n := h.slack.Downloads("F0LIAR"); n != 1 {
		t.Errorf("%d downloads, want 1 (stopped at the limit)", n)
	}
	if n := len(h.ai.Requests()); n != 0 {
		t.Errorf("%d model requests, want none", n)
	}
}

func TestAudioClipTranscribed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	// The answer waits a moment, so that the transcript shows on its own first.
	h.ai.SetHandler(func(r openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Tokens: openaitest.Tokenize("You said: " + r.LastUser()), FirstDelay: 1500 * time.Millisecond}
	})
	clip := bytes.Repeat([]byte{0x1a, 0x45, 0xdf, 0xa3}, 750) // 3000 bytes
	m := h.slack.PostFiles(aliceDM, alice, "",
		slackfake.File{Name: "audio_message.webm", Mimetype: "audio/webm", Filetype: "webm", Subtype: "slack_audio", Data: clip})
	h.answered(m)

	ups := h.ai.Uploads()
	if len(ups) != 1 || ups[0].Filename != "audio_message.webm" || !bytes.Equal(ups[0].Data, clip) || ups[0].Model != "gpt-transcribe" {
		t.Fatalf("transcription uploads %+v", ups)
	}
	said := openaitest.Transcript("audio_message.webm", len(clip))
	if u := h.lastUser(0); u.Content != said {
		t.Errorf("model got %q, want the transcript as the message", u.Content)
	}
	msgs := h.slack.BotMessages(aliceDM, "")
	if len(msgs) != 1 {
		t.Fatalf("%d bot messages", len(msgs))
	}
	quote := "> " + conversation.TranscriptMark + said
	final := msgs[0].Text
	if !strings.HasPrefix(final, quote) || !strings.Contains(final, "You said: "+said) {
		t.Errorf("final %q, want the transcript quoted, then the answer", final)
	}
	shownFirst := slices.ContainsFunc(msgs[0].History, func(s string) bool {
		return strings.HasPrefix(s, quote) && !strings.Contains(s, "You said")
	})
	if !shownFirst {
		t.Errorf("history %q: the transcript was never shown before the answer", msgs[0].History)
	}
}

func TestDownloadFailures(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	pic := testPNG(t, 8, 8, 4)

	// One failure: the second attempt gets the file.
	h.slack.FailDownloads("F0ONCE", 1)
	m := h.slack.PostFiles(aliceDM, alice, "first", slackfake.File{ID: "F0ONCE", Name: "a.png", Mimetype: "image/png", Data: pic})
	h.answered(m)
	if n := len(h.ai.Requests()); n != 1 || h.slack.Downloads("F0ONCE") != 2 {
		t.Errorf("%d model requests, %d downloads; want 1 and 2", n, h.slack.Downloads("F0ONCE"))
	}

	// Two failures: a short note, and the bot goes on serving.
	h.slack.FailDownloads("F0TWICE", 2)
	m = h.slack.PostFiles(aliceDM, alice, "second", slackfake.File{ID: "F0TWICE", Name: "b.png", Mimetype: "image/png", Data: pic})
	h.answered(m)
	if got := h.finalText(aliceDM, ""); !strings.Contains(got, "could not download") || !strings.Contains(got, "b.png") {
		t.Errorf("reply %q, want a note that the download failed", got)
	}
	m = h.slack.Post(aliceDM, alice, "still there?")
	h.answered(m)
	if got := h.finalText(aliceDM, ""); got != "You said: still there?" {
		t.Errorf("reply after the failure %q", got)
	}
	if n := len(h.ai.Requests()); n != 2 {
		t.Errorf("%d model requests, want 2", n)
	}
}

func TestNoFilesReadScope(t *testing.T) {
	t.Parallel()
	for _, noRedirect := range []bool{false, true} {
		t.Run(fmt.Sprint("page without redirect ", noRedirect), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, slackfake.Options{NoFilesRead: true, SignInWithoutRedirect: noRedirect}, nil)
			m := h.slack.PostFiles(aliceDM, alice, "what is it?",
				slackfake.File{Name: "a.png", Mimetype: "image/png", Data: testPNG(t, 4, 4, 5)})
			h.answered(m)
			if got := h.finalText(aliceDM, ""); !strings.Contains(got, "files:read") || !strings.Contains(got, "sign-in") {
				t.Errorf("reply %q, want a note that the app needs files:read", got)
			}
			if n := len(h.ai.Requests()); n != 0 {
				t.Errorf("%d model requests, want none (the sign-in page is not an image)", n)
			}
		})
	}
}

func TestFilesOnlyByID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	pic := testPNG(t, 6, 6, 6)
	// In shared channels Slack may send a file's id only.
	m := h.slack.PostFiles(aliceDM, alice, "shared", slackfake.File{ID: "F0SHARED", Name: "s.png",
		Mimetype: "image/png", Data: pic, CheckFileInfo: true})
	h.answered(m)
	if h.slack.Calls("files.info") != 1 || h.slack.Downloads("F0SHARED") != 1 {
		t.Errorf("files.info %d, downloads %d; want 1 and 1", h.slack.Calls("files.info"), h.slack.Downloads("F0SHARED"))
	}
	if u := h.lastUser(0); len(u.Images) != 1 || !bytes.Equal(dataBytes(t, u.Images[0]), pic) {
		t.Errorf("model got %d images", len(u.Images))
	}

	// A file linked from elsewhere is not downloaded.
	m = h.slack.PostFiles(aliceDM, alice, "", slackfake.File{ID: "F0DRIVE", Name: "Plan", Mimetype: "application/vnd.google-apps.document", External: true})
	h.answered(m)
	if got := h.finalText(aliceDM, ""); !strings.Contains(got, "outside Slack") {
		t.Errorf("reply %q", got)
	}
}

func TestImageCommandInThread(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	m := h.slack.Post(general, alice, h.mention("image a red fox in the snow"))
	h.answered(m)

	calls, pics := h.ai.ImageCalls(), h.ai.Images()
	if len(calls) != 1 || calls[0].Prompt != "a red fox in the snow" || calls[0].Model != "gpt-image-2" {
		t.Fatalf("image calls %+v", calls)
	}
	ups := h.slack.Uploads()
	if len(ups) != 1 {
		t.Fatalf("%d uploads", len(ups))
	}
	u := ups[0]
	if !bytes.Equal(u.Data, pics[0]) || u.Length != len(pics[0]) {
		t.Errorf("uploaded %d bytes, want the model's %d exactly", len(u.Data), len(pics[0]))
	}
	if u.Channel != general || u.ThreadTS != m.TS || !strings.Contains(u.InitialComment, "a red fox in the snow") ||
		u.Filename != "picture.png" {
		t.Errorf("upload %+v, want it in the thread with the prompt as comment", u)
	}
	// The drawing placeholder made way for the picture.
	msgs := h.slack.BotMessages(general, m.TS)
	if len(msgs) != 1 || len(msgs[0].Files) != 1 || msgs[0].Files[0] != u.FileID {
		t.Errorf("thread %+v, want only the picture's message", msgs)
	}
	var drawing bool
	for _, s := range h.slack.Statuses() {
		drawing = drawing || (s.Channel == general && s.ThreadTS == m.TS && s.Status == drawingStatus)
	}
	if d := h.slack.Deleted(); d != 0 || !drawing {
		t.Errorf("%d messages deleted, statuses %v: want the drawing status in the thread, no placeholder",
			d, h.slack.Statuses())
	}
	if n := len(h.ai.Requests()); n != 0 {
		t.Errorf("%d chat requests for a picture", n)
	}

	// The history says a picture was made, so a follow-up makes sense.
	f := h.slack.PostInThread(general, m.TS, alice, "make it blue")
	h.answered(f)
	if texts := h.userTexts(0); len(texts) != 2 || !strings.Contains(texts[0], "/image a red fox in the snow") {
		t.Errorf("follow-up context %q", texts)
	}
}

func TestImageCommandInDM(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	m := h.slack.Post(aliceDM, alice, "image a lighthouse at dawn")
	h.answered(m)
	ups := h.slack.Uploads()
	if len(ups) != 1 || ups[0].Channel != aliceDM || ups[0].ThreadTS != "" || !bytes.Equal(ups[0].Data, h.ai.Images()[0]) {
		t.Fatalf("uploads %+v", ups)
	}

	// In a DM's thread the assistant status shows while drawing.
	th := h.slack.PostInThread(aliceDM, m.TS, alice, "!image a boat")
	h.answered(th)
	ups = h.slack.Uploads()
	if len(ups) != 2 || ups[1].ThreadTS != m.TS || !bytes.Equal(ups[1].Data, h.ai.Images()[1]) {
		t.Fatalf("uploads %+v", ups)
	}
	var drawing bool
	for _, s := range h.slack.Statuses() {
		drawing = drawing || (s.Channel == aliceDM && s.ThreadTS == m.TS && s.Status == drawingStatus)
	}
	if !drawing {
		t.Errorf("statuses %+v, want %q in the thread", h.slack.Statuses(), drawingStatus)
	}

	// The help names the words.
	hm := h.slack.Post(aliceDM, alice, "!help")
	h.answered(hm)
	if got := h.finalText(aliceDM, ""); !strings.Contains(got, "image PROMPT") || !strings.Contains(got, "audio clips") {
		t.Errorf("help %q, want the image word and the files I read", got)
	}

	// A caption starting with "image" is a question about the file, not a command.
	pic := testPNG(t, 5, 5, 7)
	q := h.slack.PostFiles(aliceDM, alice, "image quality: good enough?", slackfake.File{Name: "q.png", Mimetype: "image/png", Data: pic})
	h.answered(q)
	if n := len(h.ai.ImageCalls()); n != 2 {
		t.Errorf("%d image calls, want 2", n)
	}
	if u := h.lastUser(0); u.Content != "image quality: good enough?" || len(u.Images) != 1 {
		t.Errorf("model got %q with %d images", u.Content, len(u.Images))
	}
}

func TestDailyImageLimit(t *testing.T) {
	t.Parallel()
	h := buildHarness(t, slackfake.Options{}, nil)
	h.engineCfg.DailyImagesPerUser = 1
	h.start()
	t.Cleanup(h.shutdown)
	m := h.slack.Post(aliceDM, alice, "image a cat")
	h.answered(m)
	m = h.slack.Post(aliceDM, alice, "image a dog")
	h.answered(m)
	if got := h.finalText(aliceDM, ""); !strings.Contains(got, "1 pictures for today") {
		t.Errorf("reply %q, want the daily limit", got)
	}
	if n, u := len(h.ai.ImageCalls()), len(h.slack.Uploads()); n != 1 || u != 1 {
		t.Errorf("%d image calls and %d uploads, want 1 and 1", n, u)
	}
}

func TestImageUploadWithoutFilesWrite(t *testing.T) {
	t.Parallel()
	h := newHarness(t, slackfake.Options{}, nil)
	h.slack.SetFault(func(method string, _ url.Values) *slackfake.Fault {
		if method == "files.getUploadURLExternal" {
			return &slackfake.Fault{Error: "missing_scope"}
		}
		return nil
	})
	m := h.slack.Post(general, alice, h.mention("image a tree"))
	h.answered(m)
	msgs := h.slack.BotMessages(general, m.TS)
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "files:write") || !strings.Contains(msgs[0].Text, "a tree") {
		t.Errorf("thread %+v, want the placeholder replaced by a note about files:write", msgs)
	}
}

// countingTools offers one tool, to see where tools are offered.
type countingTools struct{}

func (countingTools) List(context.Context) ([]conversation.Tool, error) {
	return []conversation.Tool{{Name: "clock", Description: "the time",
		Parameters: []byte(`{"type":"object","properties":{}}`)}}, nil
}

func (countingTools) Call(context.Context, string, string) (string, error) { return "noon", nil }

func TestToolsOnlyInDMs(t *testing.T) {
	t.Parallel()
	h := buildHarness(t, slackfake.Options{}, nil)
	h.engineCfg.Tools = countingTools{}
	h.start()
	t.Cleanup(h.shutdown)
	m := h.slack.Post(aliceDM, alice, "hi")
	h.answered(m)
	c := h.slack.Post(general, alice, h.mention("hi"))
	h.answered(c)
	reqs := h.ai.Requests()
	if len(reqs) != 2 || !slices.Contains(reqs[0].Tools, "clock") || len(reqs[1].Tools) != 0 {
		t.Errorf("tools offered: DM %v, channel %v; want only in the DM", reqs[0].Tools, reqs[1].Tools)
	}
}

func TestManyLargeImagesAtOnce(t *testing.T) {
	t.Parallel()
	const n = 20
	// Edits are not what this test is about: a budget that does not hold the
	// replies back (Slack's own limit raised to match).
	h := buildHarness(t, slackfake.Options{DownloadDelay: 20 * time.Millisecond, UpdateLimit: 1000},
		func(c *Config) { c.UpdatesPerMinute, c.UpdateBurst = 1000, 50 })
	var mu sync.Mutex
	inModel, mostInModel := 0, 0
	h.ai.SetHandler(func(r openaitest.Request) openaitest.Reply {
		mu.Lock()
		inModel++
		mostInModel = max(mostInModel, inModel)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond) // a model call takes a while
		mu.Lock()
		inModel--
		mu.Unlock()
		return openaitest.Text("seen")
	})
	h.start()
	t.Cleanup(h.shutdown)
	pic := append(testPNG(t, 16, 16, 8), bytes.Repeat([]byte{0}, 256<<10)...) // 256 KB (race-detector speed), one array for all
	var msgs []slackfake.UserMessage
	for i := range n {
		dm := fmt.Sprintf("D0USER%02d", i)
		msgs = append(msgs, h.slack.PostFiles(dm, alice, "what is this?",
			slackfake.File{Name: "big.png", Mimetype: "image/png", Data: pic}))
	}
	for _, m := range msgs {
		h.answered(m)
	}
	if got := h.slack.MaxConcurrentDownloads(); got > DefaultMaxDownloads {
		t.Errorf("%d downloads at once, want at most %d", got, DefaultMaxDownloads)
	}
	if mostInModel > DefaultMaxDownloads {
		t.Errorf("%d messages with files in the model at once, want at most %d", mostInModel, DefaultMaxDownloads)
	}
	reqs := h.ai.Requests()
	if len(reqs) != n {
		t.Fatalf("%d model requests, want %d", len(reqs), n)
	}
	for i, r := range reqs {
		if u := r.Messages[len(r.Messages)-1]; len(u.Images) != 1 || !bytes.Equal(dataBytes(t, u.Images[0]), pic) {
			t.Errorf("request %d: the image is not the file's bytes", i)
		}
	}
	for _, m := range msgs {
		if got := h.finalText(m.Channel, ""); got != "seen" {
			t.Errorf("%s: reply %q", m.Channel, got)
		}
	}
}
