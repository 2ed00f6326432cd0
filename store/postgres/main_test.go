package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/store/postgres/pgtest"
)

var pg = pgtest.New()

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

// quiet is the options of a replica in tests: no logs, and the production
// lease, so that a busy machine cannot make a live replica look dead.
func quiet() Options { return Options{Logger: slog.New(slog.DiscardHandler)} }

// quick is the options of a replica in failover tests: a 5 s lease renewed
// every second (trusted for 4 s), polling every 200 ms.
func quick() Options {
	o := quiet()
	o.LeaseTTL, o.RenewEvery, o.PollEvery = 5*time.Second, time.Second, 200*time.Millisecond
	return o
}

// deaf is opt polling once an hour: only a notification wakes a waiter.
func deaf(opt Options) Options {
	opt.PollEvery = time.Hour
	return opt
}

// openT opens a Store at url, closed when the test ends.
func openT(t testing.TB, url string, opt Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sql runs statements on url, failing the test on error.
func sql(t testing.TB, url string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// queryInt runs a query returning one integer.
func queryInt(t testing.TB, url, q string, args ...any) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// eventually waits (generously) until cond holds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// within is how long a test waits for what should happen: generous, since
// tests never assert how fast something happened, only that it did.
const within = 60 * time.Second

func msg(chat conversation.ChatID, i int) conversation.Message {
	role := conversation.RoleUser
	if i%2 == 1 {
		role = conversation.RoleAssistant
	}
	return conversation.Message{Role: role, Content: fmt.Sprintf("%s #%d", chat, i)}
}

// proxy forwards TCP connections to a PostgreSQL server and can freeze them
// all: bytes stop flowing both ways, connections stay open, as when a network
// partitions a replica from its database.
type proxy struct {
	l      net.Listener
	target string

	mu     sync.Mutex
	frozen chan struct{} // non-nil while frozen; closed to thaw
	conns  []net.Conn
	down   bool // refusing connections: the database is unreachable
}

func newProxy(t testing.TB, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target}
	t.Cleanup(func() { p.thaw(); l.Close() })
	go p.serve()
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		if !down {
			p.conns = append(p.conns, c)
		}
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		go func() {
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, u)
			p.mu.Unlock()
			go p.pipe(u, c)
			p.pipe(c, u)
		}()
	}
}

// pipe copies src to dst, holding each chunk while frozen.
func (p *proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.wait()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) wait() {
	p.mu.Lock()
	f := p.frozen
	p.mu.Unlock()
	if f != nil {
		<-f
	}
}

func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen == nil {
		p.frozen = make(chan struct{})
	}
}

func (p *proxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen != nil {
		close(p.frozen)
		p.frozen = nil
	}
}

// cut closes every connection and refuses new ones until restore: the
// database is unreachable.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}
