package conversation

import (
	"context"
	"fmt"
	"time"
)

// spent is what a call cost: the model's own figures, or our count when the model
// (or a compatible service) reports none.
func (e *Engine) spent(u Usage, instructions string, msgs []Message, reply string) Usage {
	if u.PromptTokens > 0 || u.CompletionTokens > 0 {
		return u
	}
	est := Usage{PromptTokens: replyPriming}
	if instructions != "" {
		est.PromptTokens += e.count(Message{Role: RoleSystem, Content: instructions})
	}
	for _, m := range msgs {
		est.PromptTokens += e.count(m) + attachmentTokens(m.Attachments)
	}
	if reply != "" {
		est.CompletionTokens = e.tokens.Count(reply)
	}
	return est
}

// addUsage records what user spent today.
func (e *Engine) addUsage(ctx context.Context, user string, u Usage) {
	if e.cfg.Usage == nil || user == "" {
		return
	}
	if err := e.cfg.Usage.AddTokens(ctx, user, time.Now(), u.PromptTokens+u.CompletionTokens); err != nil {
		e.log.Warn("record usage", "user", user, "err", err)
	}
}

// overLimit reports whether user has spent the daily limit, with the text to say.
func (e *Engine) overLimit(ctx context.Context, user string) (string, bool) {
	limit := e.cfg.DailyTokensPerUser
	if limit <= 0 || e.cfg.Usage == nil || user == "" {
		return "", false
	}
	used, err := e.cfg.Usage.TokensOn(ctx, user, time.Now())
	if err != nil {
		e.log.Warn("read usage", "user", user, "err", err)
		return "", false
	}
	if used < limit {
		return "", false
	}
	return fmt.Sprintf("You have used your %d tokens for today (%d spent). The limit resets at 00:00 UTC.", limit, used), true
}

// usageText answers /usage with the user's own figures.
func (e *Engine) usageText(ctx context.Context, user string) string {
	if e.cfg.Usage == nil || user == "" {
		return "Usage is not recorded here."
	}
	used, err := e.cfg.Usage.TokensOn(ctx, user, time.Now())
	if err != nil {
		return "I could not read your usage. Please try again."
	}
	text := fmt.Sprintf("Today (UTC) you have used %d tokens", used)
	if limit := e.cfg.DailyTokensPerUser; limit > 0 {
		text += fmt.Sprintf(" of your daily %d.", limit)
	} else {
		text += "; there is no daily limit."
	}
	return text + e.imagesUsageText(ctx, user)
}
