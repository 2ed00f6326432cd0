package store

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

// png is a distinct fake PNG of n bytes.
func png(id, n int) []byte {
	return append([]byte(fmt.Sprintf("\x89PNG\r\n\x1a\n%08d", id)), bytes.Repeat([]byte{7}, n)...)
}

// withImage is a user message carrying data as an attachment.
func withImage(text string, data []byte) conversation.Message {
	a := conversation.NewAttachment("p.png", "image/png", data)
	return conversation.Message{Role: conversation.RoleUser, Content: text, Attachments: []conversation.Attachment{a}}
}

// blobTotal is the bytes kept for chat's attachments.
func keptBytes(t *testing.T, db *DB, chat string) int64 {
	var n int64
	db.bolt.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bucketBlobs).Bucket([]byte(chat)); b != nil {
			n = total(b)
		}
		return nil
	})
	return n
}

func sha(data []byte) string { return conversation.NewAttachment("", "", data).SHA256 }

func TestBlobsKeptOnceAndGivenBack(t *testing.T) {
	db := openTest(t, Options{})
	ctx := context.Background()
	img := png(1, 1000)
	for range 3 {
		if err := db.AppendTurn(ctx, "c", withImage("look", img)); err != nil {
			t.Fatal(err)
		}
	}
	msgs, _ := db.Recent(ctx, "c", 10)
	a := msgs[0].Attachments[0]
	if a.Data != nil || a.SHA256 == "" || a.Kind != conversation.AttachImage {
		t.Fatalf("stored attachment %+v: want a reference without bytes", a)
	}
	got, err := db.Blob(ctx, "c", a.SHA256)
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("Blob = %d bytes, %v; want the image's exact bytes", len(got), err)
	}
	if n := keptBytes(t, db, "c"); n != int64(len(img)) {
		t.Errorf("kept %d bytes for three copies, want one copy (%d)", n, len(img))
	}
	if other, _ := db.Blob(ctx, "other", a.SHA256); other != nil {
		t.Error("another chat reads this chat's attachment")
	}
}

func TestBlobsPrunedWithTheirMessages(t *testing.T) {
	db := openTest(t, Options{MaxMessagesPerChat: 2})
	ctx := context.Background()
	first, second := png(1, 100), png(2, 100)
	db.AppendTurn(ctx, "c", withImage("one", first))
	db.AppendTurn(ctx, "c", withImage("two", second))
	db.AppendTurn(ctx, "c", msg("c", 3))
	if got, _ := db.Blob(ctx, "c", sha(first)); got != nil {
		t.Error("the pruned message's image is still kept")
	}
	if got, _ := db.Blob(ctx, "c", sha(second)); got == nil {
		t.Error("the kept message's image is gone")
	}
	// An image sent again moves to its newest message and stays.
	db.AppendTurn(ctx, "c", withImage("two again", second))
	db.AppendTurn(ctx, "c", msg("c", 5))
	if got, _ := db.Blob(ctx, "c", sha(second)); got == nil {
		t.Error("an image used by a kept message was pruned with an older one")
	}
}

func TestBlobsByteCapDropsOldestFirst(t *testing.T) {
	db := openTest(t, Options{MaxFileBytesPerChat: 2500})
	ctx := context.Background()
	imgs := [][]byte{png(1, 1000), png(2, 1000), png(3, 1000)}
	for i, img := range imgs {
		db.AppendTurn(ctx, "c", withImage(fmt.Sprint(i), img))
	}
	if got, _ := db.Blob(ctx, "c", sha(imgs[0])); got != nil {
		t.Error("the oldest image outlived the byte cap")
	}
	for _, img := range imgs[1:] {
		if got, _ := db.Blob(ctx, "c", sha(img)); got == nil {
			t.Error("a newer image was dropped")
		}
	}
	if n := keptBytes(t, db, "c"); n > 2500 {
		t.Errorf("kept %d bytes, over the cap", n)
	}
	if msgs, _ := db.Recent(ctx, "c", 10); len(msgs) != 3 {
		t.Errorf("the cap removed messages: %d left", len(msgs))
	}
}

func TestResetDropsBlobs(t *testing.T) {
	db := openTest(t, Options{})
	ctx := context.Background()
	img := png(1, 10)
	db.AppendTurn(ctx, "c", withImage("x", img))
	db.Reset(ctx, "c")
	if got, _ := db.Blob(ctx, "c", sha(img)); got != nil || keptBytes(t, db, "c") != 0 {
		t.Error("reset kept the chat's attachments")
	}
}
