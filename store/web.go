package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

// The web chat's state (bots/web): sessions, one-time login tokens and each web
// user's list of conversations. Sessions and tokens are stored under the
// SHA-256 of their secret, so that a copy of the file does not log anyone in.
// The buckets are made on first write, so a store that never served the web
// chat has none of them.
var (
	bucketWebSessions = []byte("web_sessions") // sha256(token) → JSON webSession
	bucketWebTokens   = []byte("web_tokens")   // sha256(token) → JSON webToken
	bucketWebConvs    = []byte("web_convs")    // user → id → JSON webConv
	bucketWebImages   = []byte("web_images")   // chat → the pictures drawn there (PutWebImage)
)

// MaxWebImagesPerChat is how many drawn pictures the web chat keeps per chat;
// the oldest go first.
const MaxWebImagesPerChat = 20

// OpWeb names the web chat's operations in the store's error counts (Errors).
const OpWeb = "web"

type webSession struct {
	User    string    `json:"user"`
	Expires time.Time `json:"expires"`
}

type webToken struct {
	User    string              `json:"user"`
	Chat    conversation.ChatID `json:"chat"`
	Expires time.Time           `json:"expires"`
}

type webConv struct {
	Chat    conversation.ChatID `json:"chat"`
	Title   string              `json:"title"`
	Updated time.Time           `json:"updated"`
}

func secretKey(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// CreateWebSession stores a session of user under token until expires, and
// forgets the sessions that have expired.
func (db *DB) CreateWebSession(ctx context.Context, token, user string, expires time.Time) error {
	return db.webUpdate(ctx, "create web session", func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketWebSessions)
		if err != nil {
			return err
		}
		if err := forgetExpired(b, time.Now(), func(v []byte) (time.Time, error) {
			var s webSession
			err := json.Unmarshal(v, &s)
			return s.Expires, err
		}); err != nil {
			return err
		}
		return putJSON(b, secretKey(token), webSession{User: user, Expires: expires})
	})
}

// WebSession returns the user of the session stored under token and when it
// expires; user is "" when there is none or it expired before now.
func (db *DB) WebSession(ctx context.Context, token string, now time.Time) (user string, expires time.Time, err error) {
	var s webSession
	err = db.webView(ctx, "read web session", func(tx *bbolt.Tx) error {
		return getJSON(tx.Bucket(bucketWebSessions), secretKey(token), &s)
	})
	if err != nil || !now.Before(s.Expires) {
		return "", time.Time{}, err
	}
	return s.User, s.Expires, nil
}

// ExtendWebSession moves the session's expiry to expires (sliding sessions).
// An unknown session stays unknown.
func (db *DB) ExtendWebSession(ctx context.Context, token string, expires time.Time) error {
	return db.webUpdate(ctx, "extend web session", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketWebSessions)
		var s webSession
		if err := getJSON(b, secretKey(token), &s); err != nil || s.User == "" {
			return err
		}
		s.Expires = expires
		return putJSON(b, secretKey(token), s)
	})
}

// DeleteWebSession forgets the session stored under token (logout).
func (db *DB) DeleteWebSession(ctx context.Context, token string) error {
	return db.webUpdate(ctx, "delete web session", func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bucketWebSessions); b != nil {
			return b.Delete(secretKey(token))
		}
		return nil
	})
}

// CreateWebLoginToken stores a one-time login token for user, whose platform
// chat comes with them to the web, valid until expires. It forgets expired
// tokens on the way.
func (db *DB) CreateWebLoginToken(ctx context.Context, token, user string, chat conversation.ChatID, expires time.Time) error {
	return db.webUpdate(ctx, "create web login token", func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketWebTokens)
		if err != nil {
			return err
		}
		if err := forgetExpired(b, time.Now(), func(v []byte) (time.Time, error) {
			var t webToken
			err := json.Unmarshal(v, &t)
			return t.Expires, err
		}); err != nil {
			return err
		}
		return putJSON(b, secretKey(token), webToken{User: user, Chat: chat, Expires: expires})
	})
}

// TakeWebLoginToken uses up a login token: it returns its user and chat and
// deletes it, in one transaction, so that a token works once. user is "" when
// the token is unknown, used already or expired before now.
func (db *DB) TakeWebLoginToken(ctx context.Context, token string, now time.Time) (user string, chat conversation.ChatID, err error) {
	var t webToken
	err = db.webUpdate(ctx, "take web login token", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketWebTokens)
		if err := getJSON(b, secretKey(token), &t); err != nil || t.User == "" {
			return err
		}
		return b.Delete(secretKey(token))
	})
	if err != nil || !now.Before(t.Expires) {
		return "", "", err
	}
	return t.User, t.Chat, nil
}

