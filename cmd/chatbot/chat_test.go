package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/openai/openaitest"
)

// chatSession is `chatbot chat` running with stdin a pipe and signals the test sends.
type chatSession struct {
	in       *io.PipeWriter
	out, err *lockedBuffer
	signals  chan os.Signal
	code     chan int
}

func startChat(t *testing.T, path string) *chatSession {
	t.Helper()
	in, inw := io.Pipe()
	s := &chatSession{in: inw, out: &lockedBuffer{}, err: &lockedBuffer{}, signals: make(chan os.Signal, 2), code: make(chan int, 1)}
	m := NewMain(in, s.out, s.err)
	m.LookupEnv = env(map[string]string{"TEST_KEY": "sk-test-key"})
	m.Signals = s.signals
	go func() { s.code <- m.Main(context.Background(), []string{"chat", "-config", path}) }()
	t.Cleanup(func() {
		inw.Close()
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", s.out.String(), s.err.String())
		}
	})
	return s
}

func (s *chatSession) say(text string) { io.WriteString(s.in, text+"\n") }

// exit waits for the chat to end and returns its exit code.
func (s *chatSession) exit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-s.code:
		return code
	case <-time.After(processWait): // a bound on the wait, not a measure
		t.Fatal("chat still runs")
		return -1
	}
}

// longReply streams for 20 s unless it is stopped.
func longReply() openaitest.Reply {
	return openaitest.Reply{Tokens: openaitest.Tokenize(strings.Repeat("word ", 1000)), TokenDelay: 20 * time.Millisecond}
}

// TestChatCtrlCStopsTheReply: Ctrl-C during a reply stops it, as /stop does,
// and the chat goes on.
func TestChatCtrlCStopsTheReply(t *testing.T) {
	fake := openaitest.NewServer()
	defer fake.Close()
	fake.APIKey = "sk-test-key"
	fake.Enqueue(longReply())
	s := startChat(t, writeConfig(t, fake, ""))

	s.say("tell me everything")
	waitUntil(t, "the reply to stream", func() bool { return strings.Contains(s.out.String(), "word word") })
	s.signals <- os.Interrupt
	waitUntil(t, "the reply to stop", func() bool { return strings.Contains(s.out.String(), "(stopped)") })
	s.say("and now?")
	waitUntil(t, "the next reply", func() bool { return strings.Contains(s.out.String(), "You said: and now?") })
	s.in.Close()
	if code := s.exit(t); code != 0 {
		t.Errorf("exit %d at the end of input, want 0", code)
	}
	if n := strings.Count(s.out.String(), "word"); n >= 1000 {
		t.Errorf("the whole reply was written (%d words): Ctrl-C did not stop it", n)
	}
}

// TestChatCtrlCWhileIdleQuits: Ctrl-C while no reply is written quits.
func TestChatCtrlCWhileIdleQuits(t *testing.T) {
	fake := openaitest.NewServer()
	defer fake.Close()
	s := startChat(t, writeConfig(t, fake, ""))
	s.signals <- os.Interrupt
	if code := s.exit(t); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("%d model calls", n)
	}
}

// TestChatSecondCtrlCQuits: two Ctrl-C during a reply quit the chat.
func TestChatSecondCtrlCQuits(t *testing.T) {
	fake := openaitest.NewServer()
	defer fake.Close()
	fake.APIKey = "sk-test-key"
	fake.Enqueue(longReply())
	s := startChat(t, writeConfig(t, fake, ""))
	s.say("tell me everything")
	waitUntil(t, "the reply to stream", func() bool { return strings.Contains(s.out.String(), "word word") })
	s.signals <- os.Interrupt
	s.signals <- os.Interrupt
	s.exit(t)
}

// TestChatKeepsLogsOutOfTheConversation: chat logs only warnings and errors,
// so the info line of every turn does not print between the replies.
func TestChatKeepsLogsOutOfTheConversation(t *testing.T) {
	fake := openaitest.NewServer()
	defer fake.Close()
	fake.APIKey = "sk-test-key"
	code, out, errOut := run(t, "hello\n", "chat", "-config", writeConfig(t, fake, "log:\n  level: info\n"))
	if code != 0 || !strings.Contains(out, "You said: hello") {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	if errOut != "" {
		t.Errorf("chat logged at info level:\n%s", errOut)
	}
}
