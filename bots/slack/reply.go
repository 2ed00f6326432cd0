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
	// thinkingText is the placeholder shown until the first text, where Slack
	// allows no thread status (the top level of a DM, or the status refused).
	thinkingText = "_Thinking…_"
	// thinkingStatus is the assistant thread status shown instead.
	thinkingStatus = "is thinking…"
	// minMessageChars is as small as msg_too_long makes a reply's messages.
	minMessageChars = 500
	// maxStreamChars is the most Markdown a native stream carries (the limit of
	// markdown_text in one call); longer replies go on by editing in place.
	maxStreamChars = 12000
	// sessionClosePatience bounds the wait for the budget to take an agent
	// session out of processing once the answer is written (opens take at
	// most half the budget, so there is room nearly always).
	sessionClosePatience = 10 * time.Second
)

var (
	_ conversation.Reply = (*reply)(nil)
	_ conversation.Reply = (*ephemeral)(nil)
	_ conversation.Reply = discard{}

	errNotAppend = errors.New("reply text is not an extension of the streamed text")
	errTooLong   = errors.New("reply too long for one native stream")
	errChoices   = errors.New("buttons need a message of their own")
	errNoStart   = errors.New("no room for a new stream in the workspace now")
	errNativeOff = errors.New("native streaming is off in this workspace for now")
	errHalted    = errors.New("slack stopped the stream for the user")
)

// reply writes one answer into a Slack thread or DM: a thinking state (the
// assistant thread status, else a placeholder), then the first text as a
// native stream or a message of its own (never an edit of the placeholder,
// which waits for the workspace's edit budget), kept up to date by appending
// to the stream or with chat.update, and the final text with the feedback
// buttons. The engine's pacer calls it from one goroutine at a time.
type reply struct {
	api     slackAPI
	files   fileAPI // picture uploads
	ws      *workspace
	notes   *rate.Limiter // the cap on best-effort notes (Notice)
	log     *slog.Logger
	channel string
	thread  string // thread_ts to post in; "" = top level of a DM
	team    string // the recipient's team (native streaming in channels)
	user    string // the recipient (native streaming in channels)
	dm      bool
	limit   int  // most mrkdwn characters per message
	native  bool // stream natively while that works
	// feedback puts the feedback buttons under the final text (a model's answer).
	feedback bool
	// onHalt asks the engine to stop the turn, when Slack stopped the stream.
	onHalt func()
	// background runs work that outlives the reply (closing the agent session).
	background func(func(context.Context))

	mu      sync.Mutex
	msgs    []posted              // the reply's messages, in order
	stream  *stream               // the native stream, once started
	choices []conversation.Choice // buttons under the final text (FinishChoices)
	status  bool                  // the assistant thread status is set
	entered bool                  // counted among the thread's live replies
	halted  bool                  // Slack stopped the stream for the user
	// noFeedback: Slack refused the feedback buttons; the final goes without.
	noFeedback bool
	// drawing is closed once the "drawing" state (Drawing) is shown; done is
	// set by the final text, after which that state is not shown any more.
	drawing chan struct{}
	done    bool
}

// posted is one message of a reply.
type posted struct {
	ts      string
	shown   string // the mrkdwn it shows now
	buttons bool   // it has blocks (buttons or the feedback buttons)
}

// stream is a native stream in progress.
type stream struct {
	ts      string
	sent    string // the Markdown sent so far
	stopped bool   // chat.stopStream succeeded
}

// placeholder reports whether text is one of the placeholders a reply shows
// until its first text.
func placeholder(text string) bool { return text == thinkingText || text == drawingText }

// begin shows that an answer is coming (start) in the background, so that the
// model's call does not wait for Slack's answers; the reply's own calls wait
// for it (awaitState).
func (r *reply) begin(ctx context.Context, title string) {
	shown := make(chan struct{})
	r.mu.Lock()
	r.drawing = shown
	r.mu.Unlock()
	show := func(context.Context) {
		defer close(shown)
		r.start(ctx, title)
	}
	if r.background == nil {
		go show(ctx)
		return
	}
	r.background(show)
}

