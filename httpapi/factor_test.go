package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	pqtotp "github.com/pquerna/otp/totp"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/totp"
)

// testFactorKey seals the TOTP secrets of the test servers.
var testFactorKey = bytes.Repeat([]byte{0x5a}, totp.KeySize)

// newFactors returns the built-in TOTP factor over fs, as lapse serve
// wires it.
func newFactors(t *testing.T, m *lapse.Manager, fs lapse.FactorStore) lapse.FactorService {
	t.Helper()
	svc, err := totp.New(totp.Config{Manager: m, Store: fs, Key: testFactorKey})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// The factor store's methods, and Rotate, fail like the others while the
// fault store is told to.

func (f *faultStore) Factors(ctx context.Context, subject string) (*lapse.FactorState, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.Store.Factors(ctx, subject)
}

func (f *faultStore) PutTOTP(ctx context.Context, fac *lapse.TOTPFactor) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.Store.PutTOTP(ctx, fac)
}

func (f *faultStore) ConfirmTOTP(ctx context.Context, subject, id string, step int64, recovery []lapse.TokenHash, now time.Time) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.Store.ConfirmTOTP(ctx, subject, id, step, recovery, now)
}

func (f *faultStore) UseTOTPStep(ctx context.Context, subject, id string, step int64, now time.Time) (bool, error) {
	if err := f.fault(); err != nil {
		return false, err
	}
	return f.Store.UseTOTPStep(ctx, subject, id, step, now)
}

func (f *faultStore) UseRecoveryCode(ctx context.Context, subject string, h lapse.TokenHash, now time.Time) (bool, error) {
	if err := f.fault(); err != nil {
		return false, err
	}
	return f.Store.UseRecoveryCode(ctx, subject, h, now)
}

func (f *faultStore) RemoveTOTP(ctx context.Context, subject string) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.Store.RemoveTOTP(ctx, subject)
}

func (f *faultStore) BeginAttempt(ctx context.Context, a lapse.Attempt, l lapse.AttemptLimit) (int64, time.Time, error) {
	if err := f.fault(); err != nil {
		return 0, time.Time{}, err
	}
	return f.Store.BeginAttempt(ctx, a, l)
}

func (f *faultStore) FinishAttempt(ctx context.Context, id int64, outcome lapse.AttemptOutcome) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.Store.FinishAttempt(ctx, id, outcome)
}

func (f *faultStore) Rotate(ctx context.Context, id string, r lapse.Rotation) (*lapse.Session, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.Store.Rotate(ctx, id, r)
}

var _ lapse.FactorStore = (*faultStore)(nil)

// codeAt is the code of secret's authenticator app at t.
func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := pqtotp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrongCode is a code that no step of the skew window at at accepts.
func wrongCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	valid := []string{codeAt(t, secret, at.Add(-totp.Period)), codeAt(t, secret, at), codeAt(t, secret, at.Add(totp.Period))}
	for i := 0; ; i++ {
		if c := fmt.Sprintf("%06d", i); !slices.Contains(valid, c) {
			return c
		}
	}
}

// enrolled creates a session of subject, enrols and confirms its TOTP
// factor with the current code, and returns the session's token, the
// secret and the recovery codes. The code's time step is then used: the
// next code must come from a later step.
func (h *harness) enrolled(subject string) (tok, secret string, recovery []string) {
	h.t.Helper()
	tok, _ = h.create(map[string]any{"subject": subject})
	secret = h.enrol(subject, tok)
	r := h.call("POST", "/v1/subjects/"+subject+"/factors/totp/confirm", map[string]any{"token": tok, "code": codeAt(h.t, secret, h.clock.Now())})
	if r.status != http.StatusOK {
		h.t.Fatalf("confirm: got %s, want 200", r)
	}
	var rc recoveryCodesResponse
	if err := json.Unmarshal(r.body, &rc); err != nil {
		h.t.Fatal(err)
	}
	return tok, secret, rc.RecoveryCodes
}

// enrol starts an enrolment of subject with tok and returns the secret.
func (h *harness) enrol(subject, tok string) string {
	h.t.Helper()
	r := h.call("POST", "/v1/subjects/"+subject+"/factors/totp", map[string]any{"token": tok})
	if r.status != http.StatusCreated {
		h.t.Fatalf("enrol: got %s, want 201", r)
	}
	var e enrolResponse
	if err := json.Unmarshal(r.body, &e); err != nil {
		h.t.Fatal(err)
	}
	return e.Secret
}

// stepUpTOTP steps tok's session up with code.
func (h *harness) stepUpTOTP(tok, code string) *response {
	h.t.Helper()
	return h.call("POST", "/v1/sessions/step-up/totp", map[string]any{"token": tok, "code": code})
}

