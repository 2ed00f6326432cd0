package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/chatbot-dev/chatbot/conversation"
)

var _ conversation.BlobStore = (*DB)(nil)

// DefaultMaxFileBytesPerChat is the per-chat cap on kept attachments when
// Options leaves it at zero.
const DefaultMaxFileBytesPerChat = 64 << 20

// The keys of a chat's bucket under bucketBlobs. Each attachment is kept once
// per chat, by its SHA256, and indexed by the newest message that uses it, so
// that it goes when that message is pruned, or, oldest first, when the chat's
// attachments pass the byte cap.
var (
	blobData  = []byte("d/") // d/‖sha → bytes
	blobRef   = []byte("r/") // r/‖sha → newest message sequence (8 bytes)
	blobAge   = []byte("a/") // a/‖seq‖sha → nil, oldest first
	blobTotal = []byte("total")
)

// Blob returns the bytes of an attachment kept for chat, or nil when it is not
// kept (pruned, or never stored).
func (db *DB) Blob(ctx context.Context, chat conversation.ChatID, sha string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var data []byte
	err := db.view(OpReadBlob, func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bucketBlobs).Bucket([]byte(chat)); b != nil {
			data = bytes.Clone(b.Get(append(blobData[:2:2], sha...)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read attachment of %s: %w", chat, err)
	}
	return data, nil
}

// putBlobs keeps the attachments of the message stored at seq.
func (db *DB) putBlobs(tx *bbolt.Tx, chat conversation.ChatID, seq uint64, atts []conversation.Attachment) error {
	var b *bbolt.Bucket
	for _, a := range atts {
		if a.Data == nil || a.SHA256 == "" {
			continue
		}
		if b == nil {
			var err error
			if b, err = tx.Bucket(bucketBlobs).CreateBucketIfNotExists([]byte(chat)); err != nil {
				return err
			}
		}
		sha := []byte(a.SHA256)
		if b.Get(append(blobData[:2:2], sha...)) == nil {
			if err := b.Put(append(blobData[:2:2], sha...), a.Data); err != nil {
				return err
			}
			if err := addTotal(b, int64(len(a.Data))); err != nil {
				return err
			}
		} else if old := b.Get(append(blobRef[:2:2], sha...)); len(old) == 8 {
			if err := b.Delete(ageKey(binary.BigEndian.Uint64(old), sha)); err != nil {
				return err
			}
		}
		if err := b.Put(append(blobRef[:2:2], sha...), seqKey(seq)); err != nil {
			return err
		}
		if err := b.Put(ageKey(seq, sha), nil); err != nil {
			return err
		}
	}
	return nil
}

// pruneBlobs drops the chat's attachments whose newest message is older than
// keep (the oldest sequence still kept), then the oldest ones while the chat's
// attachments take more than the cap.
func (db *DB) pruneBlobs(tx *bbolt.Tx, chat conversation.ChatID, keep uint64) error {
	b := tx.Bucket(bucketBlobs).Bucket([]byte(chat))
	if b == nil {
		return nil
	}
	c := b.Cursor()
	for k, _ := c.Seek(blobAge); bytes.HasPrefix(k, blobAge); k, _ = c.Seek(blobAge) {
		seq := binary.BigEndian.Uint64(k[len(blobAge):])
		if seq >= keep && total(b) <= int64(db.maxBlobBytes) {
			return nil
		}
		if err := dropBlob(b, k); err != nil {
			return err
		}
	}
	return nil
}

// dropBlob deletes the attachment indexed by the age key k.
func dropBlob(b *bbolt.Bucket, k []byte) error {
	sha := bytes.Clone(k[len(blobAge)+8:])
	data := append(blobData[:2:2], sha...)
	n := len(b.Get(data))
	for _, key := range [][]byte{bytes.Clone(k), data, append(blobRef[:2:2], sha...)} {
		if err := b.Delete(key); err != nil {
			return err
		}
	}
	return addTotal(b, -int64(n))
}

func ageKey(seq uint64, sha []byte) []byte {
	k := append(blobAge[:2:2], seqKey(seq)...)
	return append(k, sha...)
}

func total(b *bbolt.Bucket) int64 {
	if v := b.Get(blobTotal); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func addTotal(b *bbolt.Bucket, n int64) error {
	return b.Put(blobTotal, binary.BigEndian.AppendUint64(nil, uint64(max(total(b)+n, 0))))
}
