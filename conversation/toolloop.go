package conversation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// ToolMark starts the line that shows a tool at work in a reply.
const ToolMark = "🔧 "

// errToolTimeout is the cause of a tool call cut by ToolCallTimeout.
var errToolTimeout = errors.New("tool call timed out")

// converse calls the model and, while it asks for tools, runs them and calls it
// again with their results: at most MaxToolRounds rounds, after which the model
// must answer. It leaves the last answer (with the usage of all rounds) and its
// error in t, and the tools that ran, in order, in t.ran.
func (t *turnRun) converse() {
	e, ctx := t.e, t.ctx
	mreq := t.modelRequest()
	var usage Usage
	for round := 0; ; round++ {
		mreq.NoMoreCalls = round == e.cfg.MaxToolRounds
		t.err = e.callModel(ctx, mreq, t.out, &t.ft, &t.answer)
		usage.PromptTokens += t.answer.Usage.PromptTokens
		usage.CompletionTokens += t.answer.Usage.CompletionTokens
		t.answer.Usage = usage
		if t.err != nil || len(t.answer.Calls) == 0 || len(mreq.Tools) == 0 || mreq.NoMoreCalls {
			return
		}
		t.runRound(mreq)
	}
}

// runRound runs the tools the model asked for and adds them, with their
// results, to its next request.
func (t *turnRun) runRound(mreq *ModelRequest) {
	calls := t.answer.Calls
	for _, c := range calls {
		t.ran = append(t.ran, c.Name)
	}
	results := t.e.runTools(t.ctx, calls, t.status)
	mreq.Rounds = append(mreq.Rounds, ToolRound{Calls: calls, Results: results})
}

// modelRequest is the turn's first request to the model. (On the heap, out of
// converse's frame: see turn.)
func (t *turnRun) modelRequest() *ModelRequest {
	t.mreq = ModelRequest{Model: t.setup.model, Instructions: t.setup.instructions, Messages: t.msgs,
		Tools: t.e.offeredTools(t.ctx, &t.req)}
	return &t.mreq
}

// offeredTools are the tools for this request: none in groups and channels
// unless ToolsInGroups, none when listing them fails.
func (e *Engine) offeredTools(ctx context.Context, req *Request) []Tool {
	if e.cfg.Tools == nil || (!req.Private && !e.cfg.ToolsInGroups) {
		return nil
	}
	tools, err := e.cfg.Tools.List(ctx)
	if err != nil {
		e.log.Warn("list tools", "err", err)
		return nil
	}
	return tools
}

// runTools runs one round's calls at once, each within ToolCallTimeout, and
// returns their outputs in order. A failing, hanging or panicking tool becomes
// an error output for the model.
func (e *Engine) runTools(ctx context.Context, calls []ToolCall, status func(string)) []string {
	names := make([]string, len(calls))
	for i, c := range calls {
		names[i] = ToolMark + c.Name + "…"
	}
	status(strings.Join(names, "\n"))
	defer status("")
	results := make([]string, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() { results[i] = e.runTool(ctx, c) })
	}
	wg.Wait()
	return results
}

// runTool runs one call and returns its output, or the error for the model.
func (e *Engine) runTool(ctx context.Context, c ToolCall) (result string) {
	ctx, cancel := context.WithTimeoutCause(ctx, e.cfg.ToolCallTimeout, errToolTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("tool panicked", "tool", c.Name, "panic", r)
			result = "Error: the tool crashed."
		}
	}()
	out, err := e.cfg.Tools.Call(ctx, c.Name, c.Arguments)
	switch {
	case errors.Is(context.Cause(ctx), errToolTimeout):
		out = fmt.Sprintf("Error: the tool did not answer within %s.", e.cfg.ToolCallTimeout)
	case err != nil:
		e.log.Info("tool failed", "tool", c.Name, "err", err)
		out = "Error: " + err.Error()
	}
	return capText(out, e.cfg.MaxToolOutputBytes)
}

// capText cuts s to at most max bytes at a rune boundary, saying so.
func capText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("\n[output cut at %d of %d bytes]", cut, len(s))
}

// toolsNote is the compact note of the tools a turn ran, kept in the history
// instead of their payloads.
func toolsNote(ran []string) string {
	if len(ran) == 0 {
		return ""
	}
	return "\n\n[tools used: " + strings.Join(ran, ", ") + "]"
}
