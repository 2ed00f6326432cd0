package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/conversation"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store"
)

// crashKey is the model key of the process tests; no log line may hold it.
const crashKey = "sk-crash-test-SECRET-0123456789"

// processWait bounds every wait of the process tests: generous, for a small,
// noisy CI machine.
const processWait = 30 * time.Second

// TestServeProcess builds the real binary and runs `chatbot serve` as a process
// of its own against the fake Telegram and the fake model on loopback.
func TestServeProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it as a process; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Skip("needs POSIX signals")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	bin := filepath.Join(t.TempDir(), "chatbot")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Run("SIGKILL mid-reply", func(t *testing.T) { t.Parallel(); testKilledMidReply(t, bin) })
	t.Run("SIGTERM lets replies finish", func(t *testing.T) { t.Parallel(); testGracefulStop(t, bin) })
	t.Run("a second signal exits at once", func(t *testing.T) { t.Parallel(); testSecondSignal(t, bin) })
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// botProcess is one run of the binary.
type botProcess struct {
	cmd    *exec.Cmd
	logs   *lockedBuffer // stdout and stderr
	exited chan struct{} // closed when it has exited
}

// startBot runs `chatbot serve -config cfg` with env added to the environment;
// the test's end kills it if it runs.
func startBot(t *testing.T, bin, cfg string, env ...string) *botProcess {
	t.Helper()
	p := &botProcess{cmd: exec.Command(bin, "serve", "-config", cfg), logs: &lockedBuffer{}, exited: make(chan struct{})}
	if len(env) > 0 {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("output of process %d:\n%s", p.cmd.Process.Pid, p.logs.String())
		}
	})
	return p
}

// signal sends sig to the process.
func (p *botProcess) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// waitExit waits up to d for the process to exit and reports whether it did.
func (p *botProcess) waitExit(d time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// checkLogs fails the test if the output shows a panic or a secret.
func (p *botProcess) checkLogs(t *testing.T, secrets ...string) {
	t.Helper()
	out := p.logs.String()
	for _, bad := range append(secrets, "panic:", "goroutine ", "DATA RACE") {
		if strings.Contains(out, bad) {
			t.Errorf("the output of process %d holds %q", p.cmd.Process.Pid, bad)
		}
	}
}

// botConfig writes the config of a process test and returns its path and the
// store's path.
func botConfig(t *testing.T, tg *telegramtest.Server, ai *openaitest.Server, users []telegramtest.User) (cfg, db string) {
	t.Helper()
	dir := t.TempDir()
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = fmt.Sprint(u.ID)
	}
	db = filepath.Join(dir, "data", "chatbot.db")
	text := fmt.Sprintf("openai:\n  base_url: %s\n  api_key: %s\n  model: gpt-5.4-mini\n  max_concurrent_requests: 64\n"+
		"store:\n  path: %s\ntelegram:\n  token: %q\n  api_url: %s\n  allowed_user_ids: [%s]\n  edit_interval: 200ms\n"+
		"  drafts: false\n"+ // replies grow in messages, which show what a kill cut

		"http:\n  listen: %s\nlog:\n  format: json\n",
		ai.BaseURL(), crashKey, db, tg.Token, tg.URL, strings.Join(ids, ", "), freeAddr(t))
	cfg = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, db
}

// healthURL is the /healthz of the config at path.
func healthURL(t *testing.T, path string) string {
	t.Helper()
	cfg, err := (&Main{configPath: path, LookupEnv: env(nil)}).loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + cfg.HTTP.Listen + "/healthz"
}

// answer is the fake model's whole reply to text: long, in many tokens.
func answer(text string, tokens int) string {
	var b strings.Builder
	b.WriteString("Answer to " + text + ":")
	for i := range tokens {
		fmt.Fprintf(&b, " tok%03d", i)
	}
	return b.String()
}

