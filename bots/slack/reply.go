package slack

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	slackgo "github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/chatbot-dev/chatbot/conversation"
)

const (
	// thinkingText is the placeholder shown until the first text replaces it.
	thinkingText = "_Thinking…_"
	// thinkingStatus is the assistant thread status shown instead where allowed.
	thinkingStatus = "is thinking…"
	// minMessageChars is as small as msg_too_long makes a reply's messages.
	minMessageChars = 500
	// maxStreamChars is the most Markdown a native stream carries (the limit of
	// markdown_text in one call); longer replies go on by editing in place.
	maxStreamChars = 12000
	// firstTextPatience is how long the first text waits for the budget to
	// replace the placeholder, before it yields to the pacer like any update.
	firstTextPatience = 3 * time.Second
)

var (
	_ conversation.Reply = (*reply)(nil)
	_ conversation.Reply = (*ephemeral)(nil)

	errNotAppend = errors.New("reply text is not an extension of the streamed text")
	errTooLong   = errors.New("reply too long for one native stream")
	errChoices   = errors.New("buttons need a message of their own")
)

// reply writes one answer into a Slack thread or DM: a thinking state, then the
// text in one or more messages kept up to date with chat.update, or natively
// streamed. The engine's pacer calls it from one goroutine at a time.
type reply struct {
	api     slackAPI
	files   fileAPI // picture uploads
	budget  *budget
	notes   *rate.Limiter // the cap on best-effort notes (Notice)
	log     *slog.Logger
	channel string
	thread  string // thread_ts to post in; "" = top level of a DM
	team    string // the recipient's team (native streaming in channels)
	user    string // the recipient (native streaming in channels)
	dm      bool
	limit   int  // most mrkdwn characters per message
	native  bool // stream natively while that works

	mu      sync.Mutex
	msgs    []posted              // the reply's messages, in order
	stream  *stream               // the native stream, once started
	choices []conversation.Choice // buttons under the final text (FinishChoices)
	status  bool                  // the assistant thread status is set
	// drawing is closed once the "drawing" state (Drawing) is shown; done is
	// set by the final text, after which that state is not shown any more.
	drawing chan struct{}
	done    bool
}

// posted is one message of a reply.
type posted struct {
	ts      string
	shown   string // the mrkdwn it shows now
	buttons bool   // it has blocks (the choices' buttons)
}

// stream is a native stream in progress.
type stream struct {
	ts   string
	sent string // the Markdown sent so far
}

// start shows that an answer is coming: the assistant thread status where Slack
// allows it (threads in DMs, and any thread when streaming natively), else a
// placeholder message that the first text replaces.
func (r *reply) start(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.showState(ctx, thinkingStatus, thinkingText)
}

// showState shows the assistant thread status where Slack allows it, else the
// placeholder message. The caller holds r.mu.
func (r *reply) showState(ctx context.Context, status, placeholder string) {
	if r.thread != "" && (r.dm || r.native) {
		err := r.api.SetAssistantThreadsStatusContext(ctx, slackgo.AssistantThreadsSetStatusParameters{
			ChannelID: r.channel, ThreadTS: r.thread, Status: status})
		if err == nil {
			r.status = true
			return
		}
		r.log.Debug("slack: thread status not available, posting a placeholder", "err", err)
	}
	r.native = false // a placeholder cannot become a stream
	ts, err := r.post(ctx, placeholder, nil)
	if err != nil {
		r.log.Warn("slack: post placeholder", "channel", r.channel, "err", err)
		return
	}
	r.msgs = []posted{{ts: ts, shown: placeholder}}
}

