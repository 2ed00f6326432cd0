package telegram

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// The gate lets no getUpdates through (which would confirm the last batch to
// Telegram) before every update of the batch was handled.
func TestPollGateHoldsTheNextPollUntilTheBatchIsHandled(t *testing.T) {
	var polls atomic.Int32
	const batch = `{"ok":true,"result":[{"update_id":1},{"update_id":2}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		polls.Add(1)
		io.WriteString(w, batch)
	}))
	defer srv.Close()
	g := newPollGate(srv.Client())
	poll := func() string {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/botT/getUpdates", nil)
		resp, err := g.Do(req)
		if err != nil {
			t.Error(err)
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	if got := poll(); got != batch {
		t.Fatalf("the answer reached the library changed: %q", got)
	}
	done := make(chan string)
	go func() { done <- poll() }()
	g.processed()
	select {
	case <-done:
		t.Fatal("the next poll went out with one update of the batch not handled")
	case <-time.After(100 * time.Millisecond):
	}
	g.processed()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the next poll was held after the batch was handled")
	}
	if n := polls.Load(); n != 2 {
		t.Errorf("%d polls reached the server, want 2", n)
	}

	// Other methods are never held.
	go func() { done <- poll() }() // held: two more updates received
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/botT/sendMessage", nil)
	resp, err := g.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	g.processed()
	g.processed()
	<-done
}

// A group's budget lets at most 20 calls through in any minute at the default
// pacing, however many replies share it.
func TestGroupBudget(t *testing.T) {
	c := newChatLimits(time.Second, 3*time.Second)
	now := time.Now()
	l := c.limiter(-100, true)
	n := 0
	for at := now; at.Before(now.Add(time.Minute)); at = at.Add(100 * time.Millisecond) {
		if l.AllowN(at, 1) {
			n++
		}
	}
	if n > 20 {
		t.Errorf("%d calls in a minute, want at most 20", n)
	}
}
