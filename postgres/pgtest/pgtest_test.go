package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/lapsehq/lapse/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestDatabases checks that each test database is fresh and its own.
func TestDatabases(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	if a == b {
		t.Fatalf("two databases share the URL %s", a)
	}
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, `CREATE TABLE x (n int)`); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'x'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the second database sees %d tables named x (%v), want 0", n, err)
	}
}

// TestStopStart checks that a private server keeps its data across a
// crash-like stop and a start on the same address.
func TestStopStart(t *testing.T) {
	ctx := context.Background()
	s := pgtest.NewServer(t)
	url := s.NewDatabase(t)
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `CREATE TABLE x (n int); INSERT INTO x VALUES (7)`); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := c.Ping(ctx); err == nil {
		t.Fatal("a connection still answers after Stop")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	c2, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	var n int
	if err := c2.QueryRow(ctx, `SELECT n FROM x`).Scan(&n); err != nil || n != 7 {
		t.Errorf("after a restart: n = %d, %v; want 7", n, err)
	}
}
