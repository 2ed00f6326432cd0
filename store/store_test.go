package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// TestOpenCreatesParentFolders checks that store.path may name folders that do
// not exist yet, as the config contract promises.
func TestOpenCreatesParentFolders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "bot", "chatbot.db")
	db := openAt(t, path, Options{})
	if got := db.Path(); got != path {
		t.Errorf("Path() = %q, want %q", got, path)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
}

// TestOpenSchemaVersion writes meta/schema_version with bbolt directly, as an
// older or newer chatbot would have, and checks what Open makes of it.
func TestOpenSchemaVersion(t *testing.T) {
	tests := []struct {
		name    string
		version string // "" = a fresh file
		wantErr error  // nil = opens
		wantIn  []string
	}{
		{name: "fresh file", version: ""},
		{name: "current", version: "1"},
		{name: "newer", version: "2", wantErr: ErrNewerVersion,
			wantIn: []string{"newer version of chatbot", "schema 2", "reads 1", "upgrade chatbot"}},
		{name: "much newer", version: "17", wantErr: ErrNewerVersion, wantIn: []string{"schema 17"}},
		{name: "garbage", version: "two", wantErr: errAny, wantIn: []string{`bad schema version "two"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "chatbot.db")
			if tt.version != "" {
				writeMeta(t, path, tt.version)
			}
			db, err := Open(path, Options{LockTimeout: time.Second})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer db.Close()
				if got := readMeta(t, db); got != "1" {
					t.Errorf("schema_version after Open = %q, want %q", got, "1")
				}
				return
			}
			if err == nil {
				db.Close()
				t.Fatalf("Open succeeded, want an error")
			}
			if tt.wantErr != errAny && !errors.Is(err, tt.wantErr) {
				t.Errorf("Open error %q does not wrap %v", err, tt.wantErr)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Open error %q does not say %q", err, s)
				}
			}
			// The failed Open must release the file and leave it as it was.
			b, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatalf("reopen with bbolt after the failed Open: %v", err)
			}
			defer b.Close()
			b.View(func(tx *bbolt.Tx) error {
				if got := tx.Bucket(bucketChats); got != nil {
					t.Errorf("the failed Open created bucket %q in a newer file", bucketChats)
				}
				return nil
			})
		})
	}
}

// errAny stands for "some error" in tables.
var errAny = errors.New("any error")

// writeMeta creates a bbolt file at path holding only meta/schema_version = v.
func writeMeta(t *testing.T, path, v string) {
	t.Helper()
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return meta.Put(keyVersion, []byte(v))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func readMeta(t *testing.T, db *DB) string {
	t.Helper()
	var v string
	db.bolt.View(func(tx *bbolt.Tx) error {
		v = string(tx.Bucket(bucketMeta).Get(keyVersion))
		return nil
	})
	return v
}

// holdEnv names the database file TestHelperProcess holds open.
const holdEnv = "CHATBOT_STORE_TEST_HOLD"

// TestHelperProcess is not a test: TestOpenLockedByAnotherProcess runs the test
// binary again with this test alone to hold the store open from a second process.
// It prints "ready" once the store is open and closes it when stdin closes.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(holdEnv)
	if path == "" {
		t.Skip("helper for TestOpenLockedByAnotherProcess")
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	defer db.Close()
	os.Stdout.WriteString("ready\n")
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute): // never outlive a lost parent for long
	}
}

// TestOpenLockedByAnotherProcess holds the file from a second process (bbolt's
// flock belongs to an open file, so only another process is an honest test) and
// checks that Open gives up after LockTimeout with ErrLocked instead of hanging,
// then succeeds once the other process has let go.
func TestOpenLockedByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "chatbot.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
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
	defer cmd.Wait()
	defer stdin.Close()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("helper process said %q, %v; want ready", line, err)
	}
	go io.Copy(io.Discard, stdout) // the test framework's own output

	type result struct {
		db  *DB
		err error
	}
	opened := make(chan result, 1)
	start := time.Now()
	go func() {
		db, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
		opened <- result{db, err}
	}()
	var db *DB
	select {
	case r := <-opened:
		db, err = r.db, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("Open still waiting for the lock after 10 s, want ErrLocked after LockTimeout")
	}
	elapsed := time.Since(start)
	if err == nil {
		db.Close()
		t.Fatal("Open succeeded while another process holds the file")
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("Open error %q does not wrap ErrLocked", err)
	}
	if want := "database is locked by another process"; !strings.Contains(err.Error(), want) {
		t.Errorf("Open error %q does not say %q", err, want)
	}
	if elapsed > 5*time.Second {
		t.Errorf("Open took %v to give up, want about LockTimeout", elapsed)
	}

	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper process: %v", err)
	}
	openAt(t, path, Options{LockTimeout: time.Second})
}

// TestFirstSeenPrunes checks that expired keys are deleted from both seen
// buckets, so they do not grow without bound.
func TestFirstSeenPrunes(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	seenAt(t, db, "Ev", 200, func(int) time.Time { return time.Now().Add(-time.Second) }) // expired
	for _, name := range [][]byte{bucketSeen, bucketSeenAge} {
		if got := countKeys(t, db, name); got != 200 {
			t.Fatalf("bucket %s holds %d keys before pruning, want 200", name, got)
		}
	}
	if first, err := db.FirstSeen(ctx, "new", time.Hour); err != nil || !first {
		t.Fatalf("FirstSeen(new) = %v, %v; want true", first, err)
	}
	for _, name := range [][]byte{bucketSeen, bucketSeenAge} {
		if got := countKeys(t, db, name); got != 1 {
			t.Errorf("bucket %s holds %d keys after pruning, want 1 (the new key)", name, got)
		}
	}
}

// TestFirstSeenForgetsOnlyOld stores many keys seen two hours ago, spread over
// many pages, and young keys through the API: one call with a one-hour ttl
// forgets exactly the old ones, from both buckets.
func TestFirstSeenForgetsOnlyOld(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	const old, young = 3000, 300
	twoHoursAgo := time.Now().Add(-2 * time.Hour)
	seenAt(t, db, "old", old, func(i int) time.Time { return twoHoursAgo.Add(time.Duration(i) * time.Millisecond) })
	for i := range young {
		if first, err := db.FirstSeen(ctx, fmt.Sprintf("young-%d", i), 3*time.Hour); err != nil || !first {
			t.Fatalf("FirstSeen(young-%d) = %v, %v; want true", i, first, err)
		}
	}
	if first, err := db.FirstSeen(ctx, "young-7", time.Hour); err != nil || first {
		t.Fatalf("FirstSeen(young-7) = %v, %v; want false", first, err)
	}
	for _, name := range [][]byte{bucketSeen, bucketSeenAge} {
		if got := countKeys(t, db, name); got != young {
			t.Errorf("bucket %s holds %d keys, want the %d young ones", name, got, young)
		}
	}
	for _, tt := range []struct {
		key  string
		want bool
	}{{"old-0", true}, {"old-2999", true}, {"young-0", false}, {"young-299", false}} {
		if got, err := db.FirstSeen(ctx, tt.key, time.Hour); err != nil || got != tt.want {
			t.Errorf("FirstSeen(%s) = %v, %v; want %v", tt.key, got, err, tt.want)
		}
	}
}

// TestCanceledContext checks that no call does I/O once its context is done.
func TestCanceledContext(t *testing.T) {
	db := openTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"Recent":     func() error { _, err := db.Recent(ctx, "c", 10); return err },
		"AppendTurn": func() error { return db.AppendTurn(ctx, "c", msg("c", 0)) },
		"Reset":      func() error { return db.Reset(ctx, "c") },
		"Cursor":     func() error { _, err := db.Cursor(ctx, "x"); return err },
		"SetCursor":  func() error { return db.SetCursor(ctx, "x", 1) },
		"FirstSeen":  func() error { _, err := db.FirstSeen(ctx, "k", time.Hour); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v, want context.Canceled", name, err)
		}
	}
	if got := recent(t, db, "c", 10); len(got) != 0 {
		t.Errorf("AppendTurn with a canceled context stored %d messages", len(got))
	}
}
