package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
	"github.com/slack-go/slack"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
)

// The limits and the probe of `chatbot check`.
const (
	// checkTimeout bounds each remote call; checkOverall the whole check.
	checkTimeout = 15 * time.Second
	checkOverall = 60 * time.Second
	// probePrompt asks for a reply of about twenty tokens, so that it streams in
	// enough chunks to tell a live stream from a buffered one.
	probePrompt = "Count from 1 to 20, separated by spaces. Reply with the numbers only."
	// maxEchoed bounds a printed result, which may echo a whole answer (an HTML page).
	maxEchoed = 500
)

// verdict is the outcome of one check.
type verdict int

const (
	pass verdict = iota
	warn
	fail
	skip
)

var marks = map[verdict]string{pass: "✓", warn: "⚠", fail: "✗", skip: "–"}

// result is one line of the report, with hints on how to fix it.
type result struct {
	verdict verdict
	name    string
	text    string
	hints   []string
}

// checkGroup checks one part of the set-up; its results print in order.
type checkGroup func(ctx context.Context, cfg *Config) []result

// check verifies the model service behind openai.base_url (or names an empty
// openai.api_key), the platform tokens that are set, the store and http.listen,
// prints one line per check, and fails when any check failed.
// Warnings (a buffered stream, say) do not fail it.
func (m *Main) check(ctx context.Context, cfg *Config, _ *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, checkOverall)
	defer cancel()
	groups := []checkGroup{checkModel}
	if checkAPIKey(cfg.OpenAI) != nil {
		groups[0] = checkKeyMissing
	}
	if cfg.Telegram.Token != "" {
		groups = append(groups, checkTelegram)
	}
	if cfg.Slack.BotToken != "" {
		groups = append(groups, checkSlack)
	}
	if len(cfg.Tools.MCPServers) > 0 {
		groups = append(groups, checkTools)
	}
	groups = append(groups, checkLocal)
	// The groups run at once; each prints as soon as it and those before it are done.
	done := make([]chan []result, len(groups))
	for i, g := range groups {
		done[i] = make(chan []result, 1)
		go func() { done[i] <- g(ctx, cfg) }()
	}
	fmt.Fprintf(m.Stdout, "chatbot check %s\n", m.configPath)
	p := &printer{w: m.Stdout, redact: secretsRedactor(cfg)}
	for _, ch := range done {
		p.print(<-ch...)
	}
	if cfg.Telegram.Token == "" && cfg.Slack.BotToken == "" {
		p.print(result{verdict: warn, name: "platforms",
			text: "neither telegram.token nor slack.bot_token is set: `chatbot serve` has nothing to run (`chatbot chat` works)"})
	}
	return p.summary()
}

// printer writes results with every secret of the config masked, and each
// line cut to maxEchoed bytes after that.
type printer struct {
	w        io.Writer
	redact   func(string) string
	problems int
	warnings int
}

func (p *printer) print(rs ...result) {
	for _, r := range rs {
		fmt.Fprintf(p.w, "%s %-10s %s\n", marks[r.verdict], r.name, conversation.ClipText(p.redact(r.text), maxEchoed))
		for _, h := range r.hints {
			fmt.Fprintf(p.w, "  %-10s → %s\n", "", p.redact(h))
		}
		switch r.verdict {
		case fail:
			p.problems++
		case warn:
			p.warnings++
		}
	}
}

