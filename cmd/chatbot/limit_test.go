package main

import (
	"strings"
	"testing"
)

// fixedConcurrency is an engine whose limit is 7 with 2 calls in flight.
type fixedConcurrency struct{}

func (fixedConcurrency) ModelConcurrency() (int, int) { return 7, 2 }

func TestMetricsShowTheModelConcurrencyLimit(t *testing.T) {
	m := newMetrics()
	m.watchModelLimit(fixedConcurrency{})
	_, body := get(t, opsHandler(&readiness{}, m), "/metrics")
	for _, want := range []string{"chatbot_model_concurrency_limit 7", "chatbot_model_calls_in_flight 2"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestMaxConcurrentRequestsDefault(t *testing.T) {
	cfg, err := parseConfig([]byte("openai:\n  api_key: k\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.OpenAI.MaxConcurrentRequests; got != 256 {
		t.Errorf("openai.max_concurrent_requests defaults to %d, want 256 (the adaptive limit's upper bound)", got)
	}
}
