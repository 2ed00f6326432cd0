package web

import (
	"context"
	"errors"
	"fmt"
	"html"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
)

// errBusy refuses a message while the conversation's reply is being written.
var errBusy = errors.New("still answering the previous message")

// hub keeps, for each conversation with a reply in the works or a page
// watching, its latest turn as the page shows it, and wakes the pages
// watching it when it changes. A reply is written here by the engine whatever
// the browsers do; a page that comes back finds it where it is.
type hub struct {
	md       *markdown
	lastTurn atomic.Int64

	mu    sync.Mutex
	convs map[conversation.ChatID]*live
}

func newHub(md *markdown) *hub {
	return &hub{md: md, convs: make(map[conversation.ChatID]*live)}
}

// live is one conversation's latest turn.
type live struct {
	md *markdown

	mu       sync.Mutex
	watchers int  // open event streams
	busy     bool // from the start of a turn until its final text
	turn     int64
	redo     bool // the turn replaces the last one (regenerate, edit)
	user     userView
	started  time.Time
	version  int
	blocks   []string
	done     bool
	finished time.Time
	files    map[string]file // the turn's attachments and drawn picture, until stored
	fileBase string          // the URL path its files are served under
	handled  chan struct{}   // closed when the engine is done with the turn
	changed  chan struct{}   // closed and replaced at every change
}

// userView is a user's message as the page shows it.
type userView struct {
	Text  string     `json:"text"`
	Files []fileView `json:"files,omitempty"`
}

// fileView is an attachment as the page shows it.
type fileView struct {
	Name  string `json:"name"`
	SHA   string `json:"sha"`
	Image bool   `json:"image,omitempty"`
}

// file is an attachment's bytes.
type file struct {
	mime string
	data []byte
}

// turnState is a copy of a live turn.
type turnState struct {
	turn     int64
	redo     bool
	user     userView
	started  time.Time
	version  int
	blocks   []string
	done     bool
	finished bool // the engine is done with it
}

// get returns chat's live turn, made when create is set (else nil if none).
func (h *hub) get(chat conversation.ChatID, create bool) *live {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.convs[chat]
	if l == nil && create {
		l = &live{md: h.md, changed: make(chan struct{})}
		h.convs[chat] = l
	}
	return l
}

// watch returns chat's live turn for an event stream; unwatch when done.
func (h *hub) watch(chat conversation.ChatID) *live {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.convs[chat]
	if l == nil {
		l = &live{md: h.md, changed: make(chan struct{})}
		h.convs[chat] = l
	}
	l.mu.Lock()
	l.watchers++
	l.mu.Unlock()
	return l
}

func (h *hub) unwatch(l *live) {
	l.mu.Lock()
	l.watchers--
	l.mu.Unlock()
}

// keepFinished is how long a finished turn stays in memory with nobody watching.
const keepFinished = 10 * time.Minute

// sweep forgets the conversations nobody watches whose turn ended a while ago.
func (h *hub) sweep(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for chat, l := range h.convs {
		l.mu.Lock()
		idle := l.watchers == 0 && !l.busy && (l.turn == 0 || (l.done && isClosed(l.handled) && now.Sub(l.finished) > keepFinished))
		l.mu.Unlock()
		if idle {
			delete(h.convs, chat)
		}
	}
}

// nextTurn numbers a new turn: increasing, and above the numbers of earlier
// runs of the process (a page's Last-Event-ID may come from one).
func (h *hub) nextTurn(now time.Time) int64 {
	for {
		last := h.lastTurn.Load()
		next := max(last+1, now.UnixMilli())
		if h.lastTurn.CompareAndSwap(last, next) {
			return next
		}
	}
}

// turnSpec is a turn about to start.
type turnSpec struct {
	user     userView
	files    map[string]file
	redo     bool
	fileBase string
}