// summary prints the last line and returns the error that makes the exit code 1.
func (p *printer) summary() error {
	switch {
	case p.problems > 0:
		return fmt.Errorf("check failed: %d %s", p.problems, plural(p.problems, "problem"))
	case p.warnings > 0:
		fmt.Fprintf(p.w, "all checks passed, with %d %s\n", p.warnings, plural(p.warnings, "warning"))
	default:
		fmt.Fprintln(p.w, "all checks passed")
	}
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// secretsRedactor masks the config's keys and tokens, also URL-escaped (the
// Telegram token is part of every Bot API URL).
func secretsRedactor(cfg *Config) func(string) string {
	var secrets []string
	for _, s := range []string{cfg.OpenAI.APIKey, cfg.Telegram.Token, cfg.Telegram.WebhookSecret,
		cfg.Slack.BotToken, cfg.Slack.AppToken, cfg.Slack.SigningSecret} {
		if len(s) >= 6 { // shorter is not a real secret, and masking it would garble the report
			secrets = append(secrets, s)
		}
	}
	return func(text string) string {
		for _, s := range secrets {
			text = conversation.RedactSecret(text, s)
		}
		return text
	}
}

// checkModel lists the models through openai.base_url, then streams a short reply.
func checkModel(ctx context.Context, cfg *Config) []result {
	o := cfg.OpenAI
	k := openai.NewChecker(openai.Options{BaseURL: o.BaseURL, APIKey: o.APIKey, Model: o.Model,
		API: openai.API(o.API), ReasoningEffort: o.ReasoningEffort, WebSearch: o.WebSearch,
		HTTPClient: &http.Client{Timeout: checkTimeout}})
	lctx, cancel := context.WithTimeout(ctx, checkTimeout)
	list, err := k.Models(lctx)
	cancel()
	if err != nil {
		return []result{modelFailure("proxy", cfg, err),
			{verdict: skip, name: "completion", text: "not tried: fix the line above first"}}
	}
	out := []result{proxyPassed(cfg, list)}
	sctx, cancel := context.WithTimeout(ctx, checkTimeout)
	probe, err := k.Stream(sctx, probePrompt)
	cancel()
	return append(out, completionResults(cfg, list, probe, err)...)
}

// proxyPassed says where openai.base_url's answer came from.
func proxyPassed(cfg *Config, list openai.Listing) result {
	base := redactedURL(cfg.OpenAI.BaseURL)
	r := result{verdict: pass, name: "proxy"}
	switch {
	case list.Proxy == openai.ProxyName:
		r.text = fmt.Sprintf("%s answers through the chatbot Worker (x-proxy: %s); %s", base, list.Proxy, listed(list))
	case hostOf(cfg.OpenAI.BaseURL) == "api.openai.com":
		r.text = fmt.Sprintf("%s answers directly, without the Worker; %s", base, listed(list))
		r.hints = []string{"where OpenAI is blocked, deploy proxy/ (proxy/DEPLOY.md) and set openai.base_url to it"}
	default:
		r.text = fmt.Sprintf("%s answers directly, not through the chatbot Worker (no x-proxy header); %s", base, listed(list))
		r.hints = []string{"if this is meant to be the Worker, deploy the current proxy/worker.js"}
	}
	return r
}

func listed(list openai.Listing) string {
	return fmt.Sprintf("%d %s listed", len(list.IDs), plural(len(list.IDs), "model"))
}

// completionResults judges the model's presence, the completion and its streaming.
func completionResults(cfg *Config, list openai.Listing, p openai.StreamProbe, err error) []result {
	model := cfg.OpenAI.Model
	listed := len(list.IDs) == 0 || list.Has(model)
	if err != nil && !listed && openai.KindOf(err) == openai.KindNotFound {
		r := modelMissing(model, list)
		r.text += "; the completion failed with HTTP 404 model_not_found"
		return []result{r}
	}
	var out []result
	if !listed && err != nil {
		out = append(out, modelMissing(model, list))
	}
	if err != nil {
		return append(out, modelFailure("completion", cfg, err))
	}
	if listed {
		out = append(out, result{verdict: pass, name: "model", text: model + " is available"})
	} else {
		out = append(out, result{verdict: warn, name: "model",
			text: fmt.Sprintf("%s is not among the %d listed models, but it answered", model, len(list.IDs))})
	}
	return append(out, completionPassed(model, p), streamingVerdict(p))
}

func modelMissing(model string, list openai.Listing) result {
	r := result{verdict: fail, name: "model",
		text: fmt.Sprintf("model %q not found: it is not among the %d models this key may use", model, len(list.IDs))}
	hint := "check openai.model"
	if like := similarModels(model, list.IDs, 5); len(like) > 0 {
		hint += "; listed models like it: " + strings.Join(like, ", ")
	}
	r.hints = []string{hint}
	return r
}

// similarModels returns up to n listed IDs sharing the longest prefix with model.
func similarModels(model string, ids []string, n int) []string {
	for l := len(model); l >= 3; l-- {
		var like []string
		for _, id := range ids {
			if strings.HasPrefix(id, model[:l]) && len(like) < n {
				like = append(like, id)
			}
		}
		if len(like) > 0 {
			return like
		}
	}
	return nil
}

func completionPassed(model string, p openai.StreamProbe) result {
	if strings.TrimSpace(p.Reply) == "" {
		return result{verdict: warn, name: "completion",
			text:  fmt.Sprintf("%s answered with no text %s", model, apiName(p.API)),
			hints: []string{"a reasoning model may spend the check's small token budget on thinking; the connection works"}}
	}
	reply := strings.Join(strings.Fields(p.Reply), " ")
	if r := []rune(reply); len(r) > 32 {
		reply = string(r[:32]) + "…"
	}
	return result{verdict: pass, name: "completion",
		text: fmt.Sprintf("%s replied %q %s; first token after %s, %d chunks in %s",
			model, reply, apiName(p.API), ms(p.FirstToken), len(p.Arrivals), ms(p.FirstToken+p.Spread()))}
}

// apiName says which API answered, for the completion line.
func apiName(api openai.API) string {
	if api == openai.APIChat {
		return "on the Chat Completions API"
	}
	return "on the Responses API (store: false)"
}

// streamingVerdict warns when the chunks arrived all at once: something between
// chatbot and the model buffers the stream, so replies would not grow as written.
func streamingVerdict(p openai.StreamProbe) result {
	switch {
	case !p.Judgeable():
		return result{verdict: warn, name: "streaming",
			text:  fmt.Sprintf("the reply came in only %d %s: it may be buffered on the way", len(p.Arrivals), plural(len(p.Arrivals), "chunk")),
			hints: []string{"run the check again; if it repeats, turn off response buffering in any proxy on the way (nginx: `proxy_buffering off;`)"}}
	case p.Buffered():
		return result{verdict: warn, name: "streaming",
			text: fmt.Sprintf("WARNING: the reply arrived all at once (%d chunks within %s, after %s): something between chatbot and the model buffers the stream, so replies will not grow while they are written",
				len(p.Arrivals), ms(p.Spread()), ms(p.FirstToken)),
			hints: []string{"nginx: set `proxy_buffering off;` for this location (or send `X-Accel-Buffering: no`)",
				"other reverse proxies and corporate proxies: turn off response buffering for text/event-stream"}}
	}
	return result{verdict: pass, name: "streaming",
		text: fmt.Sprintf("%d chunks over %s: replies grow as they are written", len(p.Arrivals), ms(p.Spread()))}
}

// modelFailure explains a failed call to the model service.
func modelFailure(name string, cfg *Config, err error) result {
	r := result{verdict: fail, name: name}
	var ce *openai.CheckError
	if !errors.As(err, &ce) {
		r.text = err.Error()
		return r
	}
	if f := netFailureOf(err); f != netNone {
		return unreachable(r, cfg.OpenAI.BaseURL, f, err)
	}
	r.text, r.hints = modelHTTPFailure(ce)
	return r
}

// modelHTTPFailure explains an HTTP error from the Worker or the model service.
func modelHTTPFailure(ce *openai.CheckError) (string, []string) {
	status := fmt.Sprintf("HTTP %d %s", ce.Err.Status, ce.Err.Code)
	if text, hints, ok := workerFailure(ce, status); ok {
		return text, hints
	}
	return serviceFailure(ce, status)
}

// workerFailure explains the Worker's own errors and an OpenAI 401 it passed on.
func workerFailure(ce *openai.CheckError, status string) (string, []string, bool) {
	switch e := ce.Err; {
	case e.Kind == openai.KindProxyAuth:
		return "the Worker rejected openai.api_key (" + status + "): it must equal the Worker's PROXY_TOKEN",
			[]string{"set openai.api_key to the PROXY_TOKEN secret of the Worker, not to an OpenAI key"}, true
	case e.Code == "proxy_misconfigured":
		return "the Worker is misconfigured (" + status + "): " + ce.Message,
			[]string{"set both secrets PROXY_TOKEN and OPENAI_API_KEY on the Worker, or neither (proxy/DEPLOY.md)"}, true
	case e.Code == "upstream_unreachable":
		return "the Worker cannot reach its UPSTREAM (" + status + ")",
			[]string{"check the Worker's UPSTREAM variable (default https://api.openai.com)"}, true
	case e.Kind == openai.KindAuth && e.Status == http.StatusUnauthorized && ce.Proxy == openai.ProxyName:
		return "OpenAI rejected the API key the Worker sent on (" + status + ")",
			[]string{"key-in-Worker mode: the Worker's OPENAI_API_KEY secret is wrong",
				"pass-through mode: openai.api_key must be a valid OpenAI key"}, true
	}
	return "", nil, false
}

// serviceFailure explains an error answer of the model service.
func serviceFailure(ce *openai.CheckError, status string) (string, []string) {
	switch e := ce.Err; {
	case e.Code == "unsupported_country_region_territory":
		return "OpenAI refuses the region the request comes from (" + status + ")",
			[]string{"send the calls through the Worker: deploy proxy/ (proxy/DEPLOY.md) and set openai.base_url to it"}
	case e.Kind == openai.KindAuth && e.Status == http.StatusForbidden:
		return "OpenAI refused the request (" + status + "): " + ce.Message,
			[]string{"check the key's project and its permissions (https://platform.openai.com/api-keys)"}
	case e.Kind == openai.KindAuth:
		return "OpenAI rejected the API key (" + status + ")",
			[]string{"check openai.api_key (https://platform.openai.com/api-keys)"}
	case e.Kind == openai.KindNotFound && e.Code == "model_not_found":
		return "the model was not found (" + status + "): " + ce.Message, []string{"check openai.model"}
	case e.Kind == openai.KindNotFound:
		return notFound(ce.Proxy == openai.ProxyName, status)
	case e.Kind == openai.KindQuota:
		return "the OpenAI account has run out of quota (" + status + ")",
			[]string{"add credit or raise the budget: https://platform.openai.com/settings/organization/billing"}
	case e.Kind == openai.KindRateLimit:
		return "rate limited (" + status + "): the key works, but it is over its rate limit",
			[]string{"try again in a minute"}
	case e.Kind == openai.KindBadRequest:
		return "the model service refused the check's request (" + status + "): " + ce.Message,
			[]string{"openai.base_url must be an OpenAI-compatible API; check openai.model"}
	case e.Kind == openai.KindServer:
		return "the model service failed (" + status + "): " + ce.Message,
			[]string{"try again later; see https://status.openai.com"}
	case e.Kind == openai.KindCanceled:
		return "cancelled before the answer was complete", nil
	case e.Kind == openai.KindCut || e.Kind == openai.KindStalled:
		return "the stream broke off before the reply was complete: " + e.Error(),
			[]string{"something between chatbot and the model drops long responses"}
	}
	return "unexpected answer: " + ce.Error(),
		[]string{"openai.base_url must be an OpenAI-compatible API and end in /v1"}
}

func notFound(viaWorker bool, status string) (string, []string) {
	hint := []string{"openai.base_url must end in /v1, e.g. https://ai-proxy.example.com/v1"}
	if viaWorker {
		return "the Worker answered " + status + ": it forwards only paths under /v1/", hint
	}
	return "openai.base_url does not point at an OpenAI API (" + status + ")", hint
}

// netFailure names how a call failed before any HTTP answer.
type netFailure int

const (
	netNone netFailure = iota
	netDNS
	netRefused
	netTimeout
	netTLS
	netOther
)

// netFailureOf classifies err by the network step that failed.
func netFailureOf(err error) netFailure {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		return netDNS
	case isTLSFailure(err):
		return netTLS
	case errors.Is(err, syscall.ECONNREFUSED):
		return netRefused
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return netTimeout
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return netOther
	}
	return netNone
}

