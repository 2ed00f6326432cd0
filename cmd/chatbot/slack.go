package main

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	slackbot "github.com/chatbot-dev/chatbot/bots/slack"
)

// newSlack builds the Slack adapter when slack.bot_token is set (nil otherwise).
// It checks the bot token at once (auth.test), so a wrong token stops the start.
func newSlack(ctx context.Context, d deps) (platform, error) {
	s := d.cfg.Slack
	if s.BotToken == "" {
		return nil, nil
	}
	threads, native := true, true
	if s.ReplyInThreadsWithoutMention != nil {
		threads = *s.ReplyInThreadsWithoutMention
	}
	if s.NativeStreaming != nil {
		native = *s.NativeStreaming
	}
	var prompts []slackbot.SuggestedPrompt
	for _, p := range s.SuggestedPrompts {
		prompts = append(prompts, slackbot.SuggestedPrompt{Title: p.Title, Message: p.Message})
	}
	a, err := slackbot.New(ctx, slackbot.Config{
		BotToken:                     s.BotToken,
		AppToken:                     s.AppToken,
		APIURL:                       s.APIURL,
		Mode:                         s.Mode,
		SigningSecret:                s.SigningSecret,
		EventsListen:                 s.EventsListen,
		AllowedUserIDs:               s.AllowedUserIDs,
		AllowedChannelIDs:            s.AllowedChannelIDs,
		ReplyInThreadsWithoutMention: threads,
		NativeStreaming:              native,
		SuggestedPrompts:             prompts,
		Feedback:                     feedbackCounter(d.metrics, "slack"),
		MaxFileBytes:                 d.cfg.Limits.MaxFileBytes,
		HTTPClient:                   d.metrics.client("slack", 30*time.Second),
		Logger:                       d.log,
	}, d.engine, d.db)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// feedbackCounter counts presses of the feedback buttons under answers as
// chatbot_feedback_total{platform, kind} on /metrics; nil metrics count
// nothing. The counter is registered once, whichever platform asks first.
func feedbackCounter(m *metrics, platform string) func(kind string) {
	if m == nil {
		return nil
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatbot_feedback_total", Help: "Presses of the feedback buttons under answers, by platform and kind.",
	}, []string{"platform", "kind"})
	if err := m.registry.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		existing, ok := c, false
		if errors.As(err, &are) {
			existing, ok = are.ExistingCollector.(*prometheus.CounterVec)
		}
		if !ok {
			return nil
		}
		c = existing
	}
	for _, kind := range []string{"positive", "negative"} {
		c.WithLabelValues(platform, kind) // shown at 0 before the first press
	}
	return func(kind string) { c.WithLabelValues(platform, kind).Inc() }
}
