package bench

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/store"
)

// loadEnv turns the full load tests on.
const loadEnv = "CHATBOT_LOAD"

// needLoad skips a full load test unless loadEnv is set.
func needLoad(t *testing.T) {
	t.Helper()
	if os.Getenv(loadEnv) == "" {
		t.Skipf("a load test of minutes: run it with %s=1 go test ./bench -run TestLoad -v -timeout 30m", loadEnv)
	}
}

// envInt reads a whole number from the environment, def when unset.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

// peaks are the highest values the sampler saw.
type peaks struct {
	HeapInuse  uint64 // runtime.MemStats.HeapInuse
	Sys        uint64 // runtime.MemStats.Sys
	StackInuse uint64
	Goroutines int
	// TimeWait counts, per fake server, this process's sockets in TIME_WAIT toward
	// it: the connections the bot closed within the last minute.
	TimeWait map[string]int
	VmHWM    uint64 // peak resident set, bytes, since the sampler started
}

// sampler records peak memory and goroutines in the background.
type sampler struct {
	servers map[string]string // name → server URL, for TIME_WAIT counts
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	p       peaks
}

// startSampler resets the process's peak RSS and samples every period until
// Stop, and TIME_WAIT sockets toward servers (name → URL) every 10 periods.
func startSampler(period time.Duration, servers map[string]string) *sampler {
	resetPeakRSS()
	s := &sampler{servers: servers, stop: make(chan struct{}), done: make(chan struct{}),
		p: peaks{TimeWait: map[string]int{}}}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for i := 0; ; i++ {
			s.sample(i%10 == 0)
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// sample reads memory and goroutines, and the TIME_WAIT sockets if asked.
func (s *sampler) sample(sockets bool) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	g := runtime.NumGoroutine()
	var tw map[string]int
	if sockets {
		tw = timeWaitTo(s.servers)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, n := range tw {
		s.p.TimeWait[name] = max(s.p.TimeWait[name], n)
	}
	s.p.HeapInuse = max(s.p.HeapInuse, ms.HeapInuse)
	s.p.Sys = max(s.p.Sys, ms.Sys)
	s.p.StackInuse = max(s.p.StackInuse, ms.StackInuse)
	s.p.Goroutines = max(s.p.Goroutines, g)
}

// Stop ends the sampling and returns the peaks.
func (s *sampler) Stop() peaks {
	close(s.stop)
	<-s.done
	s.sample(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.p
	p.TimeWait = maps.Clone(s.p.TimeWait)
	p.VmHWM = procStatus("VmHWM")
	return p
}

// resetPeakRSS makes the kernel start VmHWM again from the current RSS
// (Linux: writing 5 to /proc/self/clear_refs); elsewhere it does nothing.
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// procStatus returns a "kB" field of /proc/self/status in bytes, 0 if unknown.
func procStatus(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		return kb << 10
	}
	return 0
}

// timeWaitTo counts the TCP sockets in TIME_WAIT (state 06 of /proc/net/tcp)
// whose remote port is a server's: on loopback, the connections to it that this
// side closed in the last minute.
func timeWaitTo(servers map[string]string) map[string]int {
	byPort := map[string]string{}
	for name, raw := range servers {
		if u, err := url.Parse(raw); err == nil {
			port, _ := strconv.Atoi(u.Port())
			byPort[fmt.Sprintf("%04X", port)] = name
		}
	}
	out := map[string]int{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "06" {
				continue
			}
			if i := strings.LastIndexByte(f[2], ':'); i >= 0 && byPort[f[2][i+1:]] != "" {
				out[byPort[f[2][i+1:]]]++
			}
		}
	}
	return out
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapAfterGC returns HeapInuse and StackInuse after a full collection.
func heapAfterGC() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse
}

// failIncomplete fails the test when a reply was not shown whole.
func failIncomplete(t *testing.T, c replyCheck, n int) {
	t.Helper()
	for _, e := range c.examples {
		t.Error(e)
	}
	if c.complete != n {
		t.Errorf("%d of %d replies were not shown whole (%d partial or wrong, %d with no message)",
			n-c.complete, n, c.wrong, c.missing)
	}
}

// since is end − start, or the time since start when end is unknown.
func since(start, end time.Time) time.Duration {
	if end.IsZero() {
		return time.Since(start)
	}
	return end.Sub(start)
}

// mib formats bytes in MiB.
func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// logPeaks reports the peaks as table rows.
func logPeaks(t *testing.T, p peaks) {
	t.Helper()
	t.Logf("| peak HeapInuse | %s |", mib(p.HeapInuse))
	t.Logf("| peak Sys (runtime.MemStats) | %s |", mib(p.Sys))
	t.Logf("| peak StackInuse | %s |", mib(p.StackInuse))
	t.Logf("| peak RSS (VmHWM) | %s |", mib(p.VmHWM))
	t.Logf("| peak goroutines | %d |", p.Goroutines)
	for _, name := range slices.Sorted(maps.Keys(p.TimeWait)) {
		t.Logf("| peak TIME_WAIT sockets toward the fake %s (connections closed in the last minute) | %d |", name, p.TimeWait[name])
	}
}

// quantile returns the q-quantile (0..1) of ds, which it sorts.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

// spread formats the median, 90th percentile and maximum of ds.
func spread(ds []time.Duration) string {
	r := func(d time.Duration) time.Duration {
		if d < time.Second {
			return d.Round(100 * time.Microsecond)
		}
		return d.Round(10 * time.Millisecond)
	}
	return fmt.Sprintf("%v / %v / %v", r(quantile(ds, 0.5)), r(quantile(ds, 0.9)), r(quantile(ds, 1)))
}

// logCounter is a slog handler that counts the warnings and errors by message,
// keeping the first "err" of each, and drops everything else.
type logCounter struct {
	mu     sync.Mutex
	counts map[string]int
	first  map[string]string
}

func newLogCounter() *logCounter {
	return &logCounter{counts: map[string]int{}, first: map[string]string{}}
}

// Enabled implements slog.Handler.
func (c *logCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

// Handle implements slog.Handler.
func (c *logCounter) Handle(_ context.Context, r slog.Record) error {
	key := r.Level.String() + " " + r.Message
	var errText string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			errText = a.Value.String()
			return false
		}
		return true
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts[key] == 0 {
		c.first[key] = errText
	}
	c.counts[key]++
	return nil
}

// WithAttrs implements slog.Handler.
func (c *logCounter) WithAttrs([]slog.Attr) slog.Handler { return c }

// WithGroup implements slog.Handler.
func (c *logCounter) WithGroup(string) slog.Handler { return c }

// report logs the counts, most frequent first.
func (c *logCounter) report(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.counts))
	for k := range c.counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return c.counts[b] - c.counts[a] })
	for _, k := range keys {
		t.Logf("log: %d × %s (first err: %.200s)", c.counts[k], k, c.first[k])
	}
}

