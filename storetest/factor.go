package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

func wantFactorCode(t *testing.T, what string, err error, want lapse.Code) {
	t.Helper()
	if got := lapse.ErrorCode(err); got != want {
		t.Errorf("%s: code %q (err %v), want %q", what, got, err, want)
	}
}

// confirmed stores a confirmed TOTP factor for subject, with the given
// recovery codes, its last step 100.
func confirmed(t *testing.T, fs lapse.FactorStore, subject, id string, codes ...string) {
	t.Helper()
	if err := fs.PutTOTP(ctx, &lapse.TOTPFactor{ID: id, Subject: subject, Secret: []byte("sealed"), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	var hashes []lapse.TokenHash
	for _, c := range codes {
		hashes = append(hashes, lapse.HashSecret(c))
	}
	if err := fs.ConfirmTOTP(ctx, subject, id, 100, hashes, t0); err != nil {
		t.Fatal(err)
	}
}

func testFactorLifecycle(t *testing.T, st lapse.Store) {
	fs := st.(lapse.FactorStore)
	now := t0
	hash := lapse.HashSecret
	empty, err := fs.Factors(ctx, "alice")
	if err != nil || empty.TOTP != nil || empty.RecoveryCodes != 0 {
		t.Fatalf("Factors of nobody = %+v, %v; want empty", empty, err)
	}
	f := &lapse.TOTPFactor{ID: "fac_1", Subject: "alice", Secret: []byte("sealed"), CreatedAt: now}
	if err := fs.PutTOTP(ctx, f); err != nil {
		t.Fatal(err)
	}
	replaced := &lapse.TOTPFactor{ID: "fac_2", Subject: "alice", Secret: []byte("sealed2"), CreatedAt: now.Add(time.Second)}
	if err := fs.PutTOTP(ctx, replaced); err != nil {
		t.Fatalf("replacing an unconfirmed enrolment: %v", err)
	}
	if got, _ := fs.Factors(ctx, "alice"); got.TOTP == nil || got.TOTP.ID != "fac_2" || got.TOTP.Confirmed() || !got.TOTP.CreatedAt.Equal(now.Add(time.Second)) {
		t.Errorf("Factors while the enrolment awaits = %+v, want fac_2 unconfirmed", got.TOTP)
	}
	wantFactorCode(t, "confirm the replaced enrolment", fs.ConfirmTOTP(ctx, "alice", "fac_1", 100, nil, now), lapse.CodeFactorNotFound)
	wantFactorCode(t, "confirm another subject's enrolment", fs.ConfirmTOTP(ctx, "bob", "fac_2", 100, nil, now), lapse.CodeFactorNotFound)
	_, err = fs.UseTOTPStep(ctx, "alice", "fac_2", 101, now)
	wantFactorCode(t, "use an unconfirmed factor", err, lapse.CodeFactorNotFound)
	codes := []lapse.TokenHash{hash("a"), hash("b")}
	if err := fs.ConfirmTOTP(ctx, "alice", "fac_2", 100, codes, now); err != nil {
		t.Fatal(err)
	}
	wantFactorCode(t, "confirm twice", fs.ConfirmTOTP(ctx, "alice", "fac_2", 100, codes, now), lapse.CodeConflict)
	wantFactorCode(t, "enrol over a confirmed factor", fs.PutTOTP(ctx, f), lapse.CodeConflict)
	testFactorUse(t, fs)
}

// testFactorUse goes on from testFactorLifecycle: alice's factor fac_2 is
// confirmed at t0 with last step 100 and the recovery codes "a" and "b".
func testFactorUse(t *testing.T, fs lapse.FactorStore) {
	now := t0
	hash := lapse.HashSecret
	got, _ := fs.Factors(ctx, "alice")
	if got.TOTP.ID != "fac_2" || got.TOTP.Subject != "alice" || string(got.TOTP.Secret) != "sealed2" || !got.TOTP.ConfirmedAt.Equal(now) || got.TOTP.LastStep != 100 || got.RecoveryCodes != 2 {
		t.Errorf("after confirmation: %+v (%+v)", got, got.TOTP)
	}
	for _, c := range []struct {
		step int64
		want bool
	}{{100, false}, {99, false}, {102, true}, {101, false}, {102, false}, {103, true}} {
		used, err := fs.UseTOTPStep(ctx, "alice", "fac_2", c.step, now)
		if err != nil || used != c.want {
			t.Errorf("UseTOTPStep(%d) = %v, %v; want %v", c.step, used, err, c.want)
		}
	}
	if got, _ := fs.Factors(ctx, "alice"); got.TOTP.LastStep != 103 {
		t.Errorf("last step = %d, want 103", got.TOTP.LastStep)
	}
	_, err := fs.UseTOTPStep(ctx, "alice", "fac_1", 200, now)
	wantFactorCode(t, "use with a stale factor id", err, lapse.CodeFactorNotFound)
	for _, c := range []struct {
		code    string
		subject string
		want    bool
	}{{"a", "alice", true}, {"a", "alice", false}, {"b", "bob", false}, {"c", "alice", false}, {"b", "alice", true}} {
		used, err := fs.UseRecoveryCode(ctx, c.subject, hash(c.code), now)
		if err != nil || used != c.want {
			t.Errorf("UseRecoveryCode(%s, %s) = %v, %v; want %v", c.subject, c.code, used, err, c.want)
		}
	}
	if got, _ := fs.Factors(ctx, "alice"); got.RecoveryCodes != 0 {
		t.Errorf("unused recovery codes = %d after both were used, want 0", got.RecoveryCodes)
	}
	testFactorRemove(t, fs)
}

// testFactorRemove goes on from testFactorUse: it removes alice's factor
// and enrols her again.
func testFactorRemove(t *testing.T, fs lapse.FactorStore) {
	now := t0
	hash := lapse.HashSecret
	if err := fs.RemoveTOTP(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	wantFactorCode(t, "remove twice", fs.RemoveTOTP(ctx, "alice"), lapse.CodeFactorNotFound)
	if got, _ := fs.Factors(ctx, "alice"); got.TOTP != nil || got.RecoveryCodes != 0 {
		t.Errorf("after removal: %+v", got)
	}
	// A new enrolment after removal starts afresh, and its confirmation
	// replaces the recovery codes.
	confirmed(t, fs, "alice", "fac_3", "x")
	if used, _ := fs.UseRecoveryCode(ctx, "alice", hash("a"), now); used {
		t.Error("a recovery code of the removed factor was accepted")
	}
	if got, _ := fs.Factors(ctx, "alice"); got.RecoveryCodes != 1 || got.TOTP.ID != "fac_3" {
		t.Errorf("after enrolling again: %+v", got)
	}
}

// testFactorOnce holds that a code is spent once however many nodes
// present it at the same moment.
func testFactorOnce(t *testing.T, st lapse.Store) {
	fs := st.(lapse.FactorStore)
	confirmed(t, fs, "alice", "fac_1", "code")
	const n = 10
	var steps, codes atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			used, err := fs.UseTOTPStep(ctx, "alice", "fac_1", 101, t0)
			if used {
				steps.Add(1)
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			used, err := fs.UseRecoveryCode(ctx, "alice", lapse.HashSecret("code"), t0)
			if used {
				codes.Add(1)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if steps.Load() != 1 || codes.Load() != 1 {
		t.Errorf("of %d concurrent uses, %d took the time step and %d the recovery code; want 1 each", n, steps.Load(), codes.Load())
	}
}

// testFactorAttempts holds the attempt limit: per session and per
// subject, counting every attempt not accepted (pending included), with
// the time the next attempt may be made; and that concurrent attempts
// cannot all pass a limit that only some fit under.
func testFactorAttempts(t *testing.T, st lapse.Store) {
	fs := st.(lapse.FactorStore)
	now := t0
	l := lapse.AttemptLimit{Window: 5 * time.Minute, PerSubject: 3, PerSession: 2}
	begin := func(subject, session string, at time.Time) (int64, time.Time) {
		t.Helper()
		id, retry, err := fs.BeginAttempt(ctx, lapse.Attempt{Subject: subject, SessionID: session, Factor: lapse.FactorTOTP, Now: at}, l)
		if err != nil {
			t.Fatal(err)
		}
		return id, retry
	}
	finish := func(id int64, o lapse.AttemptOutcome) {
		t.Helper()
		if err := fs.FinishAttempt(ctx, id, o); err != nil {
			t.Fatal(err)
		}
	}
	ok, _ := begin("alice", "s1", now)
	finish(ok, lapse.AttemptAccepted)
	a, _ := begin("alice", "s1", now.Add(time.Minute))
	finish(a, lapse.AttemptRejected)
	begin("alice", "s1", now.Add(2*time.Minute)) // never finished: counts as failed
	if id, retry := begin("alice", "s1", now.Add(3*time.Minute)); id != 0 || !retry.Equal(now.Add(6*time.Minute)) {
		t.Errorf("third attempt of s1: id %d retry %v; want refused until the first failure leaves the window at +6m", id, retry)
	}
	b, _ := begin("alice", "s2", now.Add(3*time.Minute))
	finish(b, lapse.AttemptReused)
	if id, retry := begin("alice", "s3", now.Add(4*time.Minute)); id != 0 || !retry.Equal(now.Add(6*time.Minute)) {
		t.Errorf("fourth failure of the subject: id %d retry %v; want refused until +6m", id, retry)
	}
	if id, retry := begin("bob", "s9", now.Add(4*time.Minute)); id == 0 || !retry.IsZero() {
		t.Errorf("another subject: id %d retry %v; want allowed", id, retry)
	}
	if id, retry := begin("alice", "s3", now.Add(6*time.Minute)); id == 0 || !retry.IsZero() {
		t.Errorf("at +6m: id %d retry %v; want allowed", id, retry)
	}

	// Ten attempts of one subject at once, from ten sessions: the subject
	// limit lets exactly three begin.
	var begun atomic.Int64
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, _, err := fs.BeginAttempt(ctx, lapse.Attempt{Subject: "carol", SessionID: "c" + string(rune('0'+i)), Factor: lapse.FactorTOTP, Now: now}, l)
			if err != nil {
				t.Error(err)
			} else if id != 0 {
				begun.Add(1)
			}
		}()
	}
	wg.Wait()
	if begun.Load() != 3 {
		t.Errorf("%d of 10 concurrent attempts began, want 3 (the subject's limit)", begun.Load())
	}
}
