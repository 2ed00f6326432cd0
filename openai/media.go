package openai

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"path"
	"strings"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/chatbot-dev/chatbot/conversation"
)

var (
	_ conversation.Transcriber = (*Client)(nil)
	_ conversation.ImageMaker  = (*Client)(nil)
)

// Defaults of the media models.
const (
	DefaultTranscriptionModel = "gpt-transcribe"
	DefaultImageModel         = "gpt-image-2"
)

// dataURL is a data: URL of the attachment's exact bytes, written once into a
// string of its final size (a 10 MB photo makes a 13 MB URL; concatenating
// would copy it twice more).
func dataURL(a conversation.Attachment) string {
	prefix := "data:" + a.MIME + ";base64,"
	var b strings.Builder
	b.Grow(len(prefix) + base64.StdEncoding.EncodedLen(len(a.Data)))
	b.WriteString(prefix)
	enc := base64.NewEncoder(base64.StdEncoding, &b)
	enc.Write(a.Data)
	enc.Close()
	return b.String()
}

// pdfName is the file name sent with a PDF (the API wants one).
func pdfName(a conversation.Attachment) string {
	if a.Name != "" {
		return a.Name
	}
	return "document.pdf"
}

// Transcribe turns a voice or audio file into text with
// POST {base_url}/audio/transcriptions (multipart: file, model).
func (c *Client) Transcribe(ctx context.Context, audio conversation.Attachment) (string, error) {
	name := audio.Name
	if path.Ext(name) == "" {
		name += audioExt(audio.MIME)
	}
	resp, err := c.api.CreateTranscription(ctx, goopenai.AudioRequest{
		Model:    c.transcriptionModel(),
		FilePath: name,
		Reader:   bytes.NewReader(audio.Data),
	})
	if err != nil {
		return "", c.userError(err, c.transcriptionModel())
	}
	return resp.Text, nil
}

// audioExt is a file extension for an audio type, as the API tells formats by
// the file name (Telegram voice notes are OGG/Opus and often come unnamed).
func audioExt(mime string) string {
	switch m := strings.ToLower(mime); {
	case strings.Contains(m, "ogg"), strings.Contains(m, "opus"):
		return ".ogg"
	case strings.Contains(m, "mpeg"), strings.Contains(m, "mp3"):
		return ".mp3"
	case strings.Contains(m, "mp4"), strings.Contains(m, "m4a"), strings.Contains(m, "aac"):
		return ".m4a"
	case strings.Contains(m, "wav"):
		return ".wav"
	case strings.Contains(m, "webm"):
		return ".webm"
	}
	return ".ogg"
}

// errNoImage is an image answer without a picture in it.
var errNoImage = errors.New("the image answer held no picture")

// MakeImage draws a picture with POST {base_url}/images/generations and returns
// it as an image attachment (the PNG the API sent, base64-decoded).
func (c *Client) MakeImage(ctx context.Context, prompt string) (conversation.Attachment, error) {
	resp, err := c.api.CreateImage(ctx, goopenai.ImageRequest{Prompt: prompt, Model: c.imageModel(), N: 1})
	if err != nil {
		return conversation.Attachment{}, c.userError(err, c.imageModel())
	}
	if len(resp.Data) == 0 || resp.Data[0].B64JSON == "" {
		return conversation.Attachment{}, &conversation.Error{Text: "The image service sent no picture. Please try again.", Err: errNoImage}
	}
	data, err := base64.StdEncoding.DecodeString(resp.Data[0].B64JSON)
	if err != nil {
		return conversation.Attachment{}, &conversation.Error{Text: "The image service sent a damaged picture. Please try again.", Err: err}
	}
	img := conversation.NewAttachment("image.png", "image/png", data)
	if img.Kind != conversation.AttachImage {
		return conversation.Attachment{}, &conversation.Error{Text: "The image service sent something that is not a picture. Please try again.", Err: errNoImage}
	}
	return img, nil
}

func (c *Client) transcriptionModel() string {
	if c.opt.TranscriptionModel != "" {
		return c.opt.TranscriptionModel
	}
	return DefaultTranscriptionModel
}

func (c *Client) imageModel() string {
	if c.opt.ImageModel != "" {
		return c.opt.ImageModel
	}
	return DefaultImageModel
}
