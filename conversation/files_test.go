package conversation_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/conversation/conversationtest"
	"github.com/chatbot-dev/chatbot/openai"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store"
)

// testPNG is a real PNG of w×h pixels.
func testPNG(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(0, 0, color.RGBA{R: 255, A: 255})
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

func dataURL(mime string, data []byte) string {
	return "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(data)
}

// send hands a message with files to the engine and returns the final text.
func (h *harness) send(t *testing.T, chat, text string, files ...conversation.Attachment) string {
	t.Helper()
	r := conversationtest.NewReply()
	req := conversation.Request{Chat: conversation.ChatID(chat), UserID: "u1", Text: text, Files: files, Reply: r, UpdateEvery: time.Millisecond}
	if err := h.engine.Handle(context.Background(), req); err != nil {
		t.Fatalf("handle: %v", err)
	}
	got, ok := r.WaitFinal(wait)
	if !ok {
		t.Fatal("no final reply")
	}
	return got
}

func TestPhotoGoesToTheModelWithItsExactBytes(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	pic := testPNG(300, 200)
	h.send(t, "c1", "what is this?", conversation.NewAttachment("photo.jpg", "image/jpeg", pic))
	h.send(t, "c1", "", conversation.NewAttachment("", "", pic))
	h.send(t, "c1", "and the colour?")
	reqs := h.fake.Requests()
	first := reqs[0].Messages[0]
	if first.Content != "what is this?" || len(first.Images) != 1 || first.Images[0] != dataURL("image/png", pic) {
		t.Errorf("first call: %q with %d images; want the caption and the PNG's bytes as a data URL", first.Content, len(first.Images))
	}
	if second := reqs[1].Messages[2]; !strings.Contains(second.Content, "describe it") || len(second.Images) != 1 {
		t.Errorf("a photo without caption sent %q with %d images", second.Content, len(second.Images))
	}
	if kept := reqs[2].Messages[0]; len(kept.Images) != 1 || kept.Images[0] != dataURL("image/png", pic) {
		t.Errorf("a later turn lost the image: %+v", kept)
	}
}

func TestImagesLeaveTheContextBeforeText(t *testing.T) {
	h := newHarness(t, conversation.Config{MaxContextTokens: 1600, ReplyTokens: 100})
	pic := testPNG(1024, 1024) // 765 tokens
	h.send(t, "c1", "first picture", conversation.NewAttachment("a.png", "image/png", pic))
	h.send(t, "c1", "second picture", conversation.NewAttachment("b.png", "image/png", testPNG(1024, 1000)))
	h.send(t, "c1", "compare them")
	last := h.fake.Requests()[2].Messages
	if len(last) != 5 || last[0].Content != "first picture" {
		t.Fatalf("the third call sent %d messages (%q); want all the text", len(last), last[0].Content)
	}
	if len(last[0].Images) != 0 || len(last[2].Images) != 1 {
		t.Errorf("images: first %d, second %d; want only the newer one to fit", len(last[0].Images), len(last[2].Images))
	}
}

func TestPDFAndTextFiles(t *testing.T) {
	h := newHarness(t, conversation.Config{MaxTextFileBytes: 100})
	pdf := []byte("%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n%%EOF")
	h.send(t, "c1", "summarise", conversation.NewAttachment("report.pdf", "application/pdf", pdf))
	h.send(t, "c1", "fix it", conversation.NewAttachment("main.go", "text/x-go", []byte("package main\n")))
	got := h.send(t, "c1", "", conversation.NewAttachment("big.log", "text/plain", bytes.Repeat([]byte("x"), 101)))
	reqs := h.fake.Requests()
	files := reqs[0].Messages[0].Files
	if len(files) != 1 || files[0].Name != "report.pdf" || files[0].DataURL != dataURL("application/pdf", pdf) {
		t.Errorf("the PDF went as %+v", files)
	}
	if want := "fix it\n\nFile main.go:\n```\npackage main\n```"; reqs[1].Messages[2].Content != want {
		t.Errorf("the text file went as %q, want %q", reqs[1].Messages[2].Content, want)
	}
	if !strings.Contains(got, "too large") || len(reqs) != 2 {
		t.Errorf("a text file over the limit: %q after %d calls", got, len(reqs))
	}
}

func TestPDFOnChatCompletionsIsExplained(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	h.fake.NoResponses = true
	got := h.send(t, "c1", "read", conversation.NewAttachment("a.pdf", "application/pdf", []byte("%PDF-1.4")))
	if !strings.Contains(got, "Responses API") {
		t.Errorf("answered %q, want a note that PDFs need the Responses API", got)
	}
}

func TestUnsupportedFileRefusedWithoutModelCall(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	got := h.send(t, "c1", "", conversation.NewAttachment("tool.zip", "application/zip", []byte("PK\x03\x04\x00\x00")))
	if !strings.Contains(got, "tool.zip") || !strings.Contains(got, "images, PDFs") || len(h.fake.Requests()) != 0 {
		t.Errorf("answered %q after %d calls", got, len(h.fake.Requests()))
	}
}

func TestVoiceIsTranscribedShownAndAnswered(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	voice := bytes.Repeat([]byte{1}, 2048)
	got := h.send(t, "c1", "", conversation.NewAttachment("", "audio/ogg", voice))
	up := h.fake.Uploads()
	if len(up) != 1 || !bytes.Equal(up[0].Data, voice) || up[0].Model != openai.DefaultTranscriptionModel || !strings.HasSuffix(up[0].Filename, ".ogg") {
		t.Fatalf("uploads %+v", up)
	}
	said := openaitest.Transcript(up[0].Filename, len(voice))
	if want := "> 🎤 " + said + "\n\nYou said: " + said; got != want {
		t.Errorf("final %q, want %q", got, want)
	}
	msgs, _ := h.db.Recent(context.Background(), "c1", 10)
	if len(msgs) != 2 || msgs[0].Content != said {
		t.Errorf("stored %+v, want the transcript as the user's message", msgs)
	}
}

func TestVoiceFailuresKeepNothing(t *testing.T) {
	h := newHarness(t, conversation.Config{})
	empty := h.send(t, "c1", "", conversation.NewAttachment("v.ogg", "audio/ogg", nil))
	h.fake.FailMedia(openaitest.Error(500, "", "The server had an error"))
	failed := h.send(t, "c1", "", conversation.NewAttachment("v.ogg", "audio/ogg", []byte("OggS....")))
	if !strings.Contains(empty, "empty") || !strings.Contains(failed, "could not transcribe") {
		t.Errorf("answers %q and %q", empty, failed)
	}
	if msgs, _ := h.db.Recent(context.Background(), "c1", 10); len(msgs) != 0 || len(h.fake.Requests()) != 0 {
		t.Errorf("stored %d messages, made %d model calls; want none", len(msgs), len(h.fake.Requests()))
	}
}

// imageReply is a Reply that posts pictures.
type imageReply struct {
	*conversationtest.Reply
	mu      sync.Mutex
	drawing int
	posted  []conversation.Attachment
	caption string
}

func (r *imageReply) Drawing(context.Context) { r.mu.Lock(); r.drawing++; r.mu.Unlock() }

func (r *imageReply) FinishImage(ctx context.Context, img conversation.Attachment, caption string) error {
	r.mu.Lock()
	r.posted, r.caption = append(r.posted, img), caption
	r.mu.Unlock()
	return r.Finish(ctx, caption)
}

func TestImageCommand(t *testing.T) {
	h := newHarness(t, conversation.Config{DailyImagesPerUser: 1, Usage: &store.DB{}})
	draw := func(text string) (*imageReply, string) {
		r := &imageReply{Reply: conversationtest.NewReply()}
		h.engine.Handle(context.Background(), conversation.Request{Chat: "c1", UserID: "u1", Text: text, Reply: r, UpdateEvery: time.Millisecond})
		got, _ := r.WaitFinal(wait)
		return r, got
	}
	r, got := draw("/image a red fox")
	pics := h.fake.Images()
	if len(r.posted) != 1 || len(pics) != 1 || !bytes.Equal(r.posted[0].Data, pics[0]) || r.drawing != 1 {
		t.Fatalf("posted %d pictures (drawing shown %d times); want the fake's PNG", len(r.posted), r.drawing)
	}
	if got != "🎨 a red fox" || h.fake.ImageCalls()[0].Model != openai.DefaultImageModel {
		t.Errorf("caption %q, calls %+v", got, h.fake.ImageCalls())
	}
	if _, again := draw("/image another"); !strings.Contains(again, "1 pictures for today") || len(h.fake.ImageCalls()) != 1 {
		t.Errorf("over the daily limit: %q", again)
	}
	h.say(t, "c1", "make it bigger")
	if msgs := h.fake.Requests()[0].Messages; len(msgs) < 3 || !strings.Contains(msgs[1].Content, "a red fox") {
		t.Errorf("the follow-up lacks the picture's record: %+v", msgs)
	}
	if usage := h.say(t, "c1", "/usage"); !strings.Contains(usage, "Pictures today: 1 of 1") {
		t.Errorf("/usage = %q", usage)
	}
	if _, plain := draw("/image"); !strings.Contains(plain, "what to draw") {
		t.Errorf("/image alone: %q", plain)
	}
	if got := h.say(t, "c1", "/image a cat"); !strings.Contains(got, "can't post pictures") {
		t.Errorf("a reply without pictures: %q", got)
	}
}
