package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatbot-dev/chatbot/bots/telegram/telegramtest"
	"github.com/chatbot-dev/chatbot/openai/openaitest"
	"github.com/chatbot-dev/chatbot/store/postgres/pgtest"
)

// takeoverLimit is the contract's bound on a polling takeover: another
// replica polls within 15 s of the leader's death.
const takeoverLimit = 15 * time.Second

// polls reports whether the process has logged that it polls Telegram.
func (p *botProcess) polls() bool {
	return strings.Contains(p.logs.String(), `"msg":"telegram: polling"`)
}

// TestTelegramReplicasProcess runs two `chatbot serve` processes with one
// config on one PostgreSQL database, against the fake Telegram in polling
// mode: exactly one polls while the other stands by (its /healthz ready), every
// message is answered once; after kill -9 of the poller the other polls within
// 15 s, answers the messages sent meanwhile and the next ones, and no update is
// answered twice.
func TestTelegramReplicasProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it as two processes; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Skip("needs POSIX signals")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	pg := pgtest.New()
	t.Cleanup(pg.Stop)
	dbURL := pg.Database(t) // skips without PostgreSQL, unless CI=true
	bin := filepath.Join(t.TempDir(), "chatbot")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	tg := telegramtest.NewServer(telegramtest.Options{})
	defer tg.Close()
	ai := openaitest.NewServer()
	defer ai.Close()
	ai.APIKey = crashKey
	ai.SetHandler(func(r openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Tokens: openaitest.Tokenize("Re: " + r.LastUser()), TokenDelay: 5 * time.Millisecond}
	})
	users := crashUsers(5)
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = fmt.Sprint(u.ID)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	text := fmt.Sprintf("openai:\n  base_url: %s\n  api_key: %s\n  model: gpt-5.4-mini\n"+
		"store:\n  url: %s\n  path: %s\n"+
		"telegram:\n  token: %q\n  api_url: %s\n  allowed_user_ids: [%s]\n"+
		"http:\n  listen: ${HTTP_LISTEN}\nlog:\n  format: json\n",
		ai.BaseURL(), crashKey, dbURL, filepath.Join(dir, "unused.db"), tg.Token, tg.URL, strings.Join(ids, ", "))
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	addrA, addrB := freeAddr(t), freeAddr(t)
	ready := func(addr string) bool { code, _ := httpGet("http://" + addr + "/healthz"); return code == 200 }

	a := startBot(t, bin, cfg, "HTTP_LISTEN="+addrA)
	waitUntil(t, "the first replica to poll", a.polls)
	b := startBot(t, bin, cfg, "HTTP_LISTEN="+addrB)
	waitUntil(t, "both replicas ready", func() bool { return ready(addrA) && ready(addrB) })

	// answered waits until every user's chat shows n answers, the last to
	// round's message.
	answered := func(round string, n int) {
		t.Helper()
		for i, u := range users {
			want := fmt.Sprintf("Re: %s %d", round, i)
			waitUntil(t, "the answers to "+round, func() bool {
				msgs := tg.BotMessages(u.ID)
				return len(msgs) >= n && msgs[n-1].Last().Text == want
			})
		}
	}
	say := func(round string) {
		for i, u := range users {
			tg.Inject(telegramtest.Incoming{From: u, Text: fmt.Sprintf("%s %d", round, i)})
		}
	}
	say("one")
	answered("one", 1)
	if b.polls() {
		t.Fatal("the second replica polls while the first does")
	}
	if !ready(addrB) {
		t.Error("the standing-by replica's /healthz is not ready")
	}

	// The turns have ended (their answers show before their history is saved):
	// the kill cuts no reply, which would bring a "restarted" note.
	waitUntil(t, "the first replica's turns to end", func() bool { return pendingMarks(t, dbURL) == 0 })
	a.signal(t, syscall.SIGKILL)
	killed := time.Now()
	if !a.waitExit(processWait) {
		t.Fatal("the process outlived SIGKILL")
	}
	say("two") // sent while no replica polls
	waitUntil(t, "the second replica to poll", b.polls)
	// The fake records a call once it has answered it, which may be after the
	// replica's log line says it polls.
	var takeover time.Duration
	waitUntil(t, "the second replica's first getUpdates", func() bool {
		for _, c := range tg.CallsTo("getUpdates") {
			if c.At.After(killed) {
				takeover = c.At.Sub(killed)
				return true
			}
		}
		return false
	})
	t.Logf("takeover: the second replica polled %v after kill -9 of the first", takeover.Round(100*time.Millisecond))
	if takeover <= 0 || takeover > takeoverLimit {
		t.Errorf("the second replica polled %v after the first died, want within %v", takeover, takeoverLimit)
	}
	answered("two", 2)
	say("three")
	answered("three", 3)

	if n := tg.PollConflicts(); n != 0 {
		t.Errorf("%d getUpdates calls overlapped another: two replicas polled at once", n)
	}
	for i, u := range users {
		if n := len(tg.BotMessages(u.ID)); n != 3 {
			t.Errorf("chat %d shows %d answers, want 3", u.ID, n)
		}
		for _, round := range []string{"one", "two", "three"} {
			if n := len(callsFor(ai, fmt.Sprintf("%s %d", round, i))); n != 1 {
				t.Errorf("chat %d: %q answered %d times, want once", u.ID, round, n)
			}
		}
	}
	b.signal(t, syscall.SIGTERM)
	if !b.waitExit(processWait) || b.cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("the second replica did not stop cleanly: %v", b.cmd.ProcessState)
	}
	a.checkLogs(t, crashKey, tg.Token)
	b.checkLogs(t, crashKey, tg.Token)
}

// pendingMarks counts the replies being written, over all replicas.
func pendingMarks(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pending").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
