package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

// BenchmarkOpenCheck measures the check Open runs on a store of about 100 MB:
// 750 chats of 300 messages of about 330 bytes of JSON. It needs CHATBOT_LOAD=1 (writing the file takes a while):
//
//	CHATBOT_LOAD=1 go test -run XXX -bench OpenCheck -benchtime 5x ./store/
//
// bolt.Open is bbolt's own open and close, the baseline; verify is the check
// Open adds (meta pages against the file's length, every page read, tx.Check);
// Open is the store's whole Open and Close; Check is `chatbot store check`,
// which also decodes every message. The file was just written, so it is in
// the page cache; "cold" drops it from the cache before each run (Linux
// only), as at a start after a reboot.
func BenchmarkOpenCheck(b *testing.B) {
	if os.Getenv("CHATBOT_LOAD") == "" {
		b.Skip("set CHATBOT_LOAD=1 to write a 100 MB store and time the check at open")
	}
	path := filepath.Join(b.TempDir(), "big.db")
	writeBigStore(b, path, 750, 300)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	mb := float64(fi.Size()) / 1e6
	runtime.GC() // the garbage of writing it, not the check's
	run := func(name string, fn func() error) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if err := fn(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(mb, "MB")
		})
	}
	run("bolt.Open", func() error {
		bb, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
		if err != nil {
			return err
		}
		return bb.Close()
	})
	run("verify", func() error { return verify(path, time.Second) })
	b.Run("verify/cold", func(b *testing.B) {
		if err := evict(path); err != nil {
			b.Skip("cannot drop the file from the page cache:", err)
		}
		for b.Loop() {
			b.StopTimer()
			if err := evict(path); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := verify(path, time.Second); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(mb, "MB")
	})
	run("Open", func() error {
		db, err := Open(path, Options{})
		if err != nil {
			return err
		}
		return db.Close()
	})
	run("Check", func() error {
		r, err := Check(path, Options{})
		if err == nil && (!r.OK() || r.Messages != 750*300) {
			err = fmt.Errorf("check: %+v", r)
		}
		return err
	})
}

// writeBigStore writes chats chats of n messages of about 330 bytes each.
func writeBigStore(b *testing.B, path string, chats, n int) {
	db, err := Open(path, Options{MaxMessagesPerChat: -1})
	if err != nil {
		b.Fatal(err)
	}
	db.bolt.NoSync = true
	text := strings.Repeat("a fairly ordinary sentence of a chat. ", 6)
	for c := range chats {
		chat := conversation.ChatID(fmt.Sprintf("telegram:%d", 1_000_000+c))
		batch := make([]conversation.Message, n)
		for i := range batch {
			batch[i] = msg(chat, i)
			batch[i].Content += " " + text
		}
		if err := db.AppendTurn(context.Background(), chat, batch...); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	// Written without fsync: flush it now, so that the disk is idle while the
	// benchmarks run and every page can be dropped from the cache (a dirty
	// page cannot).
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
}
