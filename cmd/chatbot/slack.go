package main

import (
	"context"
	"time"

	slackbot "github.com/chatbot-dev/chatbot/bots/slack"
)

// newSlack builds the Slack adapter when slack.bot_token is set (nil otherwise).
// It checks the bot token at once (auth.test), so a wrong token stops the start.
func newSlack(ctx context.Context, d deps) (platform, error) {
	s := d.cfg.Slack
	if s.BotToken == "" {
		return nil, nil
	}
	threads := true
	if s.ReplyInThreadsWithoutMention != nil {
		threads = *s.ReplyInThreadsWithoutMention
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
		NativeStreaming:              s.NativeStreaming,
		MaxFileBytes:                 d.cfg.Limits.MaxFileBytes,
		HTTPClient:                   d.metrics.client("slack", 30*time.Second),
		Logger:                       d.log,
	}, d.engine, d.db)
	if err != nil {
		return nil, err
	}
	return a, nil
}
