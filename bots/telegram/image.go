package telegram

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"unicode/utf16"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/chatbot-dev/chatbot/conversation"
)

var _ conversation.ImageReply = (*reply)(nil)

// uploader lists the SDK calls that post pictures.
type uploader interface {
	SendPhoto(ctx context.Context, params *bot.SendPhotoParams) (*models.Message, error)
	SendDocument(ctx context.Context, params *bot.SendDocumentParams) (*models.Message, error)
}

// Telegram's limits on what a bot sends.
const (
	// maxCaptionLen is the longest caption of a photo or a document: 1024
	// characters of its visible text, counted (as message lengths are) in UTF-16
	// code units.
	maxCaptionLen = 1024
	// maxPhotoBytes is the largest photo sendPhoto takes; a larger picture goes
	// as a document (up to 50 MB).
	maxPhotoBytes = 10 << 20
)

// Drawing shows "sending a photo…" in the chat, renewed, until the picture or
// a text is posted. It does not block.
func (r *reply) Drawing(ctx context.Context) {
	r.action.stop()
	r.action = r.b.chatAction(ctx, r.chatID, r.thread, models.ChatActionUploadPhoto)
}

// FinishImage posts img as a photo, captioned, in the reply's chat or topic (in
// a group, quoting the command): its bytes exactly as the model made them. A
// picture Telegram will not take as a photo (over 10 MB, or of dimensions it
// refuses) goes as a document instead. A *RetryAfterError asks the engine to
// try again.
func (r *reply) FinishImage(ctx context.Context, img conversation.Attachment, caption string) error {
	r.order.started()
	r.action.stop()
	if err := r.b.limits.wait(ctx, r.chatID, r.group, true, false); err != nil {
		return err
	}
	name := or(img.Name, "image.png")
	caption = clipCaption(caption)
	var quote *models.ReplyParameters
	if r.quote != 0 {
		quote = &models.ReplyParameters{MessageID: r.quote, AllowSendingWithoutReply: true}
	}
	if len(img.Data) <= maxPhotoBytes {
		_, err := r.b.api.SendPhoto(ctx, &bot.SendPhotoParams{ChatID: r.chatID, MessageThreadID: r.thread,
			Photo: &models.InputFileUpload{Filename: name, Data: bytes.NewReader(img.Data)}, Caption: caption,
			ReplyParameters: quote})
		if err == nil || !errors.Is(err, bot.ErrorBadRequest) {
			return r.b.red.err(err)
		}
		r.b.log.Warn("telegram: photo refused, sending the picture as a file", "chat_id", r.chatID, "err", r.b.red.err(err))
	}
	_, err := r.b.api.SendDocument(ctx, &bot.SendDocumentParams{ChatID: r.chatID, MessageThreadID: r.thread,
		Document: &models.InputFileUpload{Filename: name, Data: bytes.NewReader(img.Data)}, Caption: caption,
		ReplyParameters: quote})
	return r.b.red.err(err)
}

// clipCaption cuts s to Telegram's caption length, with "…" where it was cut.
func clipCaption(s string) string {
	s = trimSpace(s)
	if utf16Len(s) <= maxCaptionLen {
		return s
	}
	var b strings.Builder
	n := 0
	for _, c := range s {
		if n+utf16.RuneLen(c) > maxCaptionLen-1 {
			break
		}
		b.WriteRune(c)
		n += utf16.RuneLen(c)
	}
	return b.String() + "…"
}
