package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestDatabase starts a server, makes two databases and checks they are empty,
// apart and usable, then that Stop removes the server's folder.
func TestDatabase(t *testing.T) {
	s := New()
	a, b := s.Database(t), s.Database(t)
	if a == b {
		t.Fatalf("two databases with one URL %s", a)
	}
	ctx := context.Background()
	for _, url := range []string{a, b} {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d tables, %v; want an empty database", url, n, err)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE x (v int)"); err != nil {
			t.Errorf("%s: %v", url, err)
		}
		conn.Close(ctx)
	}
	dir := s.dir
	s.Stop()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("after Stop, %s: %v; want it removed", dir, err)
	}
}
