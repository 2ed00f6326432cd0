package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/store"
	"github.com/chatbot-dev/chatbot/store/storetest"
)

// TestChatLockAcrossReplicas runs turns in one chat from three replicas at
// once: never two inside together, each turn sees the previous one whole,
// and every turn is stored.
func TestChatLockAcrossReplicas(t *testing.T) {
	url := pg.Database(t)
	replicas := []*Store{openT(t, url, quiet()), openT(t, url, quiet()), openT(t, url, quiet())}
	ctx := context.Background()
	const perReplica, rounds = 3, 4
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for r, s := range replicas {
		for w := range perReplica {
			wg.Go(func() {
				for i := range rounds {
					unlock, err := s.LockChat(ctx, "shared")
					if err != nil {
						t.Error(err)
						return
					}
					n := inside.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					last, err := s.Recent(ctx, "shared", 1)
					if err == nil && len(last) == 1 && last[0].Role != conversation.RoleAssistant {
						t.Errorf("a turn began while the previous one was half stored: %q", last[0].Content)
					}
					who := conversation.ChatID(fmt.Sprintf("r%d-w%d-%d", r, w, i))
					err = errors.Join(err, s.AppendTurn(ctx, "shared", storetest.Msg(who, 0)))
					time.Sleep(time.Millisecond) // the model answers
					err = errors.Join(err, s.AppendTurn(ctx, "shared", storetest.Msg(who, 1)))
					inside.Add(-1)
					unlock()
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Errorf("%d turns ran in the chat at once over the replicas, want 1", m)
	}
	got, err := replicas[0].Recent(ctx, "shared", 1000)
	if err != nil {
		t.Fatal(err)
	}
	storetest.CheckTurnsWhole(t, got, 2*len(replicas)*perReplica*rounds)
}

// TestChatLockWakesByNotification has the waiting replica poll once an hour:
// it gets the lock all the same when the holder gives it back, because the
// release notifies it.
func TestChatLockWakesByNotification(t *testing.T) {
	url := pg.Database(t)
	a, b := openT(t, url, deaf(quiet())), openT(t, url, deaf(quiet()))
	ctx := context.Background()
	unlock, err := a.LockChat(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		u, err := b.LockChat(ctx, "c")
		if err == nil {
			u()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("b took the lock a holds: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("b waiting for the lock a gave back: %v", err)
	}
}

// TestChatLockOfDeadReplica checks that a live replica keeps its lock longer
// than its lease (it renews it), and that the lock of a replica that died
// holding it (no release, its connections just closed) goes to another one
// once the dead one's lease expires.
func TestChatLockOfDeadReplica(t *testing.T) {
	url := pg.Database(t)
	a, b := openT(t, url, quick()), openT(t, url, quick())
	ctx := context.Background()
	if _, err := a.LockChat(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 2*a.opt.LeaseTTL)
	defer cancel()
	if u, err := b.LockChat(short, "c"); !errors.Is(err, context.DeadlineExceeded) {
		if u != nil {
			u()
		}
		t.Fatalf("b's LockChat while a lives and holds the lock for two leases = %v, want to wait until its context ends", err)
	}
	a.crash()
	long, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	u, err := b.LockChat(long, "c")
	if err != nil {
		t.Fatalf("b's LockChat after a died: %v", err)
	}
	u()
}

// TestCloseReleases checks that a replica that closes gives its chat locks
// and leaderships up at once: the others, polling once an hour, are woken.
func TestCloseReleases(t *testing.T) {
	url := pg.Database(t)
	a, b := openT(t, url, deaf(quiet())), openT(t, url, deaf(quiet()))
	ctx := context.Background()
	if _, err := a.LockChat(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	aLeads := make(chan struct{})
	aDone := make(chan error, 1)
	go func() {
		aDone <- a.Lead(ctx, "telegram", func(ctx context.Context) error { close(aLeads); <-ctx.Done(); return nil })
	}()
	<-aLeads
	bLeads := make(chan struct{})
	go b.Lead(ctx, "telegram", func(ctx context.Context) error { close(bLeads); <-ctx.Done(); return nil })
	locked := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		u, err := b.LockChat(ctx, "c")
		if err == nil {
			u()
		}
		locked <- err
	}()
	time.Sleep(100 * time.Millisecond) // b asks and waits
	a.Close()
	if err := <-aDone; !errors.Is(err, ErrClosed) && err != nil {
		t.Errorf("a's Lead after Close = %v", err)
	}
	if err := <-locked; err != nil {
		t.Errorf("b's LockChat after a closed: %v", err)
	}
	select {
	case <-bLeads:
	case <-time.After(within):
		t.Errorf("b did not lead within %v of a's Close", within)
	}
}

// leaders records who leads: at most one at a time, and the order of events.
type leaders struct {
	mu     sync.Mutex
	now    []string // leading now
	most   int
	events []string // "+a", "-a", …
	change chan struct{}
}

func newLeaders() *leaders { return &leaders{change: make(chan struct{}, 100)} }

// run is a leader's fn: it leads until its context ends.
func (l *leaders) run(name string) func(context.Context) error {
	return func(ctx context.Context) error {
		l.mu.Lock()
		l.now = append(l.now, name)
		l.most = max(l.most, len(l.now))
		l.events = append(l.events, "+"+name)
		l.mu.Unlock()
		l.change <- struct{}{}
		<-ctx.Done()
		l.mu.Lock()
		l.now = slices.DeleteFunc(l.now, func(n string) bool { return n == name })
		l.events = append(l.events, "-"+name)
		l.mu.Unlock()
		l.change <- struct{}{}
		return ctx.Err()
	}
}

func (l *leaders) current() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.now)
}

// waitFor waits until cond holds of the leaders now.
func (l *leaders) waitFor(t *testing.T, what string, cond func(now []string) bool) []string {
	t.Helper()
	deadline := time.After(within)
	for {
		if now := l.current(); cond(now) {
			return now
		}
		select {
		case <-l.change:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s: not within %v (leading: %v; events %v)", what, within, l.current(), l.events)
		}
	}
}

// TestLeaderFailover has three replicas campaign: exactly one leads; when it
// dies (no resignation, connections closed) another takes over once its lease
// expires; when that one stops (its Lead's context ends) the third takes over.
func TestLeaderFailover(t *testing.T) {
	url := pg.Database(t)
	names := []string{"a", "b", "c"}
	stores := map[string]*Store{}
	cancels := map[string]context.CancelFunc{}
	l := newLeaders()
	var wg sync.WaitGroup
	for _, n := range names {
		stores[n] = openT(t, url, quick())
		ctx, cancel := context.WithCancel(context.Background())
		cancels[n] = cancel
		wg.Go(func() { stores[n].Lead(ctx, "telegram", l.run(n)) })
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
		wg.Wait()
	}()
	one := func(now []string) bool { return len(now) == 1 }
	first := l.waitFor(t, "a leader", one)[0]
	stores[first].crash()
	cancels[first]()
	second := l.waitFor(t, "another leader after the first died", func(now []string) bool { return one(now) && now[0] != first })[0]
	cancels[second]()
	third := l.waitFor(t, "the third leader after the second stopped", func(now []string) bool {
		return one(now) && now[0] != first && now[0] != second
	})[0]
	if l.most != 1 {
		t.Errorf("%d replicas led at once (events %v), want 1", l.most, l.events)
	}
	t.Logf("leaders: %s, %s, %s", first, second, third)
}

// TestLeaderPartitioned cuts the leader off the database (its connections
// hang, nothing is closed): it must stop leading by itself before another
// replica is elected, and campaign again (without winning) once it can reach
// the database again.
func TestLeaderPartitioned(t *testing.T) {
	url := pg.Database(t)
	p := newProxy(t, pg.Addr())
	via := fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&connect_timeout=2", p.addr(), dbName(url))
	a := openT(t, via, quick())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := newLeaders()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { a.Lead(ctx, "telegram", l.run("a")) })
	l.waitFor(t, "a leads", func(now []string) bool { return slices.Equal(now, []string{"a"}) })
	b := openT(t, url, quick())
	wg.Go(func() { b.Lead(ctx, "telegram", l.run("b")) })

	p.freeze()
	l.waitFor(t, "b leads", func(now []string) bool { return slices.Equal(now, []string{"b"}) })
	l.mu.Lock()
	events := slices.Clone(l.events)
	l.mu.Unlock()
	if !slices.Equal(events, []string{"+a", "-a", "+b"}) {
		t.Errorf("events %v, want [+a -a +b]: the cut-off leader must stop before another starts", events)
	}
	p.thaw()
	eventually(t, "a takes a new lease", func() bool { id := a.ID(); return id != "" && id != a.lease.allIDs()[0] })
	time.Sleep(2 * a.opt.PollEvery)
	if now := l.current(); !slices.Equal(now, []string{"b"}) {
		t.Errorf("after a is back, leading: %v, want [b]", now)
	}
}

// dbName is the database of a pgtest URL.
func dbName(url string) string {
	rest := url[strings.LastIndex(url, "/")+1:]
	name, _, _ := strings.Cut(rest, "?")
	return name
}

// TestLeaseRowDeleted deletes a replica's lease row under it (as a replica
// that thought it expired would): the replica finds out at its next renewal,
// stops leading, takes a new lease, leads again, and its pending marks are
// still its own (another replica does not take them).
func TestLeaseRowDeleted(t *testing.T) {
	url := pg.Database(t)
	a, b := openT(t, url, quick()), openT(t, url, quick())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := a.MarkPending(ctx, "writing"); err != nil {
		t.Fatal(err)
	}
	l := newLeaders()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { a.Lead(ctx, "telegram", l.run("a")) })
	l.waitFor(t, "a leads", func(now []string) bool { return len(now) == 1 })
	old := a.ID()
	sql(t, url, fmt.Sprintf("DELETE FROM replicas WHERE id = '%s'", old))
	l.waitFor(t, "a leads again under a new lease", func([]string) bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.events) == 3
	})
	if id := a.ID(); id == old || id == "" {
		t.Errorf("a's id = %q after its row was deleted, want a new one", id)
	}
	if got, err := b.TakePending(ctx); len(got) != 0 || err != nil {
		t.Errorf("b took %v, %v: a's mark moved to its new lease and is still being written", got, err)
	}
	if err := a.ClearPending(ctx, "writing"); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, url, "SELECT count(*) FROM pending"); n != 0 {
		t.Errorf("%d pending marks after ClearPending, want 0", n)
	}
}

