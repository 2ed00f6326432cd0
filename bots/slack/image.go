package slack

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/chatbot-dev/chatbot/conversation"
)

const (
	// drawingStatus is the assistant thread status while a picture is made.
	drawingStatus = "is drawing…"
	// drawingText is the placeholder shown instead where no status is allowed.
	drawingText = "_Drawing…_"
	// maxAltText is the longest alt_txt files.getUploadURLExternal takes.
	maxAltText = 1000
	// maxRateLimitWaits bounds the ratelimited answers one upload call waits out.
	maxRateLimitWaits = 8
)

var _ conversation.ImageReply = (*reply)(nil)

// Drawing shows that a picture is being made: the assistant thread status where
// Slack allows it, else a placeholder message that the picture replaces. It
// does so in the background and returns at once; the reply's next call waits
// for it.
func (r *reply) Drawing(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.drawing != nil || r.done || len(r.msgs) > 0 || r.stream != nil {
		return
	}
	shown := make(chan struct{})
	r.drawing = shown
	go func() {
		defer close(shown)
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.done { // the final text may have come first (ctx ended while waiting)
			r.showState(ctx, drawingStatus, drawingText)
		}
	}()
}

// awaitState waits until the thinking or drawing state is shown, if begin or
// Drawing was called.
func (r *reply) awaitState(ctx context.Context) {
	r.mu.Lock()
	shown := r.drawing
	r.mu.Unlock()
	if shown == nil {
		return
	}
	select {
	case <-shown:
	case <-ctx.Done():
	}
}

// FinishImage posts the picture into the reply's thread (or DM) with Slack's
// external upload flow, the caption as the message introducing it, and removes
// the drawing placeholder. If the upload fails, the caption and a note saying
// why take the placeholder's place.
func (r *reply) FinishImage(ctx context.Context, img conversation.Attachment, caption string) error {
	r.awaitState(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = true
	if err := r.upload(ctx, img, caption); err != nil {
		r.log.Warn("slack: upload a picture", "channel", r.channel, "err", err)
		return r.finish(ctx, caption+"\n\n"+uploadNote(err))
	}
	r.clearDrawing(ctx)
	return nil
}

// upload runs the external upload flow: files.getUploadURLExternal, the bytes
// posted to the URL it gave, files.completeUploadExternal to share the file in
// the channel and thread with the caption.
func (r *reply) upload(ctx context.Context, img conversation.Attachment, caption string) error {
	name := pictureName(img.MIME)
	var u *slackgo.GetUploadURLExternalResponse
	err := r.call(ctx, func(ctx context.Context) error {
		var err error
		u, err = r.files.GetUploadURLExternalContext(ctx, slackgo.GetUploadURLExternalParameters{
			FileName: name, FileSize: len(img.Data), AltTxt: truncate(caption, maxAltText)})
		return err
	})
	if err != nil {
		return fmt.Errorf("files.getUploadURLExternal: %w", err)
	}
	err = r.call(ctx, func(ctx context.Context) error {
		return r.files.UploadToURL(ctx, slackgo.UploadToURLParameters{
			UploadURL: u.UploadURL, Filename: name, Reader: bytes.NewReader(img.Data)})
	})
	if err != nil {
		return fmt.Errorf("upload the bytes: %w", err)
	}
	err = r.call(ctx, func(ctx context.Context) error {
		_, err := r.files.CompleteUploadExternalContext(ctx, slackgo.CompleteUploadExternalParameters{
			Files: []slackgo.FileSummary{{ID: u.FileID, Title: name}}, Channel: r.channel,
			ThreadTimestamp: r.thread, InitialComment: escapeText(caption)})
		return err
	})
	if err != nil {
		return fmt.Errorf("files.completeUploadExternal: %w", err)
	}
	return nil
}

// uploadTimeout bounds one call of the upload flow.
const uploadTimeout = 2 * time.Minute

// call makes one Slack call of the upload flow, waiting out ratelimited answers
// and trying failures that may pass (5xx, broken connections) again.
func (r *reply) call(ctx context.Context, f func(ctx context.Context) error) error {
	for failures, waits := 0, 0; ; {
		cctx, cancel := context.WithTimeout(ctx, uploadTimeout)
		err := f(cctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		d, limited := rateLimited(err)
		switch {
		case limited && waits < maxRateLimitWaits:
			waits++
		case !limited && transient(err) && failures < maxTransientFailures:
			failures++
			d = transientWait
		default:
			return err
		}
		r.log.Info("slack: upload call failed, trying again", "wait", d, "err", err)
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// clearDrawing removes the drawing state once the picture is posted: the
// placeholder message is deleted (or, if Slack refuses, says where the picture
// is) and the thread status cleared.
func (r *reply) clearDrawing(ctx context.Context) {
	for i, m := range r.msgs {
		if _, _, err := r.api.DeleteMessageContext(ctx, r.channel, m.ts); err != nil {
			r.log.Debug("slack: delete the placeholder", "err", err)
			if err := r.edit(ctx, i, "_The picture is below._", true, nil); err != nil {
				r.log.Warn("slack: replace the placeholder", "err", err)
			}
		}
	}
	r.msgs = nil
	if r.status {
		err := r.api.SetAssistantThreadsStatusContext(ctx, slackgo.AssistantThreadsSetStatusParameters{
			ChannelID: r.channel, ThreadTS: r.thread, Status: ""})
		if err != nil {
			r.log.Debug("slack: clear the thread status", "err", err)
		}
		r.status = false
	}
}

// pictureName is the uploaded file's name, from its type.
func pictureName(mime string) string {
	ext, ok := strings.CutPrefix(mime, "image/")
	if !ok || ext == "" {
		ext = "png"
	}
	if ext == "jpeg" {
		ext = "jpg"
	}
	return "picture." + ext
}

// uploadNote says why a picture could not be posted.
func uploadNote(err error) string {
	switch slackError(err) {
	case "missing_scope", "no_permission":
		return "_I drew the picture but could not post it: the Slack app needs the `files:write` scope. " +
			"The bot's owner can add it and reinstall the app._"
	case "file_uploads_disabled", "file_uploads_except_images_disabled", "file_type_not_allowed":
		return "_I drew the picture but could not post it: this workspace does not allow the upload._"
	case "not_in_channel", "channel_not_found":
		return "_I drew the picture but could not post it here: invite me to this channel first._"
	}
	return "_I drew the picture but could not upload it to Slack. Please ask again in a moment._"
}