func isTLSFailure(err error) bool {
	var certErr *tls.CertificateVerificationError
	var authErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidErr x509.CertificateInvalidError
	var recordErr tls.RecordHeaderError
	return errors.As(err, &certErr) || errors.As(err, &authErr) || errors.As(err, &hostErr) ||
		errors.As(err, &invalidErr) || errors.As(err, &recordErr) ||
		strings.Contains(err.Error(), "HTTP response to HTTPS client")
}

// unreachable explains a network failure on the way to the model service.
func unreachable(r result, baseURL string, f netFailure, err error) result {
	host := hostOf(baseURL)
	r.text = netText(host, f, err)
	workersDev := "*.workers.dev is unreachable in some networks (mainland China among them): bind a custom domain " +
		"to the Worker (proxy/DEPLOY.md, \"Use your own domain\") and put it in openai.base_url"
	switch f {
	case netTLS:
		r.hints = []string{"the certificate is not trusted here: something may intercept HTTPS, " +
			"or openai.base_url says https:// for a plain http server"}
		if strings.HasSuffix(host, ".workers.dev") {
			r.hints = append(r.hints, workersDev)
		}
	case netDNS:
		r.hints = []string{"check the host name in openai.base_url", workersDev}
	default:
		r.hints = []string{"check the host and port in openai.base_url", workersDev}
	}
	return r
}