// PutWebConversation records (or updates) the conversation id in user's list:
// its chat, its title and when it was last written to. An empty title keeps
// the title it has, a zero updated the time it has.
func (db *DB) PutWebConversation(ctx context.Context, user, id string, chat conversation.ChatID, title string, updated time.Time) error {
	return db.webUpdate(ctx, "save web conversation", func(tx *bbolt.Tx) error {
		b, err := webConvs(tx, user, true)
		if err != nil {
			return err
		}
		var c webConv
		if err := getJSON(b, []byte(id), &c); err != nil {
			return err
		}
		c.Chat = chat
		if !updated.IsZero() {
			c.Updated = updated
		}
		if title != "" {
			c.Title = title
		}
		return putJSON(b, []byte(id), c)
	})
}

// LinkWebConversation puts chat (a platform chat that comes with a user who
// logged in through a link) in user's list under id, unless it is there
// already; it returns the id the chat has in the list.
func (db *DB) LinkWebConversation(ctx context.Context, user, id string, chat conversation.ChatID, title string, updated time.Time) (string, error) {
	got := id
	err := db.webUpdate(ctx, "link web conversation", func(tx *bbolt.Tx) error {
		b, err := webConvs(tx, user, true)
		if err != nil {
			return err
		}
		found := ""
		if err := b.ForEach(func(k, v []byte) error {
			var c webConv
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			if c.Chat == chat && found == "" {
				found = string(k)
			}
			return nil
		}); err != nil {
			return err
		}
		if found != "" {
			got = found
			return nil
		}
		return putJSON(b, []byte(id), webConv{Chat: chat, Title: title, Updated: updated})
	})
	return got, err
}

// WebConversation returns the chat and title of the conversation id in user's
// list; chat is "" when user has no such conversation.
func (db *DB) WebConversation(ctx context.Context, user, id string) (chat conversation.ChatID, title string, err error) {
	var c webConv
	err = db.webView(ctx, "read web conversation", func(tx *bbolt.Tx) error {
		b, _ := webConvs(tx, user, false)
		return getJSON(b, []byte(id), &c)
	})
	return c.Chat, c.Title, err
}

// WebConversations calls fn with each conversation in user's list, the most
// recently written first.
func (db *DB) WebConversations(ctx context.Context, user string, fn func(id string, chat conversation.ChatID, title string, updated time.Time) error) error {
	type entry struct {
		id string
		webConv
	}
	var list []entry
	err := db.webView(ctx, "list web conversations", func(tx *bbolt.Tx) error {
		b, _ := webConvs(tx, user, false)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			e := entry{id: string(k)}
			if err := json.Unmarshal(v, &e.webConv); err != nil {
				return fmt.Errorf("conversation %q: %w", k, err)
			}
			list = append(list, e)
			return nil
		})
	})
	if err != nil {
		return err
	}
	slices.SortStableFunc(list, func(a, b entry) int { return b.Updated.Compare(a.Updated) })
	for _, e := range list {
		if err := fn(e.id, e.Chat, e.Title, e.Updated); err != nil {
			return err
		}
	}
	return nil
}

// DeleteWebConversation removes the conversation id from user's list (not its
// history: see Reset).
func (db *DB) DeleteWebConversation(ctx context.Context, user, id string) error {
	return db.webUpdate(ctx, "delete web conversation", func(tx *bbolt.Tx) error {
		b, _ := webConvs(tx, user, false)
		if b == nil {
			return nil
		}
		return b.Delete([]byte(id))
	})
}

// The keys of a chat's bucket under bucketWebImages.
var (
	imgData   = []byte("d/") // d/‖sha → bytes
	imgPrompt = []byte("p/") // p/‖prompt → sha
	imgAge    = []byte("a/") // a/‖seq‖sha → nil, oldest first
)

