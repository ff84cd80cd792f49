package lapse_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

// The "sensitive" tier of lapsetest.Policy needs AAL2 and an
// authentication at most 15 minutes old, and idles out after 5 minutes.

func TestStepUpAssuranceBoundaries(t *testing.T) {
	for _, c := range []struct {
		name string
		aal  int // of the step-up
		// before advances the clock (with activity every 4 minutes)
		// between the step-up and the checked verify.
		before time.Duration
		opts   lapse.VerifyOptions
		want   lapse.Code
	}{
		{name: "aal1_step_up_does_not_meet_the_tier", aal: 1, want: lapse.CodeStepUpRequired},
		{name: "aal2_step_up_meets_the_tier", aal: 2},
		{name: "aal2_step_up_does_not_meet_a_call_asking_aal3", aal: 2, opts: lapse.VerifyOptions{RequireAAL: 3}, want: lapse.CodeStepUpRequired},
		{name: "aal3_step_up_meets_a_call_asking_aal3", aal: 3, opts: lapse.VerifyOptions{RequireAAL: 3}},
		{name: "auth_age_counts_from_the_step_up_just_under", aal: 2, before: 15*time.Minute - time.Nanosecond},
		{name: "auth_age_counts_from_the_step_up_at_the_limit", aal: 2, before: 15 * time.Minute, want: lapse.CodeStepUpRequired},
		{name: "call_auth_age_just_under", aal: 2, before: time.Minute - time.Nanosecond, opts: lapse.VerifyOptions{MaxAuthAge: time.Minute}},
		{name: "call_auth_age_at_the_limit", aal: 2, before: time.Minute, opts: lapse.VerifyOptions{MaxAuthAge: time.Minute}, want: lapse.CodeStepUpRequired},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			tok, _ := f.create(t, lapse.CreateParams{Tier: "sensitive", AAL: 1})
			f.clock.Advance(4 * time.Minute) // the step-up comes later than the sign-in
			newTok, _, err := f.m.StepUp(ctx, tok.Reveal(), c.aal, []string{"pwd", "otp"}, lapse.ActorAPI)
			if err != nil {
				t.Fatal(err)
			}
			for left := c.before; left > 0; {
				d := min(left, 4*time.Minute)
				f.clock.Advance(d)
				left -= d
				if left > 0 {
					f.m.Verify(ctx, newTok.Reveal(), lapse.VerifyOptions{}) // activity keeps it from idling out
				}
			}
			_, err = f.m.Verify(ctx, newTok.Reveal(), c.opts)
			wantCode(t, "Verify", err, c.want)
		})
	}
}

func TestStepUpRestartsBothTimers(t *testing.T) {
	f := newFixture(t)
	tok, s := f.create(t, lapse.CreateParams{Tier: "sensitive", AAL: 1})
	f.clock.Advance(4*time.Minute + 59*time.Second) // 1s before the 5m idle deadline
	newTok, stepped, err := f.m.StepUp(ctx, tok.Reveal(), 2, []string{"pwd", "otp"}, lapse.ActorAPI)
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	if !stepped.IdleExpiresAt.Equal(now.Add(5*time.Minute)) || !stepped.ExpiresAt.Equal(now.Add(time.Hour)) || !stepped.ExpiresAt.After(s.ExpiresAt) {
		t.Errorf("after step-up: idle %v, absolute %v; want now+5m and now+1h", stepped.IdleExpiresAt, stepped.ExpiresAt)
	}
	f.clock.Advance(5*time.Minute - time.Nanosecond)
	if _, err := f.m.Verify(ctx, newTok.Reveal(), lapse.VerifyOptions{NoTouch: true}); err != nil {
		t.Errorf("just under the new idle deadline: %v", err)
	}
	f.clock.Advance(time.Nanosecond)
	_, err = f.m.Verify(ctx, newTok.Reveal(), lapse.VerifyOptions{})
	wantCode(t, "at the new idle deadline", err, lapse.CodeSessionExpiredIdle)
}

