package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/sqlite"
)

func openFactors(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lapse.db")
	st, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

// TestFactorStore checks what the conformance suite cannot see: the
// record SQLite keeps of every attempt (storetest checks the factor
// store's rules themselves).
func TestFactorStore(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

	t.Run("attempts_are_limited_and_recorded", func(t *testing.T) {
		st, path := openFactors(t)
		l := lapse.AttemptLimit{Window: 5 * time.Minute, PerSubject: 3, PerSession: 2}
		begin := func(session string, at time.Time) (int64, time.Time) {
			t.Helper()
			id, retry, err := st.BeginAttempt(ctx, lapse.Attempt{Subject: "alice", SessionID: session, Factor: lapse.FactorTOTP, Now: at}, l)
			if err != nil {
				t.Fatal(err)
			}
			return id, retry
		}
		ok, _ := begin("s1", now)
		if err := st.FinishAttempt(ctx, ok, lapse.AttemptAccepted); err != nil {
			t.Fatal(err)
		}
		a, _ := begin("s1", now.Add(time.Minute))
		st.FinishAttempt(ctx, a, lapse.AttemptRejected)
		begin("s1", now.Add(2*time.Minute)) // never finished: counts as failed
		if id, retry := begin("s1", now.Add(3*time.Minute)); id != 0 || !retry.Equal(now.Add(6*time.Minute)) {
			t.Errorf("third attempt of s1: id %d retry %v; want refused until the first failure leaves the window at +6m", id, retry)
		}
		b, _ := begin("s2", now.Add(3*time.Minute))
		st.FinishAttempt(ctx, b, lapse.AttemptReused)
		if id, retry := begin("s3", now.Add(4*time.Minute)); id != 0 || !retry.Equal(now.Add(6*time.Minute)) {
			t.Errorf("fourth failure of the subject: id %d retry %v; want refused until +6m", id, retry)
		}
		if id, retry := begin("s3", now.Add(6*time.Minute)); id == 0 || !retry.IsZero() {
			t.Errorf("at +6m: id %d retry %v; want allowed", id, retry)
		}

		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.Query(`SELECT session_id, outcome FROM factor_attempts ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var s, o string
			rows.Scan(&s, &o)
			got = append(got, s+":"+o)
		}
		want := []string{"s1:accepted", "s1:rejected", "s1:pending", "s2:reused", "s3:pending"}
		if !slices.Equal(got, want) {
			t.Errorf("recorded attempts %q, want %q (refused ones are not recorded)", got, want)
		}
	})
}
