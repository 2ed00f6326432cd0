package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"time"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// maxEventBytes bounds a request body; Slack's events are far smaller.
const maxEventBytes = 1 << 20

// serveEvents receives the Events API's signed posts on POST /slack/events until
// ctx ends.
func (a *Adapter) serveEvents(ctx context.Context) error {
	ln := a.cfg.EventsListener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", a.cfg.EventsListen); err != nil {
			return fmt.Errorf("slack events (slack.events_listen): %w", err)
		}
	}
	srv := &http.Server{
		Handler:           a.eventsHandler(ctx),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	a.connected.Store(true)
	defer a.connected.Store(false)
	a.log.Info("slack events API listening", "addr", ln.Addr().String(), "path", EventsPath)
	select {
	case err := <-done:
		return fmt.Errorf("slack events: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// A connection that never sent a request (a balancer's warm one) holds
		// Shutdown; the requests that matter were answered at once anyway.
		a.log.Info("slack events: closing idle connections", "err", err)
		srv.Close()
	}
	<-done
	return nil
}

// eventsHandler serves POST /slack/events: events, the url_verification
// challenge, slash commands and interactions (button presses), all signed with
// the signing secret.
func (a *Adapter) eventsHandler(ctx context.Context) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+EventsPath, func(w http.ResponseWriter, r *http.Request) {
		a.serveEvent(ctx, w, r)
	})
	return mux
}

// serveEvent checks a request's signature and age, answers at once and leaves
// the work to a handler of its own: Slack waits 3 seconds at most.
func (a *Adapter) serveEvent(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventBytes))
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if err := a.verify(r.Header, body); err != nil {
		a.log.Warn("slack events: rejected a request", "remote", r.RemoteAddr, "err", err)
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	if n := r.Header.Get("X-Slack-Retry-Num"); n != "" {
		a.log.Debug("slack events: redelivery", "attempt", n, "reason", r.Header.Get("X-Slack-Retry-Reason"))
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
		// A form is a slash command, or an interaction (its JSON in payload).
		if form, err := url.ParseQuery(string(body)); err == nil && form.Has("payload") {
			a.serveInteraction(ctx, w, form)
			return
		}
		a.serveSlash(ctx, w, r, body)
		return
	}
	ev, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	if err != nil {
		// An event type slack-go does not know: take it, so Slack stops sending it.
		a.log.Debug("slack events: unparsed event", "err", err)
		w.WriteHeader(http.StatusOK)
		return
	}
	switch ev.Type {
	case slackevents.URLVerification:
		ch, _ := ev.Data.(*slackevents.EventsAPIURLVerificationEvent)
		if ch == nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"challenge": ch.Challenge})
	case slackevents.CallbackEvent:
		a.spawn(ctx, func(ctx context.Context) { a.onEventsAPI(ctx, ev) })
		w.WriteHeader(http.StatusOK)
	default:
		if ev.Type == slackevents.AppRateLimited {
			a.log.Warn("slack events: Slack is dropping events, the app is over its event rate limit")
		}
		w.WriteHeader(http.StatusOK)
	}
}

// verify checks the request's signature and that it is at most 5 minutes old.
func (a *Adapter) verify(h http.Header, body []byte) error {
	sv, err := slackgo.NewSecretsVerifier(h, a.cfg.SigningSecret)
	if err != nil {
		return err
	}
	if _, err := sv.Write(body); err != nil {
		return err
	}
	return sv.Ensure()
}

// serveSlash takes a slash command posted as a form.
func (a *Adapter) serveSlash(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	cmd, err := slackgo.SlashCommandParse(r)
	if err != nil || cmd.Command == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	a.spawn(ctx, func(ctx context.Context) { a.onSlash(ctx, cmd) })
	w.WriteHeader(http.StatusOK)
}
