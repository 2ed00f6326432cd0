package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testLockChatExcludes checks that a chat's lock is held by one caller at a
// time, that other chats are free meanwhile, that unlocking twice is
// harmless, and that the lock can be taken again.
func testLockChatExcludes(t *testing.T, open Opener) {
	db := open(t, Caps{})
	ctx := context.Background()
	unlock, err := db.LockChat(ctx, "c")
	if err != nil {
		t.Fatalf("LockChat(c): %v", err)
	}
	got := make(chan func(), 1)
	go func() {
		u, err := db.LockChat(ctx, "c")
		if err != nil {
			t.Errorf("second LockChat(c): %v", err)
			u = func() {}
		}
		got <- u
	}()
	other, err := db.LockChat(ctx, "c2")
	if err != nil {
		t.Fatalf("LockChat(c2) while c is locked: %v", err)
	}
	other()
	select {
	case u := <-got:
		u()
		t.Fatal("a second caller took the chat's lock while the first held it")
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	unlock() // harmless
	var second func()
	select {
	case second = <-got:
	case <-time.After(within):
		t.Fatalf("the waiting caller did not get the lock within %v of its release", within)
	}
	second()
	again, err := db.LockChat(ctx, "c")
	if err != nil {
		t.Fatalf("LockChat(c) after both released it: %v", err)
	}
	again()
}

// testLockChatGivesUpWithContext checks that a waiter whose context ends gets
// its error, without the lock, and that the holder is not disturbed.
func testLockChatGivesUpWithContext(t *testing.T, open Opener) {
	db := open(t, Caps{})
	unlock, err := db.LockChat(context.Background(), "c")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if u, err := db.LockChat(ctx, "c"); !errors.Is(err, context.DeadlineExceeded) {
		if u != nil {
			u()
		}
		t.Errorf("LockChat with a context that ends while it waits: %v, want context.DeadlineExceeded", err)
	}
	unlock()
	u, err := db.LockChat(context.Background(), "c")
	if err != nil {
		t.Fatalf("LockChat after the waiter gave up: %v", err)
	}
	u()
}

// testLockChatUnderContention has goroutines take one chat's lock many times:
// never two inside at once, and every one gets in.
func testLockChatUnderContention(t *testing.T, open Opener) {
	db := open(t, Caps{})
	const workers, rounds = 8, 10
	var inside, most, done atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				unlock, err := db.LockChat(context.Background(), "busy")
				if err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				done.Add(1)
				unlock()
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Errorf("%d callers held the lock at once, want 1", m)
	}
	if n := done.Load(); n != workers*rounds {
		t.Errorf("%d turns ran, want %d", n, workers*rounds)
	}
}

// testLead checks that fn runs under a context that ends with Lead's, that
// Lead returns fn's error, and that two names are led at once.
func testLead(t *testing.T, open Opener) {
	db := open(t, Caps{})
	boom := errors.New("boom")
	if err := db.Lead(context.Background(), "a", func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Lead = %v, want fn's error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	aRunning, bDone := make(chan struct{}), make(chan error, 1)
	var aErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		aErr = db.Lead(ctx, "a", func(ctx context.Context) error {
			close(aRunning)
			<-ctx.Done()
			return fmt.Errorf("stopped: %w", ctx.Err())
		})
	})
	select {
	case <-aRunning:
	case <-time.After(within):
		t.Fatalf("Lead(a) did not run fn within %v", within)
	}
	go func() { bDone <- db.Lead(context.Background(), "b", func(context.Context) error { return nil }) }()
	select {
	case err := <-bDone:
		if err != nil {
			t.Errorf("Lead(b) = %v", err)
		}
	case <-time.After(within):
		t.Fatalf("Lead(b) did not run while a was led")
	}
	cancel()
	wg.Wait()
	if !errors.Is(aErr, context.Canceled) {
		t.Errorf("Lead(a) after ctx ended = %v, want fn's error (wrapping context.Canceled)", aErr)
	}
}

// testLeadWaitsForTheLeader checks that a second Lead of one name waits while
// the first leads, runs once it returns, and gives up (nil, fn not called)
// when its context ends first.
func testLeadWaitsForTheLeader(t *testing.T, open Opener) {
	db := open(t, Caps{})
	release := make(chan struct{})
	leading := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- db.Lead(context.Background(), "poll", func(context.Context) error {
			close(leading)
			<-release
			return nil
		})
	}()
	<-leading
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	called := false
	if err := db.Lead(ctx, "poll", func(context.Context) error { called = true; return nil }); err != nil || called {
		t.Errorf("Lead while another leads, ctx ending: %v, fn called %v; want nil, not called", err, called)
	}
	second := make(chan struct{})
	go func() {
		db.Lead(context.Background(), "poll", func(context.Context) error { close(second); return nil })
	}()
	select {
	case <-second:
		t.Fatal("a second leader ran while the first led")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first Lead = %v", err)
	}
	select {
	case <-second:
	case <-time.After(within):
		t.Fatalf("the second Lead did not run within %v of the first's end", within)
	}
}