// crashUsers are n allowed users, each in a private chat with the bot.
func crashUsers(n int) []telegramtest.User {
	users := make([]telegramtest.User, n)
	for i := range users {
		users[i] = telegramtest.User{ID: int64(7001 + i), FirstName: fmt.Sprintf("User%d", i)}
	}
	return users
}

// waitUntil waits until cond holds, up to processWait.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(processWait); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// callsFor returns the model calls whose last user message is text.
func callsFor(ai *openaitest.Server, text string) []openaitest.Request {
	var out []openaitest.Request
	for _, r := range ai.Requests() {
		if r.LastUser() == text {
			out = append(out, r)
		}
	}
	return out
}

// testKilledMidReply kills the bot while 20 replies stream, starts it again
// and checks the store, the chats and what the model is sent.
func testKilledMidReply(t *testing.T, bin string) {
	tg := telegramtest.NewServer(telegramtest.Options{})
	defer tg.Close()
	ai := openaitest.NewServer()
	defer ai.Close()
	ai.APIKey = crashKey
	ai.SetHandler(func(r openaitest.Request) openaitest.Reply {
		reply := openaitest.Reply{Tokens: openaitest.Tokenize(answer(r.LastUser(), 200))}
		if strings.HasPrefix(r.LastUser(), "second") {
			// Twenty seconds: the kill comes first, however slowly a loaded
			// machine shows all 20 answers streaming (six seconds were not
			// always enough on a fresh-clone CI run).
			reply.TokenDelay = 100 * time.Millisecond
		}
		return reply
	})
	users := crashUsers(20)
	cfg, dbPath := botConfig(t, tg, ai, users)
	say := func(round string) {
		for i, u := range users {
			tg.Inject(telegramtest.Incoming{From: u, Text: fmt.Sprintf("%s %d", round, i)})
		}
	}
	shows := func(u telegramtest.User, n int, text string) bool {
		msgs := tg.BotMessages(u.ID)
		return len(msgs) >= n && msgs[n-1].Last().Text == text
	}

	first := startBot(t, bin, cfg)
	say("first")
	for i, u := range users {
		waitUntil(t, "the first answers", func() bool { return shows(u, 1, answer(fmt.Sprintf("first %d", i), 200)) })
	}
	say("second")
	for i, u := range users {
		waitUntil(t, "the second answers to stream", func() bool {
			msgs := tg.BotMessages(u.ID)
			return len(callsFor(ai, fmt.Sprintf("second %d", i))) == 1 && len(msgs) == 2 && len(msgs[1].Versions) >= 2
		})
	}
	first.signal(t, syscall.SIGKILL)
	if !first.waitExit(processWait) {
		t.Fatal("the process outlived SIGKILL")
	}
	streamed := map[int64]int{} // versions of each second answer when the process died
	for _, u := range users {
		streamed[u.ID] = len(tg.BotMessages(u.ID)[1].Versions)
	}

	second := startBot(t, bin, cfg)
	say("third")
	for i, u := range users {
		want := answer(fmt.Sprintf("third %d", i), 200)
		waitUntil(t, "the third answers", func() bool {
			msgs := tg.BotMessages(u.ID)
			return len(msgs) >= 3 && msgs[len(msgs)-1].Last().Text == want
		})
	}
	waitUntil(t, "/healthz", func() bool { code, _ := httpGet(healthURL(t, cfg)); return code == 200 })
	second.signal(t, syscall.SIGTERM)
	if !second.waitExit(processWait) || second.cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("the second process did not stop cleanly: %v", second.cmd.ProcessState)
	}
	first.checkLogs(t, crashKey, tg.Token)
	second.checkLogs(t, crashKey, tg.Token)

	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatalf("the store does not open after the crash: %v", err)
	}
	defer db.Close()
	cut := 0
	for i, u := range users {
		hist, err := db.Recent(context.Background(), conversation.ChatID(fmt.Sprintf("telegram:%d", u.ID)), 1000)
		if err != nil {
			t.Fatal(err)
		}
		secondKept := checkHistory(t, u, i, hist)
		if !secondKept {
			cut++
		}
		checkChat(t, tg, u, i, secondKept, streamed[u.ID])
		if n := len(callsFor(ai, fmt.Sprintf("second %d", i))); n != 1 {
			t.Errorf("chat %d: the model was asked the second message %d times, want once", u.ID, n)
		}
		// The model saw every kept turn before the third message, and nothing else.
		calls := callsFor(ai, fmt.Sprintf("third %d", i))
		if len(calls) != 1 {
			t.Errorf("chat %d: %d model calls for the third message, want 1", u.ID, len(calls))
			continue
		}
		var want []string
		for _, m := range hist[:len(hist)-2] {
			want = append(want, string(m.Role)+": "+m.Content)
		}
		want = append(want, "user: "+fmt.Sprintf("third %d", i))
		var got []string
		for _, m := range calls[0].Messages {
			got = append(got, m.Role+": "+m.Content)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("chat %d: the third call sent %d messages, want the %d kept before it and the new one", u.ID, len(got), len(want))
		}
	}
	if cut == 0 {
		t.Error("the kill cut no reply: the test proves nothing")
	}
}

