package main

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai"
)

var _ conversation.Observer = (*metrics)(nil)

// metrics are the Prometheus figures /metrics serves.
type metrics struct {
	registry      *prometheus.Registry
	turns         *prometheus.CounterVec
	tokens        *prometheus.CounterVec
	firstToken    prometheus.Histogram
	finalText     prometheus.Histogram
	modelErrors   *prometheus.CounterVec
	platformCalls *prometheus.CounterVec
	platform429s  *prometheus.CounterVec
}

func newMetrics() *metrics {
	latency := []float64{.1, .25, .5, 1, 2, 4, 8, 15, 30, 60, 120, 300}
	m := &metrics{
		registry: prometheus.NewRegistry(),
		turns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatbot_turns_total", Help: "Turns answered, by outcome.",
		}, []string{"outcome"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatbot_tokens_total", Help: "Model tokens, in (prompt) and out (completion).",
		}, []string{"direction"}),
		firstToken: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chatbot_first_token_seconds", Help: "From a message to the model's first token.", Buckets: latency,
		}),
		finalText: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chatbot_final_text_seconds", Help: "From a message to its final text delivered.", Buckets: latency,
		}),
		modelErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatbot_model_errors_total", Help: "Model errors, by kind.",
		}, []string{"kind"}),
		platformCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatbot_platform_calls_total", Help: "Platform API calls, by platform, method and HTTP status.",
		}, []string{"platform", "method", "status"}),
		platform429s: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatbot_platform_rate_limited_total", Help: "Platform API calls answered 429, by platform and method.",
		}, []string{"platform", "method"}),
	}
	m.registry.MustRegister(m.turns, m.tokens, m.firstToken, m.finalText, m.modelErrors,
		m.platformCalls, m.platform429s,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// concurrency is what modelLimit reads: the engine's adaptive limit.
type concurrency interface {
	ModelConcurrency() (limit, inFlight int)
}

// watchModelLimit serves the engine's adaptive limit on concurrent model calls
// and the calls in flight as gauges.
func (m *metrics) watchModelLimit(e concurrency) {
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "chatbot_model_concurrency_limit",
			Help: "The adaptive limit on model calls at once (at most openai.max_concurrent_requests).",
		}, func() float64 { limit, _ := e.ModelConcurrency(); return float64(limit) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "chatbot_model_calls_in_flight", Help: "Model calls running now.",
		}, func() float64 { _, n := e.ModelConcurrency(); return float64(n) }),
	)
}

// TurnDone records a finished turn.
func (m *metrics) TurnDone(st conversation.TurnStats) {
	m.turns.WithLabelValues(string(st.Outcome)).Inc()
	m.tokens.WithLabelValues("in").Add(float64(st.Usage.PromptTokens))
	m.tokens.WithLabelValues("out").Add(float64(st.Usage.CompletionTokens))
	if st.FirstToken > 0 {
		m.firstToken.Observe(st.FirstToken.Seconds())
	}
	m.finalText.Observe(st.Duration.Seconds())
	if st.Err != nil && st.Outcome == conversation.OutcomeError {
		m.modelErrors.WithLabelValues(string(openai.KindOf(st.Err))).Inc()
	}
}

// client returns an HTTP client with timeout whose calls are counted under
// platform, by API method (the last segment of the URL path: sendMessage,
// chat.update, …). A nil *metrics counts nothing.
func (m *metrics) client(platform string, timeout time.Duration) *http.Client {
	// Many replies stream at once to one API host: keep their connections open
	// (the default keeps 2 idle per host, so most calls would dial and shake
	// hands with TLS anew).
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	if m == nil {
		return &http.Client{Timeout: timeout, Transport: t}
	}
	return &http.Client{Timeout: timeout, Transport: &countingTransport{m: m, platform: platform, next: t}}
}

type countingTransport struct {
	m        *metrics
	platform string
	next     http.RoundTripper
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	method := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	if strings.HasPrefix(method, "bot") && strings.Contains(method, ":") {
		method = "" // never a label holding a Telegram token
	}
	status := "error"
	if err == nil {
		status = strconv.Itoa(resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			t.m.platform429s.WithLabelValues(t.platform, method).Inc()
		}
	}
	t.m.platformCalls.WithLabelValues(t.platform, method, status).Inc()
	return resp, err
}
