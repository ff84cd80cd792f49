package totp_test

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pqtotp "github.com/pquerna/otp/totp"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/totp"
)

var ctx = context.Background()

// t0 is the start of a time step.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

var key = bytes.Repeat([]byte{1}, totp.KeySize)

type fixture struct {
	t     *testing.T
	m     *lapse.Manager
	clock *lapsetest.Clock
	store *lapsetest.Store
	svc   *totp.Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	m, clock, st := lapsetest.NewManager(t, lapse.Config{Clock: lapsetest.NewClock(t0)})
	svc, err := totp.New(totp.Config{Manager: m, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, m: m, clock: clock, store: st, svc: svc}
}

// session creates a session of subject and returns its token and state.
func (f *fixture) session(subject string, aal int) (lapse.Token, *lapse.Session) {
	f.t.Helper()
	tok, s, err := f.m.Create(ctx, lapse.CreateParams{Subject: subject, AAL: aal, AMR: []string{"pwd"}})
	if err != nil {
		f.t.Fatal(err)
	}
	return tok, s
}

// enrol enrols subject and confirms with the code of now; it returns a
// session, the secret and the recovery codes.
func (f *fixture) enrol(subject string) (lapse.Token, *lapse.Session, string, []string) {
	f.t.Helper()
	tok, s := f.session(subject, 1)
	e, err := f.svc.EnrolTOTP(ctx, s, lapse.TOTPParams{})
	if err != nil {
		f.t.Fatal(err)
	}
	codes, err := f.svc.ConfirmTOTP(ctx, s, f.code(e.Secret, 0))
	if err != nil {
		f.t.Fatal(err)
	}
	return tok, s, e.Secret, codes
}

// code is the app's code for the step steps away from now.
func (f *fixture) code(secret string, steps int) string {
	f.t.Helper()
	c, err := pqtotp.GenerateCode(secret, f.clock.Now().Add(time.Duration(steps)*totp.Period))
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// wrong is a code no step of the window accepts now.
func (f *fixture) wrong(secret string) string {
	valid := []string{f.code(secret, -1), f.code(secret, 0), f.code(secret, 1)}
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if !slices.Contains(valid, c) {
			return c
		}
	}
	panic("unreachable")
}

func wantCode(t *testing.T, what string, err error, want lapse.Code) {
	t.Helper()
	if got := lapse.ErrorCode(err); got != want {
		t.Errorf("%s: code %q (err %v), want %q", what, got, err, want)
	}
}

func TestCodeWindow(t *testing.T) {
	for _, c := range []struct {
		name  string
		steps int // the code's step, from the current one
		at    time.Duration
		want  lapse.Code
	}{
		{"two_steps_back_is_rejected", -2, 0, lapse.CodeRejected},
		{"previous_step_is_accepted", -1, 0, ""},
		{"current_step_is_accepted", 0, 0, ""},
		{"next_step_is_accepted", 1, 0, ""},
		{"two_steps_ahead_is_rejected", 2, 0, lapse.CodeRejected},
		{"previous_step_at_the_last_instant_of_a_step_is_accepted", -1, totp.Period - time.Nanosecond, ""},
		{"next_step_at_the_last_instant_of_a_step_is_accepted", 1, totp.Period - time.Nanosecond, ""},
		{"two_steps_ahead_at_the_last_instant_of_a_step_is_rejected", 2, totp.Period - time.Nanosecond, lapse.CodeRejected},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			_, _, secret, _ := f.enrol("alice")
			f.clock.Advance(10 * totp.Period) // well past the confirmation's step
			f.clock.Advance(c.at)
			code := f.code(secret, c.steps)
			_, s := f.session("alice", 1)
			method, err := f.svc.Check(ctx, s, code)
			wantCode(t, "Check", err, c.want)
			if err == nil && method != lapse.MethodOTP {
				t.Errorf("method %q, want otp", method)
			}
		})
	}
}

