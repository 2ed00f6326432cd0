package telegram

// NewWebhookServer exposes the webhook's server settings to the external tests.
var NewWebhookServer = newWebhookServer
