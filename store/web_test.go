package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// The web chat's state is tested against both stores by storetest.RunWeb;
// these tests look into the bbolt file.

func TestWebSecretsStoredHashed(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, Options{})
	exp := time.Now().Add(time.Hour)
	if err := db.CreateWebSession(ctx, "session-secret", "web:ana", exp); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateWebLoginToken(ctx, "token-secret", "telegram:1", "telegram:1", exp); err != nil {
		t.Fatal(err)
	}
	db.bolt.View(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketWebSessions, bucketWebTokens} {
			tx.Bucket(name).ForEach(func(k, v []byte) error {
				if strings.Contains(string(k)+string(v), "secret") {
					t.Errorf("%s holds a secret in clear: %q → %q", name, k, v)
				}
				return nil
			})
		}
		return nil
	})
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
