package slack

import (
	"context"
	"fmt"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// serveSocket receives events over Socket Mode until ctx ends. slack-go opens the
// connection with apps.connections.open and reconnects when Slack asks to or the
// connection drops; every envelope is acknowledged at once, before any work.
func (a *Adapter) serveSocket(ctx context.Context) error {
	sm := socketmode.New(a.client)
	smCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sm.RunContext(smCtx) }()
	for {
		select {
		case <-ctx.Done():
			a.connected.Store(false)
			cancel()
			<-done
			return nil
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("slack socket mode (check slack.app_token): %w", err)
		case evt := <-sm.Events:
			a.socketEvent(ctx, sm, evt)
		}
	}
}

// socketEvent acknowledges an envelope and starts its handler.
func (a *Adapter) socketEvent(ctx context.Context, sm *socketmode.Client, evt socketmode.Event) {
	if evt.Request != nil && evt.Request.EnvelopeID != "" {
		if err := sm.Ack(*evt.Request); err != nil {
			a.log.Warn("slack: acknowledge envelope", "err", err)
		}
		if evt.Request.RetryAttempt > 0 {
			a.log.Debug("slack: redelivered envelope", "attempt", evt.Request.RetryAttempt,
				"reason", evt.Request.RetryReason)
		}
	}
	switch evt.Type {
	case socketmode.EventTypeEventsAPI:
		if ev, ok := evt.Data.(slackevents.EventsAPIEvent); ok {
			a.spawn(ctx, func(ctx context.Context) { a.onEventsAPI(ctx, ev) })
		}
	case socketmode.EventTypeSlashCommand:
		if cmd, ok := evt.Data.(slackgo.SlashCommand); ok {
			a.spawn(ctx, func(ctx context.Context) { a.onSlash(ctx, cmd) })
		}
	case socketmode.EventTypeInteractive:
		if cb, ok := evt.Data.(slackgo.InteractionCallback); ok {
			a.spawn(ctx, func(ctx context.Context) { a.onInteraction(ctx, cb) })
		}
	case socketmode.EventTypeConnected:
		a.connected.Store(true)
		a.log.Info("slack socket mode connected")
	case socketmode.EventTypeConnecting:
		a.connected.Store(false)
	case socketmode.EventTypeConnectionError:
		a.connected.Store(false)
		if e, ok := evt.Data.(*slackgo.ConnectionErrorEvent); ok {
			a.log.Warn("slack socket mode connection failed, retrying", "attempt", e.Attempt,
				"backoff", e.Backoff, "err", e.ErrorObj)
		}
	case socketmode.EventTypeDisconnect:
		a.connected.Store(false)
		a.log.Info("slack socket mode: Slack asked to reconnect")
	case socketmode.EventTypeErrorBadMessage:
		if e, ok := evt.Data.(*socketmode.ErrorBadMessage); ok {
			a.log.Warn("slack socket mode: unreadable message", "err", e.Cause)
		}
	}
}
