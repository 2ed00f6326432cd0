package slack

import (
	"context"
	"errors"
	"io"
	"net/url"
	"time"

	slackgo "github.com/slack-go/slack"
)

// slackAPI lists the Web API calls the adapter makes; *slackgo.Client has them,
// and a test can stand in for it.
type slackAPI interface {
	AuthTestContext(ctx context.Context) (*slackgo.AuthTestResponse, error)
	PostMessageContext(ctx context.Context, channel string, opts ...slackgo.MsgOption) (string, string, error)
	UpdateMessageContext(ctx context.Context, channel, ts string, opts ...slackgo.MsgOption) (string, string, string, error)
	DeleteMessageContext(ctx context.Context, channel, ts string) (string, string, error)
	PostEphemeralContext(ctx context.Context, channel, user string, opts ...slackgo.MsgOption) (string, error)
	StartStreamContext(ctx context.Context, channel string, opts ...slackgo.MsgOption) (string, string, error)
	AppendStreamContext(ctx context.Context, channel, ts string, opts ...slackgo.MsgOption) (string, string, error)
	StopStreamContext(ctx context.Context, channel, ts string, opts ...slackgo.MsgOption) (string, string, error)
	SetAssistantThreadsStatusContext(ctx context.Context, params slackgo.AssistantThreadsSetStatusParameters) error
	SetAssistantThreadsSuggestedPromptsContext(ctx context.Context, params slackgo.AssistantThreadsSetSuggestedPromptsParameters) error
	SetAssistantThreadsTitleContext(ctx context.Context, params slackgo.AssistantThreadsSetTitleParameters) error
	SetAgentSessionStatusContext(ctx context.Context, params slackgo.AgentSessionSetStatusParameters) (*slackgo.AgentSessionSetStatusResponse, error)
	GetUserInfoContext(ctx context.Context, user string, opts ...slackgo.GetUserInfoOption) (*slackgo.User, error)
}

var _ slackAPI = (*slackgo.Client)(nil)

// fileAPI lists the calls that move files' bytes: downloads of files people
// share, and the external upload flow (files.getUploadURLExternal, the upload,
// files.completeUploadExternal) of pictures the bot posts. They run on a client
// of their own, whose HTTP client has no 30-second limit (each call has a
// deadline of its own instead).
type fileAPI interface {
	GetFileContext(ctx context.Context, downloadURL string, w io.Writer) error
	GetFileInfoContext(ctx context.Context, fileID string, count, page int) (*slackgo.File, []slackgo.Comment, *slackgo.Paging, error)
	GetUploadURLExternalContext(ctx context.Context, params slackgo.GetUploadURLExternalParameters) (*slackgo.GetUploadURLExternalResponse, error)
	UploadToURL(ctx context.Context, params slackgo.UploadToURLParameters) error
	CompleteUploadExternalContext(ctx context.Context, params slackgo.CompleteUploadExternalParameters) (*slackgo.CompleteUploadExternalResponse, error)
}

var _ fileAPI = (*slackgo.Client)(nil)

// rateLimited reports the wait Slack asked for when err is a ratelimited answer.
func rateLimited(err error) (time.Duration, bool) {
	var rl *slackgo.RateLimitedError
	if errors.As(err, &rl) {
		return max(rl.RetryAfter, time.Second), true
	}
	return 0, false
}

// A failure that may pass (a 5xx, Slack's internal_error, a broken connection) is
// tried again after transientWait, up to maxTransientFailures times in a row.
const (
	transientWait        = time.Second
	maxTransientFailures = 5
)

// transient reports whether err is a failure worth trying again.
func transient(err error) bool {
	var status slackgo.StatusCodeError
	var netErr *url.Error
	switch {
	case errors.As(err, &status):
		return status.Code >= 500
	case errors.As(err, &netErr):
		return true
	}
	switch slackError(err) {
	case "internal_error", "fatal_error", "service_unavailable", "request_timeout":
		return true
	}
	return false
}

// slackError returns Slack's error code ("msg_too_long", "channel_not_found") of
// err, or "".
func slackError(err error) string {
	var se slackgo.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return ""
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
