package slack

import (
	"context"
	"errors"

	slackgo "github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/chatbot-dev/chatbot/conversation"
)

var _ conversation.Noticer = (*reply)(nil)

// Best-effort notes (refusals, busy notices) go out at most noteRate a second
// over all the adapter's conversations, after a burst of noteBurst; beyond that
// they are dropped. A flood of messages from people the bot refuses, or from one
// person while their thread is busy, then costs the replies next to nothing.
const (
	noteRate  = 2
	noteBurst = 5
)

// newNoteLimiter returns the cap on best-effort notes.
func newNoteLimiter() *rate.Limiter { return rate.NewLimiter(noteRate, noteBurst) }

var errNoteDropped = errors.New("no room for a note now: dropped")

// noteRoom takes a note's share of the cap if there is room now, and reports
// why not otherwise: the cap is spent, or Slack asked the workspace to wait.
func noteRoom(b limiter, notes *rate.Limiter) error {
	if d := b.paused(); d > 0 {
		return &conversation.RetryAfterError{After: d, Err: errNoteDropped}
	}
	r := notes.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return &conversation.RetryAfterError{After: d, Err: errNoteDropped}
	}
	return nil
}

// note sends a refusal at best: one attempt when the cap has room, no retry.
func (a *Adapter) note(ctx context.Context, team string, rep conversation.Reply, text string) {
	if team == "" {
		team = a.team
	}
	err := noteRoom(a.spaces.of(team).update, a.notes)
	if err == nil {
		err = rep.Finish(ctx, text)
	}
	if err != nil {
		a.log.Debug("slack: note not sent", "err", err)
	}
}

// Notice writes the engine's busy notice at best: it replaces the placeholder if
// the workspace's edit budget has room for it now, else is posted as a message of
// its own if the notes' cap has room; one attempt, no retry. When it is dropped,
// the placeholder is left for abandon to remove.
func (r *reply) Notice(ctx context.Context, text string) error {
	r.awaitState(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	text = toMrkdwn(text)
	if len(r.msgs) == 1 && r.msgs[0].shown == thinkingText {
		d, err := r.ws.update.tryTake(ctx, 0)
		if err != nil {
			return err
		}
		if d > 0 {
			return &conversation.RetryAfterError{After: d, Err: errNoteDropped}
		}
		if _, _, _, err := r.api.UpdateMessageContext(ctx, r.channel, r.msgs[0].ts, slackgo.MsgOptionText(text, false)); err != nil {
			return r.noteError(err, r.ws.update)
		}
		r.msgs[0].shown = text
		return nil
	}
	if err := noteRoom(r.ws.posts, r.notes); err != nil {
		return err
	}
	ts, err := r.post(ctx, text, nil, false)
	if err != nil {
		return r.noteError(err, r.ws.channel(r.channel).posts)
	}
	r.msgs = append(r.msgs, posted{ts: ts, shown: text})
	return nil
}

// noteError turns a ratelimited answer to a note into a RetryAfterError (the
// note is dropped) and pauses the method's budget.
func (r *reply) noteError(err error, b limiter) error {
	if d, ok := rateLimited(err); ok {
		b.pause(d)
		return &conversation.RetryAfterError{After: d, Err: err}
	}
	return err
}
