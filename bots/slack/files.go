package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/chatbot-dev/chatbot/conversation"
)

// Defaults of Config's file limits.
const (
	DefaultMaxFileBytes    = 20 << 20
	DefaultMaxDownloads    = 4
	DefaultDownloadTimeout = 2 * time.Minute
)

const (
	// downloadAttempts: a download that fails is tried once more.
	downloadAttempts = 2
	// maxRetryWait caps a wait Slack asks for between two download attempts.
	maxRetryWait = 30 * time.Second
	// slotPatience is how long a message with files waits for a download slot
	// before the bot says it is busy.
	slotPatience = 5 * time.Minute
)

var (
	errTooLarge = errors.New("file larger than the limit")
	errSignIn   = errors.New("slack answered with its sign-in page instead of the file")
)

// takeFiles turns the files shared with a message into attachments for the
// engine. Sizes are checked first, by what Slack reports, so that a file over
// the limit is refused without a download. Then it waits for one of the
// process's download slots and downloads each file. It returns the attachments
// and the slot's release (to call once the engine has answered), or a note that
// says why the message cannot be answered (release is then nil).
func (a *Adapter) takeFiles(ctx context.Context, files []slackgo.File) ([]conversation.Attachment, func(), string) {
	for _, f := range files {
		if note := a.unreadable(f); note != "" {
			return nil, nil, note
		}
	}
	release, ok := a.slot(ctx)
	if !ok {
		return nil, nil, "I'm reading a lot of files at the moment. Please send yours again in a few minutes."
	}
	atts := make([]conversation.Attachment, 0, len(files))
	for _, f := range files {
		data, f, err := a.fetch(ctx, f)
		if err != nil {
			release()
			a.log.Warn("slack: download a file", "file", f.ID, "name", f.Name, "err", err)
			return nil, nil, a.fetchNote(f, err)
		}
		atts = append(atts, conversation.NewAttachment(fileName(f), f.Mimetype, data))
	}
	return atts, release, ""
}

// mediaHelp is the help's lines about files and pictures; base is the engine's
// help, which names /image when pictures are set up.
func (a *Adapter) mediaHelp(base string) string {
	bot := "@" + a.botName
	help := "• Send me images, PDFs, text files or audio clips with your message (up to " +
		byteSize(a.cfg.MaxFileBytes) + " each), and I read them.\n"
	if strings.Contains(base, "/"+conversation.CommandImage) {
		help += "• `" + bot + " image PROMPT` draws a picture into the thread (`image PROMPT` without the mention " +
			"in a DM or my threads).\n"
	}
	return help
}

// unreadable returns the note for a file the bot will not download, or "".
func (a *Adapter) unreadable(f slackgo.File) string {
	switch {
	case f.IsExternal || f.Mode == "external":
		return fmt.Sprintf("%s is a link to a file kept outside Slack. I can only read files uploaded to Slack: "+
			"please upload it instead.", quoteName(f))
	case f.Mode == "tombstone":
		return fmt.Sprintf("%s was deleted before I could read it.", quoteName(f))
	case f.Size > a.cfg.MaxFileBytes:
		return a.tooLargeNote(f, f.Size)
	}
	return ""
}

// tooLargeNote refuses a file of size bytes (-1: more than Slack said).
func (a *Adapter) tooLargeNote(f slackgo.File, size int) string {
	what := byteSize(size)
	if size < 0 {
		what = "more than Slack said"
	}
	return fmt.Sprintf("%s is too large for me (%s). I read files up to %s. "+
		"Please send a smaller file, or paste the part that matters.", quoteName(f), what, byteSize(a.cfg.MaxFileBytes))
}

