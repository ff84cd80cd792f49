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

func wantCode(t *testing.T, what string, err error, want lapse.Code) {
	t.Helper()
	if got := lapse.ErrorCode(err); got != want {
		t.Errorf("%s: code %q (err %v), want %q", what, got, err, want)
	}
}

func TestFactorStore(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	hash := func(s string) lapse.TokenHash { return lapse.HashSecret(s) }

	t.Run("enrol_confirm_use_remove", func(t *testing.T) {
		st, _ := openFactors(t)
		empty, err := st.Factors(ctx, "alice")
		if err != nil || empty.TOTP != nil || empty.RecoveryCodes != 0 {
			t.Fatalf("Factors of nobody = %+v, %v; want empty", empty, err)
		}
		f := &lapse.TOTPFactor{ID: "fac_1", Subject: "alice", Secret: []byte("sealed"), CreatedAt: now}
		if err := st.PutTOTP(ctx, f); err != nil {
			t.Fatal(err)
		}
		replaced := &lapse.TOTPFactor{ID: "fac_2", Subject: "alice", Secret: []byte("sealed2"), CreatedAt: now.Add(time.Second)}
		if err := st.PutTOTP(ctx, replaced); err != nil {
			t.Fatalf("replacing an unconfirmed enrolment: %v", err)
		}
		wantCode(t, "confirm the replaced enrolment", st.ConfirmTOTP(ctx, "alice", "fac_1", 100, nil, now), lapse.CodeFactorNotFound)
		_, err = st.UseTOTPStep(ctx, "alice", "fac_2", 101, now)
		wantCode(t, "use an unconfirmed factor", err, lapse.CodeFactorNotFound)
		codes := []lapse.TokenHash{hash("a"), hash("b")}
		if err := st.ConfirmTOTP(ctx, "alice", "fac_2", 100, codes, now); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "confirm twice", st.ConfirmTOTP(ctx, "alice", "fac_2", 100, codes, now), lapse.CodeConflict)
		wantCode(t, "enrol over a confirmed factor", st.PutTOTP(ctx, f), lapse.CodeConflict)
		got, _ := st.Factors(ctx, "alice")
		if got.TOTP.ID != "fac_2" || string(got.TOTP.Secret) != "sealed2" || !got.TOTP.ConfirmedAt.Equal(now) || got.TOTP.LastStep != 100 || got.RecoveryCodes != 2 {
			t.Errorf("after confirmation: %+v (%+v)", got, got.TOTP)
		}
		for _, c := range []struct {
			step int64
			want bool
		}{{100, false}, {99, false}, {102, true}, {101, false}, {102, false}, {103, true}} {
			used, err := st.UseTOTPStep(ctx, "alice", "fac_2", c.step, now)
			if err != nil || used != c.want {
				t.Errorf("UseTOTPStep(%d) = %v, %v; want %v", c.step, used, err, c.want)
			}
		}
		_, err = st.UseTOTPStep(ctx, "alice", "fac_1", 200, now)
		wantCode(t, "use with a stale factor id", err, lapse.CodeFactorNotFound)
		for _, c := range []struct {
			code    string
			subject string
			want    bool
		}{{"a", "alice", true}, {"a", "alice", false}, {"b", "bob", false}, {"c", "alice", false}, {"b", "alice", true}} {
			used, err := st.UseRecoveryCode(ctx, c.subject, hash(c.code), now)
			if err != nil || used != c.want {
				t.Errorf("UseRecoveryCode(%s, %s) = %v, %v; want %v", c.subject, c.code, used, err, c.want)
			}
		}
		if err := st.RemoveTOTP(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "remove twice", st.RemoveTOTP(ctx, "alice"), lapse.CodeFactorNotFound)
		if got, _ := st.Factors(ctx, "alice"); got.TOTP != nil || got.RecoveryCodes != 0 {
			t.Errorf("after removal: %+v", got)
		}
	})

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
