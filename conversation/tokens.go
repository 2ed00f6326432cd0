package conversation

import (
	"context"
	"fmt"
	"unicode/utf8"
)

// BoundedCounter is an optional power of a TokenCounter, found with a type
// assertion: CountAtMost counts text's tokens like Count but stops as soon as the
// count passes limit (a negative limit: never), returning the count so far, and
// stops with ctx's error when ctx ends. openai.TokenCounter has it. With it, the
// engine never counts much past what the context can take, and a turn's deadline,
// /stop and the shutdown end the counting too.
type BoundedCounter interface {
	CountAtMost(ctx context.Context, text string, limit int) (int, error)
}

// MaxTokenRunes is the most characters (runes) that one token of OpenAI's
// encodings stands for: 128 in o200k_base and cl100k_base (a run of spaces). So a
// text of n runes has at least n/MaxTokenRunes tokens, and a message longer than
// MaxTokenRunes times the room left in the context cannot fit, whatever it holds.
const MaxTokenRunes = 128

// countUser counts the user's message against room, the tokens left for it in the
// context, and caches the count in user.Tokens. A message that cannot fit gets the
// "too long" answer: by its length alone when that proves it (nothing counted),
// else as soon as its count passes room.
func (e *Engine) countUser(ctx context.Context, user *Message, room int) error {
	room = max(room, 0)
	fixed := messageOverhead // what the message costs beyond its text
	if user.Name != "" {
		fixed += e.tokens.Count(user.Name) + 1
	}
	runes := utf8.RuneCountInString(user.Content)
	if least := (runes+MaxTokenRunes-1)/MaxTokenRunes + fixed; least > room {
		return tooLong(fmt.Sprintf("%d characters", runes), room)
	}
	bc, ok := e.tokens.(BoundedCounter)
	if !ok {
		user.Tokens = e.tokens.Count(user.Content) + fixed
		if user.Tokens > room {
			return tooLong(fmt.Sprintf("about %d tokens", user.Tokens), room)
		}
		return nil
	}
	n, err := bc.CountAtMost(ctx, user.Content, room-fixed)
	if err != nil {
		final, _, _ := e.outcome(ctx, "", err)
		return &Error{Text: final, Err: fmt.Errorf("count tokens: %w", err)}
	}
	if user.Tokens = n + fixed; user.Tokens > room {
		return tooLong(fmt.Sprintf("more than %d tokens", room), room)
	}
	return nil
}

// tooLong is the answer to a message that does not fit in the context; size
// says how big it is ("about 900 tokens").
func tooLong(size string, room int) error {
	return &Error{Text: fmt.Sprintf("Your message is too long for me: %s, and I can take about %d tokens at once. "+
		"Please shorten it or send it in parts.", size, room)}
}