func newToken(t *testing.T, r *response) string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("got %s, want 200 with a new token", r)
	}
	var tr tokenResponse
	if err := json.Unmarshal(r.body, &tr); err != nil || tr.Token == "" {
		t.Fatalf("no token in %s (%v)", r, err)
	}
	return tr.Token
}

func TestStepUpProblemListsFactors(t *testing.T) {
	h := newHarness(t)
	bare := newHarness(t, harnessOptions{noAuditLog: true}) // its store keeps no factors
	tok, _, recovery := h.enrolled("alice")
	plain, _ := h.create(map[string]any{"subject": "bob"})
	for _, c := range []struct {
		name string
		h    *harness
		tok  string
		want []string
	}{
		{"enrolled_subject_has_totp_and_recovery_code", h, tok, []string{"totp", "recovery_code"}},
		{"subject_without_factor_has_an_empty_list", h, plain, []string{}},
		{"server_without_factors_says_nothing", bare, "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.tok == "" {
				c.tok, _ = c.h.create(map[string]any{"subject": "carol"})
			}
			r := c.h.verify(c.tok, map[string]any{"require_aal": 2})
			wantProblem(t, r, http.StatusForbidden, lapse.CodeStepUpRequired)
			var raw map[string]json.RawMessage
			json.Unmarshal(r.body, &raw)
			got, present := raw["factors"]
			switch {
			case c.want == nil && present:
				t.Errorf("factors = %s, want the member absent", got)
			case c.want != nil:
				var list []string
				if err := json.Unmarshal(got, &list); err != nil || !slices.Equal(list, c.want) {
					t.Errorf("factors = %s, want %q", got, c.want)
				}
			}
		})
	}
	t.Run("recovery_code_leaves_the_list_when_none_is_left", func(t *testing.T) {
		for _, code := range recovery {
			other, _ := h.create(map[string]any{"subject": "alice"})
			newToken(t, h.stepUpTOTP(other, code))
		}
		r := h.verify(tok, map[string]any{"require_aal": 2})
		if p := wantProblem(t, r, http.StatusForbidden, lapse.CodeStepUpRequired); !slices.Equal(p.Factors, []string{"totp"}) {
			t.Errorf("factors = %q, want [totp]", p.Factors)
		}
	})
}

func TestStepUpOverHTTP(t *testing.T) {
	h := newHarness(t)
	t.Run("app_asserted_rotates_and_raises", func(t *testing.T) {
		old, _ := h.create(map[string]any{"subject": "alice", "tier": "sensitive", "amr": []string{"pwd"}})
		wantProblem(t, h.verify(old, nil), http.StatusForbidden, lapse.CodeStepUpRequired)
		h.clock.Advance(time.Minute)
		r := h.call("POST", "/v1/sessions/step-up", map[string]any{"token": old, "aal": 2, "amr": []string{"pwd", "hwk"}})
		tok := newToken(t, r)
		s := session(t, h.verify(tok, nil))
		if s.AAL != 2 || !slices.Equal(s.AMR, []string{"pwd", "hwk"}) || s.AuthenticatedAt != formatTime(h.clock.Now()) {
			t.Errorf("stepped-up session: aal %d, amr %q, authenticated %s; want 2, [pwd hwk], now", s.AAL, s.AMR, s.AuthenticatedAt)
		}
		h.clock.Advance(lapse.RotateGrace - time.Nanosecond)
		if r := h.verify(old, nil); r.status != http.StatusOK {
			t.Errorf("old token within the grace: got %s, want 200", r)
		}
		h.clock.Advance(time.Nanosecond)
		wantProblem(t, h.verify(old, nil), http.StatusUnauthorized, lapse.CodeSessionNotFound)
	})
	t.Run("app_asserted_refuses_bad_requests", func(t *testing.T) {
		tok, _ := h.create(map[string]any{"subject": "alice", "aal": 2})
		for _, body := range []map[string]any{
			{"token": tok},
			{"token": tok, "aal": 4},
			{"token": tok, "aal": 1},
			{"token": tok, "aal": 2, "amr": []string{""}},
			{"token": tok, "aal": 2, "amr": []string{"a\nb"}},
		} {
			wantProblem(t, h.call("POST", "/v1/sessions/step-up", body), http.StatusBadRequest, lapse.CodeInvalid)
		}
	})
	t.Run("totp_step_up_reaches_aal2_and_refuses_replay", func(t *testing.T) {
		tok, secret, _ := h.enrolled("tina")
		h.clock.Advance(totp.Period)
		code := codeAt(t, secret, h.clock.Now())
		newTok := newToken(t, h.stepUpTOTP(tok, code))
		s := session(t, h.verify(newTok, map[string]any{"require_aal": 2}))
		if s.AAL != 2 || !slices.Contains(s.AMR, "otp") {
			t.Errorf("aal %d amr %q, want 2 with otp", s.AAL, s.AMR)
		}
		other, _ := h.create(map[string]any{"subject": "tina"})
		wantProblem(t, h.stepUpTOTP(other, code), http.StatusForbidden, lapse.CodeReused)
		wantProblem(t, h.stepUpTOTP(other, wrongCode(t, secret, h.clock.Now())), http.StatusForbidden, lapse.CodeRejected)
	})
	t.Run("replaced_token_cannot_spend_a_code", func(t *testing.T) {
		tok, secret, _ := h.enrolled("uma")
		newToken(t, h.call("POST", "/v1/sessions/step-up", map[string]any{"token": tok, "aal": 1}))
		h.clock.Advance(totp.Period)
		code := codeAt(t, secret, h.clock.Now())
		wantProblem(t, h.stepUpTOTP(tok, code), http.StatusUnauthorized, lapse.CodeSessionNotFound)
		st, _ := h.store.Factors(context.Background(), "uma")
		if st.TOTP.LastStep == totp.Step(h.clock.Now()) {
			t.Error("the replaced token spent the code")
		}
	})
	t.Run("too_many_attempts_has_retry_after", func(t *testing.T) {
		tok, secret, _ := h.enrolled("vera")
		first := h.clock.Now()
		for range 5 {
			wantProblem(t, h.stepUpTOTP(tok, wrongCode(t, secret, h.clock.Now())), http.StatusForbidden, lapse.CodeRejected)
			h.clock.Advance(10 * time.Second)
		}
		r := h.stepUpTOTP(tok, codeAt(t, secret, h.clock.Now().Add(totp.Period)))
		wantProblem(t, r, http.StatusTooManyRequests, lapse.CodeTooManyAttempts)
		want := int(first.Add(5 * time.Minute).Sub(h.clock.Now()).Seconds())
		if got, _ := strconv.Atoi(r.header.Get("Retry-After")); got < want || got > want+1 {
			t.Errorf("Retry-After = %q, want about %d", r.header.Get("Retry-After"), want)
		}
	})
}