func TestReplayIsRefused(t *testing.T) {
	f := newFixture(t)
	_, _, secret, _ := f.enrol("alice")
	confirmed := f.code(secret, 0)
	_, s := f.session("alice", 1)
	_, err := f.svc.Check(ctx, s, confirmed)
	wantCode(t, "the code that confirmed the enrolment", err, lapse.CodeReused)

	f.clock.Advance(totp.Period)
	_, err = f.svc.Check(ctx, s, confirmed)
	wantCode(t, "that code, one step later (inside the skew window)", err, lapse.CodeReused)

	next := f.code(secret, 1)
	if _, err := f.svc.Check(ctx, s, next); err != nil {
		t.Fatalf("the next step's code: %v", err)
	}
	_, err = f.svc.Check(ctx, s, next)
	wantCode(t, "the same code again", err, lapse.CodeReused)
	_, other := f.session("alice", 1)
	_, err = f.svc.Check(ctx, other, next)
	wantCode(t, "the same code from another session", err, lapse.CodeReused)
	_, err = f.svc.Check(ctx, s, f.code(secret, 0))
	wantCode(t, "the current step's code after the next step's was used", err, lapse.CodeReused)

	f.clock.Advance(2 * totp.Period)
	if _, err := f.svc.Check(ctx, s, f.code(secret, 0)); err != nil {
		t.Errorf("a newer step's code: %v, want accepted", err)
	}
}

func TestFailedAttemptsAreLimited(t *testing.T) {
	t.Run("per_session_5_in_5_minutes", func(t *testing.T) {
		f := newFixture(t)
		_, _, secret, _ := f.enrol("alice")
		_, s := f.session("alice", 1)
		first := f.clock.Now()
		for i := range 5 {
			_, err := f.svc.Check(ctx, s, f.wrong(secret))
			wantCode(t, "wrong code", err, lapse.CodeRejected)
			if i < 4 {
				f.clock.Advance(time.Minute)
			}
		}
		f.clock.Advance(totp.Period)
		_, err := f.svc.Check(ctx, s, f.code(secret, 0))
		wantCode(t, "right code after 5 wrong ones", err, lapse.CodeTooManyAttempts)
		var retry *lapse.RetryError
		if !errors.As(err, &retry) || !retry.At.Equal(first.Add(5*time.Minute)) {
			t.Fatalf("retry at %v, want %v (when the first failure leaves the window)", retry, first.Add(5*time.Minute))
		}
		f.clock.Set(retry.At.Add(-time.Nanosecond))
		_, err = f.svc.Check(ctx, s, f.code(secret, 0))
		wantCode(t, "just before the retry time", err, lapse.CodeTooManyAttempts)
		f.clock.Set(retry.At)
		if _, err := f.svc.Check(ctx, s, f.code(secret, 0)); err != nil {
			t.Errorf("at the retry time: %v, want accepted", err)
		}
	})
	t.Run("per_subject_10_over_all_sessions", func(t *testing.T) {
		f := newFixture(t)
		_, _, secret, _ := f.enrol("alice")
		for range 2 {
			_, s := f.session("alice", 1)
			for range 5 {
				f.svc.Check(ctx, s, f.wrong(secret))
			}
		}
		_, fresh := f.session("alice", 1)
		_, err := f.svc.Check(ctx, fresh, f.code(secret, 1))
		wantCode(t, "a fresh session after 10 failures of the subject", err, lapse.CodeTooManyAttempts)
		_, bob := f.session("bob", 1)
		_, err = f.svc.Check(ctx, bob, f.code(secret, 1))
		wantCode(t, "another subject", err, lapse.CodeFactorNotFound) // not limited: bob has no factor
	})
	t.Run("replays_count_successes_do_not", func(t *testing.T) {
		f := newFixture(t)
		_, _, secret, _ := f.enrol("alice")
		_, s := f.session("alice", 1)
		for range 4 {
			f.svc.Check(ctx, s, f.code(secret, 0)) // the confirmation's step: reused
		}
		f.clock.Advance(totp.Period)
		for i := range 3 {
			if _, err := f.svc.Check(ctx, s, f.code(secret, 0)); err != nil {
				t.Fatalf("success %d: %v", i, err)
			}
			f.clock.Advance(totp.Period)
		}
		f.svc.Check(ctx, s, f.wrong(secret))
		_, err := f.svc.Check(ctx, s, f.code(secret, 0))
		wantCode(t, "after 4 replays and 1 wrong code", err, lapse.CodeTooManyAttempts)
	})
	t.Run("malformed_codes_are_not_counted", func(t *testing.T) {
		f := newFixture(t)
		_, _, secret, _ := f.enrol("alice")
		_, s := f.session("alice", 1)
		for range 10 {
			_, err := f.svc.Check(ctx, s, "12345")
			wantCode(t, "5 digits", err, lapse.CodeInvalid)
		}
		f.clock.Advance(totp.Period)
		if _, err := f.svc.Check(ctx, s, f.code(secret, 0)); err != nil {
			t.Errorf("after malformed codes: %v, want accepted", err)
		}
	})
}

