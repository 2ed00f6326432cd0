package telegram

import (
	"sync"
	"time"

	"github.com/go-telegram/bot/models"
)

// albumWait is how long the bot waits for the next part of an album (photos
// or files sent together: one message each, with one media_group_id) before it
// answers them all as one message. Telegram delivers an album's parts one
// right after the other.
const albumWait = 800 * time.Millisecond

// albums gathers the parts of the albums being received.
type albums struct {
	mu   sync.Mutex
	open map[string]*album // by media_group_id
}

// album is one album being gathered: its first part as classify read it (the
// one that decided it is for the bot, in a group), with the files of all.
type album struct {
	in    incoming
	timer *time.Timer
}

// start gathers the album whose first part is in; answer is called with all
// its parts once none came for albumWait.
func (a *albums) start(id string, in incoming, answer func(incoming)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.open == nil {
		a.open = make(map[string]*album)
	}
	al := &album{in: in}
	a.open[id] = al
	al.timer = time.AfterFunc(albumWait, func() {
		a.mu.Lock()
		delete(a.open, id)
		in := al.in
		a.mu.Unlock()
		answer(in)
	})
}

// add adds m to the album it belongs to, if one is being gathered (from the
// same sender in the same chat), and reports whether it did. Its caption, read
// as captions are, is the album's text when the first part had none.
func (a *albums) add(m *models.Message, b *Bot) bool {
	if m.MediaGroupID == "" || m.From == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	al := a.open[m.MediaGroupID]
	if al == nil || al.in.fromID != m.From.ID || al.in.chatID != m.Chat.ID {
		return false
	}
	if f := fileOf(m); f.what != "" {
		al.in.files = append(al.in.files, f)
	}
	if al.in.text == "" && m.Caption != "" {
		al.in.text, _, _ = b.stripBot(m.Caption, m.CaptionEntities)
	}
	al.timer.Reset(albumWait)
	return true
}
