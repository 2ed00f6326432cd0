package conversation

import (
	"context"
	"fmt"
	"strings"
)

// TranscriptMark starts the quote that shows a voice message's transcript.
const TranscriptMark = "🎤 "

// noCaptionText stands for the text of an image or PDF sent without one.
const noCaptionText = "(No text came with this file: describe it, or answer what it seems to ask.)"

// DefaultMaxTextFileBytes bounds a text file put into a message.
const DefaultMaxTextFileBytes = 1 << 20

// userMessage builds the turn's user message from the request's text and files:
// voice is transcribed (the transcript is returned to show as a quote), text
// files go inline with a header naming them, images and PDFs are attached. An
// *Error refuses the turn with its text.
func (e *Engine) userMessage(ctx context.Context, req Request) (user Message, transcript string, err error) {
	user = Message{Role: RoleUser, Content: req.Text, Name: req.UserName}
	var inline []string
	for _, f := range req.Files {
		switch f.Kind {
		case AttachImage, AttachPDF:
			user.Attachments = append(user.Attachments, f)
		case AttachText:
			if f.Size > e.maxTextFileBytes() {
				return user, "", &Error{Text: fmt.Sprintf("The file %s is too large for me to read as text (%s; I read up to %s).",
					f.Name, byteSize(f.Size), byteSize(e.maxTextFileBytes()))}
			}
			inline = append(inline, fmt.Sprintf("File %s:\n```\n%s\n```", f.Name, strings.TrimRight(string(f.Data), "\n")))
		case AttachAudio:
			text, err := e.transcribe(ctx, f)
			if err != nil {
				return user, "", err
			}
			transcript = strings.TrimSpace(transcript + "\n" + text)
		default:
			return user, "", &Error{Text: fmt.Sprintf("I can't read %s. I read images, PDFs, text files "+
				"(code, Markdown, CSV, JSON, logs) and voice or audio messages.", fileLabel(f))}
		}
	}
	parts := make([]string, 0, 3)
	for _, p := range []string{transcript, strings.TrimSpace(req.Text)} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	parts = append(parts, inline...)
	user.Content = strings.Join(parts, "\n\n")
	if user.Content == "" && len(user.Attachments) > 0 {
		user.Content = noCaptionText
	}
	return user, transcript, nil
}

// transcribe turns a voice or audio file into text.
func (e *Engine) transcribe(ctx context.Context, f Attachment) (string, error) {
	if e.cfg.Transcriber == nil {
		return "", &Error{Text: "Voice messages are not set up on this bot."}
	}
	if f.Size == 0 {
		return "", &Error{Text: "That voice message is empty. Please record it again."}
	}
	text, err := e.cfg.Transcriber.Transcribe(ctx, f)
	if err != nil {
		return "", &Error{Text: "I could not transcribe that voice message: " + UserText(err) +
			" You can also type your message.", Err: err}
	}
	if strings.TrimSpace(text) == "" {
		return "", &Error{Text: "I could not hear any words in that voice message. Please try again or type it."}
	}
	return strings.TrimSpace(text), nil
}

func (e *Engine) maxTextFileBytes() int {
	if e.cfg.MaxTextFileBytes > 0 {
		return e.cfg.MaxTextFileBytes
	}
	return DefaultMaxTextFileBytes
}

// quoteTranscript shows a transcript as a quote before the answer.
func quoteTranscript(transcript, answer string) string {
	if transcript == "" {
		return answer
	}
	var b strings.Builder
	for i, line := range strings.Split(transcript, "\n") {
		b.WriteString("> ")
		if i == 0 {
			b.WriteString(TranscriptMark)
		}
		b.WriteString(line)
		b.WriteString("\n")
	}
	b.WriteString("\n")
	b.WriteString(answer)
	return b.String()
}

// attachmentTokens is what attachments cost in the context.
func attachmentTokens(atts []Attachment) int {
	n := 0
	for _, a := range atts {
		n += a.Tokens
	}
	return n
}

// keepAttachments loads the stored bytes of a history message's attachments
// while they fit the budget. Once one does not fit, no older one is kept either
// (*full), so that images leave the context before any text does.
func (e *Engine) keepAttachments(ctx context.Context, chat ChatID, atts []Attachment, used *int, budget int, full *bool) []Attachment {
	blobs, ok := e.history.(BlobStore)
	if !ok || len(atts) == 0 {
		return nil
	}
	var kept []Attachment
	for _, a := range atts {
		if *full || *used+a.Tokens > budget {
			*full = true
			continue
		}
		data, err := blobs.Blob(ctx, chat, a.SHA256)
		if err != nil || data == nil {
			continue // pruned by the chat's byte cap
		}
		a.Data = data
		*used += a.Tokens
		kept = append(kept, a)
	}
	return kept
}

// fileLabel names a file for a note.
func fileLabel(f Attachment) string {
	switch {
	case f.Name != "" && f.MIME != "":
		return fmt.Sprintf("%s (%s)", f.Name, f.MIME)
	case f.Name != "":
		return f.Name
	case f.MIME != "":
		return "files of type " + f.MIME
	}
	return "that file"
}

// byteSize writes n bytes for people: 900 bytes, 12 KB, 3.4 MB.
func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
