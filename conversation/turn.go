package conversation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
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
func (e *Engine) turn(req Request, st *chatState) error {
	start := time.Now()
	stats := TurnStats{Chat: req.Chat, UserID: req.UserID, Outcome: OutcomeRefused}
	ctx, cancelTimeout := context.WithTimeoutCause(st.ctx, e.cfg.TurnTimeout, errTurnTimeout)
	defer cancelTimeout()

	// Writing to the platform goes on after /stop, /reset, a model error or the
	// shutdown's grace have cancelled the turn, so that the final text is always
	// delivered; the store is written without a deadline (local and quick).
	deliverCtx, stopDelivery := context.WithCancel(e.delivery)
	defer stopDelivery()
	storeCtx := context.WithoutCancel(ctx)
	sh := &shown{showCalls: e.cfg.ShowToolCalls}
	p := newPacer(deliverCtx, req.Reply, req.UpdateEvery, e.cfg.Clock, e.log, sh.compose)
	finish := func(final, reply string) error {
		err := p.Finish(final)
		stats.Duration = time.Since(start)
		e.turnDone(req, stats, reply)
		return err
	}

	if text, over := e.overLimit(ctx, req.UserID); over {
		return finish(text, "")
	}
	setup, err := e.setup(ctx, req.Chat)
	if err != nil {
		stats.Err = err
		return finish(UserText(err), "")
	}
	stats.Model = setup.model
	user, transcript, err := e.userMessage(ctx, req)
	if err != nil {
		stats.Err = err
		return finish(UserText(err), "")
	}
	user.Time = time.Now().UTC()
	msgs, err := e.buildContext(ctx, req.Chat, setup.instructions, &user)
	if err != nil {
		stats.Err = err
		return finish(quoteTranscript(transcript, UserText(err)), "")
	}

	e.markPending(storeCtx, req.Chat, true)
	defer e.markPending(storeCtx, req.Chat, false)
	if transcript != "" {
		sh.setTranscript(transcript)
		p.Changed()
	}
	mreq := ModelRequest{Model: setup.model, Instructions: setup.instructions, Messages: msgs}
	answer, ran, err := e.converse(ctx, req, mreq, ModelOutput{
		Text: func(delta string) {
			if stats.FirstToken == 0 {
				stats.FirstToken = time.Since(start)
			}
			sh.addText(delta)
			p.Changed()
		},
		Reasoning: func(delta string) {
			sh.addSummary(delta)
			p.Changed()
		},
	}, func(status string) {
		sh.setStatus(status)
		p.Changed()
	})
	reply := sh.answer()
	if err == nil {
		reply += sourcesText(answer.Sources)
	}
	stats.Usage, stats.Err = e.spent(answer.Usage, setup.instructions, msgs, reply), err
	e.addUsage(storeCtx, req.UserID, stats.Usage)
	final, keep, outcome := e.outcome(ctx, reply, err)
	stats.Outcome = outcome
	if outcome == OutcomeStopped || outcome == OutcomeReset {
		stats.Err = nil // the user asked for it: not a model error
	}
	// Stored before the final text goes out, so that this text can say when
	// the exchange could not be saved (a full disk, a damaged store).
	var storeErr error
	if keep != "" {
		stored := Message{Role: RoleAssistant, Content: keep + toolsNote(ran), Time: time.Now().UTC()}
		stored.Tokens = e.count(stored)
		if err := e.history.AppendTurn(storeCtx, req.Chat, user, stored); err != nil {
			storeErr = fmt.Errorf("store turn: %w", err)
			final += notSavedNote
		}
	}
	return errors.Join(storeErr, finish(sh.composeWith(final), reply))
}

// notSavedNote ends a reply whose exchange the store could not save.
const notSavedNote = "\n\n⚠️ I could not save this exchange, so I will not remember it."

// shown is what a reply shows while it streams: the reasoning summary, the
// voice transcript, the answer so far and the line of the tools running now.
// The turn's goroutine writes it; the pacer composes it, only when it sends.
type shown struct {
	mu            sync.Mutex
	text, summary strings.Builder
	transcript    string
	status        string
	showCalls     bool // tool lines stay in the text
}

// compose is the whole text to show now. Without a summary, a transcript or a
// status it is the answer's own bytes, not a copy.
func (s *shown) compose() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.composeLocked(s.text.String())
}

// composeWith is the whole text to show with answer as the answer.
func (s *shown) composeWith(answer string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.composeLocked(answer)
}

func (s *shown) composeLocked(answer string) string {
	if s.status != "" {
		answer = strings.TrimRight(answer, "\n")
		if answer != "" {
			answer += "\n\n"
		}
		answer += s.status
	}
	return composeReasoning(s.summary.String(), quoteTranscript(s.transcript, answer))
}

// answer is the answer so far.
func (s *shown) answer() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.text.String()
}

func (s *shown) addText(delta string) {
	s.mu.Lock()
	s.text.WriteString(delta)
	s.mu.Unlock()
}

func (s *shown) addSummary(delta string) {
	s.mu.Lock()
	s.summary.WriteString(delta)
	s.mu.Unlock()
}

func (s *shown) setTranscript(transcript string) {
	s.mu.Lock()
	s.transcript = transcript
	s.mu.Unlock()
}

// setStatus shows the tools running now ("" when they are done). Text the
// model wrote before the calls ends its paragraph there; with showCalls the
// tools' names stay in the answer instead of a passing status.
func (s *shown) setStatus(status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status != "" && s.text.Len() > 0 && !strings.HasSuffix(s.text.String(), "\n\n") {
		s.text.WriteString("\n\n")
	}
	if !s.showCalls {
		s.status = status
		return
	}
	for _, line := range strings.Split(status, "\n") {
		if line != "" {
			s.text.WriteString("_" + strings.TrimSuffix(line, "…") + "_\n\n")
		}
	}
}

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

// callModel streams one completion within the engine's adaptive bound on
// concurrent calls, which learns from its time to first token and its error.
func (e *Engine) callModel(ctx context.Context, req ModelRequest, out ModelOutput) (Answer, error) {
	p, err := e.calls.acquire(ctx)
	if err != nil {
		return Answer{}, err
	}
	ft := e.firstToken()
	out = ft.watch(out)
	answer, err := e.model.Stream(ctx, req, out)
	p.release(ft.elapsed(), err)
	return answer, err
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
