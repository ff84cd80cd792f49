package redis

import (
	"context"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/redis/redistest"
)

// TestRelayFullSweepFindsUnhintedEvents loses a hint, as a crash between
// a change and its hint would, and checks that the relay's periodic full
// sweep still moves the event into the log.
func TestRelayFullSweepFindsUnhintedEvents(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, redistest.NewServer(t).URL())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Events(ctx, 0, 10); err != nil { // the first relay is a full sweep
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	s := &lapse.Session{
		ID: lapse.NewID("ses_"), TokenHash: lapse.NewToken().Hash(), Subject: "alice", Tier: "standard",
		Status: lapse.StatusActive, CreatedAt: at, LastActiveAt: at, AuthenticatedAt: at,
		IdleExpiresAt: at.Add(time.Minute), ExpiresAt: at.Add(time.Hour), WarnAt: at,
	}
	if _, err := st.Create(ctx, s, 0); err != nil {
		t.Fatal(err)
	}
	if err := st.c.Del(ctx, st.logKey("dirty")).Err(); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.lastFull = time.Now() // no full sweep due for a second
	st.mu.Unlock()
	if evs, _ := st.Events(ctx, 0, 10); len(evs) != 0 {
		t.Fatalf("without a hint and before a full sweep is due, Events = %v; want the event still in the outbox", evs)
	}
	st.mu.Lock()
	st.lastFull = time.Time{} // a full sweep is due
	st.mu.Unlock()
	evs, err := st.Events(ctx, 0, 10)
	if err != nil || len(evs) != 1 || evs[0].SessionID != s.ID {
		t.Fatalf("after a full sweep, Events = %v, %v; want the created event", evs, err)
	}
}

// TestRelayHealsALogRollback rolls the event log back as a failover of
// its master with asynchronous replication could (the log, its head and
// the relay cursors lose their last writes together), and checks that
// the next relay appends the lost events again from the outboxes.
func TestRelayHealsALogRollback(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, redistest.NewServer(t).URL())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, sub := range []string{"alice", "bob"} {
		s := &lapse.Session{
			ID: lapse.NewID("ses_"), TokenHash: lapse.NewToken().Hash(), Subject: sub, Tier: "standard",
			Status: lapse.StatusActive, CreatedAt: at, LastActiveAt: at, AuthenticatedAt: at,
			IdleExpiresAt: at.Add(time.Minute), ExpiresAt: at.Add(time.Hour), WarnAt: at,
		}
		if _, err := st.Create(ctx, s, 0); err != nil {
			t.Fatal(err)
		}
	}
	before, err := st.Events(ctx, 0, 10)
	if err != nil || len(before) != 2 {
		t.Fatalf("Events = %v, %v", before, err)
	}
	// The failover: the log slot loses everything.
	if err := st.c.Del(ctx, st.logKey("events"), st.logKey("head"), st.logKey("cursor"), st.logKey("dirty")).Err(); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.lastFull = time.Time{}
	st.mu.Unlock()
	after, err := st.Events(ctx, 0, 10)
	if err != nil || len(after) != 2 {
		t.Fatalf("after the rollback, Events = %v, %v; want both events again", after, err)
	}
	for i := range after {
		if after[i].ID != before[i].ID || after[i].Seq != before[i].Seq {
			t.Errorf("event %d after the rollback = %+v, want %+v", i, after[i], before[i])
		}
	}
}
