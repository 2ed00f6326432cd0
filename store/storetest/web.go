package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatbot-dev/chatbot/conversation"
)

// WebStore is a store that also keeps the web chat's state (bots/web's
// Store): sessions, one-time login tokens, each web user's conversations,
// drawn pictures, history pages and dropping the last turn.
type WebStore interface {
	Store
	HistoryPage(ctx context.Context, chat conversation.ChatID, before uint64, max int) ([]conversation.Message, uint64, error)
	DropLastTurn(ctx context.Context, chat conversation.ChatID) (conversation.Message, bool, error)
	CreateWebSession(ctx context.Context, token, user string, expires time.Time) error
	WebSession(ctx context.Context, token string, now time.Time) (user string, expires time.Time, err error)
	ExtendWebSession(ctx context.Context, token string, expires time.Time) error
	DeleteWebSession(ctx context.Context, token string) error
	CreateWebLoginToken(ctx context.Context, token, user string, chat conversation.ChatID, expires time.Time) error
	TakeWebLoginToken(ctx context.Context, token string, now time.Time) (user string, chat conversation.ChatID, err error)
	PutWebConversation(ctx context.Context, user, id string, chat conversation.ChatID, title string, updated time.Time) error
	LinkWebConversation(ctx context.Context, user, id string, chat conversation.ChatID, title string, updated time.Time) (string, error)
	WebConversation(ctx context.Context, user, id string) (chat conversation.ChatID, title string, err error)
	WebConversations(ctx context.Context, user string, fn func(id string, chat conversation.ChatID, title string, updated time.Time) error) error
	DeleteWebConversation(ctx context.Context, user, id string) error
	PutWebImage(ctx context.Context, chat conversation.ChatID, prompt, sha string, data []byte) error
	WebImageFor(ctx context.Context, chat conversation.ChatID, prompt string) (string, error)
	WebImage(ctx context.Context, chat conversation.ChatID, sha string) ([]byte, error)
	DeleteWebImages(ctx context.Context, chat conversation.ChatID) error
}

// WebOpener opens a WebStore over one place, as Opener does.
type WebOpener func(t *testing.T, caps Caps) WebStore

// RunWeb runs the web chat's part of the suite; newPlace returns a WebOpener
// over a fresh, empty place.
func RunWeb(t *testing.T, newPlace func(t *testing.T) WebOpener) {
	for _, tt := range webTests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newPlace(t)) })
	}
}