// Update shows the reply so far.
func (r *reply) Update(ctx context.Context, text string) error {
	r.awaitDrawing(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.native {
		err := r.streamTo(ctx, streamable(text), false)
		if err == nil {
			return nil
		}
		if d, ok := rateLimited(err); ok {
			r.budget.pause(d)
			return &conversation.RetryAfterError{After: d, Err: err}
		}
		if _, ok := conversation.RetryAfter(err); ok {
			return err
		}
		r.fallBack(ctx, err)
	}
	return r.show(ctx, text, false)
}

// Finish writes the final text, waiting as long as Slack asks (within ctx).
func (r *reply) Finish(ctx context.Context, text string) error {
	r.awaitDrawing(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = true
	return r.finish(ctx, text)
}

// finish writes the final text; the caller holds r.mu.
func (r *reply) finish(ctx context.Context, text string) error {
	if r.native {
		err := r.streamFinal(ctx, text)
		if err == nil || ctx.Err() != nil {
			return err
		}
		r.fallBack(ctx, err)
	}
	return r.show(ctx, text, true)
}

// show makes the reply's messages show text. Messages too long for Slack are
// split further; a ratelimited answer pauses the workspace's budget and is
// returned as a RetryAfterError, or waited out for the final text.
func (r *reply) show(ctx context.Context, text string, final bool) error {
	for failures := 0; ; {
		err := r.showOnce(ctx, text, final)
		if err == nil {
			return nil
		}
		if slackError(err) == "msg_too_long" && r.limit > minMessageChars {
			r.limit = max(r.limit/2, minMessageChars)
			r.log.Warn("slack: message too long, splitting the reply further", "limit", r.limit)
			continue
		}
		d, limited := rateLimited(err)
		if !limited && transient(err) && failures < maxTransientFailures {
			failures++
			r.log.Warn("slack: call failed, trying again", "err", err)
			d, limited = transientWait, true
		}
		if !limited {
			return err
		}
		r.budget.pause(d)
		if !final {
			return &conversation.RetryAfterError{After: d, Err: err}
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// showOnce edits the messages whose text changed and posts the new ones.
func (r *reply) showOnce(ctx context.Context, text string, final bool) error {
	chunks := r.chunks(text)
	for i, c := range chunks {
		var blocks []slackgo.Block
		if final && r.choices != nil && i == len(chunks)-1 {
			blocks = choiceBlocks(c, r.choices)
		}
		if i >= len(r.msgs) {
			ts, err := r.post(ctx, c, blocks)
			if err != nil {
				return err
			}
			r.msgs = append(r.msgs, posted{ts: ts, shown: c, buttons: blocks != nil})
			continue
		}
		if r.msgs[i].shown == c && blocks == nil && !r.msgs[i].buttons {
			continue
		}
		if err := r.edit(ctx, i, c, final, blocks); err != nil {
			return err
		}
	}
	if final { // a re-split left messages over: say where the text went
		for i := len(chunks); i < len(r.msgs); i++ {
			if err := r.edit(ctx, i, "_(continued above)_", final, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// chunks renders text as the mrkdwn of each message, split where the rendering
// would pass the limit.
func (r *reply) chunks(text string) []string {
	fits := func(s string) bool { return utf8.RuneCountInString(toMrkdwn(s)) <= r.limit }
	var out []string
	for _, part := range conversation.SplitMarkdown(text, fits) {
		m := toMrkdwn(part)
		if strings.TrimSpace(m) == "" && strings.TrimSpace(part) != "" {
			m = truncate(escapeText(part), r.limit) // Markdown that renders to nothing
		}
		if strings.TrimSpace(m) != "" {
			out = append(out, m)
		}
	}
	return out
}

// truncate cuts s to at most n runes.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// post sends a new message of the reply, with blocks if any (then text is the
// notifications' fallback).
func (r *reply) post(ctx context.Context, text string, blocks []slackgo.Block) (string, error) {
	opts := []slackgo.MsgOption{slackgo.MsgOptionText(text, false)}
	if blocks != nil {
		opts = append(opts, slackgo.MsgOptionBlocks(blocks...))
	}
	if r.thread != "" {
		opts = append(opts, slackgo.MsgOptionTS(r.thread))
	}
	_, ts, err := r.api.PostMessageContext(ctx, r.channel, opts...)
	return ts, err
}

// edit makes message i show text (and blocks, if any: a message that had
// buttons and gets none loses them; chat.update would keep them otherwise),
// within the workspace's budget. The final text and the first text replacing
// the placeholder wait for their turn in the budget (so they come first); other
// updates are skipped when it has no room.
func (r *reply) edit(ctx context.Context, i int, text string, final bool, blocks []slackgo.Block) error {
	patience := time.Duration(0)
	if r.msgs[i].shown == thinkingText || r.msgs[i].shown == drawingText {
		patience = firstTextPatience
	}
	if err := r.spend(ctx, final, patience); err != nil {
		return err
	}
	opts := []slackgo.MsgOption{slackgo.MsgOptionText(text, false)}
	if blocks != nil || r.msgs[i].buttons {
		opts = append(opts, slackgo.MsgOptionBlocks(blocks...)) // none: "[]" removes them
	}
	_, _, _, err := r.api.UpdateMessageContext(ctx, r.channel, r.msgs[i].ts, opts...)
	switch slackError(err) {
	case "message_not_found", "cant_update_message", "edit_window_closed":
		// The message is gone or frozen: the text goes on in a new one.
		ts, perr := r.post(ctx, text, blocks)
		if perr != nil {
			return perr
		}
		r.msgs[i] = posted{ts: ts, shown: text, buttons: blocks != nil}
		return nil
	case "":
		if err != nil {
			return err
		}
	default:
		return err
	}
	r.msgs[i].shown, r.msgs[i].buttons = text, blocks != nil
	return nil
}

// spend takes one edit from the budget: a final text waits its turn; an update
// waits up to patience, else returns a RetryAfterError (and the pacer tries again
// later with the latest text).
func (r *reply) spend(ctx context.Context, final bool, patience time.Duration) error {
	if final {
		return r.budget.take(ctx)
	}
	d, err := r.budget.tryTake(ctx, patience)
	if err != nil {
		return err
	}
	if d > 0 {
		return &conversation.RetryAfterError{After: d, Err: errors.New("workspace edit budget spent")}
	}
	return nil
}

// streamTo brings the native stream up to text: chat.startStream with the first
// text, chat.appendStream with what was added, chat.stopStream at the end.
func (r *reply) streamTo(ctx context.Context, text string, final bool) error {
	if len(text) > maxStreamChars {
		return errTooLong
	}
	if r.stream == nil {
		if text == "" && !final {
			return nil // nothing to show yet: the thread status still says thinking
		}
		opts := []slackgo.MsgOption{slackgo.MsgOptionTS(r.thread), slackgo.MsgOptionMarkdownText(text)}
		if !r.dm {
			opts = append(opts, slackgo.MsgOptionRecipientUserID(r.user), slackgo.MsgOptionRecipientTeamID(r.team))
		}
		_, ts, err := r.api.StartStreamContext(ctx, r.channel, opts...)
		if err != nil {
			return err
		}
		r.stream = &stream{ts: ts, sent: text}
		if !final {
			return nil
		}
	}
	delta, ok := strings.CutPrefix(text, r.stream.sent)
	if !ok {
		return errNotAppend
	}
	if delta == "" && !final {
		return nil
	}
	if err := r.spend(ctx, final, 0); err != nil {
		return err
	}
	var opts []slackgo.MsgOption
	if delta != "" {
		opts = append(opts, slackgo.MsgOptionMarkdownText(delta))
	}
	var err error
	if final {
		_, _, err = r.api.StopStreamContext(ctx, r.channel, r.stream.ts, opts...)
	} else {
		_, _, err = r.api.AppendStreamContext(ctx, r.channel, r.stream.ts, opts...)
	}
	if err == nil {
		r.stream.sent = text
	}
	return err
}

// streamable is the part of a partial reply that a native stream can take now.
// A stream only appends, and while the reasoning summary grows its last quoted
// line may still change form (an empty quote line ">" becomes "> text"), so
// until the answer begins the summary is streamed in whole lines.
func streamable(text string) string {
	if !strings.HasPrefix(text, "> "+conversation.ReasoningMark) {
		return text
	}
	if _, answer := conversation.SplitReasoning(text); answer != "" {
		return text
	}
	body := strings.TrimSuffix(text, "\n")
	return body[:strings.LastIndexByte(body, '\n')+1]
}

// streamFinal ends the native stream with text, waiting out ratelimited answers.
func (r *reply) streamFinal(ctx context.Context, text string) error {
	for {
		err := r.streamTo(ctx, text, true)
		d, limited := rateLimited(err)
		if !limited {
			return err
		}
		r.budget.pause(d)
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// fallBack gives up native streaming for this reply: the streamed message, if
// any, is stopped and from now on edited in place like any other.
func (r *reply) fallBack(ctx context.Context, cause error) {
	r.native = false
	r.log.Warn("slack: native streaming failed, editing in place instead", "channel", r.channel, "err", cause)
	if r.stream == nil {
		return
	}
	if _, _, err := r.api.StopStreamContext(ctx, r.channel, r.stream.ts); err != nil {
		r.log.Debug("slack: stop stream", "err", err)
	}
	r.msgs = []posted{{ts: r.stream.ts}}
	r.stream = nil
}

// ephemeral answers one user only (slash commands, access notes): the final text
// goes out with chat.postEphemeral, partial ones are dropped.
type ephemeral struct {
	api     slackAPI
	channel string
	user    string
	thread  string
}

// Update drops partial text: an ephemeral message cannot be edited.
func (e *ephemeral) Update(context.Context, string) error { return nil }

// Finish posts the text to the user alone.
func (e *ephemeral) Finish(ctx context.Context, text string) error {
	opts := []slackgo.MsgOption{slackgo.MsgOptionText(toMrkdwn(text), false)}
	if e.thread != "" {
		opts = append(opts, slackgo.MsgOptionTS(e.thread))
	}
	_, err := e.api.PostEphemeralContext(ctx, e.channel, e.user, opts...)
	if d, ok := rateLimited(err); ok {
		return &conversation.RetryAfterError{After: d, Err: err}
	}
	return err
}
