package storetest

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/chatbot-dev/chatbot/conversation"
)

// png is a distinct fake PNG of about n bytes.
func png(id, n int) []byte {
	return append([]byte(fmt.Sprintf("\x89PNG\r\n\x1a\n%08d", id)), bytes.Repeat([]byte{7}, n)...)
}

// withImage is a user message carrying data as an attachment.
func withImage(text string, data []byte) conversation.Message {
	a := conversation.NewAttachment("p.png", "image/png", data)
	return conversation.Message{Role: conversation.RoleUser, Content: text, Attachments: []conversation.Attachment{a}}
}

func sha(data []byte) string { return conversation.NewAttachment("", "", data).SHA256 }

// kept reports whether chat keeps the attachment data.
func kept(t *testing.T, db Store, chat conversation.ChatID, data []byte) bool {
	t.Helper()
	got, err := db.Blob(context.Background(), chat, sha(data))
	if err != nil {
		t.Fatalf("Blob(%s): %v", chat, err)
	}
	if got != nil && !bytes.Equal(got, data) {
		t.Fatalf("Blob(%s) = %d other bytes, want the attachment's own %d", chat, len(got), len(data))
	}
	return got != nil
}

func appendTurn(t *testing.T, db Store, chat conversation.ChatID, m ...conversation.Message) {
	t.Helper()
	if err := db.AppendTurn(context.Background(), chat, m...); err != nil {
		t.Fatalf("AppendTurn(%s): %v", chat, err)
	}
}

// testBlobsKeptOnceAndGivenBack checks that an attachment's bytes come back
// exactly, for its chat only, that the history keeps a reference without
// them, and that one attachment sent twice in one turn is fine.
func testBlobsKeptOnceAndGivenBack(t *testing.T, open Opener) {
	db := open(t, Caps{})
	ctx := context.Background()
	img := png(1, 1000)
	for range 3 {
		appendTurn(t, db, "c", withImage("look", img))
	}
	appendTurn(t, db, "c", withImage("twice", img), withImage("in one turn", img))
	ms := recent(t, db, "c", 10)
	a := ms[0].Attachments[0]
	if a.Data != nil || a.SHA256 != sha(img) || a.Kind != conversation.AttachImage || a.Size != len(img) {
		t.Fatalf("stored attachment %+v: want a reference without bytes", a)
	}
	if !kept(t, db, "c", img) {
		t.Fatal("Blob = nil, want the image's exact bytes")
	}
	if kept(t, db, "other", img) {
		t.Error("another chat reads this chat's attachment")
	}
	if got, err := db.Blob(ctx, "c", sha(png(2, 10))); got != nil || err != nil {
		t.Errorf("Blob of an attachment never stored = %d bytes, %v; want nil, nil", len(got), err)
	}
	ref := conversation.Message{Role: conversation.RoleUser, Content: "no bytes",
		Attachments: []conversation.Attachment{{Kind: conversation.AttachImage, SHA256: sha(png(3, 10))}}}
	appendTurn(t, db, "c", ref)
	if kept(t, db, "c", png(3, 10)) {
		t.Error("an attachment without bytes was kept")
	}
}

// testBlobsPrunedWithTheirMessages checks that an attachment goes when the
// newest message that uses it is pruned, and stays while a newer one uses it.
func testBlobsPrunedWithTheirMessages(t *testing.T, open Opener) {
	db := open(t, Caps{MaxMessagesPerChat: 2})
	first, second := png(1, 100), png(2, 100)
	appendTurn(t, db, "c", withImage("one", first))
	appendTurn(t, db, "c", withImage("two", second))
	appendTurn(t, db, "c", msg("c", 3))
	if kept(t, db, "c", first) {
		t.Error("the pruned message's image is still kept")
	}
	if !kept(t, db, "c", second) {
		t.Error("the kept message's image is gone")
	}
	// An image sent again moves to its newest message and stays.
	appendTurn(t, db, "c", withImage("two again", second))
	appendTurn(t, db, "c", msg("c", 5))
	if !kept(t, db, "c", second) {
		t.Error("an image used by a kept message was pruned with an older one")
	}
	appendTurn(t, db, "c", msg("c", 6))
	if kept(t, db, "c", second) {
		t.Error("the image outlived its newest message")
	}
}

// testBlobsByteCapDropsOldestFirst checks the per-chat byte cap: the oldest
// attachments go first, messages stay, other chats are not touched.
func testBlobsByteCapDropsOldestFirst(t *testing.T, open Opener) {
	db := open(t, Caps{MaxFileBytesPerChat: 2500})
	imgs := [][]byte{png(1, 1000), png(2, 1000), png(3, 1000)}
	appendTurn(t, db, "other", withImage("x", imgs[0]))
	for i, img := range imgs {
		appendTurn(t, db, "c", withImage(fmt.Sprint(i), img))
	}
	if kept(t, db, "c", imgs[0]) {
		t.Error("the oldest image outlived the byte cap")
	}
	for _, img := range imgs[1:] {
		if !kept(t, db, "c", img) {
			t.Error("a newer image was dropped")
		}
	}
	if !kept(t, db, "other", imgs[0]) {
		t.Error("another chat's image was dropped")
	}
	if ms := recent(t, db, "c", 10); len(ms) != 3 {
		t.Errorf("the cap removed messages: %d left", len(ms))
	}
	// Sending the oldest kept one again makes it the newest: the other goes.
	appendTurn(t, db, "c", withImage("again", imgs[1]))
	appendTurn(t, db, "c", withImage("new", png(4, 1000)))
	if !kept(t, db, "c", imgs[1]) || kept(t, db, "c", imgs[2]) {
		t.Errorf("after a resend: kept %v and %v, want the resent one only", kept(t, db, "c", imgs[1]), kept(t, db, "c", imgs[2]))
	}
	// One attachment bigger than the cap is not kept at all.
	big := png(5, 3000)
	appendTurn(t, db, "c", withImage("big", big))
	if kept(t, db, "c", big) {
		t.Error("an attachment over the cap on its own was kept")
	}
}

// testBlobsTieBreakByHash checks which attachment of one message goes first
// over the byte cap: the one whose hash sorts first (byte order), as the
// bbolt store's age index orders them.
func testBlobsTieBreakByHash(t *testing.T, open Opener) {
	db := open(t, Caps{MaxFileBytesPerChat: 1500})
	a, b := png(10, 1000), png(11, 1000)
	lo, hi := a, b
	if sha(a) > sha(b) {
		lo, hi = b, a
	}
	m := withImage("two", a)
	m.Attachments = append(m.Attachments, conversation.NewAttachment("q.png", "image/png", b))
	appendTurn(t, db, "c", m)
	if kept(t, db, "c", lo) || !kept(t, db, "c", hi) {
		t.Errorf("kept (lower hash %v, higher hash %v), want only the higher", kept(t, db, "c", lo), kept(t, db, "c", hi))
	}
}

// testResetDropsBlobs checks that Reset forgets the chat's attachments.
func testResetDropsBlobs(t *testing.T, open Opener) {
	db := open(t, Caps{})
	img := png(1, 10)
	appendTurn(t, db, "c", withImage("x", img))
	appendTurn(t, db, "d", withImage("x", img))
	if err := db.Reset(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	if kept(t, db, "c", img) {
		t.Error("reset kept the chat's attachments")
	}
	if !kept(t, db, "d", img) {
		t.Error("reset dropped another chat's attachment")
	}
}
