package main

import (
	"context"
	"net/http"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram"
)

// telegramPoll is the long poll's length.
const telegramPoll = 50 * time.Second

// telegramDownload bounds one file download (20 MB at most).
const telegramDownload = 2 * time.Minute

// newTelegram builds the Telegram adapter when telegram.token is set (nil otherwise).
// It checks the token with getMe, so a wrong token stops the start with a clear error.
func newTelegram(ctx context.Context, d deps) (platform, error) {
	t := d.cfg.Telegram
	if t.Token == "" {
		return nil, nil
	}
	b, err := telegram.New(ctx, telegram.Options{
		Token:          t.Token,
		APIURL:         t.APIURL,
		AllowedUserIDs: t.AllowedUserIDs,
		AllowedChatIDs: t.AllowedChatIDs,
		Mode:           t.Mode,
		WebhookURL:     t.WebhookURL,
		WebhookSecret:  t.WebhookSecret,
		WebhookListen:  t.WebhookListen,
		Drafts:         t.Drafts == nil || *t.Drafts,
		EditEvery:      time.Duration(t.EditEvery),
		GroupEditEvery: time.Duration(t.GroupEditEvery),
		HTTPClient:     d.metrics.client("telegram", telegramPoll+15*time.Second),
		PollTimeout:    telegramPoll,
		Logger:         d.log.With("platform", "telegram"),
		MaxFileBytes:   int64(d.cfg.Limits.MaxFileBytes),
		// Downloads are not counted in the metrics: their URL's last segment is
		// a file name, which would make a label of its own for every file.
		DownloadClient: &http.Client{Timeout: telegramDownload},
	}, d.engine, d.db)
	if err != nil {
		return nil, err
	}
	return b, nil
}