// start shows that an answer is coming: it opens the thread's agent session
// (processing: Slack shows its stop button) and sets the assistant thread
// status, or, where Slack allows no status, posts a placeholder. A second
// reply in a thread that has one live already shows nothing more. title names
// a new session.
func (r *reply) start(ctx context.Context, title string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.thread != "" {
		r.entered = true
		if !r.ws.enterThread(r.channel, r.thread) {
			return // the thread shows a state already
		}
		r.openSession(ctx, title)
	}
	r.showState(ctx, thinkingStatus, thinkingText)
}

// openSession sets the thread's agent session processing, when the budget has
// room now and the workspace's app is an agent. The caller holds r.mu.
func (r *reply) openSession(ctx context.Context, title string) {
	if r.ws.flag(&r.ws.noSessions) || spendAll(ctx, false, r.ws.sessionOpens, r.ws.sessions) != nil {
		return
	}
	_, err := r.api.SetAgentSessionStatusContext(ctx, slackgo.AgentSessionSetStatusParameters{
		Status: slackgo.AgentSessionStatusProcessing, ChannelID: r.channel, ThreadTS: r.thread,
		Title: truncate(title, maxSessionTitle), InitiatorUserID: r.user})
	if err == nil {
		r.ws.sessionOpened(r.channel, r.thread)
		return
	}
	if d, ok := rateLimited(err); ok {
		r.ws.sessions.pause(d)
		return
	}
	if !transient(err) && !threadError(err) {
		r.ws.set(&r.ws.noSessions)
		r.log.Info("slack: agent sessions not available in this workspace (declare the app an agent for the stop button)",
			"team", r.team, "err", err)
	}
}

// showState shows the assistant thread status where Slack allows it (any
// thread, with chat:write) and its budget has room, else the placeholder
// message when the status is refused. The caller holds r.mu.
func (r *reply) showState(ctx context.Context, status, text string) {
	if r.thread != "" && !r.ws.flag(&r.ws.noStatus) {
		cb := r.ws.channel(r.channel)
		if d, _ := cb.status.tryTake(ctx, 0); d > 0 {
			return // nothing shown until the text: the channel's statuses are spent
		}
		err := r.api.SetAssistantThreadsStatusContext(ctx, slackgo.AssistantThreadsSetStatusParameters{
			ChannelID: r.channel, ThreadTS: r.thread, Status: status})
		if err == nil {
			r.status = true
			return
		}
		if d, ok := rateLimited(err); ok {
			cb.status.pause(d)
			return
		}
		if transient(err) {
			return
		}
		if !threadError(err) {
			r.ws.set(&r.ws.noStatus)
		}
		r.log.Info("slack: thread status refused, posting a placeholder", "channel", r.channel, "err", err)
	}
	ts, err := r.post(ctx, text, nil, false)
	if err != nil {
		r.log.Debug("slack: post placeholder", "channel", r.channel, "err", err)
		return
	}
	r.msgs = []posted{{ts: ts, shown: text}}
}

// threadError reports whether err is about the one thread or channel rather
// than the workspace's app (which would refuse every call alike).
func threadError(err error) bool {
	switch slackError(err) {
	case "channel_not_found", "invalid_thread_ts", "not_in_channel", "is_archived", "thread_not_found",
		"message_not_found", "invalid_arguments":
		return true
	}
	return false
}

