package telegram

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/chatbot-dev/chatbot/conversation"
)

// DefaultMaxFileBytes is the largest file a bot may download from Telegram
// (getFile): 20 MB.
const DefaultMaxFileBytes = 20 << 20

// largestFilesAtOnce is how many files of the largest size the bot holds at
// once by default (Options.FileMemory).
const largestFilesAtOnce = 2

// Downloads: a failed one is tried once more after downloadRetryWait; each try
// asks getFile afresh (a file_path is valid for an hour).
const (
	downloadTries     = 2
	downloadRetryWait = time.Second
)

// descFileTooBig is Telegram's answer to getFile for a file over 20 MB.
const descFileTooBig = "file is too big"

// fileRef is a file a message brings that the bot reads: a photo (its largest
// size), a voice note, an audio file, a video note or a document. The zero
// fileRef (what == "") is no file.
type fileRef struct {
	id   string // file_id
	size int64  // file_size; 0 when Telegram did not tell it
	name string // a file name for the engine
	mime string
	what string // what it is, for notes: "photo", "voice message", "file"
}

// fileOf returns the file m brings that the bot reads, if any. Stickers,
// videos and GIFs are not read (mediaKind names them).
func fileOf(m *models.Message) fileRef {
	switch {
	case mediaKind(m) != "":
		return fileRef{}
	case len(m.Photo) > 0:
		p := slices.MaxFunc(m.Photo, func(a, b models.PhotoSize) int {
			if d := a.Width*a.Height - b.Width*b.Height; d != 0 {
				return d
			}
			return a.FileSize - b.FileSize
		})
		return fileRef{id: p.FileID, size: int64(p.FileSize), name: "photo.jpg", mime: "image/jpeg", what: "photo"}
	case m.Voice != nil:
		return fileRef{id: m.Voice.FileID, size: m.Voice.FileSize, name: "voice.ogg",
			mime: or(m.Voice.MimeType, "audio/ogg"), what: "voice message"}
	case m.Audio != nil:
		return fileRef{id: m.Audio.FileID, size: m.Audio.FileSize, name: or(m.Audio.FileName, "audio"),
			mime: or(m.Audio.MimeType, "audio/mpeg"), what: "audio file"}
	case m.VideoNote != nil:
		return fileRef{id: m.VideoNote.FileID, size: int64(m.VideoNote.FileSize), name: "video_note.mp4",
			mime: "video/mp4", what: "video message"}
	case m.Document != nil:
		return fileRef{id: m.Document.FileID, size: m.Document.FileSize, name: or(m.Document.FileName, "file"),
			mime: m.Document.MimeType, what: "file"}
	}
	return fileRef{}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// mediaKind names what a message holds that the bot does not read ("" for
// text, the media it reads and service messages).
func mediaKind(m *models.Message) string {
	switch {
	case m.Sticker != nil:
		return "stickers"
	case m.Animation != nil: // comes with a document too
		return "GIFs"
	case m.Video != nil, m.Document != nil && strings.HasPrefix(strings.ToLower(m.Document.MimeType), "video/"):
		return "videos"
	case m.Contact != nil, m.Location != nil, m.Venue != nil, m.Poll != nil, m.Dice != nil, m.Story != nil:
		return "this kind of message"
	}
	return ""
}

// cantReadText is the note for what the bot does not read.
func cantReadText(what string) string {
	return fmt.Sprintf("I can't read %s. I read text, photos and pictures, PDFs, text files "+
		"(code, Markdown, CSV, JSON, logs), and voice or audio messages.", what)
}

// Notes about files.
const (
	downloadFailedText = "I could not get your %s from Telegram. Please send it again."
	tooLargeText       = "Your %s is too large for me (%s): I read files up to %s. Please send a smaller one."
	tooLargeForBots    = "Your %s is too large for me: Telegram lets bots download files up to 20 MB. Please send a smaller one."
	tooMuchText        = "Your %d %s are too large together for me (%s): I read up to %s at once. Please send fewer at a time."
)

// tooBigError is a file over MaxFileBytes, or over what Telegram lets bots
// download.
type tooBigError struct {
	size     int64 // 0 when not known
	telegram bool  // Telegram refused it (getFile: "file is too big")
}

func (e *tooBigError) Error() string {
	switch {
	case e.telegram:
		return "file too big: over Telegram's limit for bots"
	case e.size > 0:
		return fmt.Sprintf("file too big: %d bytes", e.size)
	}
	return "file too big"
}

// fetch gets a message's files (several for an album) for the engine: it
// refuses a file over MaxFileBytes without downloading anything, waits for room
// in FileMemory for all of them at once, then downloads each, trying twice. It
// returns the attachments, in order, or else the note to answer with. release
// gives the files' memory back: call it once the answer is done.
//
// A file the engine could only refuse (a zip, an executable: what
// conversation.Classify calls "other" by its name and type alone) is not
// downloaded: the engine gets it without its bytes and answers with its note
// on what the bot reads.
func (b *Bot) fetch(ctx context.Context, files []fileRef) (atts []conversation.Attachment, note string, release func()) {
	release = func() {}
	limit := b.opt.MaxFileBytes
	atts = make([]conversation.Attachment, len(files))
	held := make([]int64, len(files)) // the room each file takes; 0: not downloaded
	var total int64
	for i, f := range files {
		switch {
		case f.size > limit:
			b.log.Info("telegram: file too large", "size", f.size, "limit", limit)
			return nil, fmt.Sprintf(tooLargeText, f.what, sizeText(f.size), sizeText(limit)), release
		case !strings.HasPrefix(strings.ToLower(f.mime), "image/") &&
			conversation.Classify(f.name, f.mime, nil) == conversation.AttachOther:
			atts[i] = conversation.NewAttachment(f.name, f.mime, nil)
			continue
		}
		held[i] = f.size
		if held[i] <= 0 {
			held[i] = limit // unknown: room for the largest, given back after the download
		}
		total += held[i]
	}
	if total > b.opt.FileMemory {
		what := files[0].what + "s"
		for _, f := range files {
			if f.what != files[0].what {
				what = "files"
			}
		}
		return nil, fmt.Sprintf(tooMuchText, len(files), what, sizeText(total), sizeText(b.opt.FileMemory)), release
	}
	if err := b.files.Acquire(ctx, total); err != nil {
		return nil, fmt.Sprintf(downloadFailedText, files[0].what), release
	}
	var once sync.Once
	release = func() { once.Do(func() { b.files.Release(total) }) }
	for i, f := range files {
		if held[i] == 0 {
			continue
		}
		data, note := b.fetchOne(ctx, f)
		if note != "" {
			return nil, note, release
		}
		if spare := held[i] - int64(len(data)); spare > 0 {
			b.files.Release(spare)
			total -= spare
		}
		atts[i] = conversation.NewAttachment(f.name, f.mime, data)
	}
	return atts, "", release
}

// fetchOne downloads f, trying twice; it returns its bytes, or else the note to
// answer with.
func (b *Bot) fetchOne(ctx context.Context, f fileRef) (data []byte, note string) {
	limit := b.opt.MaxFileBytes
	var err error
	var tooBig *tooBigError
	for try := 1; ; try++ {
		data, err = b.download(ctx, f)
		if err == nil || errors.As(err, &tooBig) || try == downloadTries || !sleep(ctx, downloadRetryWait) {
			break
		}
		b.log.Warn("telegram: download failed, trying again", "file", f.what, "err", err)
	}
	switch {
	case tooBig != nil:
		b.log.Info("telegram: file too large", "file", f.what, "err", err)
		if tooBig.telegram {
			return nil, fmt.Sprintf(tooLargeForBots, f.what)
		}
		size := "over " + sizeText(limit)
		if tooBig.size > 0 {
			size = sizeText(tooBig.size)
		}
		return nil, fmt.Sprintf(tooLargeText, f.what, size, sizeText(limit))
	case err != nil:
		b.log.Warn("telegram: download failed", "file", f.what, "tries", downloadTries, "err", err)
		return nil, fmt.Sprintf(downloadFailedText, f.what)
	}
	return data, ""
}

// download asks getFile for the file's path and downloads it from
// {api_url}/file/bot{token}/{file_path}, reading MaxFileBytes+1 bytes at most.
// Its errors hold no token.
func (b *Bot) download(ctx context.Context, f fileRef) ([]byte, error) {
	limit := b.opt.MaxFileBytes
	file, err := b.api.GetFile(ctx, &bot.GetFileParams{FileID: f.id})
	switch {
	case badRequest(err, descFileTooBig):
		return nil, fmt.Errorf("getFile: %w", &tooBigError{telegram: true})
	case err != nil:
		return nil, fmt.Errorf("getFile: %w", b.red.err(err))
	case file.FileSize > limit:
		return nil, fmt.Errorf("getFile: %w", &tooBigError{size: file.FileSize})
	case file.FilePath == "":
		return nil, errors.New("getFile: no file_path in the answer")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.opt.APIURL+"/file/bot"+b.opt.Token+"/"+file.FilePath, nil)
	if err != nil {
		return nil, fmt.Errorf("download: %w", b.red.err(err))
	}
	resp, err := b.opt.DownloadClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download: %w", b.red.err(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("download: %s", resp.Status)
	case resp.ContentLength > limit:
		return nil, fmt.Errorf("download: %w", &tooBigError{size: resp.ContentLength})
	}
	data, err := readBounded(resp.Body, max(file.FileSize, f.size, resp.ContentLength), limit)
	var tooBig *tooBigError
	switch {
	case errors.As(err, &tooBig):
		return nil, fmt.Errorf("download: %w", err)
	case err != nil:
		return nil, fmt.Errorf("download: %w", b.red.err(err))
	}
	return data, nil
}

// readBounded reads r to its end into a buffer made for hint bytes (when hint is
// within limit), growing it only if r holds more. It stops after limit+1 bytes
// and then returns a *tooBigError: it never holds more than limit+1 bytes.
func readBounded(r io.Reader, hint, limit int64) ([]byte, error) {
	if hint <= 0 || hint > limit {
		hint = min(limit, 64<<10)
	}
	buf := make([]byte, 0, hint+1) // +1: a file of hint bytes reaches EOF without growing
	lr := io.LimitReader(r, limit+1)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(min(int64(cap(buf)), limit+1-int64(len(buf)))))
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, &tooBigError{}
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// sizeText writes n bytes for people: 900 bytes, 12 KB, 3.4 MB.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/(1<<20)), ".0") + " MB"
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// finishNote ends r with text, waiting if Telegram asks to (twice at most).
func (b *Bot) finishNote(ctx context.Context, r *reply, text string) error {
	var err error
	for range 3 {
		err = r.Finish(ctx, text)
		after, ok := conversation.RetryAfter(err)
		if !ok || !sleep(ctx, after) {
			break
		}
	}
	return err
}
