package telegram

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/chatbot-dev/chatbot/conversation"
)

// Native drafts (sendMessageDraft) in private chats: while a reply streams, its
// last part shows as a draft, which Telegram animates and which costs no
// message of the chat's budget; the final text is one sendMessage. A draft is
// "a temporary 30-second preview": the reply sends it again when it has not
// changed for DraftRefresh, so that a slow reply (a long tool call, a model
// thinking) never vanishes. Drafts carry can_stop and keep_on_stop (Bot API
// 10.3): the user's stop button sends a stopped_message_generation update,
// which the bot turns into /stop for the reply's chat, and the stopped draft
// stays on screen until the final message (the text so far, marked stopped)
// takes its place. Any error but a 429 turns drafts off for the chat, for
// draftsOffFor: the reply, and the chat's next ones, edit messages in place.

// draftsOffFor is how long a chat whose draft failed goes without drafts.
const draftsOffFor = time.Hour

// draftCallTimeout bounds a refresh of a draft.
const draftCallTimeout = 10 * time.Second

// draft is the native draft of a reply in a private chat.
type draft struct {
	id int64 // draft_id, unique among the bot's drafts

	mu      sync.Mutex
	on      bool                        // the reply's last part shows as a draft
	shown   *bot.SendMessageDraftParams // what Telegram shows, nil if nothing
	at      time.Time                   // when it was last sent (Options.Clock)
	wait    time.Duration               // a 429's retry_after for the refresh
	stopped bool                        // the user pressed its stop button
	live    bool                        // in the bot's registry of drafts

	// The refresher: a timer (Options.Clock), not a goroutine.
	ctl        sync.Mutex
	refresh    context.CancelFunc // ends the refresher's calls; nil until it runs and once it ended
	refreshCtx context.Context
	timer      conversation.Timer
	ticking    bool      // a refresh tick runs
	tickDone   sync.Cond // on ctl: a tick ended
}

// draftKey finds a reply by the draft a stopped_message_generation names.
type draftKey struct {
	chat   int64
	thread int
	id     int64
}

// drafts are the bot's replies that show a draft, and the chats where drafts
// failed lately.
type drafts struct {
	mu   sync.Mutex
	live map[draftKey]*reply
	off  map[int64]time.Time // chat → until when drafts are off there
}

func newDrafts() *drafts {
	return &drafts{live: make(map[draftKey]*reply), off: make(map[int64]time.Time)}
}

// allowed reports whether a reply in chat may use drafts now.
func (d *drafts) allowed(chat int64, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	until, ok := d.off[chat]
	if ok && now.After(until) {
		delete(d.off, chat)
		return true
	}
	return !ok
}

// turnOff keeps drafts off in chat for draftsOffFor.
func (d *drafts) turnOff(chat int64, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.off) >= maxTracked {
		for id, until := range d.off {
			if now.After(until) {
				delete(d.off, id)
			}
		}
	}
	d.off[chat] = now.Add(draftsOffFor)
}

func (d *drafts) add(k draftKey, r *reply) {
	d.mu.Lock()
	d.live[k] = r
	d.mu.Unlock()
}

func (d *drafts) remove(k draftKey) {
	d.mu.Lock()
	delete(d.live, k)
	d.mu.Unlock()
}

func (d *drafts) find(k draftKey) *reply {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.live[k]
}

// drafting reports whether the reply's last part shows as a draft.
func (r *reply) drafting() bool {
	if r.draft == nil {
		return false
	}
	r.draft.mu.Lock()
	defer r.draft.mu.Unlock()
	return r.draft.on
}

// showDraft shows c, the reply's part i, as its draft. A stopped draft shows
// nothing more (the final message comes next). On any error but a 429 or a
// text too long (the caller cuts again), drafts go off for the chat and the
// part is sent as a message instead.
func (r *reply) showDraft(ctx context.Context, i int, c rendered) error {
	d := r.draft
	d.mu.Lock()
	switch {
	case d.stopped:
		d.mu.Unlock()
		return nil
	case !d.on:
		d.mu.Unlock()
		return r.put(ctx, i, c, false)
	case strings.TrimSpace(c.plain) == "":
		d.mu.Unlock()
		return nil // an empty draft would show a "Thinking..." placeholder
	}
	p := &bot.SendMessageDraftParams{ChatID: r.chatID, MessageThreadID: r.thread, DraftID: strconv.FormatInt(d.id, 10),
		Text: c.html, ParseMode: models.ParseModeHTML, CanStop: true, KeepOnStop: true}
	_, err := r.b.api.SendMessageDraft(ctx, p)
	if err == nil {
		d.shown, d.at, d.wait = p, r.b.opt.Clock.Now(), 0
		first := !d.live
		d.live = true
		d.mu.Unlock()
		if first {
			r.b.drafts.add(draftKey{r.chatID, r.thread, d.id}, r)
			r.startRefresh(ctx)
		}
		return nil
	}
	if _, ok := retryAfter(err); ok || badRequest(err, descTooLong) {
		d.mu.Unlock()
		return r.b.red.err(err)
	}
	d.on = false
	d.mu.Unlock()
	r.b.drafts.turnOff(r.chatID, r.b.opt.Clock.Now())
	r.b.log.Warn("telegram: draft refused, editing in place in this chat", "chat_id", r.chatID, "err", r.b.red.err(err))
	return r.put(ctx, i, c, false)
}