// Update shows the reply so far.
func (r *reply) Update(ctx context.Context, text string) error {
	r.awaitState(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.native {
		err := r.streamTo(ctx, streamable(text), false)
		if err == nil {
			return nil
		}
		if _, ok := conversation.RetryAfter(err); ok {
			return err
		}
		if errors.Is(err, errHalted) && r.onHalt != nil {
			r.onHalt() // the user stopped the answer with Slack's own button
		}
		r.fallBack(ctx, err)
	}
	return r.show(ctx, text, false)
}

// Finish writes the final text, waiting as long as Slack asks (within ctx).
func (r *reply) Finish(ctx context.Context, text string) error {
	r.awaitState(ctx)
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
// split further; feedback buttons Slack refuses are left out; a ratelimited
// answer (its method's budget paused) or a budget without room now is returned
// as a RetryAfterError, or waited out for the final text.
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
		if slackError(err) == "invalid_blocks" && r.feedback && !r.noFeedback {
			r.noFeedback = true
			r.log.Warn("slack: feedback buttons refused, the answer goes without them", "err", err)
			continue
		}
		d, limited := rateLimited(err)
		if !limited {
			d, limited = conversation.RetryAfter(err)
		}
		if !limited && transient(err) && failures < maxTransientFailures {
			failures++
			r.log.Warn("slack: call failed, trying again", "err", err)
			d, limited = transientWait, true
		}
		if !limited {
			return err
		}
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
	feedback := final && r.feedback && !r.noFeedback && r.choices == nil
	chunks := r.chunks(text, r.limit)
	if feedback && len(chunks) > 0 && utf8.RuneCountInString(chunks[len(chunks)-1]) > maxSectionChars {
		// The last message's text goes in a section, under Slack's limit of one.
		chunks = r.chunks(text, min(r.limit, maxSectionChars))
	}
	for i, c := range chunks {
		var blocks []slackgo.Block
		if final && i == len(chunks)-1 {
			switch {
			case r.choices != nil:
				blocks = choiceBlocks(c, r.choices)
			case feedback:
				blocks = feedbackBlocks(c)
			}
		}
		if i >= len(r.msgs) {
			ts, err := r.post(ctx, c, blocks, final)
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
// would pass limit.
func (r *reply) chunks(text string, limit int) []string {
	fits := func(s string) bool { return utf8.RuneCountInString(toMrkdwn(s)) <= limit }
	var out []string
	for _, part := range conversation.SplitMarkdown(text, fits) {
		m := toMrkdwn(part)
		if strings.TrimSpace(m) == "" && strings.TrimSpace(part) != "" {
			m = truncate(escapeText(part), limit) // Markdown that renders to nothing
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
// notifications' fallback), within the channel's and the workspace's budgets
// of chat.postMessage: a final text waits its turn, anything else gets a
// RetryAfterError when there is no room now.
func (r *reply) post(ctx context.Context, text string, blocks []slackgo.Block, final bool) (string, error) {
	cb := r.ws.channel(r.channel)
	if err := spendAll(ctx, final, cb.posts, r.ws.posts); err != nil {
		return "", err
	}
	opts := []slackgo.MsgOption{slackgo.MsgOptionText(text, false)}
	if blocks != nil {
		opts = append(opts, slackgo.MsgOptionBlocks(blocks...))
	}
	if r.thread != "" {
		opts = append(opts, slackgo.MsgOptionTS(r.thread))
	}
	_, ts, err := r.api.PostMessageContext(ctx, r.channel, opts...)
	if d, ok := rateLimited(err); ok {
		cb.posts.pause(d)
	}
	return ts, err
}

// edit makes message i show text (and blocks, if any: a message that had
// buttons and gets none loses them; chat.update would keep them otherwise),
// within the workspace's budget: the final text waits its turn, other updates
// are skipped when it has no room. A placeholder is never edited: the first
// text goes out as a message of its own (posts have a budget per channel, not
// the workspace's few edits a minute) and the placeholder is deleted.
func (r *reply) edit(ctx context.Context, i int, text string, final bool, blocks []slackgo.Block) error {
	if placeholder(r.msgs[i].shown) {
		ts, err := r.post(ctx, text, blocks, final)
		if err != nil {
			return err
		}
		old := r.msgs[i].ts
		r.msgs[i] = posted{ts: ts, shown: text, buttons: blocks != nil}
		r.delete(ctx, old)
		return nil
	}
	if err := spend(ctx, r.ws.update, final, 0); err != nil {
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
		ts, perr := r.post(ctx, text, blocks, final)
		if perr != nil {
			return perr
		}
		r.msgs[i] = posted{ts: ts, shown: text, buttons: blocks != nil}
		return nil
	case "":
		if err != nil {
			if d, ok := rateLimited(err); ok {
				r.ws.update.pause(d)
			}
			return err
		}
	default:
		return err
	}
	r.msgs[i].shown, r.msgs[i].buttons = text, blocks != nil
	return nil
}

// delete removes one of the reply's messages (a placeholder): one attempt,
// chat.delete, outside the edit budget.
func (r *reply) delete(ctx context.Context, ts string) {
	if _, _, err := r.api.DeleteMessageContext(ctx, r.channel, ts); err != nil {
		r.log.Debug("slack: delete placeholder", "channel", r.channel, "err", err)
	}
}

// streamTo brings the native stream up to text: chat.startStream with the first
// text if the workspace's starts have room now (else errNoStart: the reply goes
// on as messages of its own), chat.appendStream with what was added as the
// appends' budget allows (the rest waits for a later call: appends carry all
// that accumulated), chat.stopStream at the end.
func (r *reply) streamTo(ctx context.Context, text string, final bool) error {
	if len(text) > maxStreamChars {
		return errTooLong
	}
	if r.stream == nil {
		if text == "" && !final {
			return nil // nothing to show yet: the thread status still says thinking
		}
		if err := r.startStream(ctx, text); err != nil {
			return err
		}
		if !final {
			return nil
		}
	}
	if r.halted {
		return errHalted
	}
	delta, ok := strings.CutPrefix(text, r.stream.sent)
	if !ok {
		return errNotAppend
	}
	if final {
		return r.stopStream(ctx, text, delta)
	}
	if delta == "" {
		return nil
	}
	if err := spend(ctx, r.ws.appends, false, 0); err != nil {
		return err
	}
	return r.appendStream(ctx, text, delta)
}

// startStream starts the native stream with text, in the thread, to the
// recipient (required outside DMs).
func (r *reply) startStream(ctx context.Context, text string) error {
	if !r.ws.native() {
		return errNativeOff
	}
	if d, err := r.ws.starts.tryTake(ctx, 0); err != nil {
		return err
	} else if d > 0 {
		return errNoStart
	}
	opts := []slackgo.MsgOption{slackgo.MsgOptionTS(r.thread), slackgo.MsgOptionMarkdownText(text)}
	if !r.dm {
		opts = append(opts, slackgo.MsgOptionRecipientUserID(r.user), slackgo.MsgOptionRecipientTeamID(r.team))
	}
	_, ts, err := r.api.StartStreamContext(ctx, r.channel, opts...)
	if d, ok := rateLimited(err); ok {
		r.ws.starts.pause(d)
		return errNoStart
	}
	if err != nil {
		return err
	}
	r.stream = &stream{ts: ts, sent: text}
	for _, m := range r.msgs { // the first text is here: the placeholder goes
		r.delete(ctx, m.ts)
	}
	r.msgs = nil
	return nil
}

// appendStream appends delta, bringing the stream to text.
func (r *reply) appendStream(ctx context.Context, text, delta string) error {
	_, _, err := r.api.AppendStreamContext(ctx, r.channel, r.stream.ts, slackgo.MsgOptionMarkdownText(delta))
	if err == nil {
		r.stream.sent = text
		return nil
	}
	if d, ok := rateLimited(err); ok {
		r.ws.appends.pause(d)
		return &conversation.RetryAfterError{After: d, Err: err}
	}
	if slackError(err) == "message_not_in_streaming_state" {
		r.halted = true
		return errHalted
	}
	return err
}

// stopStream ends the stream with the rest of text (delta) and the feedback
// buttons. Stops are Tier 2 like starts: when there is no room for one now, the
// rest is appended first, so that the whole text shows at once, and the stop
// waits for its turn.
func (r *reply) stopStream(ctx context.Context, text, delta string) error {
	if _, d := r.ws.stops.hold(); d > 0 {
		if delta != "" {
			if err := r.ws.appends.take(ctx); err != nil {
				return err
			}
			if err := r.appendStream(ctx, text, delta); err != nil {
				return err
			}
			delta = ""
		}
		if err := r.ws.stops.take(ctx); err != nil {
			return err
		}
	}
	var opts []slackgo.MsgOption
	if delta != "" {
		opts = append(opts, slackgo.MsgOptionMarkdownText(delta))
	}
	withFeedback := r.feedback && !r.noFeedback
	if withFeedback {
		opts = append(opts, slackgo.MsgOptionBlocks(feedbackBlock()))
	}
	_, _, err := r.api.StopStreamContext(ctx, r.channel, r.stream.ts, opts...)
	switch {
	case err == nil:
		r.stream.sent, r.stream.stopped = text, true
		r.ws.sessionClosed(r.channel, r.thread) // a stream's end takes the session out of processing
		return nil
	case slackError(err) == "message_not_in_streaming_state":
		r.halted = true
		return errHalted
	case slackError(err) == "invalid_blocks" && withFeedback:
		r.noFeedback = true
		r.log.Warn("slack: feedback buttons refused, the answer goes without them", "err", err)
		return r.stopStream(ctx, text, delta)
	}
	if d, ok := rateLimited(err); ok {
		r.ws.stops.pause(d)
		return &conversation.RetryAfterError{After: d, Err: err}
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
		d, limited := conversation.RetryAfter(err)
		if !limited {
			return err
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// fallBack gives up native streaming for this reply: the streamed message, if
// any, is stopped and from now on edited in place like any other. An error
// that does not pass by itself turns native streaming off in the workspace for
// a while; running out of room for a new stream, or Slack's stop, does not.
func (r *reply) fallBack(ctx context.Context, cause error) {
	r.native = false
	switch {
	case errors.Is(cause, errNoStart), errors.Is(cause, errNativeOff):
		r.log.Debug("slack: no native stream for this reply", "channel", r.channel, "err", cause)
	case errors.Is(cause, errHalted):
		r.log.Info("slack: the user stopped the stream in Slack", "channel", r.channel)
	case errors.Is(cause, errTooLong), errors.Is(cause, errNotAppend), errors.Is(cause, errChoices), transient(cause):
		r.log.Info("slack: native streaming left for this reply, editing in place instead", "channel", r.channel, "err", cause)
	default:
		r.ws.nativeOff()
		r.log.Warn("slack: native streaming failed, editing in place in this workspace for a while",
			"team", r.team, "channel", r.channel, "err", cause, "for", nativeOffFor)
	}
	if r.stream == nil {
		return
	}
	if !r.halted && !r.stream.stopped {
		if err := r.ws.stops.take(ctx); err == nil {
			if _, _, err := r.api.StopStreamContext(ctx, r.channel, r.stream.ts); err != nil {
				r.log.Debug("slack: stop stream", "err", err)
			}
		}
	}
	r.msgs = []posted{{ts: r.stream.ts}}
	r.stream = nil
}

// end closes the reply once the engine is done with it: a placeholder the
// engine wrote nothing into is deleted, a thread status left over is cleared,
// and the last live reply of a thread takes its agent session out of
// processing (in the background: the answer is written already).
func (r *reply) end(ctx context.Context) {
	r.awaitState(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.msgs) == 1 && placeholder(r.msgs[0].shown) {
		if _, _, err := r.api.DeleteMessageContext(ctx, r.channel, r.msgs[0].ts); err != nil {
			r.log.Debug("slack: delete placeholder", "channel", r.channel, "err", err)
		} else {
			r.msgs = nil
		}
	}
	if r.status && len(r.msgs) == 0 && r.stream == nil {
		r.clearStatus(ctx)
	}
	if !r.entered {
		return
	}
	r.entered = false
	if !r.ws.leaveThread(r.channel, r.thread) || r.background == nil {
		return
	}
	api, channel, thread, ws, log := r.api, r.channel, r.thread, r.ws, r.log
	r.background(func(ctx context.Context) {
		if d, _ := ws.sessions.tryTake(ctx, sessionClosePatience); d > 0 {
			log.Info("slack: no room to take an agent session out of processing", "channel", channel)
			return
		}
		_, err := api.SetAgentSessionStatusContext(ctx, slackgo.AgentSessionSetStatusParameters{
			Status: slackgo.AgentSessionStatusActive, ChannelID: channel, ThreadTS: thread})
		if d, ok := rateLimited(err); ok {
			ws.sessions.pause(d)
		}
		if err != nil {
			log.Debug("slack: take the agent session out of processing", "err", err)
		}
	})
}

// clearStatus clears the assistant thread status, at best. The caller holds r.mu.
func (r *reply) clearStatus(ctx context.Context) {
	r.status = false
	if d, _ := r.ws.channel(r.channel).status.tryTake(ctx, 0); d > 0 {
		return // Slack clears it by itself after two minutes
	}
	err := r.api.SetAssistantThreadsStatusContext(ctx, slackgo.AssistantThreadsSetStatusParameters{
		ChannelID: r.channel, ThreadTS: r.thread, Status: ""})
	if err != nil {
		r.log.Debug("slack: clear the thread status", "err", err)
	}
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

// discard takes the engine's answer to a stop that came from Slack's own
// button: the stopped reply says so itself.
type discard struct{}

func (discard) Update(context.Context, string) error { return nil }
func (discard) Finish(context.Context, string) error { return nil }
