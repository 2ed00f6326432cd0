package conversation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

const (
	// messageOverhead is what each message costs beyond its text in OpenAI's chat
	// format (role, separators; the OpenAI cookbook counts 3, plus 1 for a name).
	messageOverhead = 4
	// replyPriming is what the model's reply header costs.
	replyPriming = 3
)

var errTurnTimeout = errors.New("turn time limit reached")

// turn runs one model turn for req; the chat is already reserved. Model errors are
// answered and logged here; the error returned is about delivering or storing.
//
// The goroutine that runs a turn waits on the model's stream for most of the
// turn, so the functions on its stack by then (this one, converse, callModel
// and the model's own) keep small frames and leave the rest to turnRun: a
// goroutine's stack shrinks to half at a GC only while under a quarter of it
// is in use. For the same reason of memory per reply, the turn adds no
// contexts of its own: TurnTimeout cancels the chat's turn context with
// errTurnTimeout, and the pacer writes on the engine's delivery context (it
// has no write in flight once Finish returns).
func (e *Engine) turn(req *Request, st *chatState) error {
	cancel := st.cancel
	timeout := time.AfterFunc(e.cfg.TurnTimeout, func() { cancel(errTurnTimeout) })
	defer timeout.Stop()
	// Writing to the platform goes on after /stop, /reset, a model error or the
	// shutdown's grace have cancelled the turn, so that the final text is always
	// delivered; the store is written without a deadline (local and quick).
	t := e.newTurn(st.ctx, e.delivery, req)
	if text, refused := t.prepare(); refused {
		return t.finish(text, "")
	}
	e.markPending(t.storeCtx(), req.Chat, true)
	defer e.markPending(t.storeCtx(), req.Chat, false)
	if t.transcript != "" {
		t.sh.setTranscript(t.transcript)
		t.p.Changed()
	}
	t.converse()
	return t.conclude()
}

// turnRun is one model turn in flight: what the steps of turn share.
type turnRun struct {
	e          *Engine
	req        Request
	start      time.Time
	stats      TurnStats
	ctx        context.Context // ended by /stop, /reset, TurnTimeout and the shutdown
	p          pacer
	sh         shown
	setup      chatSetup
	user       Message
	transcript string
	msgs       []Message
	out        ModelOutput
	ft         firstTokenTimer // of the model call in flight
	mreq       ModelRequest
	// What the model said.
	answer Answer
	ran    []string
	err    error
}

func (e *Engine) newTurn(ctx, deliverCtx context.Context, req *Request) *turnRun {
	t := &turnRun{e: e, req: *req, start: time.Now(), ctx: ctx}
	t.stats = TurnStats{Chat: req.Chat, UserID: req.UserID, Outcome: OutcomeRefused}
	t.sh.showCalls = e.cfg.ShowToolCalls
	t.p.init(deliverCtx, req.Reply, req.UpdateEvery, e.cfg.Clock, e.log, &t.sh)
	t.out = ModelOutput{Text: t.text, Reasoning: t.reasoning}
	return t
}

// storeCtx is the context of the turn's writes to the store: they are made
// without a deadline (local and quick) even after the turn was cancelled.
func (t *turnRun) storeCtx() context.Context { return context.WithoutCancel(t.ctx) }

// prepare checks the user's limits, reads the chat's settings and builds the
// context; refused is set with the text to answer when the turn goes no further.
func (t *turnRun) prepare() (text string, refused bool) {
	e, ctx := t.e, t.ctx
	if text, over := e.overLimit(ctx, t.req.UserID); over {
		return text, true
	}
	var err error
	if t.setup, err = e.setup(ctx, t.req.Chat); err != nil {
		t.stats.Err = err
		return UserText(err), true
	}
	t.stats.Model = t.setup.model
	if t.user, t.transcript, err = e.userMessage(ctx, t.req); err != nil {
		t.stats.Err = err
		return UserText(err), true
	}
	t.user.Time = time.Now().UTC()
	if t.msgs, err = e.buildContext(ctx, t.req.Chat, t.setup.instructions, &t.user); err != nil {
		t.stats.Err = err
		return quoteTranscript(t.transcript, UserText(err)), true
	}
	return "", false
}

func (t *turnRun) text(delta string) {
	t.ft.seen()
	if t.stats.FirstToken == 0 {
		t.stats.FirstToken = time.Since(t.start)
	}
	t.sh.addText(delta)
	t.p.Changed()
}

func (t *turnRun) reasoning(delta string) {
	t.ft.seen()
	t.sh.addSummary(delta)
	t.p.Changed()
}

func (t *turnRun) status(line string) {
	t.sh.setStatus(line)
	t.p.Changed()
}