func TestFactorRoutes(t *testing.T) {
	h := newHarness(t)
	t.Run("enrol_returns_a_usable_secret_and_qr_code", func(t *testing.T) {
		tok, _ := h.create(map[string]any{"subject": "alice"})
		r := h.call("POST", "/v1/subjects/alice/factors/totp", map[string]any{"token": tok, "account": "alice@example.com", "issuer": "Acme"})
		if r.status != http.StatusCreated {
			t.Fatalf("got %s, want 201", r)
		}
		var e enrolResponse
		json.Unmarshal(r.body, &e)
		img, err := base64.StdEncoding.DecodeString(e.QRPNG)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(bytes.NewReader(img)); err != nil {
			t.Errorf("qr_png is not a PNG: %v", err)
		}
		if want := "otpauth://totp/Acme:alice@example.com?"; len(e.URI) < len(want) || e.URI[:len(want)] != want {
			t.Errorf("uri = %q, want it to start %q", e.URI, want)
		}
		if e.ConfirmBy != formatTime(h.clock.Now().Add(10*time.Minute)) {
			t.Errorf("confirm_by = %s, want now+10m", e.ConfirmBy)
		}
		var fl factorsResponse
		json.Unmarshal(h.call("GET", "/v1/subjects/alice/factors", nil).body, &fl)
		if fl.TOTP == nil || fl.TOTP.Confirmed || len(fl.Factors) != 0 {
			t.Errorf("factors before confirmation: %+v, want an unconfirmed totp and nothing usable", fl)
		}
		r = h.call("POST", "/v1/subjects/alice/factors/totp/confirm", map[string]any{"token": tok, "code": codeAt(t, e.Secret, h.clock.Now())})
		if r.status != http.StatusOK {
			t.Fatalf("confirm: got %s", r)
		}
		json.Unmarshal(h.call("GET", "/v1/subjects/alice/factors", nil).body, &fl)
		if fl.TOTP == nil || !fl.TOTP.Confirmed || fl.RecoveryCodesLeft != 10 || !slices.Equal(fl.Factors, []string{"totp", "recovery_code"}) {
			t.Errorf("factors after confirmation: %+v", fl)
		}
	})
	t.Run("a_token_of_another_subject_is_refused", func(t *testing.T) {
		tok, _ := h.create(map[string]any{"subject": "mallory"})
		for _, path := range []string{"/v1/subjects/alice/factors/totp", "/v1/subjects/alice/factors/totp/remove"} {
			wantProblem(t, h.call("POST", path, map[string]any{"token": tok}), http.StatusBadRequest, lapse.CodeInvalid)
		}
	})
	t.Run("removal_needs_a_recent_aal2_step_up", func(t *testing.T) {
		tok, secret, _ := h.enrolled("rita")
		p := wantProblem(t, h.call("POST", "/v1/subjects/rita/factors/totp/remove", map[string]any{"token": tok}), http.StatusForbidden, lapse.CodeStepUpRequired)
		if p.RequiredAAL != 2 || p.MaxAuthAge != "15m0s" || !slices.Equal(p.Factors, []string{"totp", "recovery_code"}) {
			t.Errorf("problem %+v, want required_aal 2, max_auth_age 15m0s and the factors", p)
		}
		h.clock.Advance(totp.Period)
		stepped := newToken(t, h.stepUpTOTP(tok, codeAt(t, secret, h.clock.Now())))
		h.clock.Advance(15 * time.Minute)
		wantProblem(t, h.call("POST", "/v1/subjects/rita/factors/totp/remove", map[string]any{"token": stepped}), http.StatusForbidden, lapse.CodeStepUpRequired)
		h.clock.Advance(totp.Period)
		stepped = newToken(t, h.stepUpTOTP(stepped, codeAt(t, secret, h.clock.Now())))
		if r := h.call("POST", "/v1/subjects/rita/factors/totp/remove", map[string]any{"token": stepped}); r.status != http.StatusNoContent {
			t.Fatalf("remove: got %s, want 204", r)
		}
		var fl factorsResponse
		json.Unmarshal(h.call("GET", "/v1/subjects/rita/factors", nil).body, &fl)
		if fl.TOTP != nil || fl.RecoveryCodesLeft != 0 || len(fl.Factors) != 0 {
			t.Errorf("factors after removal: %+v, want none", fl)
		}
	})
}

