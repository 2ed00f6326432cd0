package telegram

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// onUpdate is the library's handler for every update. The library calls it for
// one update at a time, in order (WithNotAsyncHandlers, one worker): a polled
// update's offset is stored first (accept), then an update seen before (by
// any process that shares the store) is dropped, and the rest is dispatched:
// a message is answered in a goroutine of its own, so that a slow reply never
// holds up other chats; presses on the bot's buttons (callback queries) and
// the stop button under its drafts take the same way. polled is the gate of
// the poller the update came from, nil for the webhook's (checked already).
//
// Offsets: the update's offset (update_id+1) is stored before it is answered, and
// the pollGate holds the next getUpdates (which confirms the batch to Telegram)
// until every update of the batch has been stored. So after a restart, polling
// resumes right after the last update accepted: none is skipped, and none is
// answered twice. An update being answered when the process is killed is not
// answered again (at most once); on a normal shutdown the engine finishes it.
// Under a leader, ctx is the leadership's: a process that lost the lead cannot
// move the offset its successor polls from, and the update ids it has seen
// keep the successor from answering them again.
func (b *Bot) onUpdate(ctx context.Context, polled *pollGate, upd *models.Update) {
	if polled != nil {
		b.accept(ctx, polled, upd.ID)
		if first, err := b.firstSeen(ctx, upd.ID); err != nil {
			b.log.Warn("telegram: check update id, answering it anyway", "update_id", upd.ID, "err", err)
		} else if !first {
			b.log.Info("telegram: update answered already", "update_id", upd.ID)
			return
		}
	}
	// Not cancelled by the shutdown: the engine's Shutdown bounds the turn.
	switch {
	case upd.Message != nil:
		b.dispatch(context.WithoutCancel(ctx), upd.Message)
	case upd.CallbackQuery != nil:
		b.dispatchPress(context.WithoutCancel(ctx), upd.CallbackQuery)
	case upd.StoppedMessageGeneration != nil:
		b.onStopped(context.WithoutCancel(ctx), upd.StoppedMessageGeneration)
	}
	// Edited messages, channel posts, ... are not for the bot.
}

// seenFor is how long an update id is remembered: Telegram keeps an update
// for at most 24 hours.
const seenFor = 25 * time.Hour

// firstSeen records the update id in the store and reports whether it is new
// over all processes that share the store (a store without the capability:
// always).
func (b *Bot) firstSeen(ctx context.Context, id int64) (bool, error) {
	seen, ok := b.cursors.(seenStore)
	if !ok {
		return true, nil
	}
	return seen.FirstSeen(context.WithoutCancel(ctx), fmt.Sprintf("telegram:update:%d:%d", b.me.ID, id), seenFor)
}

// accept stores the offset after update id and lets the next poll go. The
// write's context keeps ctx's values (the leadership's fence).
func (b *Bot) accept(ctx context.Context, gate *pollGate, id int64) {
	defer gate.processed()
	if err := b.cursors.SetCursor(context.WithoutCancel(ctx), offsetCursor, id+1); err != nil {
		b.log.Error("telegram: store update offset", "update_id", id, "err", err)
	}
}

// maxGateWait bounds how long a poll waits for the previous batch to be stored, in
// case the library dropped an update the gate counted.
const maxGateWait = 30 * time.Second

// pollGate is the library's HTTP client. It counts the updates each getUpdates
// answer brings and holds the next getUpdates until the handler has processed as
// many, so that Telegram forgets no update before its offset is stored.
type pollGate struct {
	client  *http.Client
	polling atomic.Bool // no getUpdates has failed since the last success

	mu       sync.Mutex
	received int
	handled  int
	changed  chan struct{}
}

// newPollGate returns a gate that counts as polling until a getUpdates fails.
func newPollGate(c *http.Client) *pollGate {
	g := &pollGate{client: c, changed: make(chan struct{})}
	g.polling.Store(true)
	return g
}

