package bench

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// fakesEnv makes TestFakesProcess serve the fakes instead of skipping.
const fakesEnv = "CHATBOT_BENCH_FAKES"

// holdFor is how long the fake model holds each answer after its first part:
// the time the memory test has to start every stream and measure.
const holdFor = 150 * time.Second

// Users of the memory test: the warm-up ones, then the measured ones.
const (
	warmUsers = 20
	userBase  = 100000
)

// TestLoadMemoryPerStream measures what one reply in flight costs the bot: N
// private chats (1,000; CHATBOT_LOAD_STREAMS changes it) each show the first
// part of an answer (about 900 characters) while the model holds the rest back
// for 150 s (the first texts of 1,000 streams take 42 s or more at the
// adapter's 24 sends a second). The fakes run in a child process, so that this
// process holds the bot alone: heap, stacks and goroutines are read (after a full GC) with the bot idle,
// with N streams in flight, and idle again after they end. The bot reaches the
// model over HTTPS and HTTP/2, as in production (CHATBOT_LOAD_HTTP1=1: plain
// HTTP/1.1).
func TestLoadMemoryPerStream(t *testing.T) {
	needLoad(t)
	n := envInt(t, "CHATBOT_LOAD_STREAMS", 1000)
	if os.Getenv(profileEnv) != "" {
		runtime.MemProfileRate = 64 // fine enough to see each stream's small objects
	}
	leaks := goleak.IgnoreCurrent()
	warmTokenizer(t)
	f := startFakesProcess(t)
	ids := make([]int64, warmUsers+n)
	for i := range ids {
		ids[i] = int64(userBase + i)
	}
	model := f.modelTransport(t)
	bot := startTelegramBot(t, f.Telegram, f.Token, f.OpenAI, model, ids, warmUsers+n)
	f.inject(t, 0, warmUsers, "warm up")
	waitFor(t, "the warm-up turns", time.Minute, func() bool { return bot.handler.count() == warmUsers })

	idle := readMemory()
	writeProfiles(t, "idle-")
	f.inject(t, warmUsers, warmUsers+n, "question")
	shown := 0
	t.Cleanup(func() {
		if shown < n {
			t.Logf("%d of %d streams showed their first text", shown, n)
			bot.logs.report(t)
		}
	})
	waitFor(t, "the first text of every stream", holdFor*3/4, func() bool {
		shown = f.shown(t, warmUsers, warmUsers+n)
		return shown == n
	})
	active := readMemory()
	writeProfiles(t, "")
	if active.goroutines < idle.goroutines+n {
		t.Fatalf("%d goroutines with %d streams in flight: streams ended before the reading", active.goroutines, n)
	}
	if !bot.handler.wait(holdFor + time.Minute) {
		t.Fatal("the streams did not end")
	}
	after := readMemory()

	logMemory(t, n, idle, active, after)
	bot.logs.report(t)
	bot.stop()
	f.close(t)
	model.CloseIdleConnections()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	goleak.VerifyNone(t, leaks)
}

// profileEnv names a folder where the memory test writes heap and goroutine
// profiles of the bot with its streams in flight (heap.pprof, goroutine.pprof,
// goroutine.txt with every goroutine's stack, and heap.dump, runtime/debug's
// heap dump, whose objects' addresses show the spans they keep in use), and
// of the idle bot before (idle-heap.pprof…):
// go tool pprof -diff_base idle-heap.pprof heap.pprof.
const profileEnv = "CHATBOT_LOAD_PROFILE"

// writeProfiles writes the profiles into $CHATBOT_LOAD_PROFILE, if set, their
// names starting with prefix.
func writeProfiles(t *testing.T, prefix string) {
	t.Helper()
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return
	}
	runtime.GC() // the heap profile shows the objects live at the last GC
	for _, p := range []struct {
		name, file string
		debug      int
	}{{"heap", "heap.pprof", 0}, {"goroutine", "goroutine.pprof", 0}, {"goroutine", "goroutine.txt", 1}} {
		f, err := os.Create(filepath.Join(dir, prefix+p.file))
		if err != nil {
			t.Fatal(err)
		}
		err = pprof.Lookup(p.name).WriteTo(f, p.debug)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(filepath.Join(dir, prefix+"heap.dump"))
	if err != nil {
		t.Fatal(err)
	}
	debug.WriteHeapDump(f.Fd())
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("profiles written to %s", dir)
}

// memory is one reading after a full GC.
type memory struct {
	heap, live, stack, rss uint64
	goroutines             int
}

func readMemory() memory {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memory{heap: ms.HeapInuse, live: ms.HeapAlloc, stack: ms.StackInuse, rss: procStatus("VmRSS"),
		goroutines: runtime.NumGoroutine()}
}

// logMemory reports the readings and the cost per stream as table rows.
func logMemory(t *testing.T, n int, idle, active, after memory) {
	t.Helper()
	per := func(a, b uint64) string {
		return fmt.Sprintf("%.1f KiB", (float64(a)-float64(b))/float64(n)/1024)
	}
	t.Logf("| | bot idle | %d streams in flight | idle again | per stream |", n)
	t.Logf("|---|---:|---:|---:|---:|")
	t.Logf("| HeapInuse | %s | %s | %s | %s |", mib(idle.heap), mib(active.heap), mib(after.heap), per(active.heap, idle.heap))
	t.Logf("| HeapAlloc (live objects) | %s | %s | %s | %s |", mib(idle.live), mib(active.live), mib(after.live), per(active.live, idle.live))
	t.Logf("| StackInuse | %s | %s | %s | %s |", mib(idle.stack), mib(active.stack), mib(after.stack), per(active.stack, idle.stack))
	t.Logf("| heap + stacks | %s | %s | %s | %s |", mib(idle.heap+idle.stack), mib(active.heap+active.stack),
		mib(after.heap+after.stack), per(active.heap+active.stack, idle.heap+idle.stack))
	t.Logf("| RSS (VmRSS) | %s | %s | %s | %s |", mib(idle.rss), mib(active.rss), mib(after.rss), per(active.rss, idle.rss))
	t.Logf("| goroutines | %d | %d | %d | %.1f |", idle.goroutines, active.goroutines, after.goroutines,
		float64(active.goroutines-idle.goroutines)/float64(n))
}

