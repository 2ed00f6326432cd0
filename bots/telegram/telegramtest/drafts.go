package telegramtest

import (
	"context"
	"errors"
	"slices"
	"time"
)

// DraftLife is how long a draft shows after its last sendMessageDraft: "the
// streamed draft is ephemeral and acts as a temporary 30-second preview"
// (https://core.telegram.org/bots/api#sendmessagedraft). A message from the
// bot in the same chat and thread ends it sooner, as Telegram's apps delete a
// live draft when a message arrives there.
const DraftLife = 30 * time.Second

// draftKey names a draft: its draft_id within a chat's thread (0: no topic).
type draftKey struct {
	thread int
	id     int64
}

// liveDraft is the draft a thread shows.
type liveDraft struct {
	d       Draft
	stopped bool // its stop button was pressed; it shows because of keep_on_stop
}

// sendMessageDraft shows a draft in a private chat (Bot API 9.3+, for every bot
// since 9.5; can_stop and keep_on_stop since 10.3): draft_id must be a
// non-zero integer, the text 0 to 4096 characters after entities parsing (an
// empty one shows a "Thinking..." placeholder). A draft with the thread's
// current draft_id changes it (animated); another replaces it.
func (s *Server) sendMessageDraft(_ context.Context, p params) (any, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.lookup(p)
	if e != nil {
		return nil, e
	}
	if c.chat.Type != "private" {
		return nil, BadRequest("drafts can be sent only to private chats")
	}
	id, ok := p.int64("draft_id")
	if !ok || id == 0 {
		return nil, BadRequest("draft_id must be non-zero")
	}
	text, _, e := formatted(p, true)
	if e != nil {
		return nil, e
	}
	now := s.opt.Now()
	thread := p.int("message_thread_id")
	d := Draft{DraftID: id, ThreadID: thread, Text: text, Raw: p["text"], ParseMode: p["parse_mode"],
		CanStop: p.bool("can_stop"), KeepOnStop: p.bool("keep_on_stop"), At: now}
	s.expire(c, thread, now)
	if c.stopped[draftKey{thread, id}] {
		d.Ignored = true // the user stopped further drafts of this one
	} else {
		if c.live == nil {
			c.live = make(map[int]*liveDraft)
		}
		c.live[thread] = &liveDraft{d: d}
	}
	c.drafts = append(c.drafts, d)
	return true, nil
}

// expire ends the thread's draft if its life is over by now; s.mu is held.
func (s *Server) expire(c *chatState, thread int, now time.Time) {
	l := c.live[thread]
	if l == nil || !now.After(l.d.At.Add(DraftLife)) {
		return
	}
	if !l.stopped {
		c.expired = append(c.expired, l.d)
	}
	delete(c.live, thread)
}

// messageSent ends the draft of the thread a bot message went to; s.mu is held.
func (s *Server) messageSent(c *chatState, thread int) {
	s.expire(c, thread, s.opt.Now())
	delete(c.live, thread)
}

// StopDraft presses the stop button under the draft the chat's thread shows
// (thread 0: no topic), as the user does: the bot gets a
// stopped_message_generation update (if allowed_updates lets it through) and
// Telegram shows no further draft of that draft_id. The draft stays if it was
// sent with keep_on_stop (until a message from the bot or the end of its
// life), else it goes at once. It fails when the thread shows no draft, or
// one without a stop button (sent without can_stop). It returns the update's
// id.
func (s *Server) StopDraft(chatID int64, thread int) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[chatID]
	if c == nil {
		return 0, errors.New("telegramtest: no such chat")
	}
	s.expire(c, thread, s.opt.Now())
	l := c.live[thread]
	switch {
	case l == nil:
		return 0, errors.New("telegramtest: the chat shows no draft")
	case !l.d.CanStop:
		return 0, errors.New("telegramtest: the draft has no stop button (sent without can_stop)")
	case l.stopped:
		return 0, errors.New("telegramtest: the draft was stopped already")
	}
	if c.stopped == nil {
		c.stopped = make(map[draftKey]bool)
	}
	c.stopped[draftKey{thread, l.d.DraftID}] = true
	if l.d.KeepOnStop {
		l.stopped = true
	} else {
		delete(c.live, thread)
	}
	return s.push(Update{StoppedMessageGeneration: &MessageGenerationStopped{Chat: c.chat, MessageThreadID: thread,
		DraftID: l.d.DraftID}}), nil
}

// Drafts returns the chat's accepted sendMessageDraft calls, oldest first.
func (s *Server) Drafts(chatID int64) []Draft {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.chats[chatID]; c != nil {
		return slices.Clone(c.drafts)
	}
	return nil
}

// DraftShown returns the draft the chat's thread shows now (by Options.Now),
// if any.
func (s *Server) DraftShown(chatID int64, thread int) (Draft, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[chatID]
	if c == nil {
		return Draft{}, false
	}
	s.expire(c, thread, s.opt.Now())
	if l := c.live[thread]; l != nil {
		return l.d, true
	}
	return Draft{}, false
}

// ExpiredDrafts returns the chat's drafts that reached the end of their life
// while shown (by Options.Now): the user saw them vanish with neither a newer
// draft nor a message in their place. Stopped drafts are not counted.
func (s *Server) ExpiredDrafts(chatID int64) []Draft {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[chatID]
	if c == nil {
		return nil
	}
	now := s.opt.Now()
	for thread := range c.live {
		s.expire(c, thread, now)
	}
	return slices.Clone(c.expired)
}
