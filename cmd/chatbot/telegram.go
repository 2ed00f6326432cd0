package main

import "context"

// newTelegram builds the Telegram adapter when telegram.token is set (nil otherwise).
func newTelegram(ctx context.Context, d deps) (platform, error) {
	return nil, nil
}