// countStored counts the chats whose turn (the question and the answer) is in
// the store's history.
func countStored(t *testing.T, db *store.DB, chats []conversation.ChatID) int {
	t.Helper()
	n := 0
	for _, c := range chats {
		msgs, err := db.Recent(context.Background(), c, 2)
		if err != nil {
			t.Errorf("read history of %s: %v", c, err)
			continue
		}
		if len(msgs) == 2 {
			n++
		}
	}
	return n
}

// handler is what the adapters call: conversation.Engine.
type handler interface {
	Handle(ctx context.Context, req conversation.Request) error
	HelpText(ctx context.Context, chat conversation.ChatID) string
}

// countingHandler passes requests to the engine and records when each chat's
// Handle returned and with what error (a final text that could not be delivered
// comes back from Handle).
type countingHandler struct {
	handler
	want int

	mu     sync.Mutex
	ended  map[conversation.ChatID]time.Time
	errs   map[string]int
	allEnd chan struct{}
}

func newCountingHandler(h handler, want int) *countingHandler {
	return &countingHandler{handler: h, want: want, ended: map[conversation.ChatID]time.Time{},
		errs: map[string]int{}, allEnd: make(chan struct{})}
}

// Handle implements the adapters' handler.
func (c *countingHandler) Handle(ctx context.Context, req conversation.Request) error {
	err := c.handler.Handle(ctx, req)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended[req.Chat] = time.Now()
	if err != nil {
		c.errs[err.Error()]++
	}
	if len(c.ended) == c.want {
		close(c.allEnd)
	}
	return err
}

// wait waits until want chats have ended or limit passed; it reports whether
// they all ended.
func (c *countingHandler) wait(limit time.Duration) bool {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-c.allEnd:
		return true
	case <-t.C:
		return false
	}
}

// errors returns the errors Handle returned, with their counts.
func (c *countingHandler) errors() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.errs)
}

// running is an adapter serving on an engine and a store, stopped as
// cmd/chatbot stops it.
type running struct {
	t       *testing.T
	db      *store.DB
	engine  *conversation.Engine
	handler *countingHandler
	logs    *logCounter
	cancel  context.CancelFunc
	done    chan error
}

// run starts the adapter's Run and stops it when the test ends.
func (r *running) run(serve func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- serve(ctx) }()
	r.t.Cleanup(r.stopBot)
}

// stopBot stops taking messages, lets the engine finish the turns, waits for
// the adapter and closes the store.
func (r *running) stopBot() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.engine.Shutdown(ctx); err != nil {
		r.t.Errorf("engine shutdown: %v", err)
	}
	if err := <-r.done; err != nil {
		r.t.Errorf("adapter: %v", err)
	}
	if err := r.db.Close(); err != nil {
		r.t.Errorf("close store: %v", err)
	}
}