// netText describes a network failure in one phrase.
func netText(host string, f netFailure, err error) string {
	switch f {
	case netDNS:
		return fmt.Sprintf("cannot resolve %s (DNS lookup failed)", host)
	case netRefused:
		return fmt.Sprintf("cannot connect to %s: connection refused", host)
	case netTimeout:
		return fmt.Sprintf("no answer from %s within %s (connection or reply timed out)", host, checkTimeout)
	case netTLS:
		return fmt.Sprintf("TLS failed with %s: %s", host, tlsReason(err))
	}
	return fmt.Sprintf("cannot connect to %s: %v", host, err)
}

// tlsReason is the innermost useful text of a TLS error.
func tlsReason(err error) string {
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return certErr.Err.Error()
	}
	s := err.Error()
	if i := strings.LastIndex(s, "x509: "); i >= 0 {
		return s[i:]
	}
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

// checkTelegram asks the Bot API who telegram.token belongs to (getMe).
func checkTelegram(ctx context.Context, cfg *Config) []result {
	t := cfg.Telegram
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	b, err := bot.New(t.Token, bot.WithServerURL(strings.TrimRight(t.APIURL, "/")), bot.WithSkipGetMe(),
		bot.WithHTTPClient(checkTimeout, &http.Client{Timeout: checkTimeout}), bot.WithErrorsHandler(func(error) {}))
	if err == nil {
		var me *models.User
		if me, err = b.GetMe(ctx); err == nil {
			return []result{{verdict: pass, name: "telegram",
				text: fmt.Sprintf("telegram.token is the bot @%s (id %d)", me.Username, me.ID)}}
		}
	}
	return []result{telegramFailure(t.APIURL, err)}
}

