package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

func TestWebSessions(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if user, _, err := db.WebSession(ctx, "nope", now); err != nil || user != "" {
		t.Fatalf("unknown session on an empty store = %q, %v", user, err)
	}
	if err := db.CreateWebSession(ctx, "tok", "web:ana", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	user, exp, err := db.WebSession(ctx, "tok", now)
	if err != nil || user != "web:ana" || !exp.Equal(now.Add(time.Hour)) {
		t.Fatalf("session = %q %v %v", user, exp, err)
	}
	if user, _, _ := db.WebSession(ctx, "tok", now.Add(time.Hour)); user != "" {
		t.Errorf("expired session still gives %q", user)
	}
	if err := db.ExtendWebSession(ctx, "tok", now.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if user, _, _ := db.WebSession(ctx, "tok", now.Add(47*time.Hour)); user != "web:ana" {
		t.Errorf("extended session = %q", user)
	}
	// The file holds the token's hash, never the token.
	db.bolt.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketWebSessions).ForEach(func(k, v []byte) error {
			if strings.Contains(string(k)+string(v), "tok") {
				t.Errorf("token stored in clear: %q → %q", k, v)
			}
			return nil
		})
	})
	if err := db.DeleteWebSession(ctx, "tok"); err != nil {
		t.Fatal(err)
	}
	if user, _, _ := db.WebSession(ctx, "tok", now); user != "" {
		t.Errorf("deleted session still gives %q", user)
	}
	if err := db.ExtendWebSession(ctx, "tok", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if user, _, _ := db.WebSession(ctx, "tok", now); user != "" {
		t.Errorf("extending a deleted session brought it back: %q", user)
	}
}

func TestWebSessionsForgetExpired(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	past := time.Now().Add(-time.Minute)
	for i := range 3 {
		if err := db.CreateWebSession(ctx, fmt.Sprint("old", i), "u", past); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateWebSession(ctx, "new", "u", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	db.bolt.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket(bucketWebSessions).Stats().KeyN; n != 1 {
			t.Errorf("sessions kept = %d, want 1", n)
		}
		return nil
	})
}