var webTests = []struct {
	name string
	run  func(t *testing.T, open WebOpener)
}{
	{"WebSessions", testWebSessions},
	{"WebSessionsSurviveReopen", testWebSessionsSurviveReopen},
	{"WebLoginTokenWorksOnce", testWebLoginTokenWorksOnce},
	{"WebConversationList", testWebConversationList},
	{"LinkWebConversationOnce", testLinkWebConversationOnce},
	{"HistoryPage", testHistoryPage},
	{"DropLastTurn", testDropLastTurn},
	{"WebImagesKeptWithACap", testWebImagesKeptWithACap},
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testWebSessions(t *testing.T, open WebOpener) {
	ctx := context.Background()
	db := open(t, Caps{})
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if user, _, err := db.WebSession(ctx, "nope", now); err != nil || user != "" {
		t.Fatalf("unknown session on an empty store = %q, %v", user, err)
	}
	must(t, db.CreateWebSession(ctx, "tok", "web:ana", now.Add(time.Hour)))
	user, exp, err := db.WebSession(ctx, "tok", now)
	if err != nil || user != "web:ana" || !exp.Equal(now.Add(time.Hour)) {
		t.Fatalf("session = %q %v %v", user, exp, err)
	}
	if user, _, _ := db.WebSession(ctx, "tok", now.Add(time.Hour)); user != "" {
		t.Errorf("expired session still gives %q", user)
	}
	must(t, db.ExtendWebSession(ctx, "tok", now.Add(48*time.Hour)))
	if user, _, _ := db.WebSession(ctx, "tok", now.Add(47*time.Hour)); user != "web:ana" {
		t.Errorf("extended session = %q", user)
	}
	must(t, db.DeleteWebSession(ctx, "tok"))
	if user, _, _ := db.WebSession(ctx, "tok", now); user != "" {
		t.Errorf("deleted session still gives %q", user)
	}
	must(t, db.ExtendWebSession(ctx, "tok", now.Add(time.Hour)))
	if user, _, _ := db.WebSession(ctx, "tok", now); user != "" {
		t.Errorf("extending a deleted session brought it back: %q", user)
	}
}

func testWebSessionsSurviveReopen(t *testing.T, open WebOpener) {
	ctx := context.Background()
	db := open(t, Caps{})
	exp := time.Now().Add(time.Hour)
	must(t, db.CreateWebSession(ctx, "tok", "telegram:1001", exp))
	must(t, db.PutWebConversation(ctx, "telegram:1001", "a", "telegram:1001", "Telegram chat", time.Now()))
	must(t, db.Close())
	db = open(t, Caps{})
	if user, _, err := db.WebSession(ctx, "tok", time.Now()); err != nil || user != "telegram:1001" {
		t.Errorf("session after reopen = %q %v", user, err)
	}
	if chat, title, err := db.WebConversation(ctx, "telegram:1001", "a"); err != nil || chat != "telegram:1001" || title != "Telegram chat" {
		t.Errorf("conversation after reopen = %q %q %v", chat, title, err)
	}
}

func testWebLoginTokenWorksOnce(t *testing.T, open WebOpener) {
	ctx := context.Background()
	db := open(t, Caps{})
	now := time.Now()
	must(t, db.CreateWebLoginToken(ctx, "t1", "telegram:1001", "telegram:1001", now.Add(10*time.Minute)))
	user, chat, err := db.TakeWebLoginToken(ctx, "t1", now)
	if err != nil || user != "telegram:1001" || chat != "telegram:1001" {
		t.Fatalf("take = %q %q %v", user, chat, err)
	}
	if user, _, err := db.TakeWebLoginToken(ctx, "t1", now); err != nil || user != "" {
		t.Errorf("second take = %q, %v", user, err)
	}
	if user, _, err := db.TakeWebLoginToken(ctx, "never made", now); err != nil || user != "" {
		t.Errorf("unknown token = %q, %v", user, err)
	}
	must(t, db.CreateWebLoginToken(ctx, "t2", "slack:U1", "slack:T1:D1", now.Add(10*time.Minute)))
	if user, _, _ := db.TakeWebLoginToken(ctx, "t2", now.Add(10*time.Minute)); user != "" {
		t.Errorf("expired token gives %q", user)
	}
	if user, _, _ := db.TakeWebLoginToken(ctx, "t2", now); user != "" {
		t.Errorf("an expired token, once tried, still works: %q", user)
	}
}

type listed struct {
	id    string
	chat  conversation.ChatID
	title string
}

func webList(t *testing.T, db WebStore, user string) []listed {
	t.Helper()
	var got []listed
	err := db.WebConversations(context.Background(), user, func(id string, chat conversation.ChatID, title string, _ time.Time) error {
		got = append(got, listed{id, chat, title})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func testWebConversationList(t *testing.T, open WebOpener) {
	ctx := context.Background()
	db := open(t, Caps{})
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if got := webList(t, db, "web:ana"); len(got) != 0 {
		t.Fatalf("empty store lists %v", got)
	}
	must(t, db.PutWebConversation(ctx, "web:ana", "a", "web:ana:a", "First", t0))
	must(t, db.PutWebConversation(ctx, "web:ana", "b", "web:ana:b", "Second", t0.Add(time.Minute)))
	must(t, db.PutWebConversation(ctx, "web:bob", "c", "web:bob:c", "Bob's", t0))
	want := []listed{{"b", "web:ana:b", "Second"}, {"a", "web:ana:a", "First"}}
	if got := webList(t, db, "web:ana"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("list = %v, want %v", got, want)
	}
	// Writing to a conversation moves it to the top and keeps its title.
	must(t, db.PutWebConversation(ctx, "web:ana", "a", "web:ana:a", "", t0.Add(2*time.Minute)))
	if got := webList(t, db, "web:ana"); got[0].id != "a" || got[0].title != "First" {
		t.Fatalf("after a write: %v", got)
	}
	// Renaming keeps the time (and the place in the list).
	must(t, db.PutWebConversation(ctx, "web:ana", "b", "web:ana:b", "Renamed b", time.Time{}))
	if got := webList(t, db, "web:ana"); got[0].id != "a" || got[1].title != "Renamed b" {
		t.Fatalf("after a rename: %v", got)
	}
	chat, title, err := db.WebConversation(ctx, "web:ana", "b")
	if err != nil || chat != "web:ana:b" || title != "Renamed b" {
		t.Fatalf("conversation b = %q %q %v", chat, title, err)
	}
	// A user sees only their own conversations.
	if chat, _, _ := db.WebConversation(ctx, "web:bob", "a"); chat != "" {
		t.Errorf("bob opens ana's conversation: %q", chat)
	}
	if chat, _, _ := db.WebConversation(ctx, "web:nobody", "a"); chat != "" {
		t.Errorf("an unknown user opens a conversation: %q", chat)
	}
	must(t, db.DeleteWebConversation(ctx, "web:ana", "a"))
	if got := webList(t, db, "web:ana"); len(got) != 1 || got[0].id != "b" {
		t.Errorf("after delete: %v", got)
	}
}

func testLinkWebConversationOnce(t *testing.T, open WebOpener) {
	ctx := context.Background()
	db := open(t, Caps{})
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

func testHistoryPage(t *testing.T, open WebOpener) {
	ctx := context.Background()
	db := open(t, Caps{})
	const chat = conversation.ChatID("c")
	fill(t, db, chat, 0, 10)
	texts := func(ms []conversation.Message) string {
		var s []string
		for _, m := range ms {
			s = append(s, strings.TrimPrefix(m.Content, "c #"))
		}
		return strings.Join(s, ",")
	}
	page, first, err := db.HistoryPage(ctx, chat, 0, 4)
	if err != nil || texts(page) != "6,7,8,9" {
		t.Fatalf("newest page = %q %v", texts(page), err)
	}
	page, first, _ = db.HistoryPage(ctx, chat, first, 4)
	if texts(page) != "2,3,4,5" {
		t.Fatalf("second page = %q", texts(page))
	}
	page, first, _ = db.HistoryPage(ctx, chat, first, 4)
	if texts(page) != "0,1" {
		t.Fatalf("last page = %q", texts(page))
	}
	if page, _, _ = db.HistoryPage(ctx, chat, first, 4); len(page) != 0 {
		t.Fatalf("past the start = %q", texts(page))
	}
	if page, _, _ = db.HistoryPage(ctx, "none", 0, 4); len(page) != 0 {
		t.Fatalf("unknown chat = %q", texts(page))
	}
}

func testDropLastTurn(t *testing.T, open WebOpener) {
	ctx := context.Background()
	db := open(t, Caps{MaxMessagesPerChat: 4})
	const chat = conversation.ChatID("c")
	if _, found, err := db.DropLastTurn(ctx, chat); found || err != nil {
		t.Fatalf("drop on an empty chat = %v %v", found, err)
	}
	fill(t, db, chat, 0, 4)
	user, found, err := db.DropLastTurn(ctx, chat)
	if err != nil || !found || user.Content != "c #2" || user.Role != conversation.RoleUser {
		t.Fatalf("dropped %+v %v %v", user, found, err)
	}
	if got := recent(t, db, chat, 10); len(got) != 2 || got[1].Content != "c #1" {
		t.Fatalf("after drop: %v", contents(got))
	}
	// The sequence goes on from the messages kept, so the cap still counts
	// right: two more turns keep exactly the newest four messages.
	fill(t, db, chat, 4, 8)
	if got := recent(t, db, chat, 10); len(got) != 4 || got[0].Content != "c #4" {
		t.Fatalf("after appends: %v", contents(got))
	}
	page, _, _ := db.HistoryPage(ctx, chat, 0, 10)
	if len(page) != 4 {
		t.Fatalf("page after appends: %v", contents(page))
	}
}

func testWebImagesKeptWithACap(t *testing.T, open WebOpener) {
	ctx := context.Background()
	db := open(t, Caps{})
	const chat = conversation.ChatID("web:ana:x")
	const max = 20 // store.MaxWebImagesPerChat
	if sha, err := db.WebImageFor(ctx, chat, "cat"); sha != "" || err != nil {
		t.Fatalf("empty store: %q %v", sha, err)
	}
	for i := range max + 2 {
		must(t, db.PutWebImage(ctx, chat, fmt.Sprint("prompt ", i), fmt.Sprint("sha", i), []byte(fmt.Sprint("png ", i))))
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
	for i := range max + 2 {
		if d, _ := db.WebImage(ctx, chat, fmt.Sprint("sha", i)); d != nil {
			n++
		}
	}
	if n != max {
		t.Errorf("kept %d pictures, want %d", n, max)
	}
	// The same prompt drawn again shows the newer picture.
	must(t, db.PutWebImage(ctx, chat, "prompt 21", "sha-new", []byte("png new")))
	if sha, _ := db.WebImageFor(ctx, chat, "prompt 21"); sha != "sha-new" {
		t.Errorf("redrawn prompt = %q", sha)
	}
	must(t, db.DeleteWebImages(ctx, chat))
	if d, _ := db.WebImage(ctx, chat, "sha21"); d != nil {
		t.Error("pictures kept after delete")
	}
}