// conclude counts the usage, stores the exchange and delivers the final text.
func (t *turnRun) conclude() error {
	e, req, err := t.e, &t.req, t.err
	reply := t.sh.answer()
	if err == nil {
		reply += sourcesText(t.answer.Sources)
	}
	t.stats.Usage, t.stats.Err = e.spent(t.answer.Usage, t.setup.instructions, t.msgs, reply), err
	e.addUsage(t.storeCtx(), req.UserID, t.stats.Usage)
	final, keep, outcome := e.outcome(t.ctx, reply, err)
	t.stats.Outcome = outcome
	if outcome == OutcomeStopped || outcome == OutcomeReset {
		t.stats.Err = nil // the user asked for it: not a model error
	}
	// Stored before the final text goes out, so that this text can say when
	// the exchange could not be saved (a full disk, a damaged store).
	var storeErr error
	if keep != "" {
		stored := Message{Role: RoleAssistant, Content: keep + toolsNote(t.ran), Time: time.Now().UTC()}
		stored.Tokens = e.count(stored)
		if err := e.history.AppendTurn(t.storeCtx(), req.Chat, t.user, stored); err != nil {
			storeErr = fmt.Errorf("store turn: %w", err)
			final += notSavedNote
		}
	}
	return errors.Join(storeErr, t.finish(t.sh.composeWith(final), reply))
}

// finish delivers the final text and reports the turn.
func (t *turnRun) finish(final, reply string) error {
	err := t.p.Finish(final)
	t.stats.Duration = time.Since(t.start)
	t.e.turnDone(t.req, t.stats, reply)
	return err
}

// notSavedNote ends a reply whose exchange the store could not save.
const notSavedNote = "\n\n⚠️ I could not save this exchange, so I will not remember it."

// outcome decides the final text a user sees and the reply text to store ("" =
// store nothing), from what the model streamed and how the turn ended.
func (e *Engine) outcome(ctx context.Context, reply string, err error) (final, keep string, o Outcome) {
	empty := strings.TrimSpace(reply) == ""
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errStopped):
		if empty {
			return "Stopped.", "", OutcomeStopped
		}
		return reply + stoppedMark, reply, OutcomeStopped
	case errors.Is(cause, errReset):
		if empty {
			return "Cancelled: context cleared.", "", OutcomeReset
		}
		return reply + resetMark, "", OutcomeReset
	case errors.Is(cause, errShutdown):
		err, o = &Error{Text: shutdownText, Err: err}, OutcomeError
	case errors.Is(cause, errTurnTimeout):
		err, o = &Error{Text: "The answer took too long and was cut off.", Err: err}, OutcomeTimeout
	case err == nil && empty:
		return emptyReplyText, "", OutcomeError
	case err == nil:
		return reply, reply, OutcomeOK
	default:
		o = OutcomeError
	}
	if empty {
		return UserText(err), "", o
	}
	return reply + "\n\n⚠️ " + UserText(err), "", o
}

// callModel streams one completion into answer within the engine's adaptive
// bound on concurrent calls, which learns from its time to first token (ft,
// which out's callbacks tell of each token) and its error.
func (e *Engine) callModel(ctx context.Context, req *ModelRequest, out ModelOutput, ft *firstTokenTimer, answer *Answer) error {
	p, err := e.calls.acquire(ctx)
	if err != nil {
		*answer = Answer{}
		return err
	}
	ft.begin(e.cfg.Clock)
	*answer, err = e.model.Stream(ctx, req, out)
	p.release(ft.elapsed(), err)
	return err
}

// buildContext returns the newest history that fits the token budget beside the
// instructions, and the user's message (whose token count it caches).
func (e *Engine) buildContext(ctx context.Context, chat ChatID, instructions string, user *Message) ([]Message, error) {
	budget := e.cfg.MaxContextTokens - e.cfg.ReplyTokens - replyPriming
	used := 0
	if instructions != "" {
		used = e.count(Message{Role: RoleSystem, Content: instructions})
	}
	atts := attachmentTokens(user.Attachments)
	if err := e.countUser(ctx, user, budget-used-atts); err != nil {
		return nil, err
	}
	need := user.Tokens + atts
	used += need
	hist, err := e.history.Recent(ctx, chat, e.cfg.HistoryWindow)
	if err != nil {
		return nil, &Error{Text: "I could not read this conversation's history. Please try again.",
			Err: fmt.Errorf("load history: %w", err)}
	}
	first, imagesFull := len(hist), false
	for first > 0 {
		m := &hist[first-1]
		n := e.count(*m)
		if used+n > budget {
			break
		}
		used += n
		m.Attachments = e.keepAttachments(ctx, chat, m.Attachments, &used, budget, &imagesFull)
		first--
	}
	msgs := make([]Message, 0, len(hist)-first+1)
	msgs = append(msgs, hist[first:]...)
	return append(msgs, *user), nil
}

// count returns m's cost in the context, using its cached count when there is one.
func (e *Engine) count(m Message) int {
	if m.Tokens > 0 {
		return m.Tokens
	}
	n := e.tokens.Count(m.Content) + messageOverhead
	if m.Name != "" {
		n += e.tokens.Count(m.Name) + 1
	}
	return n
}

// markPending records (or clears) that chat's reply is being written.
func (e *Engine) markPending(ctx context.Context, chat ChatID, writing bool) {
	if e.cfg.Pending == nil {
		return
	}
	mark := e.cfg.Pending.ClearPending
	if writing {
		mark = e.cfg.Pending.MarkPending
	}
	if err := mark(ctx, chat); err != nil {
		e.log.Warn("mark pending reply", "chat", string(chat), "err", err)
	}
}
