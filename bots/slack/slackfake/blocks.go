package slackfake

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// Block Kit's documented limits (Block Kit reference: blocks, actions block,
// button element).
const (
	maxBlocks          = 50   // blocks in a message
	maxBlockIDChars    = 255  // block_id
	maxActionElements  = 25   // elements of one actions block
	maxButtonTextChars = 75   // a button's plain_text
	maxActionIDChars   = 255  // action_id
	maxButtonValue     = 2000 // a button's value
	maxButtonURL       = 3000 // a button's url
	maxContextActions  = 5    // elements of a context_actions block
)

// block is the part of a Block Kit block the fake reads.
type block struct {
	Type     string          `json:"type"`
	BlockID  string          `json:"block_id"`
	Text     json.RawMessage `json:"text"`
	Elements []element       `json:"elements"`
}

// element is the part of an interactive element the fake reads.
type element struct {
	Type     string      `json:"type"`
	ActionID string      `json:"action_id"`
	Text     *textObject `json:"text"`
	Value    string      `json:"value"`
	URL      string      `json:"url"`
	Style    string      `json:"style"`
	// A feedback_buttons element's two buttons.
	PositiveButton *feedbackButton `json:"positive_button"`
	NegativeButton *feedbackButton `json:"negative_button"`
	Icon           string          `json:"icon"` // an icon_button's
}

// feedbackButton is one button of a feedback_buttons element.
type feedbackButton struct {
	Text               *textObject `json:"text"`
	Value              string      `json:"value"`
	AccessibilityLabel string      `json:"accessibility_label"`
}

// Feedback is a feedback_buttons element of a message, as a test sees it.
type Feedback struct {
	BlockID, ActionID           string
	PositiveText, PositiveValue string
	NegativeText, NegativeValue string
}

// Feedback returns the feedback_buttons elements of the message's
// context_actions blocks, in order.
func (m Message) Feedback() []Feedback {
	var out []Feedback
	for _, b := range parseBlocks(m.Blocks) {
		if b.Type != "context_actions" {
			continue
		}
		for _, e := range b.Elements {
			if e.Type != "feedback_buttons" || e.PositiveButton == nil || e.NegativeButton == nil {
				continue
			}
			f := Feedback{BlockID: b.BlockID, ActionID: e.ActionID,
				PositiveValue: e.PositiveButton.Value, NegativeValue: e.NegativeButton.Value}
			if e.PositiveButton.Text != nil {
				f.PositiveText = e.PositiveButton.Text.Text
			}
			if e.NegativeButton.Text != nil {
				f.NegativeText = e.NegativeButton.Text.Text
			}
			out = append(out, f)
		}
	}
	return out
}

// textObject is a Block Kit text object.
type textObject struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Button is a button of a message's actions blocks, as a test sees it.
type Button struct {
	BlockID  string
	ActionID string
	Text     string // the label
	Value    string
	Style    string // "", "primary" or "danger"
}

// Buttons returns the buttons of the message's actions blocks, in order.
func (m Message) Buttons() []Button {
	var out []Button
	for _, b := range parseBlocks(m.Blocks) {
		if b.Type != "actions" {
			continue
		}
		for _, e := range b.Elements {
			if e.Type != "button" {
				continue
			}
			bt := Button{BlockID: b.BlockID, ActionID: e.ActionID, Value: e.Value, Style: e.Style}
			if e.Text != nil {
				bt.Text = e.Text.Text
			}
			out = append(out, bt)
		}
	}
	return out
}

// SectionTexts returns the texts of the message's section blocks, in order.
func (m Message) SectionTexts() []string {
	var out []string
	for _, b := range parseBlocks(m.Blocks) {
		var t textObject
		if b.Type == "section" && json.Unmarshal(b.Text, &t) == nil {
			out = append(out, t.Text)
		}
	}
	return out
}

func parseBlocks(raw string) []block {
	var bs []block
	_ = json.Unmarshal([]byte(raw), &bs)
	return bs
}

// noBlocks reports whether a blocks argument holds no block ("", "[]").
func noBlocks(raw string) bool {
	t := strings.TrimSpace(raw)
	return t == "" || t == "[]" || t == "null"
}

