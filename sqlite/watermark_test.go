package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

var ctx = context.Background()

func openTest(t *testing.T) *Store {
	t.Helper()
	st, err := Open(filepath.Join(t.TempDir(), "lapse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func session(subject string, at time.Time) *lapse.Session {
	return &lapse.Session{
		ID: lapse.NewID("ses_"), TokenHash: lapse.NewToken().Hash(), Subject: subject, Tier: "standard",
		AAL: 1, AMR: []string{"pwd"}, Status: lapse.StatusActive,
		CreatedAt: at, LastActiveAt: at, AuthenticatedAt: at,
		IdleExpiresAt: at.Add(10 * time.Minute), ExpiresAt: at.Add(time.Hour), WarnAt: at.Add(9 * time.Minute),
		Policy: lapse.Tier{IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour, WarnBefore: time.Minute},
	}
}

// TestCreateBehindWatermark: a session created by a caller whose clock is
// behind the sweep's, already past a deadline the sweep covered, is
// refused (it would read as expired at once), and the subject's other
// sessions are not ended to make room for it.
func TestCreateBehindWatermark(t *testing.T) {
	st := openTest(t)
	keep := session("alice", t0.Add(2*time.Hour))
	if _, err := st.Create(ctx, keep, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ExpireDue(ctx, t0.Add(time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	late := session("alice", t0) // idle deadline t0+10m, behind the watermark
	_, err := st.Create(ctx, late, 1)
	if code := lapse.ErrorCode(err); code != lapse.CodeStoreUnavailable {
		t.Fatalf("Create behind the watermark: %v, want %s", err, lapse.CodeStoreUnavailable)
	}
	if _, err := st.Session(ctx, late.ID); lapse.ErrorCode(err) != lapse.CodeSessionNotFound {
		t.Errorf("the refused session was stored: %v", err)
	}
	if got, err := st.Session(ctx, keep.ID); err != nil || got.Status != lapse.StatusActive {
		t.Errorf("the subject's session was ended for a refused one: %+v, %v", got, err)
	}
	// A step-up whose new deadlines fall behind the watermark is refused
	// the same way, and the session stays as it was.
	r := lapse.Rotation{OldHash: keep.TokenHash, NewHash: lapse.NewToken().Hash(), AAL: 2, AMR: []string{"pwd", "otp"}, Now: t0.Add(-30 * time.Minute), Grace: time.Second}
	if _, err := st.Rotate(ctx, keep.ID, r); lapse.ErrorCode(err) != lapse.CodeStoreUnavailable {
		t.Errorf("Rotate with a clock behind the watermark: %v, want %s", err, lapse.CodeStoreUnavailable)
	}
	if got, _ := st.Session(ctx, keep.ID); got.TokenHash != keep.TokenHash || got.AAL != 1 {
		t.Errorf("the refused rotation changed the session")
	}
}

// TestEventTimesNeverDecrease: an event from a clock behind the last one
// is stored at the last time, so a time range is a seq range, and the
// binary search finds the bounds of any range.
func TestEventTimesNeverDecrease(t *testing.T) {
	st := openTest(t)
	offsets := []int{0, 1, 2, 2, 5, 3, 7, 8, 8, 8, 12} // minutes; 3 is a clock step back
	for i, m := range offsets {
		s := session(fmt.Sprintf("u%d", i), t0.Add(time.Duration(m)*time.Minute))
		if _, err := st.Create(ctx, s, 0); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := st.QueryEvents(ctx, lapse.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Time.Before(evs[i-1].Time) {
			t.Fatalf("event %d at %v is before event %d at %v", evs[i].Seq, evs[i].Time, evs[i-1].Seq, evs[i-1].Time)
		}
	}
	if !evs[5].Time.Equal(t0.Add(5 * time.Minute)) {
		t.Errorf("the event from the clock behind is at %v, want the last time, %v", evs[5].Time, t0.Add(5*time.Minute))
	}
	for since := -1; since <= 13; since++ {
		for until := since; until <= 14; until++ {
			q := lapse.EventQuery{Since: t0.Add(time.Duration(since) * time.Minute), Until: t0.Add(time.Duration(until) * time.Minute)}
			got, err := st.QueryEvents(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var want []int64
			for _, e := range evs {
				if !e.Time.Before(q.Since) && e.Time.Before(q.Until) {
					want = append(want, e.Seq)
				}
			}
			var seqs []int64
			for _, e := range got {
				seqs = append(seqs, e.Seq)
			}
			if !slices.Equal(seqs, want) {
				t.Errorf("events in [%dm, %dm) = %v, want %v", since, until, seqs, want)
			}
		}
	}
}

// TestMigrationKeepsTheLog opens a database of schema version 3, as lapse
// wrote it before the watermark, and finds its events by key and time,
// its chain intact and its lapsed session swept once.
func TestMigrationKeepsTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lapse.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"0001_init.sql", "0002_rotation_sweep_webhooks.sql", "0003_factors.sql"} {
		body, err := migrations.ReadFile("migrations/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// One session lapsed at t0+10m, one still active, and one created
	// after a clock step back, with their events chained as version 3
	// chained them: with times as given, out of order.
	old, live, stepped := session("alice", t0), session("bob", t0.Add(time.Hour)), session("carol", t0.Add(time.Minute))
	var prev []byte = []byte{}
	for i, s := range []*lapse.Session{old, live, stepped} {
		if _, err := db.Exec(`INSERT INTO sessions (id, token_hash, subject, tenant, tier, aal, amr, status, created_at, last_active_at,
			authenticated_at, idle_expires_at, expires_at, warn_at, idle_timeout, absolute_timeout, warn_before, require_aal, max_auth_age,
			max_sessions, remind_after) VALUES (?, ?, ?, '', 'standard', 1, '["pwd"]', 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0)`,
			s.ID, s.TokenHash[:], s.Subject, nanos(s.CreatedAt), nanos(s.CreatedAt), nanos(s.CreatedAt), nanos(s.IdleExpiresAt),
			nanos(s.ExpiresAt), nanos(s.WarnAt), int64(10*time.Minute), int64(time.Hour), int64(time.Minute)); err != nil {
			t.Fatal(err)
		}
		ev := lapse.NewEvent(lapse.EventCreated, s, "", lapse.ActorAPI, s.CreatedAt)
		ev.ID, ev.Seq = lapse.NewID("evt_"), int64(i+1) // random ids, as version 3 made them
		hash := ev.ChainHash(prev)
		if _, err := db.Exec(`INSERT INTO events (seq, id, type, time, session_id, subject, tenant, tier, reason, actor, prev_hash, hash)
			VALUES (?, ?, ?, ?, ?, ?, '', 'standard', '', 'api', ?, ?)`, ev.Seq, ev.ID, ev.Type, nanos(ev.Time), ev.SessionID, ev.Subject, prev, hash); err != nil {
			t.Fatal(err)
		}
		prev = hash
	}
	if _, err := db.Exec(`PRAGMA user_version = 3`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if evs, err := st.QueryEvents(ctx, lapse.EventQuery{Subject: "bob"}); err != nil || len(evs) != 1 || evs[0].SessionID != live.ID {
		t.Errorf("events of bob after the migration = %+v, %v", evs, err)
	}
	if evs, err := st.QueryEvents(ctx, lapse.EventQuery{SessionID: old.ID, Since: t0, Until: t0.Add(time.Minute)}); err != nil || len(evs) != 1 {
		t.Errorf("events of alice's session in its first minute = %+v, %v", evs, err)
	}
	due, err := st.ExpireDue(ctx, t0.Add(30*time.Minute), 10)
	if err != nil || len(due) != 2 || due[0].ID != old.ID || due[1].ID != stepped.ID {
		t.Fatalf("first sweep after the migration = %v, %v; want alice's and carol's lapsed sessions", sessionIDsOf(due), err)
	}
	// Every time range finds exactly the records whose times fall in it,
	// in the migrated part and in the part appended since.
	all, err := st.Events(ctx, 0, 100)
	if err != nil || len(all) != 5 {
		t.Fatalf("log = %d events, %v; want 5", len(all), err)
	}
	for since := -5; since <= 95; since += 5 {
		for until := since; until <= 100; until += 5 {
			q := lapse.EventQuery{Since: t0.Add(time.Duration(since) * time.Minute), Until: t0.Add(time.Duration(until) * time.Minute)}
			var want, got []int64
			for _, e := range all {
				if !e.Time.Before(q.Since) && e.Time.Before(q.Until) {
					want = append(want, e.Seq)
				}
			}
			evs, err := st.QueryEvents(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				got = append(got, e.Seq)
			}
			if !slices.Equal(got, want) {
				t.Errorf("events in [%dm, %dm) = %v, want %v", since, until, got, want)
			}
		}
	}
	recs, err := st.ChainRecords(ctx, 0, 10)
	if err != nil || len(recs) != 5 {
		t.Fatalf("chain = %d records, %v; want 5", len(recs), err)
	}
	prev = []byte{}
	for _, r := range recs {
		if string(r.PrevHash) != string(prev) || string(r.Event.ChainHash(prev)) != string(r.Hash) {
			t.Fatalf("record %d does not chain after the migration", r.Seq)
		}
		prev = r.Hash
	}
}

func sessionIDsOf(ss []*lapse.Session) []string {
	var ids []string
	for _, s := range ss {
		ids = append(ids, s.ID)
	}
	return ids
}

// TestTidyRewritesSweptRows: a sweep records expiries as the watermark
// and leaves the rows active; one Tidy of the size Manager.Run asks
// (lapse.SweepBatch/10) rewrites them as expired, and no read changes.
// (Moved here from the root package's Run test, which runs on the memory
// store.)
func TestTidyRewritesSweptRows(t *testing.T) {
	st := openTest(t)
	s := session("alice", t0)
	if _, err := st.Create(ctx, s, 0); err != nil {
		t.Fatal(err)
	}
	if due, err := st.ExpireDue(ctx, t0.Add(time.Hour), lapse.SweepBatch); err != nil || len(due) != 1 {
		t.Fatalf("ExpireDue = %v, %v; want the session", sessionIDsOf(due), err)
	}
	row := func() (status string) {
		t.Helper()
		if err := st.r.QueryRowContext(ctx, `SELECT status FROM sessions WHERE id = ?`, s.ID).Scan(&status); err != nil {
			t.Fatal(err)
		}
		return status
	}
	read := func() *lapse.Session {
		t.Helper()
		got, err := st.Session(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	before := read()
	if row() != "active" || before.Status != lapse.StatusExpired || before.EndReason != lapse.ReasonIdleTimeout || !before.EndedAt.Equal(s.IdleExpiresAt) {
		t.Fatalf("after the sweep: row %s, read %s/%s at %v; want the row active and the read expired idle at %v",
			row(), before.Status, before.EndReason, before.EndedAt, s.IdleExpiresAt)
	}
	if n, err := st.Tidy(ctx, lapse.SweepBatch/10); err != nil || n == 0 {
		t.Fatalf("Tidy = %d, %v; want work done", n, err)
	}
	if got := row(); got != "expired" {
		t.Errorf("row after Tidy is %s, want expired", got)
	}
	if after := read(); after.Status != before.Status || after.EndReason != before.EndReason || !after.EndedAt.Equal(before.EndedAt) {
		t.Errorf("Tidy changed the read: %s/%s at %v, was %s/%s at %v", after.Status, after.EndReason, after.EndedAt, before.Status, before.EndReason, before.EndedAt)
	}
	if n, err := st.Tidy(ctx, lapse.SweepBatch/10); err != nil || n != 0 {
		t.Errorf("Tidy again = %d, %v; want nothing left", n, err)
	}
}