// checkHistory checks a chat's stored messages after the crash: whole turns,
// each with the model's whole answer, the first and the third, and the second
// only if it was finished. It reports whether the second turn was kept.
func checkHistory(t *testing.T, u telegramtest.User, i int, hist []conversation.Message) bool {
	t.Helper()
	var turns []string
	for k := 0; k+1 < len(hist); k += 2 {
		q, a := hist[k], hist[k+1]
		if q.Role != conversation.RoleUser || a.Role != conversation.RoleAssistant {
			t.Errorf("chat %d: messages %d and %d are %s and %s, want a user's and an answer", u.ID, k, k+1, q.Role, a.Role)
			return false
		}
		if a.Content != answer(q.Content, 200) {
			t.Errorf("chat %d: the answer to %q is stored partly (%d characters of %d)", u.ID, q.Content, len(a.Content), len(answer(q.Content, 200)))
		}
		turns = append(turns, q.Content)
	}
	one, two, three := fmt.Sprintf("first %d", i), fmt.Sprintf("second %d", i), fmt.Sprintf("third %d", i)
	got := strings.Join(turns, "|")
	if len(hist)%2 != 0 || got != one+"|"+three && got != one+"|"+two+"|"+three {
		t.Errorf("chat %d: %d messages stored for the turns %q, want whole turns %q, %q (if finished) and %q", u.ID, len(hist), turns, one, two, three)
	}
	return strings.Contains(got, two)
}

// checkChat checks what the chat shows after the crash: the first answer, the
// second as it was last shown (never answered again), a note that it was cut
// off (only when the chat did not get its whole text: a turn is stored just
// before its final text goes out, so a kept turn may still have been cut on
// screen), and the third answer.
func checkChat(t *testing.T, tg *telegramtest.Server, u telegramtest.User, i int, secondKept bool, versions int) {
	t.Helper()
	msgs := tg.BotMessages(u.ID)
	shownWhole := len(msgs) > 1 && msgs[1].Last().Text == answer(fmt.Sprintf("second %d", i), 200)
	if shownWhole && !secondKept {
		t.Errorf("chat %d: the second answer was shown whole but not stored", u.ID)
	}
	want := 3
	if !shownWhole {
		want = 4
	}
	if len(msgs) != want {
		var texts []string
		for _, m := range msgs {
			texts = append(texts, m.Last().Text)
		}
		t.Errorf("chat %d shows %d bot messages, want %d: %q", u.ID, len(msgs), want, texts)
		return
	}
	cutShown := msgs[1].Last().Text
	if full := answer(fmt.Sprintf("second %d", i), 200); !strings.HasPrefix(full, cutShown) {
		t.Errorf("chat %d: the cut answer shows %q, not a part of the answer", u.ID, cutShown)
	}
	if n := len(msgs[1].Versions); n != versions {
		t.Errorf("chat %d: the cut answer was edited %d times after the restart", u.ID, n-versions)
	}
	if !shownWhole && msgs[2].Last().Text != conversation.InterruptedText {
		t.Errorf("chat %d: %q after the cut answer, want the note that it was cut off", u.ID, msgs[2].Last().Text)
	}
}

