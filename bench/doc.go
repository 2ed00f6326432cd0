// Package bench holds the bot's load tests and the measurements behind
// docs/BENCHMARKS.md. It has no code of its own: its tests run the real
// adapters (bots/telegram, bots/slack), conversation.Engine, the bbolt store and
// the OpenAI client against the loopback fakes (telegramtest with Telegram's
// flood limits, slackfake with Slack's chat.update limit, openaitest), many
// conversations at once, and report throughput, peak memory, goroutines, 429
// answers and leftover goroutines.
//
// A small version of each load test runs with every `go test ./...`. The full
// ones are slow and run only when asked:
//
//	CHATBOT_LOAD=1 go test ./bench -run TestLoad -v -timeout 30m
//
// The figure docs/telegram-stream.svg is drawn by
//
//	CHATBOT_PLOT=1 go test ./bench -run TestPlot -v
package bench