// Do implements bot.HttpClient.
func (g *pollGate) Do(req *http.Request) (*http.Response, error) {
	poll := strings.HasSuffix(req.URL.Path, "/getUpdates")
	if poll {
		g.wait(req.Context())
	}
	resp, err := g.client.Do(req)
	if poll && err != nil {
		g.polling.Store(false)
	}
	if err != nil || !poll {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	body = dropNullUpdates(body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var answer struct {
		OK     bool             `json:"ok"`
		Result []*models.Update `json:"result"` // as the library decodes it: a result it cannot read brings no update
	}
	ok := json.Unmarshal(body, &answer) == nil && answer.OK
	g.polling.Store(ok)
	if ok {
		g.mu.Lock()
		g.received += len(answer.Result)
		g.mu.Unlock()
	}
	return resp, nil
}

// dropNullUpdates removes null entries from a getUpdates answer's result:
// go-telegram/bot (v1.24.0 too) reads the id of every entry and would panic on
// one.
func dropNullUpdates(body []byte) []byte {
	var answer struct {
		OK     bool              `json:"ok"`
		Result []json.RawMessage `json:"result"`
	}
	if json.Unmarshal(body, &answer) != nil || !answer.OK {
		return body
	}
	kept := slices.DeleteFunc(slices.Clone(answer.Result), func(u json.RawMessage) bool {
		return string(bytes.TrimSpace(u)) == "null"
	})
	if len(kept) == len(answer.Result) {
		return body
	}
	answer.Result = kept
	fixed, err := json.Marshal(answer)
	if err != nil {
		return body
	}
	return fixed
}

// wait returns once every update received so far was handled, or ctx ended, or
// maxGateWait passed.
func (g *pollGate) wait(ctx context.Context) {
	timeout := time.NewTimer(maxGateWait)
	defer timeout.Stop()
	for {
		g.mu.Lock()
		done, changed := g.handled >= g.received, g.changed
		g.mu.Unlock()
		if done {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		case <-timeout.C:
			return
		}
	}
}

// processed records one update handled.
func (g *pollGate) processed() {
	g.mu.Lock()
	g.handled++
	close(g.changed)
	g.changed = make(chan struct{})
	g.mu.Unlock()
}

// secretHeader is where Telegram puts the webhook's secret_token.
const secretHeader = "X-Telegram-Bot-Api-Secret-Token"

// maxUpdateSize bounds a webhook request's body.
const maxUpdateSize = 4 << 20

// serveWebhook listens for updates on the webhook URL's path until ctx ends.
func (b *Bot) serveWebhook(ctx context.Context) error {
	u, _ := url.Parse(b.opt.WebhookURL)
	path := u.Path
	if path == "" {
		path = "/"
	}
	ln := b.opt.WebhookListener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", b.opt.WebhookListen); err != nil {
			return fmt.Errorf("telegram: webhook: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle(path, b.webhookHandler(ctx))
	srv := newWebhookServer(mux)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	b.webhookUp.Store(true)
	defer b.webhookUp.Store(false)

	_, err := b.api.SetWebhook(ctx, &bot.SetWebhookParams{URL: b.opt.WebhookURL, SecretToken: b.opt.WebhookSecret,
		AllowedUpdates: allowedUpdates})
	if err != nil && ctx.Err() == nil {
		err = errors.New("telegram: set webhook: " + b.red.err(err).Error())
	} else {
		err = nil
		b.log.Info("telegram: webhook", "bot", "@"+b.me.Username, "listen", ln.Addr().String(), "path", path)
		select {
		case <-ctx.Done():
		case err = <-served:
		}
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// The webhook server's timeouts. Telegram sends a whole update at once and
// reuses its connections; the handler only hands the update on, so a write
// takes no time, but a slow link may.
const (
	webhookReadHeaderTimeout = 10 * time.Second
	webhookReadTimeout       = 30 * time.Second
	webhookWriteTimeout      = 30 * time.Second
	webhookIdleTimeout       = 90 * time.Second
)

// newWebhookServer returns the webhook's server: no read, write or idle
// connection lasts without a deadline.
func newWebhookServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: webhookReadHeaderTimeout,
		ReadTimeout:       webhookReadTimeout,
		WriteTimeout:      webhookWriteTimeout,
		IdleTimeout:       webhookIdleTimeout,
	}
}

// webhookHandler refuses requests without the right secret (401) before the
// library sees them, then hands the update to the library.
func (b *Bot) webhookHandler(ctx context.Context) http.Handler {
	want := sha256.Sum256([]byte(b.opt.WebhookSecret))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get(secretHeader)))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			refuse(w)
			return
		}
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if ctx.Err() != nil {
			http.Error(w, "shutting down", http.StatusServiceUnavailable) // Telegram retries later
			return
		}
		var upd models.Update
		if err := json.NewDecoder(io.LimitReader(r.Body, maxUpdateSize)).Decode(&upd); err != nil {
			http.Error(w, "bad update", http.StatusBadRequest)
			return
		}
		// Telegram delivers an update again when an answer is late, and
		// replicas behind a load balancer share the webhook: answer it once.
		first, err := b.firstSeen(ctx, upd.ID)
		switch {
		case err != nil:
			b.log.Warn("telegram: check update id", "update_id", upd.ID, "err", err)
			http.Error(w, "try again later", http.StatusServiceUnavailable) // Telegram retries
			return
		case !first:
			b.log.Info("telegram: update answered already", "update_id", upd.ID)
			w.WriteHeader(http.StatusOK)
			return
		}
		b.api.ProcessUpdate(ctx, &upd)
		w.WriteHeader(http.StatusOK)
	})
}

// refuse answers 401 without reading the request's body: "Connection: close"
// keeps the server from reading the rest of the body to reuse the connection
// before it answers, and a read deadline in the past from draining it after.
func refuse(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	http.Error(w, "unauthorized", http.StatusUnauthorized)
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}