// checkBlocks validates a blocks argument as Slack does, returning its error
// code or "".
func checkBlocks(raw string) string {
	var bs []block
	if err := json.Unmarshal([]byte(raw), &bs); err != nil {
		return "invalid_blocks_format"
	}
	if len(bs) > maxBlocks {
		return "invalid_blocks"
	}
	markdown := 0
	ids := map[string]bool{}
	for _, b := range bs {
		if b.Type == "" || utf8.RuneCountInString(b.BlockID) > maxBlockIDChars || (b.BlockID != "" && ids[b.BlockID]) {
			return "invalid_blocks"
		}
		ids[b.BlockID] = true
		switch b.Type {
		case "markdown":
			var s string
			if json.Unmarshal(b.Text, &s) != nil {
				return "invalid_blocks"
			}
			markdown += utf8.RuneCountInString(s)
		case "section":
			var t textObject
			if len(b.Text) > 0 && json.Unmarshal(b.Text, &t) != nil {
				return "invalid_blocks"
			}
			if n := utf8.RuneCountInString(t.Text); n > maxSectionChars || (len(b.Text) > 0 && n == 0) {
				return "invalid_blocks"
			}
		case "actions":
			if code := checkActions(b.Elements); code != "" {
				return code
			}
		case "context_actions":
			if code := checkContextActions(b.Elements); code != "" {
				return code
			}
		}
	}
	if markdown > maxMarkdownBlockChars {
		return "msg_blocks_too_long"
	}
	return ""
}

// checkActions validates an actions block's elements.
func checkActions(elems []element) string {
	if len(elems) == 0 || len(elems) > maxActionElements {
		return "invalid_blocks"
	}
	ids := map[string]bool{}
	for _, e := range elems {
		if e.ActionID != "" && ids[e.ActionID] { // unique within the block
			return "invalid_blocks"
		}
		ids[e.ActionID] = true
		if utf8.RuneCountInString(e.ActionID) > maxActionIDChars {
			return "invalid_blocks"
		}
		if e.Type != "button" {
			continue
		}
		switch {
		case e.Text == nil || e.Text.Type != "plain_text":
			return "invalid_blocks"
		case e.Text.Text == "" || utf8.RuneCountInString(e.Text.Text) > maxButtonTextChars:
			return "invalid_blocks"
		case utf8.RuneCountInString(e.Value) > maxButtonValue || utf8.RuneCountInString(e.URL) > maxButtonURL:
			return "invalid_blocks"
		case e.Style != "" && e.Style != "primary" && e.Style != "danger":
			return "invalid_blocks"
		}
	}
	return ""
}

// checkContextActions validates a context_actions block: 1 to 5 feedback
// buttons and icon button elements (Block Kit reference: context actions
// block, feedback buttons element).
func checkContextActions(elems []element) string {
	if len(elems) == 0 || len(elems) > maxContextActions {
		return "invalid_blocks"
	}
	ids := map[string]bool{}
	for _, e := range elems {
		if e.ActionID != "" && ids[e.ActionID] {
			return "invalid_blocks"
		}
		ids[e.ActionID] = true
		if utf8.RuneCountInString(e.ActionID) > maxActionIDChars {
			return "invalid_blocks"
		}
		switch e.Type {
		case "feedback_buttons":
			for _, b := range []*feedbackButton{e.PositiveButton, e.NegativeButton} {
				if b == nil || b.Text == nil || b.Text.Type != "plain_text" || b.Text.Text == "" ||
					utf8.RuneCountInString(b.Text.Text) > maxButtonTextChars ||
					b.Value == "" || utf8.RuneCountInString(b.Value) > maxButtonValue ||
					utf8.RuneCountInString(b.AccessibilityLabel) > maxButtonTextChars {
					return "invalid_blocks"
				}
			}
		case "icon_button":
			if e.Icon == "" || e.Text == nil || e.Text.Type != "plain_text" || e.Text.Text == "" {
				return "invalid_blocks"
			}
		default:
			return "invalid_blocks"
		}
	}
	return ""
}