func TestRecoveryCodesStillWorkBesideAPasskey(t *testing.T) {
	f := newFixture(t)
	_, _, _, codes := f.enrol("alice")
	if err := f.store.AddPasskey(ctx, &lapse.Passkey{ID: "pk_1", Subject: "alice", Name: "Key", CredentialID: []byte{1},
		UserHandle: []byte{2}, PublicKey: []byte{3}, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	st, err := f.svc.Factors(ctx, "alice")
	if err != nil || !slices.Equal(st.Available(), []string{lapse.FactorPasskey, lapse.FactorTOTP, lapse.FactorRecoveryCode}) {
		t.Fatalf("factors with a passkey and an app: %v (%v), want [passkey totp recovery_code]", st.Available(), err)
	}
	_, s := f.session("alice", 1)
	if method, err := f.svc.Check(ctx, s, codes[0]); err != nil || method != lapse.MethodRecoveryCode {
		t.Errorf("a recovery code beside a passkey: %q, %v; want recovery_code", method, err)
	}
}

func TestRecoveryCodes(t *testing.T) {
	f := newFixture(t)
	_, _, _, codes := f.enrol("alice")
	_, _, _, bobCodes := f.enrol("bob")
	shape := regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$`)
	if len(codes) != 10 || len(slices.Compact(slices.Sorted(slices.Values(codes)))) != 10 {
		t.Fatalf("codes %q, want 10 distinct", codes)
	}
	for _, c := range codes {
		if !shape.MatchString(c) {
			t.Errorf("code %q does not have the shape XXXX-XXXX-XXXX-XXXX", c)
		}
	}
	_, s := f.session("alice", 1)
	_, err := f.svc.Check(ctx, s, bobCodes[0])
	wantCode(t, "bob's code for alice", err, lapse.CodeRejected)
	for i, c := range codes {
		_, s := f.session("alice", 1)
		in := c
		if i == 1 {
			in = strings.ToLower(strings.ReplaceAll(c, "-", "")) // typed loosely
		}
		method, err := f.svc.Check(ctx, s, in)
		if err != nil || method != lapse.MethodRecoveryCode {
			t.Fatalf("code %d: %q, %v; want recovery_code", i, method, err)
		}
		_, err = f.svc.Check(ctx, s, c)
		want := lapse.CodeRejected
		if i == len(codes)-1 {
			want = lapse.CodeFactorNotFound // none left at all
		}
		wantCode(t, "the same code again", err, want)
		st, _ := f.svc.Factors(ctx, "alice")
		if st.RecoveryCodes != 9-i {
			t.Errorf("after %d used: %d left, want %d", i+1, st.RecoveryCodes, 9-i)
		}
		f.clock.Advance(time.Minute) // keep each round's failure inside the subject's limit
	}
	st, _ := f.svc.Factors(ctx, "alice")
	if got := st.Available(); !slices.Equal(got, []string{"totp"}) {
		t.Errorf("available after all codes are used: %q, want [totp]", got)
	}
	_, err = f.svc.Check(ctx, s, codes[0])
	wantCode(t, "a recovery code when none is left", err, lapse.CodeFactorNotFound)
}

func TestEnrol(t *testing.T) {
	t.Run("needs_a_recent_authentication", func(t *testing.T) {
		f := newFixture(t)
		_, s := f.session("alice", 1)
		f.clock.Advance(15*time.Minute - time.Nanosecond)
		if _, err := f.svc.EnrolTOTP(ctx, s, lapse.TOTPParams{}); err != nil {
			t.Errorf("just under 15m after authentication: %v", err)
		}
		f.clock.Advance(time.Nanosecond)
		_, err := f.svc.EnrolTOTP(ctx, s, lapse.TOTPParams{})
		wantCode(t, "15m after authentication", err, lapse.CodeStepUpRequired)
	})
	t.Run("with_a_passkey_needs_a_recent_step_up_to_aal2", func(t *testing.T) {
		// A stolen password alone (a fresh AAL1 session) must not add a
		// factor beside the user's passkey.
		f := newFixture(t)
		if err := f.store.AddPasskey(ctx, &lapse.Passkey{ID: "pk_1", Subject: "alice", Name: "Key", CredentialID: []byte{1},
			UserHandle: []byte{2}, PublicKey: []byte{3}, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		tok, s := f.session("alice", 1)
		_, err := f.svc.EnrolTOTP(ctx, s, lapse.TOTPParams{})
		wantCode(t, "a fresh AAL1 session of a subject with a passkey", err, lapse.CodeStepUpRequired)
		_, up, err := f.m.StepUp(ctx, tok.Reveal(), 2, []string{"pwd", "hwk", "user"}, lapse.ActorSubject)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.EnrolTOTP(ctx, up, lapse.TOTPParams{}); err != nil {
			t.Errorf("after a step-up with the passkey: %v", err)
		}
	})
	t.Run("a_confirmed_factor_must_be_removed_first", func(t *testing.T) {
		f := newFixture(t)
		_, s, _, _ := f.enrol("alice")
		_, err := f.svc.EnrolTOTP(ctx, s, lapse.TOTPParams{})
		wantCode(t, "second enrolment", err, lapse.CodeConflict)
	})
	t.Run("a_new_enrolment_replaces_one_that_awaits", func(t *testing.T) {
		f := newFixture(t)
		_, s := f.session("alice", 1)
		first, _ := f.svc.EnrolTOTP(ctx, s, lapse.TOTPParams{})
		second, _ := f.svc.EnrolTOTP(ctx, s, lapse.TOTPParams{})
		if first.Secret == second.Secret {
			t.Fatal("two enrolments share a secret")
		}
		_, err := f.svc.ConfirmTOTP(ctx, s, f.code(first.Secret, 0))
		wantCode(t, "the replaced secret's code", err, lapse.CodeRejected)
		if _, err := f.svc.ConfirmTOTP(ctx, s, f.code(second.Secret, 0)); err != nil {
			t.Errorf("the new secret's code: %v", err)
		}
	})
	t.Run("lapses_after_10_minutes", func(t *testing.T) {
		f := newFixture(t)
		_, s := f.session("alice", 1)
		e, _ := f.svc.EnrolTOTP(ctx, s, lapse.TOTPParams{})
		if !e.ConfirmBy.Equal(t0.Add(10 * time.Minute)) {
			t.Errorf("confirm by %v, want t0+10m", e.ConfirmBy)
		}
		f.clock.Advance(10 * time.Minute)
		_, err := f.svc.ConfirmTOTP(ctx, s, f.code(e.Secret, 0))
		wantCode(t, "confirmation at 10m", err, lapse.CodeFactorNotFound)
	})
	t.Run("key_uri_and_qr_code", func(t *testing.T) {
		f := newFixture(t)
		_, s := f.session("alice", 1)
		e, err := f.svc.EnrolTOTP(ctx, s, lapse.TOTPParams{Account: "alice@example.com", Issuer: "Acme Inc"})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"otpauth://totp/Acme%20Inc:alice@example.com?", "secret=" + e.Secret, "issuer=Acme", "digits=6", "period=30", "algorithm=SHA1"} {
			if !strings.Contains(e.URI, want) {
				t.Errorf("uri %q lacks %q", e.URI, want)
			}
		}
		if !bytes.HasPrefix(e.QRCode, []byte("\x89PNG\r\n\x1a\n")) {
			t.Error("QR code is not a PNG")
		}
		_, err = f.svc.EnrolTOTP(ctx, s, lapse.TOTPParams{Issuer: "a:b"})
		wantCode(t, "issuer with ':'", err, lapse.CodeInvalid)
	})
}

func TestSecretsAreSealed(t *testing.T) {
	f := newFixture(t)
	_, s := f.session("alice", 1)
	e, _ := f.svc.EnrolTOTP(ctx, s, lapse.TOTPParams{})
	st, _ := f.store.Factors(ctx, "alice")
	if bytes.Contains(st.TOTP.Secret, []byte(e.Secret)) || len(st.TOTP.Secret) < 20+16 {
		t.Fatalf("the stored secret (%d bytes) is not sealed", len(st.TOTP.Secret))
	}
	if got, _ := f.svc.Factors(ctx, "alice"); got.TOTP.Secret != nil {
		t.Error("Service.Factors hands out the sealed secret")
	}
	t.Run("another_key_does_not_open_it", func(t *testing.T) {
		other, err := totp.New(totp.Config{Manager: f.m, Key: bytes.Repeat([]byte{2}, totp.KeySize)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = other.ConfirmTOTP(ctx, s, f.code(e.Secret, 0))
		wantCode(t, "confirm under another key", err, lapse.CodeInternal)
	})
	t.Run("it_does_not_open_for_another_subject", func(t *testing.T) {
		_, bob := f.session("bob", 1)
		stolen := *st.TOTP
		stolen.Subject, stolen.ID = "bob", "fac_stolen"
		if err := f.store.PutTOTP(ctx, &stolen); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.ConfirmTOTP(ctx, bob, f.code(e.Secret, 0))
		wantCode(t, "alice's sealed secret under bob", err, lapse.CodeInternal)
	})
	if _, err := totp.New(totp.Config{Manager: f.m, Key: key[:16]}); err == nil {
		t.Error("a 16-byte key was accepted")
	}
}

func TestRemove(t *testing.T) {
	f := newFixture(t)
	tok, s, secret, _ := f.enrol("alice")
	err := f.svc.RemoveTOTP(ctx, s)
	wantCode(t, "remove from an AAL1 session", err, lapse.CodeStepUpRequired)
	var le *lapse.Error
	if errors.As(err, &le); le == nil || le.Requirement == nil || le.Requirement.RequiredAAL != 2 || le.Requirement.MaxAuthAge != 15*time.Minute {
		t.Errorf("requirement %+v, want AAL2 within 15m", le)
	}
	f.clock.Advance(totp.Period)
	_, stepped, err := lapse.StepUpWithFactor(ctx, f.m, f.svc, tok.Reveal(), f.code(secret, 0), lapse.ActorSubject)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(15 * time.Minute)
	wantCode(t, "remove 15m after the step-up", f.svc.RemoveTOTP(ctx, stepped), lapse.CodeStepUpRequired)
	f.clock.Set(stepped.AuthenticatedAt.Add(15*time.Minute - time.Nanosecond))
	if err := f.svc.RemoveTOTP(ctx, stepped); err != nil {
		t.Fatalf("remove just under 15m after the step-up: %v", err)
	}
	st, _ := f.svc.Factors(ctx, "alice")
	if st.TOTP != nil || st.RecoveryCodes != 0 || len(st.Available()) != 0 {
		t.Errorf("after removal: %+v, want nothing", st)
	}
	wantCode(t, "remove again", f.svc.RemoveTOTP(ctx, stepped), lapse.CodeFactorNotFound)
}

func TestStepUpWithFactor(t *testing.T) {
	f := newFixture(t)
	oldTok, sess, secret, _ := f.enrol("alice")
	f.clock.Advance(3 * time.Minute)
	_, err := f.m.Verify(ctx, oldTok.Reveal(), lapse.VerifyOptions{RequireAAL: 2})
	wantCode(t, "AAL1 session asked for AAL2", err, lapse.CodeStepUpRequired)
	newTok, stepped, err := lapse.StepUpWithFactor(ctx, f.m, f.svc, oldTok.Reveal(), f.code(secret, 0), lapse.ActorAPI)
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	if stepped.ID != sess.ID || stepped.AAL != 2 || !slices.Equal(stepped.AMR, []string{"pwd", "otp"}) ||
		!stepped.AuthenticatedAt.Equal(now) || !stepped.ExpiresAt.Equal(now.Add(12*time.Hour)) || !stepped.IdleExpiresAt.Equal(now.Add(30*time.Minute)) {
		t.Errorf("stepped-up session: %+v; want the same id, AAL2, [pwd otp], authenticated now, both timers restarted", stepped)
	}
	if _, err := f.m.Verify(ctx, newTok.Reveal(), lapse.VerifyOptions{RequireAAL: 2}); err != nil {
		t.Errorf("new token at AAL2: %v", err)
	}
	f.clock.Advance(lapse.RotateGrace - time.Nanosecond)
	if _, err := f.m.Verify(ctx, oldTok.Reveal(), lapse.VerifyOptions{}); err != nil {
		t.Errorf("old token inside the grace: %v", err)
	}
	f.clock.Advance(time.Nanosecond)
	_, err = f.m.Verify(ctx, oldTok.Reveal(), lapse.VerifyOptions{})
	wantCode(t, "old token after the grace", err, lapse.CodeSessionNotFound)

	t.Run("an_aal3_session_stays_aal3", func(t *testing.T) {
		tok, _ := f.session("alice", 3)
		f.clock.Advance(totp.Period)
		_, s, err := lapse.StepUpWithFactor(ctx, f.m, f.svc, tok.Reveal(), f.code(secret, 0), lapse.ActorAPI)
		if err != nil || s.AAL != 3 {
			t.Errorf("got %v, %v; want AAL3 kept", s, err)
		}
	})
	t.Run("a_wrong_code_leaves_the_session_as_it_was", func(t *testing.T) {
		tok, before := f.session("alice", 1)
		_, _, err := lapse.StepUpWithFactor(ctx, f.m, f.svc, tok.Reveal(), f.wrong(secret), lapse.ActorAPI)
		wantCode(t, "wrong code", err, lapse.CodeRejected)
		after, _ := f.m.Current(ctx, tok.Reveal())
		if after.AAL != before.AAL || !after.AuthenticatedAt.Equal(before.AuthenticatedAt) {
			t.Errorf("session changed by a wrong code: %+v", after)
		}
	})
}

func TestOneCodeRacedFromManySessionsIsAcceptedOnce(t *testing.T) {
	f := newFixture(t)
	_, _, secret, _ := f.enrol("alice")
	f.clock.Advance(totp.Period)
	code := f.code(secret, 0)
	var sessions []*lapse.Session
	for range 8 {
		_, s := f.session("alice", 1)
		sessions = append(sessions, s)
	}
	var (
		wg       sync.WaitGroup
		accepted atomic.Int32
	)
	for _, s := range sessions {
		wg.Go(func() {
			if _, err := f.svc.Check(ctx, s, code); err == nil {
				accepted.Add(1)
			} else if c := lapse.ErrorCode(err); c != lapse.CodeReused {
				t.Errorf("a losing Check: %v, want code_reused", err)
			}
		})
	}
	wg.Wait()
	if n := accepted.Load(); n != 1 {
		t.Errorf("the code was accepted %d times, want once", n)
	}
}

func TestProvision(t *testing.T) {
	f := newFixture(t)
	e, codes, err := f.svc.Provision(ctx, "ops", lapse.TOTPParams{Account: "alice"})
	if err != nil || len(codes) != totp.RecoveryCodes || !strings.Contains(e.URI, "alice") {
		t.Fatalf("Provision = %+v, %d codes, %v; want an enrolment for alice and %d codes", e, len(codes), err, totp.RecoveryCodes)
	}
	s := &lapse.Session{ID: "ops", Subject: "ops"}
	if _, err := f.svc.Check(ctx, s, f.code(e.Secret, -1)); err != nil {
		t.Errorf("the previous step's code, right after Provision: %v; want accepted (the factor is confirmed, no step used)", err)
	}
	_, err = f.svc.Check(ctx, s, f.code(e.Secret, -1))
	wantCode(t, "the same code again", err, lapse.CodeReused)
	_, _, err = f.svc.Provision(ctx, "ops", lapse.TOTPParams{})
	wantCode(t, "Provision over a confirmed factor", err, lapse.CodeConflict)
}