// begin starts a turn in chat once prepare has made it. It refuses while a
// reply is being written (errBusy), and waits for the previous turn to be
// stored, so that prepare (which may drop the last turn) sees it stored.
func (h *hub) begin(ctx context.Context, chat conversation.ChatID, now time.Time, prepare func() (turnSpec, error)) (*live, int64, error) {
	l := h.get(chat, true)
	for {
		l.mu.Lock()
		if l.busy {
			l.mu.Unlock()
			return nil, 0, errBusy
		}
		if l.handled != nil && !isClosed(l.handled) {
			wait := l.handled
			l.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, 0, ctx.Err()
			}
		}
		l.busy = true
		l.mu.Unlock()
		break
	}
	spec, err := prepare()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.busy = false
		return nil, 0, err
	}
	l.turn = h.nextTurn(now)
	l.redo, l.user, l.files, l.fileBase = spec.redo, spec.user, spec.files, spec.fileBase
	l.started, l.version, l.blocks, l.done = now, 0, nil, false
	l.handled = make(chan struct{})
	l.changedLocked()
	return l, l.turn, nil
}

// handled records that the engine is done with turn (stored, or failed).
func (l *live) handledTurn(turn int64, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.turn != turn {
		return
	}
	if !l.done { // the engine returned without a final text: never leave the page waiting
		l.done, l.busy = true, false
		l.version++
		l.finished = now
	}
	if !isClosed(l.handled) {
		close(l.handled)
	}
	l.files = nil // stored now (or not kept at all): the store serves them
	l.changedLocked()
}

// set shows text (Markdown) as turn's reply; done marks the final text.
func (l *live) set(turn int64, text string, done bool, extra ...string) {
	blocks := append(l.md.blocks(text), extra...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.turn != turn || l.done {
		return
	}
	l.blocks = blocks
	l.version++
	if done {
		l.done, l.busy = true, false
		l.finished = time.Now()
	}
	l.changedLocked()
}

// addFile keeps a file of turn to serve until it is stored.
func (l *live) addFile(turn int64, sha string, f file) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.turn != turn {
		return ""
	}
	if l.files == nil {
		l.files = make(map[string]file)
	}
	l.files[sha] = f
	return l.fileBase + sha
}

// file returns a file of the live turn.
func (l *live) file(sha string) (file, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.files[sha]
	return f, ok
}

func (l *live) changedLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// state returns a copy of the live turn, and a channel closed at its next change.
func (l *live) state() (turnState, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return turnState{
		turn: l.turn, redo: l.redo, user: l.user, started: l.started, version: l.version,
		blocks: l.blocks, done: l.done, finished: l.done && isClosed(l.handled),
	}, l.changed
}

func isClosed(c chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// turnReply is where the engine writes a turn started from the page. It
// implements conversation.Reply and ImageReply.
type turnReply struct {
	l    *live
	turn int64
	// keep stores a drawn picture, so that the page shows it after a reload.
	keep func(ctx context.Context, img conversation.Attachment) error
}

var (
	_ conversation.Reply      = turnReply{}
	_ conversation.ImageReply = turnReply{}
)

func (r turnReply) Update(_ context.Context, text string) error {
	r.l.set(r.turn, text, false)
	return nil
}

func (r turnReply) Finish(_ context.Context, text string) error {
	r.l.set(r.turn, text, true)
	return nil
}

// Drawing shows that a picture is being drawn.
func (r turnReply) Drawing(context.Context) {
	r.l.set(r.turn, "", false, `<p class="status">🎨 Drawing…</p>`)
}

// FinishImage shows the drawn picture under its caption.
func (r turnReply) FinishImage(ctx context.Context, img conversation.Attachment, caption string) error {
	src := r.l.addFile(r.turn, img.SHA256, file{mime: img.MIME, data: img.Data})
	if r.keep != nil {
		if err := r.keep(context.WithoutCancel(ctx), img); err != nil {
			r.l.set(r.turn, caption+"\n\n⚠️ The picture could not be saved: it will not show after a reload.", true, drawnFigure(src, caption))
			return err
		}
	}
	r.l.set(r.turn, caption, true, drawnFigure(src, caption))
	return nil
}

// drawnFigure shows a drawn picture.
func drawnFigure(src, caption string) string {
	return fmt.Sprintf(`<figure class="drawn"><a href="%[1]s" target="_blank"><img src="%[1]s" alt="%[2]s"></a></figure>`,
		html.EscapeString(src), html.EscapeString(caption))
}
