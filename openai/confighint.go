package openai

import (
	"errors"
	"fmt"
	"strings"

	goopenai "github.com/sashabaranov/go-openai"
)

// configHint returns a text naming the config key to change when the model
// service refused what the config asks for: a parameter the model does not take,
// the wrong API for the model, a model that does not exist. "" when err is not
// such a refusal.
func configHint(err error, kind Kind, model string) string {
	if kind == KindNotFound {
		return fmt.Sprintf("The model %q was not found. The bot's owner needs to check openai.model and openai.models.", model)
	}
	var apiErr *goopenai.APIError
	if kind != KindBadRequest || !errors.As(err, &apiErr) {
		return ""
	}
	code, _ := apiErr.Code.(string)
	param := ""
	if apiErr.Param != nil {
		param = *apiErr.Param
	}
	msg := strings.ToLower(apiErr.Message)
	switch {
	case strings.Contains(msg, "/v1/responses") || strings.Contains(msg, "responses api"):
		return fmt.Sprintf("The model %s works only through the Responses API. The bot's owner needs to set openai.api to auto or responses.", model)
	case strings.Contains(msg, "image") && (strings.Contains(msg, "not supported") || strings.Contains(msg, "invalid") ||
		strings.Contains(msg, "only supported")):
		return fmt.Sprintf("The model %s can't read this picture. Send text, try another image, or switch to a model "+
			"that reads images with /model (the bot's owner sets them in openai.models).", model)
	case strings.Contains(msg, "organization must be verified") && strings.Contains(msg, "summar"):
		return "The OpenAI organization may not stream reasoning summaries yet. The bot's owner needs to turn openai.reasoning_summary off (or verify the organization)."
	case code == "unsupported_parameter" || code == "unsupported_value" || strings.Contains(msg, "not supported") ||
		strings.Contains(msg, "unsupported parameter") || strings.Contains(msg, "unsupported value"):
		key := refusedKey(param + " " + msg)
		return fmt.Sprintf("The model %s does not accept the bot's %s setting. The bot's owner needs to change %s (or openai.model).", model, key, key)
	}
	return ""
}

// refusedKey names the config key behind a refused parameter.
func refusedKey(about string) string {
	switch {
	case strings.Contains(about, "summary"):
		return "openai.reasoning_summary"
	case strings.Contains(about, "reasoning"):
		return "openai.reasoning_effort"
	case strings.Contains(about, "web_search") || strings.Contains(about, "tools"):
		return "openai.web_search"
	}
	return "openai.model"
}
