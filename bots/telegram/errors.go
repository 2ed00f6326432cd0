package telegram

import (
	"errors"
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
// request URL, which holds the token.
type redactor struct {
	token string
}

// redactedError is an error whose text had the token removed. It does not unwrap,
// so that nothing can print the original by accident.
type redactedError struct {
	msg string
}

func (e *redactedError) Error() string { return e.msg }

// err returns err without the token; a 429 becomes a RetryAfterError for the pacer.
func (r redactor) err(err error) error {
	if err == nil {
		return nil
	}
	safe := err
	if msg := err.Error(); r.token != "" && strings.Contains(msg, r.token) {
		safe = &redactedError{msg: strings.ReplaceAll(msg, r.token, "<token>")}
	}
	if after, ok := retryAfter(err); ok {
		return &conversation.RetryAfterError{After: after, Err: safe}
	}
	return safe
}

// text returns s without the token.
func (r redactor) text(s string) string {
	if r.token == "" {
		return s
	}
	return strings.ReplaceAll(s, r.token, "<token>")
}
