package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

// The chats of a damaged-file test: enough messages each that every chat has
// pages of its own (a branch page over several leaves), not an inline bucket.
const (
	damageChats    = 12
	damageMessages = 300
)

func damageChat(i int) conversation.ChatID {
	return conversation.ChatID(fmt.Sprintf("telegram:%d", 100+i))
}

// writeDamageStore writes damageChats chats and a cursor with the store, closes
// it, and returns the file's path.
func writeDamageStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chatbot.db")
	db := openAt(t, path, Options{})
	for i := range damageChats {
		// One turn of many messages: the same pages as many turns, written faster.
		if err := db.AppendTurn(context.Background(), damageChat(i), msgs(damageChat(i), 0, damageMessages)...); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SetCursor(context.Background(), "telegram", 4242); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// pageSize is the page size of the bbolt file at path.
func pageSize(t *testing.T, path string) int64 {
	t.Helper()
	h, problem, err := readHeader(path)
	if err != nil || problem != "" {
		t.Fatalf("readHeader: %v %s", err, problem)
	}
	return h.pageSize
}

// chatRoot returns the page number of chat's root page in the file at path,
// and the page of its oldest messages (the root's first child).
func chatRoot(t *testing.T, path string, chat conversation.ChatID) (root, oldest uint64) {
	t.Helper()
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.View(func(tx *bbolt.Tx) error {
		root = uint64(tx.Bucket(bucketChats).Bucket([]byte(chat)).RootPage())
		return nil
	})
	if root == 0 {
		t.Fatalf("chat %s is inline: no page of its own", chat)
	}
	p := readPage(t, path, root)
	if flags := binary.NativeEndian.Uint16(p[8:]); flags&0x01 == 0 {
		t.Fatalf("chat %s's root page %d is not a branch page (flags %#x)", chat, root, flags)
	}
	// A branch element is pos u32, ksize u32, pgid u64, after the page header.
	return root, binary.NativeEndian.Uint64(p[pageHeaderSize+8:])
}

func readPage(t *testing.T, path string, id uint64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size := pageSize(t, path)
	p := make([]byte, size)
	if _, err := f.ReadAt(p, int64(id)*size); err != nil {
		t.Fatal(err)
	}
	return p
}

// scribble writes n random bytes (a fixed seed per test) at page id + offset.
func scribble(t *testing.T, path string, id uint64, offset, n int64) {
	t.Helper()
	size := pageSize(t, path)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(uint64(len(t.Name())), id))
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	if _, err := f.WriteAt(buf, int64(id)*size+offset); err != nil {
		t.Fatal(err)
	}
}

func truncateTo(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// highWater is the bytes a file's pages need (pgid × page size).
func highWater(t *testing.T, path string) int64 {
	t.Helper()
	h, _, err := readHeader(path)
	if err != nil {
		t.Fatal(err)
	}
	return int64(h.pages) * h.pageSize
}

// damages are the ways a file written by the store is broken in these tests.
var damages = []struct {
	name   string
	damage func(t *testing.T, path string)
	wantIn []string
}{
	{name: "truncated to half its pages", wantIn: []string{"end is missing"},
		damage: func(t *testing.T, path string) { truncateTo(t, path, highWater(t, path)/2) }},
	{name: "truncated by one page", wantIn: []string{"end is missing"},
		damage: func(t *testing.T, path string) { truncateTo(t, path, highWater(t, path)-pageSize(t, path)) }},
	{name: "truncated inside the meta pages", wantIn: []string{"end is missing"},
		damage: func(t *testing.T, path string) { truncateTo(t, path, 100) }},
	{name: "a chat's root page overwritten", wantIn: []string{"1 of 12 chats cannot be read whole (telegram:103)"},
		damage: func(t *testing.T, path string) {
			root, _ := chatRoot(t, path, damageChat(3))
			scribble(t, path, root, 0, pageSize(t, path))
		}},
	{name: "a chat's oldest leaf overwritten", wantIn: []string{"chats cannot be read whole (telegram:105)"},
		damage: func(t *testing.T, path string) {
			_, leaf := chatRoot(t, path, damageChat(5))
			scribble(t, path, leaf, 0, pageSize(t, path))
		}},
	{name: "a chat's leaf overwritten after its header", wantIn: []string{"telegram:107"},
		damage: func(t *testing.T, path string) {
			_, leaf := chatRoot(t, path, damageChat(7))
			scribble(t, path, leaf, pageHeaderSize, 256)
		}},
	{name: "the free-page list overwritten", wantIn: []string{"free-page list", "overwritten"},
		damage: func(t *testing.T, path string) {
			h, _, _ := readHeader(path)
			scribble(t, path, h.freelist, 0, h.pageSize)
		}},
	{name: "the root bucket page overwritten", wantIn: []string{"list of buckets cannot be read"},
		damage: func(t *testing.T, path string) {
			h, _, _ := readHeader(path)
			scribble(t, path, h.root, 0, h.pageSize)
		}},
	{name: "both meta pages overwritten", wantIn: []string{"neither of its two meta pages is valid"},
		damage: func(t *testing.T, path string) {
			scribble(t, path, 0, 0, 2*pageSize(t, path))
		}},
}

// TestOpenDamagedFile breaks a file the store wrote, as an interrupted copy, a
// file system losing blocks or a bad sector would, and checks that Open reports it with the path
// instead of panicking or faulting later.
func TestOpenDamagedFile(t *testing.T) {
	for _, tt := range damages {
		t.Run(tt.name, func(t *testing.T) {
			path := writeDamageStore(t)
			tt.damage(t, path)
			db, err := Open(path, Options{LockTimeout: time.Second})
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded on a damaged file")
			}
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("Open: %v, want ErrDamaged", err)
			}
			want := "store file " + path + " is damaged: "
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Open: %q, want it to start %q", err, want)
			}
			for _, w := range tt.wantIn {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open: %q lacks %q", err, w)
				}
			}
			// Check says the same without the store having changed the file.
			r, err := Check(path, Options{LockTimeout: time.Second})
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if r.OK() {
				t.Errorf("Check found nothing wrong; notes %q", r.Notes)
			}
		})
	}
}