// waitFor polls cond every 50 ms until it holds, failing the test after limit.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// count returns how many chats' turns have ended.
func (c *countingHandler) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ended)
}

// http1Env makes the memory test reach the fake model over HTTP/1.1 without
// TLS; by default it is HTTPS and HTTP/2, as OpenAI and the Worker serve it.
const http1Env = "CHATBOT_LOAD_HTTP1"

// fakes are the fake Telegram and OpenAI served by a child process, with a
// control endpoint to inject messages and read what chats show.
type fakes struct {
	Telegram, Token, OpenAI, Control string
	// OpenAICert is the fake model's TLS certificate (DER); none over HTTP/1.1.
	OpenAICert []byte

	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startFakesProcess runs this test binary again as TestFakesProcess and reads
// the fakes' addresses from its first line of output.
func startFakesProcess(t *testing.T) *fakes {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFakesProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), fakesEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &fakes{cmd: cmd, stdin: stdin}
	t.Cleanup(func() { f.close(t) })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err == nil {
		err = json.Unmarshal([]byte(line), f)
	}
	if err != nil {
		t.Fatalf("fakes process: %v (%q)", err, line)
	}
	go io.Copy(io.Discard, stdout) // the child's "PASS"
	return f
}

// modelTransport reaches the fake model: over HTTP/2, trusting its
// certificate, unless it serves plain HTTP/1.1.
func (f *fakes) modelTransport(t *testing.T) *http.Transport {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if f.OpenAICert == nil {
		return tr
	}
	cert, err := x509.ParseCertificate(f.OpenAICert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	tr.ForceAttemptHTTP2 = true
	return tr
}

// close ends the child process (closing its stdin) and waits for it.
func (f *fakes) close(t *testing.T) {
	if f.stdin == nil {
		return
	}
	f.stdin.Close()
	f.stdin = nil
	done := make(chan error, 1)
	go func() { done <- f.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("fakes process: %v", err)
		}
	case <-time.After(2 * time.Minute):
		f.cmd.Process.Kill()
		<-done
		t.Errorf("fakes process did not end; killed")
	}
}

// inject makes users [from, to) each send "text i".
func (f *fakes) inject(t *testing.T, from, to int, text string) {
	t.Helper()
	f.get(t, fmt.Sprintf("/inject?from=%d&to=%d&text=%s", from, to, strings.ReplaceAll(text, " ", "+")))
}

// shown counts the chats of users [from, to) that show a message of the bot.
func (f *fakes) shown(t *testing.T, from, to int) int {
	t.Helper()
	n, _ := strconv.Atoi(f.get(t, fmt.Sprintf("/shown?from=%d&to=%d", from, to)))
	return n
}

func (f *fakes) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(f.Control + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// TestFakesProcess is not a test: started by TestLoadMemoryPerStream with
// CHATBOT_BENCH_FAKES=1, it serves the fakes (no flood limits) until its stdin
// closes. The model answers "warm up" at once and holds other answers after
// their first part.
func TestFakesProcess(t *testing.T) {
	if os.Getenv(fakesEnv) == "" {
		t.Skip("the child process of TestLoadMemoryPerStream")
	}
	tg := telegramtest.NewServer(telegramtest.Options{})
	newModel := openaitest.NewTLSServer
	if os.Getenv(http1Env) != "" {
		newModel = openaitest.NewServer
	}
	ai := newModel()
	held := strings.Join(answer(0, 150), "")
	ai.SetHandler(func(r openaitest.Request) openaitest.Reply {
		if strings.Contains(r.LastUser(), "warm up") {
			return openaitest.Text("Warm-up answer.")
		}
		return openaitest.Reply{Tokens: []string{held, " The end."}, TokenDelay: holdFor}
	})
	control := httptest.NewServer(controlHandler(tg))
	f := fakes{Telegram: tg.URL, Token: tg.Token, OpenAI: ai.BaseURL(), Control: control.URL}
	if ai.TLS != nil {
		f.OpenAICert = ai.Certificate().Raw
	}
	json.NewEncoder(os.Stdout).Encode(f)
	io.Copy(io.Discard, os.Stdin)
	control.Close()
	tg.Close()
	ai.Close()
}

// controlHandler serves /inject and /shown for the parent process.
func controlHandler(tg *telegramtest.Server) http.Handler {
	user := func(i int) telegramtest.User {
		return telegramtest.User{ID: int64(userBase + i), FirstName: "User" + strconv.Itoa(i)}
	}
	bounds := func(r *http.Request) (int, int) {
		from, _ := strconv.Atoi(r.FormValue("from"))
		to, _ := strconv.Atoi(r.FormValue("to"))
		return from, to
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/inject", func(w http.ResponseWriter, r *http.Request) {
		from, to := bounds(r)
		for i := from; i < to; i++ {
			tg.Inject(telegramtest.Incoming{From: user(i), Text: fmt.Sprintf("%s %d", r.FormValue("text"), i)})
		}
	})
	mux.HandleFunc("/shown", func(w http.ResponseWriter, r *http.Request) {
		from, to := bounds(r)
		n := 0
		for i := from; i < to; i++ {
			if len(tg.BotMessages(user(i).ID)) > 0 {
				n++
			}
		}
		fmt.Fprint(w, n)
	})
	return mux
}
