// Package pgtest runs a throwaway PostgreSQL server for tests, like
// net/http/httptest runs an HTTP server: initdb in a temporary folder (as the
// postgres user when the tests run as root, since PostgreSQL refuses to run as
// root), a random loopback port, and everything removed when the tests end.
//
// A package's TestMain makes one Server and stops it; each test asks it for a
// fresh database:
//
//	var pg = pgtest.New()
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		pg.Stop()
//		os.Exit(code)
//	}
//
//	func TestSomething(t *testing.T) {
//		url := pg.Database(t) // postgres://postgres@127.0.0.1:PORT/t3?sslmode=disable
//		…
//	}
//
// The server starts on the first call to Database, so a test binary whose
// PostgreSQL tests are filtered out never starts one. When PostgreSQL's
// programs are not installed, Database skips the test, or fails it when the
// environment variable CI is "true" (CI must not pass by skipping).
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNotInstalled is why Database skips: no initdb and postgres programs were
// found on PATH or under /usr/lib/postgresql/*/bin.
var ErrNotInstalled = errors.New("PostgreSQL is not installed (initdb and postgres not found; on Debian: apt-get install postgresql)")

// startTimeout bounds how long the server may take to accept connections: a
// busy two-core machine running other tests can be slow.
const startTimeout = 90 * time.Second

// Server is a PostgreSQL server started for tests. Its methods are safe for
// concurrent use.
type Server struct {
	once sync.Once
	err  error // why the server could not start

	dir    string // the temporary folder: data/, sock/, log
	port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed when the server process has exited

	mu sync.Mutex
	n  int // databases made so far
}

// New returns a Server that starts on first use.
func New() *Server { return &Server{} }

// Database creates an empty database on the server, starting the server if it
// is not running yet, and returns its URL. The database lives until Stop. It
// skips t when PostgreSQL is not installed (fails it when CI=true) and fails it
// when the server cannot start.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	s.once.Do(func() { s.err = s.start() })
	if s.err != nil {
		if errors.Is(s.err, ErrNotInstalled) && os.Getenv("CI") != "true" {
			t.Skip(s.err)
		}
		t.Fatalf("start PostgreSQL for the tests: %v", s.err)
	}
	s.mu.Lock()
	s.n++
	name := fmt.Sprintf("t%d", s.n)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		t.Fatalf("connect to the test server: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return s.url(name)
}

// Addr is the server's host:port (valid once Database has started it).
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

func (s *Server) url(db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", s.Addr(), db)
}

// Stop stops the server (if it ever started) and removes its folder.
func (s *Server) Stop() {
	s.once.Do(func() { s.err = errors.New("stopped") }) // a later Database must not start one
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown: ends sessions, no checkpoint wait
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// start runs initdb and the server; tries a few ports in case another process
// takes the free port found before the server binds it.
func (s *Server) start() error {
	initdb, postgres, err := programs()
	if err != nil {
		return err
	}
	cred, err := credential()
	if err != nil {
		return err
	}
	s.dir, err = os.MkdirTemp("", "chatbot-pgtest-")
	if err != nil {
		return err
	}
	data, sock := filepath.Join(s.dir, "data"), filepath.Join(s.dir, "sock")
	if err := os.Mkdir(sock, 0o700); err != nil {
		return err
	}
	if cred != nil {
		for _, p := range []string{s.dir, sock} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return err
			}
		}
	}
	out, err := s.command(cred, initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync", "--no-instructions").CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	for attempt := 1; ; attempt++ {
		err := s.run(cred, postgres, data, sock)
		if err == nil || attempt == 3 {
			return err
		}
	}
}

// run starts the server on a free port and waits until it accepts connections.
func (s *Server) run(cred *syscall.Credential, postgres, data, sock string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.port = port
	logPath := filepath.Join(s.dir, "log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := s.command(cred, postgres, "-D", data, "-p", strconv.Itoa(port), "-k", sock,
		"-c", "listen_addresses=127.0.0.1",
		// Speed over durability: the data die with the test run.
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.url("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("postgres exited at start: %s", tail(logPath))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			s.cmd = nil
			return fmt.Errorf("postgres did not accept connections within %v: %v\n%s", startTimeout, err, tail(logPath))
		}
	}
}

// command runs a PostgreSQL program as cred's user (nil: as this process). The
// server dies with the test binary (Pdeathsig), so a killed test run does not
// leave it behind.
func (s *Server) command(cred *syscall.Credential, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// programs finds initdb and postgres: on PATH (following symbolic links to the
// folder that holds both), else the newest /usr/lib/postgresql/*/bin.
func programs() (initdb, postgres string, err error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(found, func(a, b string) int { return version(b) - version(a) })
	dirs = append(dirs, found...)
	for _, d := range dirs {
		i, p := filepath.Join(d, "initdb"), filepath.Join(d, "postgres")
		if executable(i) && executable(p) {
			return i, p, nil
		}
	}
	return "", "", ErrNotInstalled
}

// version is the major version in /usr/lib/postgresql/N/bin.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// credential is the postgres user's when this process is root (PostgreSQL
// refuses to run as root), else nil.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL must run as another user: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freePort is a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail is the end of the server's log, for errors.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