func TestWebLoginTokenWorksOnce(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	now := time.Now()
	if err := db.CreateWebLoginToken(ctx, "t1", "telegram:1001", "telegram:1001", now.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	user, chat, err := db.TakeWebLoginToken(ctx, "t1", now)
	if err != nil || user != "telegram:1001" || chat != "telegram:1001" {
		t.Fatalf("take = %q %q %v", user, chat, err)
	}
	if user, _, err := db.TakeWebLoginToken(ctx, "t1", now); err != nil || user != "" {
		t.Errorf("second take = %q, %v", user, err)
	}
	if err := db.CreateWebLoginToken(ctx, "t2", "slack:U1", "slack:T1:D1", now.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if user, _, _ := db.TakeWebLoginToken(ctx, "t2", now.Add(10*time.Minute)); user != "" {
		t.Errorf("expired token gives %q", user)
	}
	if user, _, _ := db.TakeWebLoginToken(ctx, "t2", now); user != "" {
		t.Errorf("an expired token, once tried, still works: %q", user)
	}
}

type webListed struct {
	id    string
	chat  conversation.ChatID
	title string
}

func webList(t *testing.T, db *DB, user string) []webListed {
	t.Helper()
	var got []webListed
	err := db.WebConversations(context.Background(), user, func(id string, chat conversation.ChatID, title string, _ time.Time) error {
		got = append(got, webListed{id, chat, title})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestWebConversationList(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if got := webList(t, db, "web:ana"); len(got) != 0 {
		t.Fatalf("empty store lists %v", got)
	}
	mustWeb(t, db.PutWebConversation(ctx, "web:ana", "a", "web:web:ana:a", "First", t0))
	mustWeb(t, db.PutWebConversation(ctx, "web:ana", "b", "web:web:ana:b", "Second", t0.Add(time.Minute)))
	mustWeb(t, db.PutWebConversation(ctx, "web:bob", "c", "web:web:bob:c", "Bob's", t0))
	want := []webListed{{"b", "web:web:ana:b", "Second"}, {"a", "web:web:ana:a", "First"}}
	if got := webList(t, db, "web:ana"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("list = %v, want %v", got, want)
	}
	// Writing to a conversation moves it to the top and keeps its title.
	mustWeb(t, db.PutWebConversation(ctx, "web:ana", "a", "web:web:ana:a", "", t0.Add(2*time.Minute)))
	if got := webList(t, db, "web:ana"); got[0].id != "a" || got[0].title != "First" {
		t.Fatalf("after a write: %v", got)
	}
	// Renaming keeps the time (and the place in the list).
	mustWeb(t, db.PutWebConversation(ctx, "web:ana", "b", "web:web:ana:b", "Renamed b", time.Time{}))
	if got := webList(t, db, "web:ana"); got[0].id != "a" || got[1].title != "Renamed b" {
		t.Fatalf("after a rename: %v", got)
	}
	mustWeb(t, db.PutWebConversation(ctx, "web:ana", "a", "web:web:ana:a", "Renamed", t0.Add(2*time.Minute)))
	chat, title, err := db.WebConversation(ctx, "web:ana", "a")
	if err != nil || chat != "web:web:ana:a" || title != "Renamed" {
		t.Fatalf("conversation a = %q %q %v", chat, title, err)
	}
	// A user sees only their own conversations.
	if chat, _, _ := db.WebConversation(ctx, "web:bob", "a"); chat != "" {
		t.Errorf("bob opens ana's conversation: %q", chat)
	}
	if chat, _, _ := db.WebConversation(ctx, "web:nobody", "a"); chat != "" {
		t.Errorf("an unknown user opens a conversation: %q", chat)
	}
	mustWeb(t, db.DeleteWebConversation(ctx, "web:ana", "a"))
	if got := webList(t, db, "web:ana"); len(got) != 1 || got[0].id != "b" {
		t.Errorf("after delete: %v", got)
	}
}

func TestLinkWebConversationOnce(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	now := time.Now()
	id, err := db.LinkWebConversation(ctx, "telegram:1001", "x1", "telegram:1001", "Telegram", now)
	if err != nil || id != "x1" {
		t.Fatalf("link = %q %v", id, err)
	}
	id, err = db.LinkWebConversation(ctx, "telegram:1001", "x2", "telegram:1001", "Telegram", now)
	if err != nil || id != "x1" {
		t.Fatalf("second link = %q %v, want the first id", id, err)
	}
	if got := webList(t, db, "telegram:1001"); len(got) != 1 {
		t.Errorf("list = %v", got)
	}
}

func TestHistoryPage(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	const chat = conversation.ChatID("c")
	for i := 0; i < 10; i += 2 {
		mustWeb(t, db.AppendTurn(ctx, chat, msg(chat, i), msg(chat, i+1)))
	}
	contents := func(msgs []conversation.Message) string {
		var s []string
		for _, m := range msgs {
			s = append(s, strings.TrimPrefix(m.Content, "c #"))
		}
		return strings.Join(s, ",")
	}
	page, first, err := db.HistoryPage(ctx, chat, 0, 4)
	if err != nil || contents(page) != "6,7,8,9" {
		t.Fatalf("newest page = %q %v", contents(page), err)
	}
	page, first, _ = db.HistoryPage(ctx, chat, first, 4)
	if contents(page) != "2,3,4,5" {
		t.Fatalf("second page = %q", contents(page))
	}
	page, first, _ = db.HistoryPage(ctx, chat, first, 4)
	if contents(page) != "0,1" {
		t.Fatalf("last page = %q", contents(page))
	}
	if page, _, _ = db.HistoryPage(ctx, chat, first, 4); len(page) != 0 {
		t.Fatalf("past the start = %q", contents(page))
	}
	if page, _, _ = db.HistoryPage(ctx, "none", 0, 4); len(page) != 0 {
		t.Fatalf("unknown chat = %q", contents(page))
	}
}

func TestDropLastTurn(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{MaxMessagesPerChat: 4})
	const chat = conversation.ChatID("c")
	if _, found, err := db.DropLastTurn(ctx, chat); found || err != nil {
		t.Fatalf("drop on an empty chat = %v %v", found, err)
	}
	mustWeb(t, db.AppendTurn(ctx, chat, msg(chat, 0), msg(chat, 1)))
	mustWeb(t, db.AppendTurn(ctx, chat, msg(chat, 2), msg(chat, 3)))
	user, found, err := db.DropLastTurn(ctx, chat)
	if err != nil || !found || user.Content != "c #2" {
		t.Fatalf("dropped %q %v %v", user.Content, found, err)
	}
	got, _ := db.Recent(ctx, chat, 10)
	if len(got) != 2 || got[1].Content != "c #1" {
		t.Fatalf("after drop: %v", got)
	}
	// The sequence goes on from the kept messages, so the cap still counts
	// right: two more turns keep exactly the newest four messages.
	mustWeb(t, db.AppendTurn(ctx, chat, msg(chat, 4), msg(chat, 5)))
	mustWeb(t, db.AppendTurn(ctx, chat, msg(chat, 6), msg(chat, 7)))
	got, _ = db.Recent(ctx, chat, 10)
	if len(got) != 4 || got[0].Content != "c #4" {
		t.Fatalf("after appends: %d messages, first %q", len(got), got[0].Content)
	}
}

func mustWeb(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestWebImagesKeptWithACap(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	const chat = conversation.ChatID("web:ana:x")
	if sha, err := db.WebImageFor(ctx, chat, "cat"); sha != "" || err != nil {
		t.Fatalf("empty store: %q %v", sha, err)
	}
	for i := range MaxWebImagesPerChat + 2 {
		mustWeb(t, db.PutWebImage(ctx, chat, fmt.Sprint("prompt ", i), fmt.Sprint("sha", i), []byte(fmt.Sprint("png ", i))))
	}
	if sha, _ := db.WebImageFor(ctx, chat, "prompt 0"); sha != "" {
		t.Errorf("the oldest picture is still kept: %q", sha)
	}
	sha, _ := db.WebImageFor(ctx, chat, "prompt 21")
	data, _ := db.WebImage(ctx, chat, sha)
	if sha != "sha21" || string(data) != "png 21" {
		t.Errorf("newest = %q %q", sha, data)
	}
	n := 0
	for i := range MaxWebImagesPerChat + 2 {
		if d, _ := db.WebImage(ctx, chat, fmt.Sprint("sha", i)); d != nil {
			n++
		}
	}
	if n != MaxWebImagesPerChat {
		t.Errorf("kept %d pictures, want %d", n, MaxWebImagesPerChat)
	}
	mustWeb(t, db.DeleteWebImages(ctx, chat))
	if d, _ := db.WebImage(ctx, chat, "sha21"); d != nil {
		t.Error("pictures kept after delete")
	}
}