func TestCredentialChanged(t *testing.T) {
	h := newHarness(t)
	type sess struct{ tok, id string }
	mk := func(subject, tenant string) sess {
		tok, id := h.create(map[string]any{"subject": subject, "tenant": tenant})
		return sess{tok, id}
	}
	for i, c := range []struct {
		name string
		body func(caller sess) map[string]any
		// want says, for the caller, another session of the subject in "",
		// one in acme, and bob, whether each is still valid.
		want [4]bool
	}{
		{"keep_by_token_ends_the_others_in_every_tenant", func(c sess) map[string]any { return map[string]any{"keep": c.tok} }, [4]bool{true, false, false, true}},
		{"keep_by_id", func(c sess) map[string]any { return map[string]any{"keep": c.id} }, [4]bool{true, false, false, true}},
		{"no_keep_ends_all", func(sess) map[string]any { return map[string]any{} }, [4]bool{false, false, false, true}},
		{"tenant_limits_the_change", func(c sess) map[string]any { return map[string]any{"keep": c.tok, "tenant": ""} }, [4]bool{true, false, true, true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			subject := "alice" + strconv.Itoa(i)
			all := []sess{mk(subject, ""), mk(subject, ""), mk(subject, "acme"), mk("bob", "")}
			r := h.call("POST", "/v1/subjects/"+subject+"/credential-changed", c.body(all[0]))
			if r.status != http.StatusOK {
				t.Fatalf("got %s, want 200", r)
			}
			revoked := 0
			for i, s := range all {
				got := h.verify(s.tok, map[string]any{"touch": false})
				if ok := got.status == http.StatusOK; ok != c.want[i] {
					t.Errorf("session %d: got %s, want valid %v", i, got, c.want[i])
				} else if !ok {
					revoked++
					var g Session
					json.Unmarshal(h.call("GET", "/v1/sessions/"+s.id, nil).body, &g)
					if g.EndReason == nil || *g.EndReason != lapse.ReasonPasswordChange {
						t.Errorf("session %d ended with %v, want password_change", i, g.EndReason)
					}
				}
			}
			var rc revokedResponse
			json.Unmarshal(r.body, &rc)
			if rc.Revoked != revoked {
				t.Errorf("revoked = %d, want %d", rc.Revoked, revoked)
			}
		})
	}
	t.Run("a_dead_keep_token_keeps_nothing", func(t *testing.T) {
		a, b := mk("alice", ""), mk("alice", "")
		h.call("POST", "/v1/sessions/revoke", map[string]any{"token": a.tok})
		r := h.call("POST", "/v1/subjects/alice/credential-changed", map[string]any{"keep": a.tok})
		var rc revokedResponse
		json.Unmarshal(r.body, &rc)
		if r.status != http.StatusOK || rc.Revoked < 1 {
			t.Fatalf("got %s, want 200 with b revoked", r)
		}
		wantProblem(t, h.verify(b.tok, nil), http.StatusUnauthorized, lapse.CodeSessionRevoked)
	})
	t.Run("keep_of_another_subject_is_refused", func(t *testing.T) {
		bob := mk("bob", "")
		wantProblem(t, h.call("POST", "/v1/subjects/alice/credential-changed", map[string]any{"keep": bob.tok}), http.StatusBadRequest, lapse.CodeInvalid)
	})
}