func TestStepUpEvents(t *testing.T) {
	f := newFixture(t)
	tok, s := f.create(t, lapse.CreateParams{AAL: 1})
	newTok, _, _ := f.m.StepUp(ctx, tok.Reveal(), 2, []string{"pwd", "otp"}, lapse.ActorAPI)
	f.m.StepUp(ctx, newTok.Reveal(), 2, []string{"pwd", "otp"}, lapse.ActorAPI)
	evs, _ := f.store.QueryEvents(ctx, lapse.EventQuery{SessionID: s.ID})
	var got []string
	for _, ev := range evs {
		got = append(got, string(ev.Type)+"/"+string(ev.Reason))
	}
	want := []string{"session.created/", "session.stepped_up/aal_raised", "session.rotated/", "session.stepped_up/reauthenticated", "session.rotated/"}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

func TestFactorAssurance(t *testing.T) {
	for _, c := range []struct {
		aal     int
		amr     []string
		method  string
		wantAAL int
		wantAMR []string
	}{
		{1, []string{"pwd"}, lapse.MethodOTP, 2, []string{"pwd", "otp"}},
		{2, []string{"pwd", "otp"}, lapse.MethodOTP, 2, []string{"pwd", "otp"}},
		{3, []string{"hwk"}, lapse.MethodRecoveryCode, 3, []string{"hwk", "recovery_code"}},
		{1, nil, lapse.MethodOTP, 2, []string{"otp"}},
	} {
		s := &lapse.Session{AAL: c.aal, AMR: c.amr}
		aal, amr := lapse.FactorAssurance(s, c.method)
		if aal != c.wantAAL || !slices.Equal(amr, c.wantAMR) {
			t.Errorf("FactorAssurance(aal %d, %q, %s) = %d, %q; want %d, %q", c.aal, c.amr, c.method, aal, amr, c.wantAAL, c.wantAMR)
		}
		if len(c.amr) > 0 && &amr[0] == &c.amr[0] {
			t.Error("FactorAssurance shares the session's AMR slice")
		}
	}
}

func TestFactorAssuranceOfAPasskey(t *testing.T) {
	s := &lapse.Session{AAL: 1, AMR: []string{"pwd", "hwk"}}
	aal, amr := lapse.FactorAssurance(s, lapse.MethodHardwareKey, lapse.MethodUserPresence)
	if aal != 2 || !slices.Equal(amr, []string{"pwd", "hwk", "user"}) {
		t.Errorf("FactorAssurance(pwd hwk; hwk user) = %d, %q; want 2, [pwd hwk user]", aal, amr)
	}
}

func TestAvailableFactors(t *testing.T) {
	confirmed := &lapse.TOTPFactor{ConfirmedAt: time.Unix(1, 0)}
	for _, c := range []struct {
		st   lapse.FactorState
		want []string
	}{
		{lapse.FactorState{}, []string{}},
		{lapse.FactorState{Passkeys: 2}, []string{"passkey"}},
		{lapse.FactorState{Passkeys: 1, TOTP: confirmed, RecoveryCodes: 3}, []string{"passkey", "totp", "recovery_code"}},
		{lapse.FactorState{TOTP: &lapse.TOTPFactor{}, RecoveryCodes: 3}, []string{}},
		{lapse.FactorState{TOTP: confirmed}, []string{"totp"}},
	} {
		if got := c.st.Available(); !slices.Equal(got, c.want) || got == nil {
			t.Errorf("Available(%+v) = %#v, want %q", c.st, got, c.want)
		}
	}
}

func TestRecentFactorChange(t *testing.T) {
	at := time.Unix(1000, 0)
	s := &lapse.Session{AAL: 1, AuthenticatedAt: at}
	if err := lapse.RecentFactorChange(s, 0, time.Minute, at.Add(time.Minute-time.Nanosecond)); err != nil {
		t.Errorf("a sign-in a nanosecond short of the limit: %v", err)
	}
	err := lapse.RecentFactorChange(s, 0, time.Minute, at.Add(time.Minute))
	var le *lapse.Error
	if !errors.As(err, &le) || le.Code != lapse.CodeStepUpRequired || le.Requirement.MaxAuthAge != time.Minute {
		t.Errorf("a sign-in at the limit: %v, want step_up_required with max_auth_age 1m", err)
	}
	if err := lapse.RecentFactorChange(s, 2, time.Minute, at); lapse.ErrorCode(err) != lapse.CodeStepUpRequired {
		t.Errorf("AAL1 where AAL2 is needed: %v, want step_up_required", err)
	}
}

// stubFactor accepts "good" once per session and counts the codes it saw.
type stubFactor struct {
	lapse.FactorService
	seen int
	used map[string]bool
}

func (f *stubFactor) Check(_ context.Context, s *lapse.Session, code string) (string, error) {
	f.seen++
	if code != "good" || f.used[s.ID] {
		return "", lapse.Errorf(lapse.CodeRejected, "no")
	}
	f.used[s.ID] = true
	return lapse.MethodOTP, nil
}

func TestStepUpWithFactor(t *testing.T) {
	f := newFixture(t)
	fs := &stubFactor{used: map[string]bool{}}
	tok, s := f.create(t, lapse.CreateParams{AAL: 1, AMR: []string{"pwd"}})
	_, _, err := lapse.StepUpWithFactor(ctx, f.m, fs, tok.Reveal(), "bad", lapse.ActorAPI)
	wantCode(t, "a code the factor refuses", err, lapse.CodeRejected)
	newTok, stepped, err := lapse.StepUpWithFactor(ctx, f.m, fs, tok.Reveal(), "good", lapse.ActorAPI)
	if err != nil {
		t.Fatal(err)
	}
	if stepped.ID != s.ID || stepped.AAL != 2 || !slices.Equal(stepped.AMR, []string{"pwd", "otp"}) || newTok == tok {
		t.Errorf("stepped: %+v", stepped)
	}
	seen := fs.seen
	_, _, err = lapse.StepUpWithFactor(ctx, f.m, fs, tok.Reveal(), "good", lapse.ActorAPI)
	wantCode(t, "the replaced token", err, lapse.CodeSessionNotFound)
	if fs.seen != seen {
		t.Error("the replaced token reached the factor: it could spend a code")
	}
	_, _, err = lapse.StepUpWithFactor(ctx, f.m, fs, lapse.NewToken().Reveal(), "good", lapse.ActorAPI)
	wantCode(t, "an unknown token", err, lapse.CodeSessionNotFound)
}

func TestCredentialChangeKeepsTheCallerInEveryTenant(t *testing.T) {
	f := newFixture(t)
	keepTok, keep := f.create(t, lapse.CreateParams{})
	acmeTok, _ := f.create(t, lapse.CreateParams{Tenant: "acme"})
	otherTok, _ := f.create(t, lapse.CreateParams{})
	bobTok, _ := f.create(t, lapse.CreateParams{Subject: "bob"})
	n, err := f.m.EndMatching(ctx, lapse.Filter{Subject: "alice", AnyTenant: true, Except: keep.ID}, lapse.ReasonPasswordChange, lapse.ActorAPI)
	if err != nil || n != 2 {
		t.Fatalf("EndMatching = %d, %v; want 2", n, err)
	}
	for _, c := range []struct {
		who  string
		tok  lapse.Token
		want lapse.Code
	}{{"kept", keepTok, ""}, {"acme", acmeTok, lapse.CodeSessionRevoked}, {"other", otherTok, lapse.CodeSessionRevoked}, {"bob", bobTok, ""}} {
		_, err := f.m.Verify(ctx, c.tok.Reveal(), lapse.VerifyOptions{NoTouch: true})
		wantCode(t, c.who, err, c.want)
	}
}