// TestLeaseLostLocallyKeepsLocks has a replica give its lease up on its own
// (as when it could not renew in time) while its row still stands: the chat
// lock of its running turn moves to its new lease, so no other replica can
// take it, and it gives the lock back as usual.
func TestLeaseLostLocallyKeepsLocks(t *testing.T) {
	url := pg.Database(t)
	a, b := openT(t, url, quick()), openT(t, url, deaf(quick()))
	ctx := context.Background()
	unlock, err := a.LockChat(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	old := a.lease.current()
	a.lease.lose(old, "test")
	eventually(t, "a takes a new lease", func() bool { s := a.lease.current(); return s != nil && s != old })
	if n := queryInt(t, url, "SELECT count(*) FROM replicas WHERE id = $1", old.id); n != 0 {
		t.Errorf("the lost lease's row is still there")
	}
	if n := queryInt(t, url, "SELECT count(*) FROM chat_locks WHERE owner = $1", a.ID()); n != 1 {
		t.Errorf("%d chat locks under a's new lease, want 1", n)
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if u, err := b.LockChat(short, "c"); err == nil {
		u()
		t.Fatal("b took the chat lock of a's running turn")
	}
	unlock()
	long, cancel2 := context.WithTimeout(ctx, within)
	defer cancel2()
	u, err := b.LockChat(long, "c")
	if err != nil {
		t.Fatalf("b's LockChat after a gave the lock back: %v", err)
	}
	u()
}

// TestPendingOfDeadReplica checks crash notes over replicas: a live replica's
// marks are left alone; a dead one's (killed mid-reply) are taken once its
// lease expires, by exactly one of two survivors asking at once; a reply the
// dead one finished is not announced.
func TestPendingOfDeadReplica(t *testing.T) {
	url := pg.Database(t)
	a, b, c := openT(t, url, quick()), openT(t, url, quick()), openT(t, url, quick())
	ctx := context.Background()
	for _, chat := range []conversation.ChatID{"cut:1", "cut:2", "done"} {
		if err := a.MarkPending(ctx, chat); err != nil {
			t.Fatal(err)
		}
	}
	a.ClearPending(ctx, "done")
	if got, err := b.TakePending(ctx); len(got) != 0 || err != nil {
		t.Fatalf("b took %v, %v from a live replica", got, err)
	}
	a.crash()
	var mu sync.Mutex
	var taken []conversation.ChatID
	var wg sync.WaitGroup
	for _, s := range []*Store{b, c} {
		wg.Go(func() {
			deadline := time.Now().Add(within)
			for time.Now().Before(deadline) {
				got, err := s.TakePending(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				taken = append(taken, got...)
				n := len(taken)
				mu.Unlock()
				if n >= 2 {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	slices.Sort(taken)
	if want := []conversation.ChatID{"cut:1", "cut:2"}; !slices.Equal(taken, want) {
		t.Errorf("taken over both survivors: %v, want %v once each", taken, want)
	}
}

// TestFirstSeenAcrossReplicas has two replicas see the same keys at once:
// each key is new to exactly one.
func TestFirstSeenAcrossReplicas(t *testing.T) {
	url := pg.Database(t)
	replicas := []*Store{openT(t, url, quiet()), openT(t, url, quiet())}
	const keys = 50
	var firsts [keys]atomic.Int32
	var wg sync.WaitGroup
	for _, s := range replicas {
		for range 3 {
			wg.Go(func() {
				for k := range keys {
					first, err := s.FirstSeen(context.Background(), fmt.Sprintf("slack:Ev%d", k), time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					if first {
						firsts[k].Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	for k := range keys {
		if n := firsts[k].Load(); n != 1 {
			t.Errorf("key %d was new to %d callers, want 1", k, n)
		}
	}
}

// TestLeadershipHandedOverByNotification has the follower poll once an hour:
// it leads all the same when the leader stops, because the resignation
// notifies it.
func TestLeadershipHandedOverByNotification(t *testing.T) {
	url := pg.Database(t)
	a, b := openT(t, url, deaf(quiet())), openT(t, url, deaf(quiet()))
	l := newLeaders()
	aCtx, stopA := context.WithCancel(context.Background())
	bCtx, stopB := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopB()
	defer stopA()
	wg.Go(func() { a.Lead(aCtx, "telegram", l.run("a")) })
	l.waitFor(t, "a leads", func(now []string) bool { return slices.Equal(now, []string{"a"}) })
	wg.Go(func() { b.Lead(bCtx, "telegram", l.run("b")) })
	time.Sleep(100 * time.Millisecond) // b campaigns, and waits
	stopA()
	l.waitFor(t, "b leads after a stopped", func(now []string) bool { return slices.Equal(now, []string{"b"}) })
}

// TestListenerReconnects ends the replicas' listening sessions on the server:
// they listen again, and a waiter that polls once an hour is still woken.
func TestListenerReconnects(t *testing.T) {
	url := pg.Database(t)
	a, b := openT(t, url, deaf(quiet())), openT(t, url, deaf(quiet()))
	ctx := context.Background()
	listening := func() int {
		return queryInt(t, url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'")
	}
	eventually(t, "both replicas listen", func() bool { return listening() == 2 })
	if n := queryInt(t, url, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'"); n != 2 {
		t.Fatalf("ended %d listening sessions, want 2", n)
	}
	eventually(t, "both replicas listen again", func() bool { return listening() == 2 })
	unlock, err := a.LockChat(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		u, err := b.LockChat(ctx, "c")
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond) // b asks, and waits
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("b waiting for the lock a gave back: %v", err)
	}
}

// TestErrorsAndWriteErr cuts the store off the database: failed reads and
// writes are counted by operation, WriteErr says why writes fail, and a write
// that succeeds again clears it. A caller's own canceled context is not the
// store's failure.
func TestErrorsAndWriteErr(t *testing.T) {
	url := pg.Database(t)
	p := newProxy(t, pg.Addr())
	s := openT(t, fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&connect_timeout=5", p.addr(), dbName(url)), quiet())
	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	s.AppendTurn(canceled, "c", msg("c", 0))
	for op, n := range s.Errors() {
		if n != 0 {
			t.Errorf("Errors()[%s] = %d before any failure", op, n)
		}
	}
	p.cut()
	if err := s.AppendTurn(ctx, "c", msg("c", 0)); err == nil {
		t.Fatal("AppendTurn without a database succeeded")
	}
	if _, err := s.Recent(ctx, "c", 10); err == nil {
		t.Fatal("Recent without a database succeeded")
	}
	if err := s.WriteErr(); err == nil {
		t.Error("WriteErr() = nil after a failed write")
	}
	errs := s.Errors()
	if errs[store.OpAppendTurn] != 1 || errs[store.OpReadHistory] != 1 || errs[store.OpSeen] != 0 {
		t.Errorf("Errors() = %v, want append_turn and read_history at 1", errs)
	}
	p.restore()
	eventually(t, "a write succeeds again", func() bool { return s.SetCursor(ctx, "x", 1) == nil })
	if err := s.WriteErr(); err != nil {
		t.Errorf("WriteErr() = %v after a write succeeded", err)
	}
}

// TestCursorFencedByLeadership checks that a cursor written under a leader's
// context lands only while that leadership holds: once a leader is deposed
// (its lease deleted, another elected), its late write, even detached from
// its canceled context, is refused and the successor's offset stays.
func TestCursorFencedByLeadership(t *testing.T) {
	url := pg.Database(t)
	a, b := openT(t, url, quick()), openT(t, url, quick())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	aCtx := make(chan context.Context, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		a.Lead(ctx, "telegram", func(lead context.Context) error {
			select {
			case aCtx <- lead:
			default:
			}
			<-lead.Done()
			return nil
		})
	})
	lead := <-aCtx
	if err := a.SetCursor(lead, "telegram:offset", 100); err != nil {
		t.Fatalf("the leader's SetCursor: %v", err)
	}
	bLeads := make(chan context.Context, 1)
	wg.Go(func() {
		b.Lead(ctx, "telegram", func(lead context.Context) error { bLeads <- lead; <-lead.Done(); return nil })
	})
	sql(t, url, fmt.Sprintf("DELETE FROM replicas WHERE id = '%s'", a.ID())) // a's lease is taken from it
	var bLead context.Context
	select {
	case bLead = <-bLeads:
	case <-time.After(within):
		t.Fatal("b did not lead after a's lease went")
	}
	if err := b.SetCursor(bLead, "telegram:offset", 200); err != nil {
		t.Fatalf("the new leader's SetCursor: %v", err)
	}
	if err := a.SetCursor(context.WithoutCancel(lead), "telegram:offset", 150); !errors.Is(err, ErrNotLeader) {
		t.Errorf("the deposed leader's late SetCursor = %v, want ErrNotLeader", err)
	}
	if v, err := b.Cursor(ctx, "telegram:offset"); v != 200 || err != nil {
		t.Errorf("cursor = %d, %v; want the new leader's 200", v, err)
	}
	if err := a.SetCursor(ctx, "slack:thread", 7); err != nil {
		t.Errorf("SetCursor outside any leadership: %v", err)
	}
}