// testGracefulStop sends SIGTERM while replies stream: they finish, whole and
// stored, and the process exits 0 within the grace period.
func testGracefulStop(t *testing.T, bin string) {
	tg := telegramtest.NewServer(telegramtest.Options{})
	defer tg.Close()
	ai := openaitest.NewServer()
	defer ai.Close()
	ai.APIKey = crashKey
	ai.SetHandler(func(r openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Tokens: openaitest.Tokenize(answer(r.LastUser(), 100)), TokenDelay: 30 * time.Millisecond}
	})
	users := crashUsers(5)
	cfg, dbPath := botConfig(t, tg, ai, users)
	p := startBot(t, bin, cfg)
	for i, u := range users {
		tg.Inject(telegramtest.Incoming{From: u, Text: fmt.Sprintf("question %d", i)})
	}
	for _, u := range users {
		waitUntil(t, "the answers to stream", func() bool {
			msgs := tg.BotMessages(u.ID)
			return len(msgs) == 1 && len(msgs[0].Versions) >= 2
		})
	}
	p.signal(t, syscall.SIGTERM)
	if !p.waitExit(shutdownGrace + processWait) {
		t.Fatal("the process did not exit after SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	p.checkLogs(t, crashKey, tg.Token)
	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i, u := range users {
		want := answer(fmt.Sprintf("question %d", i), 100)
		if msgs := tg.BotMessages(u.ID); len(msgs) != 1 || msgs[0].Last().Text != want {
			t.Errorf("chat %d does not show the whole answer after SIGTERM", u.ID)
		}
		hist, err := db.Recent(context.Background(), conversation.ChatID(fmt.Sprintf("telegram:%d", u.ID)), 10)
		if err != nil || len(hist) != 2 || hist[1].Content != want {
			t.Errorf("chat %d: %d messages stored (%v), want the whole turn", u.ID, len(hist), err)
		}
	}
	if pending, err := db.TakePending(context.Background()); err != nil || len(pending) != 0 {
		t.Errorf("replies still marked as being written after a clean stop: %v %v", pending, err)
	}
}

// testSecondSignal sends SIGTERM while a reply streams that would outlast the
// grace period, then SIGINT right after it (as `kill -INT $P; kill -INT $P`
// does): the process stops gracefully and then exits at once.
func testSecondSignal(t *testing.T, bin string) {
	tg := telegramtest.NewServer(telegramtest.Options{})
	defer tg.Close()
	ai := openaitest.NewServer()
	defer ai.Close()
	ai.APIKey = crashKey
	ai.SetHandler(func(r openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Tokens: openaitest.Tokenize(answer(r.LastUser(), 1000)), TokenDelay: 100 * time.Millisecond}
	})
	users := crashUsers(1)
	cfg, _ := botConfig(t, tg, ai, users)
	p := startBot(t, bin, cfg)
	tg.Inject(telegramtest.Incoming{From: users[0], Text: "a long one"})
	waitUntil(t, "the answer to stream", func() bool {
		msgs := tg.BotMessages(users[0].ID)
		return len(msgs) == 1 && len(msgs[0].Versions) >= 2
	})
	sent := time.Now()
	p.signal(t, syscall.SIGTERM)
	p.signal(t, syscall.SIGINT)
	// The reply would take 100 s and the grace period is 20 s: exiting within
	// 10 s can only be the second signal's doing.
	if !p.waitExit(10 * time.Second) {
		t.Fatalf("still running %s after the second signal", time.Since(sent).Round(time.Millisecond))
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit code %d after a second signal, want 130", code)
	}
	if !strings.Contains(p.logs.String(), "second signal, exiting now") {
		t.Errorf("the process did not say it exits at the second signal")
	}
	p.checkLogs(t, crashKey, tg.Token)
}