func telegramFailure(apiURL string, err error) result {
	r := result{verdict: fail, name: "telegram"}
	switch f := netFailureOf(err); {
	case errors.Is(err, bot.ErrorUnauthorized):
		r.text = "Telegram rejected telegram.token (401 Unauthorized)"
		r.hints = []string{"copy the bot's token from @BotFather again (/mybots → API Token)"}
	case errors.Is(err, bot.ErrorNotFound):
		r.text = "the Bot API answered 404 Not Found"
		r.hints = []string{"the token is malformed, or telegram.api_url (" + redactedURL(apiURL) + ") is not a Bot API server"}
	case f != netNone:
		r.text = netText(hostOf(apiURL), f, err)
		r.hints = []string{"api.telegram.org is blocked in some networks: run the bot where it is reachable, " +
			"or set telegram.api_url to a Bot API server you can reach"}
	default:
		r.text = "getMe failed: " + err.Error()
	}
	return r
}

// checkSlack runs auth.test with slack.bot_token and, in Socket Mode,
// apps.connections.open with slack.app_token.
func checkSlack(ctx context.Context, cfg *Config) []result {
	s := cfg.Slack
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	apiURL := strings.TrimRight(s.APIURL, "/") + "/"
	api := slack.New(s.BotToken, slack.OptionAPIURL(apiURL), slack.OptionAppLevelToken(s.AppToken),
		slack.OptionHTTPClient(&http.Client{Timeout: checkTimeout}))
	var out []result
	if auth, err := api.AuthTestContext(ctx); err != nil {
		out = append(out, slackFailure("slack", "slack.bot_token", apiURL, err))
	} else {
		out = append(out, slackPassed(s.BotToken, auth))
	}
	if s.Mode != "socket" {
		return out
	}
	if _, _, err := api.StartSocketModeContext(ctx); err != nil {
		return append(out, slackFailure("slack app", "slack.app_token", apiURL, err))
	}
	return append(out, result{verdict: pass, name: "slack app",
		text: "slack.app_token opens Socket Mode connections (apps.connections.open)"})
}

