package conversation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"image"
	_ "image/gif"  // image.DecodeConfig of GIFs, for their token cost
	_ "image/jpeg" // and of JPEGs
	_ "image/png"  // and of PNGs
	"path"
	"strings"
	"unicode/utf8"
)

// AttachmentKind says how the model gets an attachment.
type AttachmentKind string

// The kinds of attachment. Adapters hand the engine files of any kind (FileIn);
// the engine sorts them with Classify.
const (
	// AttachImage goes to the model as an image part: a data: URL of the exact bytes.
	AttachImage AttachmentKind = "image"
	// AttachPDF goes to the model as a file part (Responses API).
	AttachPDF AttachmentKind = "pdf"
	// AttachText is a UTF-8 text file, put into the message with a header naming it.
	AttachText AttachmentKind = "text"
	// AttachAudio (voice, audio and video notes) is transcribed first.
	AttachAudio AttachmentKind = "audio"
	// AttachOther is anything else: the user is told what the bot reads.
	AttachOther AttachmentKind = "other"
)

// Attachment is a file that came with (or was made for) a message. Data holds
// the bytes during the turn; the store keeps them once per chat by SHA256 and the
// history keeps only this reference.
type Attachment struct {
	Kind   AttachmentKind `json:"kind"`
	Name   string         `json:"name,omitempty"`
	MIME   string         `json:"mime,omitempty"`
	SHA256 string         `json:"sha256,omitempty"`
	Size   int            `json:"size,omitempty"`
	// Tokens is what the attachment costs in the context.
	Tokens int    `json:"tokens,omitempty"`
	Data   []byte `json:"-"`
}

// NewAttachment sorts a file the user sent (Classify) and notes its hash, size
// and token cost.
func NewAttachment(name, mime string, data []byte) Attachment {
	a := Attachment{Kind: Classify(name, mime, data), Name: name, MIME: mime, Size: len(data), Data: data}
	sum := sha256.Sum256(data)
	a.SHA256 = hex.EncodeToString(sum[:])
	switch a.Kind {
	case AttachImage:
		a.MIME = imageMIME(mime, data)
		a.Tokens = ImageTokens(data)
	case AttachPDF:
		a.MIME = "application/pdf"
		a.Tokens = PDFTokens(data)
	}
	return a
}

// pdfPageTokens is a conservative cost of one PDF page: OpenAI gives the model
// each page's text and a picture of it (765 tokens at high detail for a page).
const pdfPageTokens = 1300

// PDFTokens is a PDF's cost in the context: pdfPageTokens per page, its pages
// counted from the page objects ("/Type /Page"), at least one.
func PDFTokens(data []byte) int {
	pages := 0
	for rest := data; ; {
		i := bytes.Index(rest, []byte("/Type"))
		if i < 0 {
			break
		}
		rest = bytes.TrimLeft(rest[i+len("/Type"):], " \r\n\t")
		if bytes.HasPrefix(rest, []byte("/Page")) && !bytes.HasPrefix(rest, []byte("/Pages")) {
			pages++
		}
	}
	return pdfPageTokens * max(pages, 1)
}

// Classify sorts a file by its type, its name and, for text, its bytes.
func Classify(name, mime string, data []byte) AttachmentKind {
	mime = strings.ToLower(strings.TrimSpace(strings.Split(mime, ";")[0]))
	ext := strings.ToLower(path.Ext(name))
	switch {
	case strings.HasPrefix(mime, "image/") && imageFormat(data) != "":
		return AttachImage
	case mime == "" && imageFormat(data) != "":
		return AttachImage
	case mime == "application/pdf" || ext == ".pdf" || bytes.HasPrefix(data, []byte("%PDF-")):
		return AttachPDF
	case strings.HasPrefix(mime, "audio/") || strings.HasPrefix(mime, "video/") ||
		mime == "application/ogg" || audioExt[ext]:
		return AttachAudio
	case isText(data) && (textLike(mime) || textExt[ext] || mime == "" || mime == "application/octet-stream"):
		return AttachText
	}
	return AttachOther
}

var audioExt = map[string]bool{".ogg": true, ".oga": true, ".opus": true, ".mp3": true, ".m4a": true,
	".wav": true, ".webm": true, ".mp4": true, ".mpeg": true, ".mpga": true, ".flac": true}

var textExt = map[string]bool{".txt": true, ".md": true, ".csv": true, ".tsv": true, ".json": true,
	".log": true, ".yaml": true, ".yml": true, ".xml": true, ".html": true, ".go": true, ".py": true,
	".js": true, ".ts": true, ".c": true, ".h": true, ".java": true, ".rs": true, ".sh": true, ".sql": true}

func textLike(mime string) bool {
	return strings.HasPrefix(mime, "text/") || strings.HasSuffix(mime, "+json") || strings.HasSuffix(mime, "+xml") ||
		mime == "application/json" || mime == "application/xml" || mime == "application/x-yaml" ||
		mime == "application/javascript" || mime == "application/x-sh"
}

// isText reports whether data is UTF-8 without NUL bytes.
func isText(data []byte) bool {
	return utf8.Valid(data) && bytes.IndexByte(data, 0) < 0
}

// imageFormat is the format of an image the model can take ("png", "jpeg",
// "gif", "webp"), from its first bytes; "" for anything else.
func imageFormat(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(data, []byte("\xff\xd8\xff")):
		return "jpeg"
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return "gif"
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return "webp"
	}
	return ""
}

// imageMIME is the image's real type, whatever the platform said.
func imageMIME(mime string, data []byte) string {
	if f := imageFormat(data); f != "" {
		return "image/" + f
	}
	return mime
}

// ImageTokens is an image's cost in the context by OpenAI's rule for detail
// "high" (the default "auto" picks it for large images): scaled to fit 2048×2048,
// then its shorter side to 768, 170 tokens per 512-pixel tile plus 85. An image
// whose size cannot be read (WebP, damaged) counts as the largest common case,
// 1,105 tokens (6 tiles).
func ImageTokens(data []byte) int {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return 85 + 170*6
	}
	w, h := float64(cfg.Width), float64(cfg.Height)
	if s := 2048 / max(w, h); s < 1 {
		w, h = w*s, h*s
	}
	if s := 768 / min(w, h); s < 1 {
		w, h = w*s, h*s
	}
	tiles := int((w+511)/512) * int((h+511)/512)
	return 85 + 170*tiles
}

// Transcriber turns speech into text. openai.Client implements it.
type Transcriber interface {
	Transcribe(ctx context.Context, audio Attachment) (string, error)
}

// ImageMaker draws a picture from a prompt. openai.Client implements it.
type ImageMaker interface {
	MakeImage(ctx context.Context, prompt string) (Attachment, error)
}

// ImageReply is a Reply that can post a picture (Telegram sendPhoto, Slack's file
// upload). The engine's /image needs it; a Reply without it gets a note.
type ImageReply interface {
	// Drawing shows that a picture is being made ("sending a photo…"); it must
	// not block.
	Drawing(ctx context.Context)
	// FinishImage posts the picture with its caption, as the reply's final text.
	FinishImage(ctx context.Context, img Attachment, caption string) error
}

// BlobStore gives back the bytes of attachments kept with the history, so that
// images stay in the context for later turns. store.DB implements it.
type BlobStore interface {
	Blob(ctx context.Context, chat ChatID, sha256 string) ([]byte, error)
}
