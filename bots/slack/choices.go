package slack

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	slackgo "github.com/slack-go/slack"

	"github.com/chatbot-dev/chatbot/conversation"
)

// Block Kit's limits (Slack's block reference: actions block, button element).
const (
	maxSectionChars    = 3000 // text of a section block
	maxBlocks          = 50   // blocks of a message
	maxActionElements  = 25   // elements of one actions block
	maxButtonTextChars = 75   // a button's label
	maxButtonValue     = 2000 // a button's value
)

// choiceActionPrefix starts the action_id of every choice button; the rest is
// the choice's index.
const choiceActionPrefix = "chatbot_choice_"

// currentMark marks the choice in use on its button, besides the primary style.
const currentMark = "✓ "

var _ conversation.ChoiceReply = (*reply)(nil)

// FinishChoices writes the final text with the choices as buttons under it: the
// last message of the reply becomes a section with its text and actions blocks
// with one button per choice (value: the command the button runs; the current
// choice marked ✓ and styled primary).
func (r *reply) FinishChoices(ctx context.Context, text string, choices []conversation.Choice) error {
	r.awaitState(ctx)
	r.mu.Lock()
	if r.native {
		// Buttons need a message of their own: no stream for this reply.
		if r.stream != nil {
			r.fallBack(ctx, errChoices)
		}
		r.native = false
	}
	r.choices = choices
	r.limit = min(r.limit, maxSectionChars) // the last message's text goes in a section
	r.mu.Unlock()
	return r.Finish(ctx, text)
}

// choiceBlocks is a message of text (mrkdwn, at most a section's length) with
// the choices' buttons under it, 25 to an actions block. Choices whose command
// does not fit a button's value are left out.
func choiceBlocks(text string, choices []conversation.Choice) []slackgo.Block {
	// Block ids must be new in each version of a message.
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	blocks := []slackgo.Block{slackgo.NewSectionBlock(
		slackgo.NewTextBlockObject(slackgo.MarkdownType, truncate(text, maxSectionChars), false, false), nil, nil)}
	var elems []slackgo.BlockElement
	flush := func() {
		if len(elems) > 0 && len(blocks) < maxBlocks {
			id := "chatbot_choices_" + nonce + "_" + strconv.Itoa(len(blocks))
			blocks = append(blocks, slackgo.NewActionBlock(id, elems...))
		}
		elems = nil
	}
	for i, c := range choices {
		if c.Command == "" || utf8.RuneCountInString(c.Command) > maxButtonValue {
			continue
		}
		b := slackgo.NewButtonBlockElement(choiceActionPrefix+strconv.Itoa(i), c.Command,
			slackgo.NewTextBlockObject(slackgo.PlainTextType, buttonLabel(c), true, false))
		if c.Current {
			b.WithStyle(slackgo.StylePrimary)
		}
		elems = append(elems, b)
		if len(elems) == maxActionElements {
			flush()
		}
	}
	flush()
	return blocks
}

// buttonLabel is a choice's label for its button: ✓ before the current one, cut
// to Slack's 75 characters.
func buttonLabel(c conversation.Choice) string {
	label := strings.Join(strings.Fields(c.Label), " ")
	if label == "" {
		label = c.Command
	}
	if c.Current {
		label = currentMark + label
	}
	if utf8.RuneCountInString(label) > maxButtonTextChars {
		label = truncate(label, maxButtonTextChars-1) + "…"
	}
	return label
}
