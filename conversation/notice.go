package conversation

import (
	"context"
	"time"
)

// Noticer is an optional power of a Reply, found with a type assertion. Notice
// writes a short note (the chat is busy, the bot is restarting) at best: one
// attempt, without waiting for the platform's budget and without retrying a
// flood-control answer. A note the platform has no room for now is dropped, with
// a *RetryAfterError, so that notes never hold up replies. Replies without it
// get one Finish call instead.
type Noticer interface {
	Notice(ctx context.Context, text string) error
}

// noticeTimeout bounds the platform call of one notice.
const noticeTimeout = 10 * time.Second

// notice writes text to r at best (see Noticer), within ctx and the engine's
// delivery, which Shutdown ends. A note dropped for want of budget is no error.
func (e *Engine) notice(ctx context.Context, r Reply, text string) error {
	ctx, cancel := e.deliveryContext(ctx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, noticeTimeout)
	defer cancelTimeout()
	var err error
	if n, ok := r.(Noticer); ok {
		err = n.Notice(ctx, text)
	} else {
		err = r.Finish(ctx, text)
	}
	if _, ok := RetryAfter(err); ok {
		e.log.Debug("notice dropped: the platform has no room for it now", "err", err)
		return nil
	}
	return err
}

// deliveryContext returns a context that ends with ctx or with the engine's
// delivery, whichever ends first: every write to a platform stops by the end of
// Shutdown, even one made for a caller whose own context never ends.
func (e *Engine) deliveryContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d, cancel := context.WithCancel(e.delivery)
	stop := context.AfterFunc(ctx, cancel)
	return d, func() {
		stop()
		cancel()
	}
}