// sendingMessage is called around every sendMessage of the reply (Telegram
// removes a draft when a message arrives in its thread): it holds the draft
// still, so that no refresh brings back a draft the message replaces, and
// marks it gone once the message went. The returned func takes whether it did.
func (r *reply) sendingMessage() func(sent bool) {
	d := r.draft
	if d == nil {
		return func(bool) {}
	}
	d.mu.Lock()
	return func(sent bool) {
		if sent {
			d.shown = nil
		}
		d.mu.Unlock()
	}
}

// startRefresh starts the draft's refresher, which sends the draft again
// whenever it has not changed for DraftRefresh, until endDraft. It is a timer:
// a reply waiting for the model holds no goroutine for it.
func (r *reply) startRefresh(ctx context.Context) {
	d := r.draft
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	wait := r.refreshWait()
	d.ctl.Lock()
	defer d.ctl.Unlock()
	d.refresh, d.refreshCtx = cancel, ctx
	d.tickDone.L = &d.ctl
	d.timer = r.b.opt.Clock.AfterFunc(wait, r.refreshTick)
}

// refreshWait is how long until the draft is due to be sent again.
func (r *reply) refreshWait() time.Duration {
	d, every := r.draft, r.b.opt.DraftRefresh
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.shown == nil {
		return every
	}
	return max(d.at.Add(max(every, d.wait)).Sub(r.b.opt.Clock.Now()), 0)
}

// refreshTick sends the draft again if it is due, and arms the next tick.
func (r *reply) refreshTick() {
	d := r.draft
	d.ctl.Lock()
	if d.refresh == nil { // ended
		d.ctl.Unlock()
		return
	}
	ctx := d.refreshCtx
	d.ticking = true
	d.ctl.Unlock()

	clock, every := r.b.opt.Clock, r.b.opt.DraftRefresh
	d.mu.Lock()
	if d.shown != nil && d.on && !d.stopped && !clock.Now().Before(d.at.Add(max(every, d.wait))) {
		r.refreshDraft(ctx)
	}
	d.mu.Unlock()
	wait := r.refreshWait()

	d.ctl.Lock()
	defer d.ctl.Unlock()
	d.ticking = false
	d.tickDone.Broadcast()
	if d.refresh != nil {
		d.timer.Reset(wait)
	}
}

// refreshDraft sends the shown draft again; d.mu is held. A 429 delays the
// next try; any other error turns drafts off for the chat (the pacer's next
// text goes out as a message).
func (r *reply) refreshDraft(ctx context.Context) {
	d := r.draft
	call, cancel := context.WithTimeout(ctx, draftCallTimeout)
	defer cancel()
	_, err := r.b.api.SendMessageDraft(call, d.shown)
	now := r.b.opt.Clock.Now()
	switch after, limited := retryAfter(err); {
	case err == nil:
		d.at, d.wait = now, 0
	case ctx.Err() != nil:
	case limited:
		d.at, d.wait = now, after
	default:
		d.on, d.shown = false, nil
		r.b.drafts.turnOff(r.chatID, now)
		r.b.log.Warn("telegram: draft refresh refused, editing in place in this chat", "chat_id", r.chatID,
			"err", r.b.red.err(err))
	}
}

// endDraft stops the refresher and forgets the draft; the reply is over.
func (r *reply) endDraft() {
	d := r.draft
	if d == nil {
		return
	}
	d.ctl.Lock()
	stop := d.refresh
	d.refresh = nil
	if d.timer != nil {
		d.timer.Stop()
	}
	d.ctl.Unlock()
	if stop != nil {
		stop() // ends a refresh in flight
		d.ctl.Lock()
		for d.ticking {
			d.tickDone.Wait()
		}
		d.ctl.Unlock()
	}
	d.mu.Lock()
	live := d.live
	d.live = false
	d.mu.Unlock()
	if live {
		r.b.drafts.remove(draftKey{r.chatID, r.thread, d.id})
	}
}

// stopDraft marks the draft stopped by the user: nothing more shows of it.
// It reports whether it shows now and was not stopped yet.
func (r *reply) stopDraft() bool {
	d := r.draft
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || !d.live || d.shown == nil {
		return false
	}
	d.stopped = true
	return true
}

// onStopped handles the user's stop button under a draft: the reply that shows
// it stops drafting and its chat gets /stop, as if the user had typed it (the
// engine's answer to the command is not shown: the stopped reply says it was
// stopped). A stop for a draft this process does not show (finished, or shown
// by another replica) changes nothing.
func (b *Bot) onStopped(ctx context.Context, st *models.MessageGenerationStopped) {
	r := b.drafts.find(draftKey{st.Chat.ID, st.MessageThreadID, int64(st.DraftID)})
	if r == nil || !r.stopDraft() {
		b.log.Info("telegram: stop for no running draft", "chat_id", st.Chat.ID, "draft_id", st.DraftID)
		return
	}
	b.log.Info("telegram: stop button", "chat", r.chat, "draft_id", st.DraftID)
	b.handlers.Add(1)
	go func() {
		defer b.handlers.Done()
		err := b.handler.Handle(ctx, conversation.Request{
			Chat:    r.chat,
			UserID:  fmt.Sprintf("telegram:%d", st.Chat.ID),
			Text:    "/" + conversation.CommandStop,
			Private: true,
			Reply:   silentReply{},
		})
		if err != nil {
			b.log.Warn("telegram: stop", "chat", r.chat, "err", b.red.err(err))
		}
	}()
}

// silentReply takes the engine's answer to a stop button's /stop and shows
// nothing.
type silentReply struct{}

func (silentReply) Update(context.Context, string) error { return nil }
func (silentReply) Finish(context.Context, string) error { return nil }
