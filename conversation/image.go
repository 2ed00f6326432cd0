package conversation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CommandImage draws a picture: "/image PROMPT".
const CommandImage = "image"

// withImage makes a Reply's Finish post the picture with the text as caption.
type withImage struct {
	Reply
	poster ImageReply
	img    Attachment
}

func (w withImage) Finish(ctx context.Context, caption string) error {
	return w.poster.FinishImage(ctx, w.img, caption)
}

// imageTurn answers /image PROMPT: it draws the picture and posts it, counts it
// against the user's daily pictures, and records in the history that a picture
// was made and from what prompt. The chat is already reserved.
func (e *Engine) imageTurn(req *Request, st *chatState, prompt string) error {
	start := time.Now()
	stats := TurnStats{Chat: req.Chat, UserID: req.UserID, Model: "image", Outcome: OutcomeRefused}
	ctx, cancel := context.WithTimeoutCause(st.ctx, e.cfg.TurnTimeout, errTurnTimeout)
	defer cancel()
	deliverCtx, stopDelivery := context.WithCancel(e.delivery)
	defer stopDelivery()
	done := func(r Reply, text string) error {
		err := e.finishNow(deliverCtx, r, text)
		stats.Duration = time.Since(start)
		e.turnDone(*req, stats, "")
		return err
	}
	poster, canPost := req.Reply.(ImageReply)
	switch {
	case strings.TrimSpace(prompt) == "":
		return done(req.Reply, "Tell me what to draw: /image a lighthouse at dawn, in watercolour.")
	case e.cfg.Images == nil:
		return done(req.Reply, "Pictures are not set up on this bot.")
	case !canPost:
		return done(req.Reply, "I can't post pictures here.")
	}
	if text, over := e.overImageLimit(ctx, req.UserID); over {
		return done(req.Reply, text)
	}
	poster.Drawing(deliverCtx)
	img, err := e.cfg.Images.MakeImage(ctx, prompt)
	if err != nil {
		stats.Err = err
		text, _, outcome := e.outcome(ctx, "", err)
		stats.Outcome = outcome
		return done(req.Reply, text)
	}
	stats.Outcome = OutcomeOK
	e.addImage(context.WithoutCancel(ctx), req.UserID)
	finishErr := done(withImage{Reply: req.Reply, poster: poster, img: img}, imageCaption(prompt))
	now := time.Now().UTC()
	user := Message{Role: RoleUser, Content: "/image " + prompt, Name: req.UserName, Time: now}
	answer := Message{Role: RoleAssistant, Content: fmt.Sprintf("[I drew a picture for the prompt %q and posted it.]", prompt), Time: now}
	user.Tokens, answer.Tokens = e.count(user), e.count(answer)
	if err := e.history.AppendTurn(context.WithoutCancel(ctx), req.Chat, user, answer); err != nil {
		return errors.Join(fmt.Errorf("store turn: %w", err), finishErr)
	}
	return finishErr
}

// imageCaption is the posted picture's caption: its prompt, shortened.
func imageCaption(prompt string) string {
	prompt = strings.TrimSpace(prompt)
	if r := []rune(prompt); len(r) > 900 {
		prompt = string(r[:900]) + "…"
	}
	return "🎨 " + prompt
}

// imagesKey is where a user's pictures are counted in the usage log.
func imagesKey(user string) string { return user + "/images" }

// overImageLimit reports whether user has drawn the daily pictures already.
func (e *Engine) overImageLimit(ctx context.Context, user string) (string, bool) {
	limit := e.cfg.DailyImagesPerUser
	if limit <= 0 || e.cfg.Usage == nil || user == "" {
		return "", false
	}
	made, err := e.cfg.Usage.TokensOn(ctx, imagesKey(user), time.Now())
	if err != nil {
		e.log.Warn("read image usage", "user", user, "err", err)
		return "", false
	}
	if made < limit {
		return "", false
	}
	return fmt.Sprintf("You have made your %d pictures for today. The limit resets at 00:00 UTC.", limit), true
}

// addImage counts one picture for user today.
func (e *Engine) addImage(ctx context.Context, user string) {
	if e.cfg.Usage == nil || user == "" {
		return
	}
	if err := e.cfg.Usage.AddTokens(ctx, imagesKey(user), time.Now(), 1); err != nil {
		e.log.Warn("record image usage", "user", user, "err", err)
	}
}

// imagesUsageText is the /usage line about pictures ("" when none may be made).
func (e *Engine) imagesUsageText(ctx context.Context, user string) string {
	if e.cfg.Images == nil || e.cfg.Usage == nil {
		return ""
	}
	made, err := e.cfg.Usage.TokensOn(ctx, imagesKey(user), time.Now())
	if err != nil {
		return ""
	}
	if limit := e.cfg.DailyImagesPerUser; limit > 0 {
		return fmt.Sprintf("\nPictures today: %d of %d.", made, limit)
	}
	return fmt.Sprintf("\nPictures today: %d.", made)
}