// PutWebImage keeps a picture drawn in chat for prompt, so that the web chat
// shows it again later; past MaxWebImagesPerChat the oldest goes.
func (db *DB) PutWebImage(ctx context.Context, chat conversation.ChatID, prompt, sha string, data []byte) error {
	return db.webUpdate(ctx, "save web image", func(tx *bbolt.Tx) error {
		top, err := tx.CreateBucketIfNotExists(bucketWebImages)
		if err != nil {
			return err
		}
		b, err := top.CreateBucketIfNotExists([]byte(chat))
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		for _, kv := range [][2][]byte{
			{append(imgData[:2:2], sha...), data},
			{append(imgPrompt[:2:2], prompt...), []byte(sha)},
			{append(append(imgAge[:2:2], seqKey(seq)...), sha...), nil},
		} {
			if err := b.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		var ages [][]byte
		c := b.Cursor()
		for k, _ := c.Seek(imgAge); bytes.HasPrefix(k, imgAge); k, _ = c.Next() {
			ages = append(ages, bytes.Clone(k))
		}
		for _, k := range ages[:max(len(ages)-MaxWebImagesPerChat, 0)] {
			if err := b.Delete(k); err != nil {
				return err
			}
			if err := b.Delete(append(imgData[:2:2], k[len(imgAge)+8:]...)); err != nil {
				return err
			}
		}
		return nil
	})
}

// WebImageFor returns the SHA-256 of the picture drawn in chat for prompt, or
// "" when none is kept.
func (db *DB) WebImageFor(ctx context.Context, chat conversation.ChatID, prompt string) (string, error) {
	var sha string
	err := db.webView(ctx, "read web image", func(tx *bbolt.Tx) error {
		if b := webImages(tx, chat); b != nil {
			if v := b.Get(append(imgPrompt[:2:2], prompt...)); v != nil && b.Get(append(imgData[:2:2], v...)) != nil {
				sha = string(v)
			}
		}
		return nil
	})
	return sha, err
}

// WebImage returns the bytes of a picture drawn in chat (nil when not kept).
func (db *DB) WebImage(ctx context.Context, chat conversation.ChatID, sha string) ([]byte, error) {
	var data []byte
	err := db.webView(ctx, "read web image", func(tx *bbolt.Tx) error {
		if b := webImages(tx, chat); b != nil {
			data = bytes.Clone(b.Get(append(imgData[:2:2], sha...)))
		}
		return nil
	})
	return data, err
}

// DeleteWebImages forgets the pictures drawn in chat.
func (db *DB) DeleteWebImages(ctx context.Context, chat conversation.ChatID) error {
	return db.webUpdate(ctx, "delete web images", func(tx *bbolt.Tx) error {
		if top := tx.Bucket(bucketWebImages); top != nil && top.Bucket([]byte(chat)) != nil {
			return top.DeleteBucket([]byte(chat))
		}
		return nil
	})
}

func webImages(tx *bbolt.Tx, chat conversation.ChatID) *bbolt.Bucket {
	if top := tx.Bucket(bucketWebImages); top != nil {
		return top.Bucket([]byte(chat))
	}
	return nil
}

// HistoryPage returns up to max of chat's messages stored before the sequence
// number before (0: the newest), oldest first, with the sequence number of
// the first one (0 when there is none), which pages further back. Its cost
// depends on max, not on the history's length.
func (db *DB) HistoryPage(ctx context.Context, chat conversation.ChatID, before uint64, max int) (msgs []conversation.Message, first uint64, err error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	err = db.view(OpReadHistory, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketChats).Bucket([]byte(chat))
		if b == nil || max <= 0 {
			return nil
		}
		c := b.Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else if k, v = c.Seek(seqKey(before)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && len(msgs) < max; k, v = c.Prev() {
			var m conversation.Message
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("message %x: %w", k, err)
			}
			msgs = append(msgs, m)
			first = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read history of %s: %w", chat, err)
	}
	slices.Reverse(msgs)
	return msgs, first, nil
}

// DropLastTurn deletes chat's last turn: the assistant's messages at the end
// and the user's message before them, which it returns (found is false when
// the history holds no user message). The web chat uses it to regenerate an
// answer or to edit and resend the last question. The attachments stay kept
// until the chat's caps prune them, so that a resend finds them.
func (db *DB) DropLastTurn(ctx context.Context, chat conversation.ChatID) (user conversation.Message, found bool, err error) {
	if err := ctx.Err(); err != nil {
		return user, false, err
	}
	err = db.update(OpWeb, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketChats).Bucket([]byte(chat))
		if b == nil {
			return nil
		}
		var drop [][]byte
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var m conversation.Message
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("message %x: %w", k, err)
			}
			drop = append(drop, bytes.Clone(k))
			if m.Role == conversation.RoleUser {
				user, found = m, true
				break
			}
		}
		if !found {
			return nil
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		// Keys stay contiguous (prune counts on it): the next message takes the
		// first sequence number dropped.
		return b.SetSequence(binary.BigEndian.Uint64(drop[len(drop)-1]) - 1)
	})
	if err != nil {
		return conversation.Message{}, false, fmt.Errorf("drop last turn of %s: %w", chat, err)
	}
	return user, found, nil
}

// webConvs is user's bucket of conversations, made when create is set (else
// nil when there is none).
func webConvs(tx *bbolt.Tx, user string, create bool) (*bbolt.Bucket, error) {
	if !create {
		if b := tx.Bucket(bucketWebConvs); b != nil {
			return b.Bucket([]byte(user)), nil
		}
		return nil, nil
	}
	b, err := tx.CreateBucketIfNotExists(bucketWebConvs)
	if err != nil {
		return nil, err
	}
	return b.CreateBucketIfNotExists([]byte(user))
}

// forgetExpired deletes the entries of b whose expiry (read by expiry) is
// before now.
func forgetExpired(b *bbolt.Bucket, now time.Time, expiry func([]byte) (time.Time, error)) error {
	var old [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if t, err := expiry(v); err != nil || t.Before(now) {
			old = append(old, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// getJSON decodes the value of key in b into v; a missing bucket or key
// leaves v as it is.
func getJSON(b *bbolt.Bucket, key []byte, v any) error {
	if b == nil {
		return nil
	}
	if data := b.Get(key); data != nil {
		return json.Unmarshal(data, v)
	}
	return nil
}

func putJSON(b *bbolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

func (db *DB) webUpdate(ctx context.Context, what string, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := db.update(OpWeb, fn); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (db *DB) webView(ctx context.Context, what string, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := db.view(OpWeb, fn); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
