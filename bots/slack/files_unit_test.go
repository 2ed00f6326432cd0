package slack

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	slackgo "github.com/slack-go/slack"
)

func TestBoundedBuffer(t *testing.T) {
	tests := []struct {
		name        string
		size, limit int // reported size, limit
		send        int // bytes the server sends
		wantErr     bool
	}{
		{"exact size", 1000, 5000, 1000, false},
		{"at the limit", 5000, 5000, 5000, false},
		{"one byte over", 5000, 5000, 5001, true},
		{"size understated", 10, 5000, 4000, false},
		{"size understated, over", 10, 5000, 100_000, true},
		{"size unknown", 0, 1 << 20, 300_000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBoundedBuffer(tt.size, tt.limit)
			data := bytes.Repeat([]byte("x"), tt.send)
			_, err := io.Copy(b, io.LimitReader(bytes.NewReader(data), int64(tt.send))) // in small writes
			if got := errors.Is(err, errTooLarge); got != tt.wantErr {
				t.Fatalf("error %v, want too large %v", err, tt.wantErr)
			}
			if cap(b.data) > tt.limit {
				t.Errorf("buffer grew to %d bytes, past the limit %d", cap(b.data), tt.limit)
			}
			if !tt.wantErr && !bytes.Equal(b.data, data) {
				t.Errorf("kept %d bytes, want %d", len(b.data), len(data))
			}
		})
	}
}

func TestSignInPage(t *testing.T) {
	page := []byte("\n  <!DOCTYPE html>\n<html lang=\"en-US\"><head><title>Slack</title>")
	tests := []struct {
		name string
		f    slackgo.File
		data []byte
		want bool
	}{
		{"an image that is a page", slackgo.File{Mimetype: "image/png"}, page, true},
		{"a page without doctype", slackgo.File{Mimetype: "application/pdf"}, []byte("<HTML><body>"), true},
		{"a real HTML file", slackgo.File{Mimetype: "text/html", Filetype: "html"}, page, false},
		{"a text file", slackgo.File{Mimetype: "text/plain"}, []byte("hello <html>"), false},
		{"empty", slackgo.File{Mimetype: "audio/webm"}, nil, false},
	}
	for _, tt := range tests {
		if got := signInPage(tt.f, tt.data); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCommandWordsWithFiles(t *testing.T) {
	a := &Adapter{botUser: "U0BOT"}
	file := []slackgo.File{{Name: "a.png"}}
	tests := []struct {
		name     string
		in       incoming
		wantText string
		wantCmd  string
	}{
		{"mention with image", incoming{text: "<@U0BOT> image a red fox", mention: true}, "/image a red fox", "image"},
		{"DM image word", incoming{text: "Image  a lighthouse at dawn", dm: true}, "/image a lighthouse at dawn", "image"},
		{"DM bare image", incoming{text: "image", dm: true}, "/image", "image"},
		{"prefixed", incoming{text: "!image a boat", dm: true}, "/image a boat", "image"},
		{"images is not the word", incoming{text: "images of cats?", dm: true}, "images of cats?", ""},
		{"a file's caption", incoming{text: "image quality ok?", dm: true, files: file}, "image quality ok?", ""},
		{"a file without text", incoming{text: "<@U0BOT>", mention: true, files: file}, "", ""},
		{"a bare mention is help", incoming{text: "<@U0BOT>", mention: true}, "/help", "help"},
		{"reset with a file is reset", incoming{text: "reset", dm: true, files: file}, "/reset", "reset"},
	}
	for _, tt := range tests {
		text, cmd := a.command(tt.in)
		if text != tt.wantText || cmd != tt.wantCmd {
			t.Errorf("%s: %q %q, want %q %q", tt.name, text, cmd, tt.wantText, tt.wantCmd)
		}
	}
}

func TestByteSize(t *testing.T) {
	for n, want := range map[int]string{0: "0 bytes", 900: "900 bytes", 10_000: "10 KB", 20 << 20: "20 MB",
		13_107_200: "12.5 MB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
	if got := pictureName("image/jpeg"); got != "picture.jpg" {
		t.Errorf("pictureName %q", got)
	}
	if !strings.Contains(uploadNote(slackgo.SlackErrorResponse{Err: "missing_scope"}), "files:write") {
		t.Error("no files:write in the note for missing_scope")
	}
}
