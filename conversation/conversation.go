// Package conversation is the bot's domain: the messages and chats, the Engine that
// runs one turn at a time per chat, the platform-neutral commands, context trimming,
// and the small interfaces it consumes (History, Model, TokenCounter, Reply).
//
// It imports no platform and no database: adapters in bots/ feed it Requests and
// implement Reply; store/ implements History; openai/ implements Model.
package conversation

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ChatID names one conversation. Adapters build it from the platform, e.g.
// "telegram:12345", "telegram:-100987:4" (a forum topic) or
// "slack:T01:C02:1712345678.000100" (a thread).
type ChatID string

// Role is who said a message, as OpenAI's chat API names it.
type Role string

// The roles a stored or sent message can have.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Message is one entry of a conversation.
type Message struct {
	Role    Role   `json:"role"`
	Content string `json:"content"`
	// Name is the speaker's display name in group chats; empty in private chats.
	Name string    `json:"name,omitempty"`
	Time time.Time `json:"time"`
	// Tokens caches the message's token count (0 = not counted yet), text only:
	// each attachment carries its own.
	Tokens int `json:"tokens,omitempty"`
	// Attachments are the images and PDFs that came with a user's message.
	Attachments []Attachment `json:"attachments,omitempty"`
}

// History stores each chat's messages. store.DB implements it.
type History interface {
	// Recent returns at most max of the chat's newest messages, oldest first.
	Recent(ctx context.Context, chat ChatID, max int) ([]Message, error)
	// AppendTurn stores the messages of one turn atomically.
	AppendTurn(ctx context.Context, chat ChatID, msgs ...Message) error
	// Reset deletes the chat's history.
	Reset(ctx context.Context, chat ChatID) error
}

// Usage is what one completion cost, as the model reports it.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}

// ModelRequest is one call to the model.
type ModelRequest struct {
	// Model names the model for this chat; empty means the Model's default.
	Model string
	// Instructions is the system prompt: the chat's persona or the configured one.
	Instructions string
	// Messages are the history and the new message, oldest first, without the
	// system prompt.
	Messages []Message
	// Tools are offered to the model as functions (none: no tools).
	Tools []Tool
	// Rounds are this turn's tool calls so far, with their results.
	Rounds []ToolRound
	// NoMoreCalls forbids tool calls this time (the round limit): the model must
	// answer with what it has.
	NoMoreCalls bool
}

// ModelOutput receives what the model sends while it answers.
type ModelOutput struct {
	// Text receives each piece of the answer.
	Text func(delta string)
	// Reasoning receives each piece of the reasoning summary, when the model
	// sends one. Nil ignores it.
	Reasoning func(delta string)
}

// Answer is what a finished model call reports beside its text.
type Answer struct {
	Usage Usage
	// Sources are the pages a web search cited, deduplicated, in order of first use.
	Sources []Source
	// Calls are the tools the model wants run before it goes on (none: the
	// answer is complete).
	Calls []ToolCall
}

// Source is one cited web page.
type Source struct {
	URL   string
	Title string // may be empty
}

// Model streams a completion. openai.Client implements it.
type Model interface {
	// Stream sends req and calls out.Text with each piece of text as it arrives;
	// it does not change req. Errors meant for users are *Error values.
	Stream(ctx context.Context, req *ModelRequest, out ModelOutput) (Answer, error)
	// Name is the default model, used when a request names none.
	Name() string
}

// TokenCounter counts the tokens of a text for the configured model.
type TokenCounter interface {
	Count(text string) int
}

// Reply is where the engine writes one answer. Adapters implement it with the
// platform's own calls: the first Update sends a message, later ones edit it.
type Reply interface {
	// Update shows the reply so far (the whole text, not a delta). The pacer calls it
	// at most once per Request.UpdateEvery. A *RetryAfterError delays the next call;
	// any other error is logged and the turn goes on.
	Update(ctx context.Context, text string) error
	// Finish writes the final, whole text. A *RetryAfterError makes the pacer wait
	// and call Finish again with the same text.
	Finish(ctx context.Context, text string) error
}

// RetryAfterError is what a Reply returns when the platform asks it to wait
// (Telegram 429 retry_after, Slack ratelimited + Retry-After).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("retry after %s: %v", e.After, e.Err)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter reports how long err asks to wait, if it is (or wraps) a *RetryAfterError.
func RetryAfter(err error) (time.Duration, bool) {
	if ra, ok := err.(*RetryAfterError); ok { // the usual case, without errors.As's allocation
		return ra.After, true
	}
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	return 0, false
}

// Error is an error whose Text is safe to show to a user: short, actionable,
// with no secret and no stack trace. Err keeps the cause for logs.
type Error struct {
	Text string
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Text
	}
	return e.Text + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// UserText returns the text a user may see for err: the Text of a wrapped *Error,
// or a generic sentence that reveals nothing.
func UserText(err error) string {
	var ue *Error
	if errors.As(err, &ue) {
		return ue.Text
	}
	return "Something went wrong while answering. Please try again."
}

// ErrClosed is returned by Engine.Handle once the engine is shutting down.
var ErrClosed = errors.New("engine closed")

// UsageLog counts the tokens each user spends a day (UTC). store.DB implements it.
type UsageLog interface {
	AddTokens(ctx context.Context, user string, day time.Time, tokens int) error
	TokensOn(ctx context.Context, user string, day time.Time) (int, error)
}

// Outcome is how a turn ended, for logs and metrics.
type Outcome string

// The outcomes of a turn.
const (
	OutcomeOK      Outcome = "ok"
	OutcomeError   Outcome = "error"   // the model failed; the user got a short note
	OutcomeStopped Outcome = "stopped" // /stop
	OutcomeReset   Outcome = "reset"   // /reset during the turn
	OutcomeRefused Outcome = "refused" // too long, or over the daily limit: no model call
	OutcomeTimeout Outcome = "timeout" // openai.turn_timeout
)

// TurnStats describes one finished turn.
type TurnStats struct {
	Chat       ChatID
	UserID     string
	Model      string
	Outcome    Outcome
	Usage      Usage
	FirstToken time.Duration // from the message to the first token (0: none came)
	Duration   time.Duration // from the message to the final text delivered
	Err        error         // the model's error, if any
}

// Observer is told about every finished turn (metrics). It must not block.
type Observer interface {
	TurnDone(TurnStats)
}

// ChatLocker holds a chat's turn over all processes that share a store, so that
// replicas run one turn at a time per chat. store/postgres implements it.
type ChatLocker interface {
	// LockChat waits until chat is free, takes it and returns what frees it.
	LockChat(ctx context.Context, chat ChatID) (unlock func(), err error)
}

// PendingLog remembers which chats have a reply being written, so that after a
// crash their users can be told the answer was cut off. store.DB implements it.
type PendingLog interface {
	MarkPending(ctx context.Context, chat ChatID) error
	ClearPending(ctx context.Context, chat ChatID) error
}

// InterruptedText is what a chat is told after a restart when the bot stopped
// (crashed) in the middle of its reply there.
const InterruptedText = "⚠️ The bot restarted while answering here, so its last answer was cut off. Please send your message again."
