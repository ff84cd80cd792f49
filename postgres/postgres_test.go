package postgres_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/postgres"
	"github.com/lapsehq/lapse/postgres/pgtest"
	"github.com/lapsehq/lapse/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T, url string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Spec{
		New: func(t *testing.T) lapse.Store { return open(t, pgtest.NewDatabase(t)) },
		// Every optional interface but Tidier: a sweep rewrites the rows
		// it expires, so no work is put off.
		Claims: []storetest.Capability{
			storetest.EventLog, storetest.AuditLog, storetest.ActiveCounter, storetest.Pinger,
			storetest.ExpiryIndex, storetest.Purger, storetest.ChangeFeed,
			storetest.DeliveryQueue, storetest.FactorStore, storetest.SessionLister, storetest.EventRecorder,
			storetest.IdPIndex, storetest.ReplayGuard, storetest.DeviceBinder, storetest.KeyStore, storetest.OperatorStore,
		},
		Nodes: func(t *testing.T) (a, b lapse.Store, down func()) {
			srv := pgtest.NewServer(t)
			url := srv.NewDatabase(t)
			return open(t, url, postgres.WithHeartbeat(200*time.Millisecond)), open(t, url, postgres.WithHeartbeat(200*time.Millisecond)), srv.Stop
		},
	})
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func newSession(subject string, at time.Time) *lapse.Session {
	return &lapse.Session{
		ID: lapse.NewID("ses_"), TokenHash: lapse.NewToken().Hash(),
		Subject: subject, Tier: "standard", AAL: 1, AMR: []string{"pwd"}, Status: lapse.StatusActive,
		CreatedAt: at, LastActiveAt: at, AuthenticatedAt: at,
		IdleExpiresAt: at.Add(10 * time.Minute), ExpiresAt: at.Add(time.Hour), WarnAt: at.Add(9 * time.Minute),
		Policy: lapse.Tier{IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour, WarnBefore: time.Minute},
	}
}

// TestNodesMigrateTogether opens one fresh database from several stores
// at once, as nodes starting together would: each migration step is
// applied once and every store works.
func TestNodesMigrateTogether(t *testing.T) {
	url := pgtest.NewDatabase(t)
	const n = 6
	stores := make([]*postgres.Store, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			st, err := postgres.Open(context.Background(), url)
			stores[i] = st
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("Open beside other nodes: %v", err)
		}
	}
	for i, st := range stores {
		defer st.Close()
		if _, err := st.Create(context.Background(), newSession(fmt.Sprint("u", i), t0), 0); err != nil {
			t.Errorf("store %d after a concurrent migration: %v", i, err)
		}
	}
}

func TestOpenRejects(t *testing.T) {
	ctx := context.Background()
	if _, err := postgres.Open(ctx, "postgres://host:notaport/db"); lapse.ErrorCode(err) != lapse.CodeInvalid {
		t.Errorf("Open of a malformed URL: %v, want %s", err, lapse.CodeInvalid)
	}
	// A loopback port with nothing behind it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if _, err := postgres.Open(ctx, "postgres://lapse@"+addr+"/lapse?sslmode=disable"); lapse.ErrorCode(err) != lapse.CodeStoreUnavailable {
		t.Errorf("Open of an unreachable database: %v, want %s", err, lapse.CodeStoreUnavailable)
	}
}

// TestUnavailable stops PostgreSQL under a working store: every call
// fails with store_unavailable (and none hangs: a guard of many seconds
// against "never"); after a restart on the same port the same store
// works again, with its data.
func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.NewServer(t)
	st := open(t, srv.NewDatabase(t))
	s := newSession("alice", t0)
	if _, err := st.Create(ctx, s, 0); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	const guard = 30 * time.Second
	for _, c := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"SessionByToken", func(ctx context.Context) error { _, err := st.SessionByToken(ctx, s.TokenHash); return err }},
		{"Session", func(ctx context.Context) error { _, err := st.Session(ctx, s.ID); return err }},
		{"Create", func(ctx context.Context) error { _, err := st.Create(ctx, newSession("bob", t0), 0); return err }},
		{"End", func(ctx context.Context) error {
			_, _, err := st.End(ctx, s.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogout, Now: t0})
			return err
		}},
		{"ExpireDue", func(ctx context.Context) error { _, err := st.ExpireDue(ctx, t0.Add(time.Hour), 10); return err }},
		{"Events", func(ctx context.Context) error { _, err := st.Events(ctx, 0, 10); return err }},
		{"Ping", st.Ping},
	} {
		done := make(chan error, 1)
		go func() { done <- c.call(ctx) }()
		select {
		case err := <-done:
			if got := lapse.ErrorCode(err); got != lapse.CodeStoreUnavailable {
				t.Errorf("%s with PostgreSQL down: code %q (%v), want %q", c.name, got, err, lapse.CodeStoreUnavailable)
			}
		case <-time.After(guard):
			t.Fatalf("%s with PostgreSQL down did not return within %v", c.name, guard)
		}
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(guard)
	for {
		got, err := st.SessionByToken(ctx, s.TokenHash)
		if err == nil {
			if got.ID != s.ID || got.Status != lapse.StatusActive {
				t.Errorf("after the restart: %+v, want the session kept, active", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after PostgreSQL came back, the store still fails: %v", guard, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := st.Create(ctx, newSession("bob", t0), 0); err != nil {
		t.Errorf("Create after the restart: %v", err)
	}
}

// TestHungDatabaseFailsTheCall holds a lock that every write and the
// log head's read wait for, as a database that hangs would: calls fail
// with store_unavailable after the store's timeout instead of waiting
// for good (a guard of many seconds against "never"), and work again
// once the lock is gone.
func TestHungDatabaseFailsTheCall(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	st := open(t, url, postgres.WithTimeout(200*time.Millisecond))
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE chain_head IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"LastSeq", func() error { _, err := st.LastSeq(ctx); return err }},
		{"Create", func() error { _, err := st.Create(ctx, newSession("alice", t0), 0); return err }},
	} {
		done := make(chan error, 1)
		go func() { done <- c.call() }()
		select {
		case err := <-done:
			if got := lapse.ErrorCode(err); got != lapse.CodeStoreUnavailable {
				t.Errorf("%s on a hung database: code %q (%v), want %q", c.name, got, err, lapse.CodeStoreUnavailable)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s on a hung database did not return", c.name)
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// The store recovers once the lock is gone. Its timeout is short, so
	// on a loaded machine a call may still time out: try again, within a
	// guard against "never".
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, err := st.Create(ctx, newSession("alice", t0), 0)
		if err == nil {
			break
		}
		if lapse.ErrorCode(err) != lapse.CodeStoreUnavailable || time.Now().After(deadline) {
			t.Fatalf("Create once the lock is gone: %v", err)
		}
	}
}
