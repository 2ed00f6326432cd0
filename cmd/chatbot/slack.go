package main

import "context"

// newSlack builds the Slack adapter when slack.bot_token is set (nil otherwise).
func newSlack(ctx context.Context, d deps) (platform, error) {
	return nil, nil
}