func slackPassed(token string, auth *slack.AuthTestResponse) result {
	r := result{verdict: pass, name: "slack",
		text: fmt.Sprintf("slack.bot_token is the bot @%s (%s) in team %s (%s)", auth.User, auth.UserID, auth.Team, auth.TeamID)}
	if auth.BotID == "" || !strings.HasPrefix(token, "xoxb-") {
		r.verdict = warn
		r.hints = []string{"this is not a bot token: use the Bot User OAuth Token (xoxb-…) of the app"}
	}
	return r
}

func slackFailure(name, key, apiURL string, err error) result {
	r := result{verdict: fail, name: name}
	var se slack.SlackErrorResponse
	var sc slack.StatusCodeError
	switch f := netFailureOf(err); {
	case errors.As(err, &se) && se.Err == "not_allowed_token_type":
		r.text = fmt.Sprintf("%s is the wrong kind of token (not_allowed_token_type)", key)
		r.hints = []string{tokenHint(key)}
	case errors.As(err, &se):
		r.text = fmt.Sprintf("Slack rejected %s (%s)", key, se.Err)
		r.hints = []string{tokenHint(key)}
	case errors.As(err, &sc):
		r.text = fmt.Sprintf("Slack answered HTTP %d", sc.Code)
		r.hints = []string{"check slack.api_url (" + redactedURL(apiURL) + "); the default is " + defaultSlackURL}
	case f != netNone:
		r.text = netText(hostOf(apiURL), f, err)
	default:
		r.text = "Slack call failed: " + err.Error()
	}
	return r
}

func tokenHint(key string) string {
	if key == "slack.app_token" {
		return "use an app-level token (xapp-…) with the connections:write scope (the app's Basic Information → App-Level Tokens)"
	}
	return "use the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page; reinstall the app if it was revoked"
}

func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}

// redactedURL hides a password in a URL's user info.
func redactedURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return raw
}

// ms rounds d for display.
func ms(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return "<1ms"
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}
