package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTwoSignalsAtOnceCountAsTwo: two signals that arrive together, before the
// first is handled, stop gracefully and then exit at once.
func TestTwoSignalsAtOnceCountAsTwo(t *testing.T) {
	signals := make(chan os.Signal, 2)
	signals <- syscall.SIGTERM
	signals <- os.Interrupt
	exited := make(chan int, 1)
	var stderr bytes.Buffer
	m := &Main{Stderr: &stderr, Signals: signals, command: "serve", exit: func(code int) { exited <- code }}
	ctx, stop := m.watchSignals(context.Background())
	defer stop()
	select {
	case code := <-exited:
		if code != 130 {
			t.Errorf("exit code %d, want 130", code)
		}
	case <-time.After(10 * time.Second): // a bound on the wait, not a measure
		t.Fatal("the second signal did not exit")
	}
	if ctx.Err() == nil {
		t.Error("the first signal did not stop the command")
	}
	if !strings.Contains(stderr.String(), "second signal") {
		t.Errorf("stderr %q", stderr.String())
	}
}

// TestOneSignalStopsGracefully: one signal cancels the command and does not exit.
func TestOneSignalStopsGracefully(t *testing.T) {
	signals := make(chan os.Signal, 2)
	exited := make(chan int, 1)
	m := &Main{Stderr: &bytes.Buffer{}, Signals: signals, command: "serve", exit: func(code int) { exited <- code }}
	ctx, stop := m.watchSignals(context.Background())
	signals <- syscall.SIGTERM
	<-ctx.Done()
	stop()
	select {
	case code := <-exited:
		t.Errorf("exited with %d after one signal", code)
	default:
	}
}