// TestOpenSoundFile: the check at open passes a file the store wrote, and
// Check reports its chats and messages.
func TestOpenSoundFile(t *testing.T) {
	path := writeDamageStore(t)
	db := openAt(t, path, Options{})
	db.Close()
	r, err := Check(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Chats != damageChats || r.Messages != damageChats*damageMessages || len(r.Damaged) != 0 {
		t.Errorf("Check = %+v, want OK with %d chats and %d messages", r, damageChats, damageChats*damageMessages)
	}
}

// TestCheckListsEveryDamagedChat: with two chats broken, Check names both and
// reads the others whole.
func TestCheckListsEveryDamagedChat(t *testing.T) {
	path := writeDamageStore(t)
	for _, i := range []int{2, 9} {
		root, _ := chatRoot(t, path, damageChat(i))
		scribble(t, path, root, 0, pageSize(t, path))
	}
	r, err := Check(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []conversation.ChatID
	for _, d := range r.Damaged {
		got = append(got, d.Chat)
	}
	if want := []conversation.ChatID{damageChat(2), damageChat(9)}; !slices.Equal(got, want) {
		t.Errorf("damaged chats %q, want %q", got, want)
	}
	if r.Chats != damageChats || r.Messages != (damageChats-2)*damageMessages {
		t.Errorf("read %d chats, %d messages; want %d chats, %d messages", r.Chats, r.Messages, damageChats, (damageChats-2)*damageMessages)
	}
}

// TestCheckFindsUndecodableMessage: a message whose bytes are not JSON is
// found by Check (Open does not decode every message).
func TestCheckFindsUndecodableMessage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chatbot.db")
	db := openAt(t, path, Options{})
	fill(t, db, "c", 0, 4)
	db.bolt.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketChats).Bucket([]byte("c")).Put(seqKey(2), []byte("{not json"))
	})
	db.Close()
	r, err := Check(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || len(r.Damaged) != 1 || !strings.Contains(r.Damaged[0].Problem, "1 of its 4 messages do not decode") {
		t.Errorf("Check = %+v", r)
	}
}

// TestDamageWhileOpenIsTheChatsError: pages damaged under a running store
// (bbolt maps the file, so the change shows at once) make that chat's reads and
// writes fail with ErrDamaged, not the process; other chats go on.
func TestDamageWhileOpenIsTheChatsError(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		damage func(t *testing.T, path string, root uint64)
	}{
		{"page overwritten", func(t *testing.T, path string, root uint64) {
			scribble(t, path, root, 0, pageSize(t, path))
		}},
		// Reading a mapped page past the end of the file is a SIGBUS.
		{"file cut short", func(t *testing.T, path string, root uint64) {
			truncateTo(t, path, int64(root)*pageSize(t, path))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeDamageStore(t)
			root, _ := chatRoot(t, path, damageChat(4))
			db := openAt(t, path, Options{})
			tt.damage(t, path, root)
			_, err := db.Recent(ctx, damageChat(4), 50)
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "store file "+path+" is damaged") {
				t.Errorf("Recent of the damaged chat: %v, want ErrDamaged naming the file", err)
			}
			if n := db.Errors()[OpReadHistory]; n != 1 {
				t.Errorf("read_history errors = %d, want 1", n)
			}
			if tt.name == "page overwritten" {
				if got, err := db.Recent(ctx, damageChat(0), 50); err != nil || len(got) != 50 {
					t.Errorf("Recent of a sound chat: %d messages, %v", len(got), err)
				}
			}
			err = db.AppendTurn(ctx, damageChat(4), msg(damageChat(4), damageMessages))
			if !errors.Is(err, ErrDamaged) {
				t.Errorf("AppendTurn to the damaged chat: %v, want ErrDamaged", err)
			}
			if !errors.Is(db.WriteErr(), ErrDamaged) {
				t.Errorf("WriteErr = %v after a write hit damage", db.WriteErr())
			}
		})
	}
}
