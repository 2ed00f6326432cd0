package telegram

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/go-telegram/bot"

	"github.com/chatbot-dev/chatbot/conversation"
)

// Telegram's descriptions of the errors the adapter handles.
const (
	descNotModified  = "message is not modified"
	descParseFailed  = "can't parse entities"
	descEditNotFound = "message to edit not found"
	descTooLong      = "message is too long"
)

// badRequest reports whether err is a 400 whose description contains desc.
func badRequest(err error, desc string) bool {
	return err != nil && errors.Is(err, bot.ErrorBadRequest) && strings.Contains(err.Error(), desc)
}

// retryAfter reports the wait a 429 answer asks for. go-telegram/bot's own
// IsTooManyRequestsError is a plain type assertion, so errors.As is used instead.
func retryAfter(err error) (time.Duration, bool) {
	var tm *bot.TooManyRequestsError
	if !errors.As(err, &tm) {
		return 0, false
	}
	return max(time.Duration(tm.RetryAfter)*time.Second, time.Second), true
}

// redactor removes the bot token from errors: the library's errors may hold the
// request URL, which holds the token, and the body of an answer it could not
// decode (an error page that may echo the URL, percent-encoded), which is cut
// to maxErrorText bytes.
type redactor struct {
	token string
}

// redactedError is an error whose text had the token removed. It does not unwrap,
// so that nothing can print the original by accident.
type redactedError struct {
	msg string
}

func (e *redactedError) Error() string { return e.msg }

// transientWait is how long the pacer waits after a failure that may pass: a 5xx,
// a gateway's error page, a broken connection.
const transientWait = time.Second

// transient reports whether err is a failure worth trying again.
func transient(err error) bool {
	var netErr *url.Error
	if errors.As(err, &netErr) {
		return true
	}
	msg := err.Error()
	return serverError.MatchString(msg) ||
		strings.Contains(msg, "error read response body") ||
		strings.Contains(msg, "error decode response body") // an HTML page from a gateway
}

// serverError matches go-telegram/bot's error for a 5xx answer.
var serverError = regexp.MustCompile(`error response from telegram for method \S+, 5\d\d `)

// maxErrorText bounds the text of an error the adapter logs or passes on.
const maxErrorText = 400

// err returns err without the token and cut to maxErrorText bytes; a 429 or a
// transient failure becomes a RetryAfterError, so the pacer tries again (the
// final text included).
func (r redactor) err(err error) error {
	if err == nil {
		return nil
	}
	safe := err
	if msg := err.Error(); r.text(msg) != msg {
		safe = &redactedError{msg: r.text(msg)}
	}
	if after, ok := retryAfter(err); ok {
		return &conversation.RetryAfterError{After: after, Err: safe}
	}
	if transient(err) {
		return &conversation.RetryAfterError{After: transientWait, Err: safe}
	}
	return safe
}

// text returns s without the token, in any of its URL-escaped forms, cut to
// maxErrorText bytes. The token goes first, so that no cut leaves part of it.
func (r redactor) text(s string) string {
	return conversation.ClipText(conversation.RedactSecret(s, r.token), maxErrorText)
}