// slot waits for one of the download slots and returns its release.
func (a *Adapter) slot(ctx context.Context) (func(), bool) {
	t := time.NewTimer(slotPatience)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		var once bool
		return func() {
			if !once {
				once = true
				<-a.slots
			}
		}, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

// fetch downloads a file: its details from files.info first when the event left
// them out (shared channels send only the id), then its bytes, trying a download
// that failed in a way that may pass (5xx, a broken connection, a timeout,
// ratelimited) once more. It returns the file as it knows it now.
func (a *Adapter) fetch(ctx context.Context, f slackgo.File) ([]byte, slackgo.File, error) {
	if f.URLPrivateDownload == "" && f.ID != "" {
		info, err := a.fileInfo(ctx, f.ID)
		if err != nil {
			return nil, f, fmt.Errorf("files.info: %w", err)
		}
		f = *info
		if f.URLPrivateDownload == "" {
			return nil, f, errors.New("the file has no download URL")
		}
		if note := a.unreadable(f); note != "" {
			return nil, f, &noteError{note}
		}
	}
	for attempt := 1; ; attempt++ {
		data, err := a.download(ctx, f)
		limit, limited := rateLimited(err)
		if err == nil || !(limited || transient(err)) || attempt >= downloadAttempts || ctx.Err() != nil {
			return data, f, err // done, or a failure that another attempt would not mend
		}
		a.log.Info("slack: download failed, trying again", "file", f.ID, "err", err)
		wait := transientWait
		if limited {
			wait = min(limit, maxRetryWait)
		}
		if sleep(ctx, wait) != nil {
			return nil, f, err
		}
	}
}

// fileInfo asks files.info for a file's details.
func (a *Adapter) fileInfo(ctx context.Context, id string) (*slackgo.File, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.DownloadTimeout)
	defer cancel()
	info, _, _, err := a.files.GetFileInfoContext(ctx, id, 0, 0)
	return info, err
}

// download fetches a file's bytes with the bot token into a buffer that never
// holds more than the limit.
func (a *Adapter) download(ctx context.Context, f slackgo.File) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.DownloadTimeout)
	defer cancel()
	buf := newBoundedBuffer(f.Size, a.cfg.MaxFileBytes)
	err := a.files.GetFileContext(ctx, f.URLPrivateDownload, buf)
	switch {
	case err != nil && strings.Contains(err.Error(), "sign-in page"):
		return nil, fmt.Errorf("%w (%v)", errSignIn, err)
	case err != nil:
		return nil, err
	case signInPage(f, buf.data):
		return nil, errSignIn
	}
	a.trace("downloaded", f.ID)
	return buf.data, nil
}

// signInPage reports whether data is an HTML page where a file of another type
// was expected: Slack's sign-in page, which it sends instead of the file when
// the token may not read it (no files:read scope).
func signInPage(f slackgo.File, data []byte) bool {
	if strings.Contains(strings.ToLower(f.Mimetype), "html") || f.Filetype == "html" {
		return false
	}
	head := bytes.ToLower(bytes.TrimSpace(data[:min(len(data), 512)]))
	return bytes.HasPrefix(head, []byte("<!doctype html")) || bytes.HasPrefix(head, []byte("<html"))
}

// noteError carries a note for the user about a file.
type noteError struct{ text string }

func (e *noteError) Error() string { return e.text }

// fetchNote says why a file could not be read.
func (a *Adapter) fetchNote(f slackgo.File, err error) string {
	var ne *noteError
	switch {
	case errors.As(err, &ne):
		return ne.text
	case errors.Is(err, errTooLarge):
		return a.tooLargeNote(f, -1)
	case errors.Is(err, errSignIn):
		return fmt.Sprintf("I can't open %s: Slack sent its sign-in page instead of the file. "+
			"The bot's owner needs to give the Slack app the `files:read` scope and reinstall it.", quoteName(f))
	}
	return fmt.Sprintf("I could not download %s from Slack (I tried twice). Please send it again.", quoteName(f))
}

// fileName is the name the engine and the model see for a file.
func fileName(f slackgo.File) string {
	for _, n := range []string{f.Name, f.Title} {
		if n = strings.TrimSpace(n); n != "" {
			return n
		}
	}
	if f.Filetype != "" {
		return "file." + f.Filetype
	}
	return "file"
}

// quoteName names a file in a note.
func quoteName(f slackgo.File) string {
	return "`" + strings.ReplaceAll(fileName(f), "`", "'") + "`"
}

// byteSize writes a size for people: "512 KB", "12.5 MB".
func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/(1<<20)), ".0") + " MB"
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", (n+1<<9)>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// boundedBuffer takes a download's bytes up to a limit: one byte more is an
// error (errTooLarge), so it never holds more than the limit whatever the
// server sends. The size Slack reported sets its first capacity, so a file of
// that size is read without growing it.
type boundedBuffer struct {
	data  []byte
	limit int
}

func newBoundedBuffer(size, limit int) *boundedBuffer {
	return &boundedBuffer{data: make([]byte, 0, min(max(size, 0), limit)), limit: limit}
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	need := len(b.data) + len(p)
	if need > b.limit {
		return 0, errTooLarge
	}
	if need > cap(b.data) {
		grown := make([]byte, len(b.data), min(max(2*cap(b.data), need, 64<<10), b.limit))
		copy(grown, b.data)
		b.data = grown
	}
	b.data = append(b.data, p...)
	return len(p), nil
}
