package passkey_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/passkey"
	"github.com/lapsehq/lapse/passkey/passkeytest"
)

var ctx = context.Background()

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

const origin = "https://app.example.com"

type fixture struct {
	t     testing.TB
	m     *lapse.Manager
	clock *lapsetest.Clock
	store *lapsetest.Store
	svc   *passkey.Service
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	m, clock, st := lapsetest.NewManager(t, lapse.Config{Clock: lapsetest.NewClock(t0)})
	svc, err := passkey.New(passkey.Config{Manager: m, RPID: "example.com", RPName: "Example", Origins: []string{origin}})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, m: m, clock: clock, store: st, svc: svc}
}

func (f *fixture) session(subject string) (lapse.Token, *lapse.Session) {
	f.t.Helper()
	tok, s, err := f.m.Create(ctx, lapse.CreateParams{Subject: subject, AAL: 1, AMR: []string{"pwd"}})
	if err != nil {
		f.t.Fatal(err)
	}
	return tok, s
}

// register registers a passkey of a for s, failing the test otherwise.
func (f *fixture) register(s *lapse.Session, a *passkeytest.Authenticator) *lapse.Passkey {
	f.t.Helper()
	opts, err := f.svc.RegistrationOptions(ctx, s)
	if err != nil {
		f.t.Fatal(err)
	}
	resp, err := a.Create(opts)
	if err != nil {
		f.t.Fatal(err)
	}
	p, err := f.svc.Register(ctx, s, resp, "")
	if err != nil {
		f.t.Fatalf("Register: %v", err)
	}
	return p
}

// assertion asks for step-up options for s and has a answer them.
func (f *fixture) assertion(s *lapse.Session, a *passkeytest.Authenticator) []byte {
	f.t.Helper()
	opts, err := f.svc.StepUpOptions(ctx, s)
	if err != nil {
		f.t.Fatal(err)
	}
	resp, err := a.Get(opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

func (f *fixture) stored(subject string) *lapse.Passkey {
	f.t.Helper()
	keys, err := f.store.Passkeys(ctx, subject)
	if err != nil || len(keys) != 1 {
		f.t.Fatalf("passkeys of %s: %d (%v), want 1", subject, len(keys), err)
	}
	return keys[0]
}

func wantCode(t *testing.T, what string, err error, want lapse.Code) {
	t.Helper()
	if got := lapse.ErrorCode(err); got != want {
		t.Errorf("%s: code %q (%v), want %q", what, got, err, want)
	}
}

func TestStepUpWithADeviceBoundPasskeyRaisesTheSessionToAAL2(t *testing.T) {
	f := newFixture(t)
	tok, s := f.session("alice")
	a := &passkeytest.Authenticator{Origin: origin}
	p := f.register(s, a)
	if p.Subject != "alice" || p.Name != passkey.DefaultName || p.BackupEligible || p.AttestationFormat != "none" || len(p.UserHandle) != 32 {
		t.Errorf("registered passkey %+v; want alice's, default name, device-bound, attestation none, a 32-byte handle", p)
	}
	f.clock.Advance(time.Minute)
	methods, err := f.svc.Check(ctx, s, f.assertion(s, a))
	if err != nil || !slices.Equal(methods, []string{lapse.MethodHardwareKey, lapse.MethodUserPresence}) {
		t.Fatalf("Check = %v, %v; want [hwk user]", methods, err)
	}
	aal, amr := lapse.FactorAssurance(s, methods...)
	newTok, up, err := f.m.StepUp(ctx, tok.Reveal(), aal, amr, lapse.ActorSubject)
	if err != nil {
		t.Fatal(err)
	}
	if up.AAL != 2 || !slices.Equal(up.AMR, []string{"pwd", "hwk", "user"}) || newTok == tok || !up.AuthenticatedAt.Equal(f.clock.Now()) {
		t.Errorf("after the step-up: AAL%d %v, token rotated %t, authenticated at %v; want AAL2 [pwd hwk user], a new token, now",
			up.AAL, up.AMR, newTok != tok, up.AuthenticatedAt)
	}
	if got := f.stored("alice"); got.SignCount != 1 || !got.LastUsedAt.Equal(f.clock.Now()) {
		t.Errorf("after the step-up the passkey has counter %d, last used %v; want 1, now", got.SignCount, got.LastUsedAt)
	}
}

func TestSyncedPasskeyIsASoftwareKey(t *testing.T) {
	f := newFixture(t)
	_, s := f.session("alice")
	a := &passkeytest.Authenticator{Origin: origin, Synced: true}
	if p := f.register(s, a); !p.BackupEligible || !p.BackupState {
		t.Errorf("a synced passkey stored as %+v, want backup eligible and backed up", p)
	}
	methods, err := f.svc.Check(ctx, s, f.assertion(s, a))
	if err != nil || !slices.Equal(methods, []string{lapse.MethodSoftwareKey, lapse.MethodUserPresence}) {
		t.Errorf("Check = %v, %v; want [swk user]", methods, err)
	}
}

func TestReplayedChallengeIsRefused(t *testing.T) {
	f := newFixture(t)
	_, s := f.session("alice")
	a := &passkeytest.Authenticator{Origin: origin}
	opts, err := f.svc.RegistrationOptions(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := a.Create(opts)
	if _, err := f.svc.Register(ctx, s, reg, "Phone"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Register(ctx, s, reg, "Phone again")
	wantCode(t, "the same registration again", err, lapse.CodeChallengeInvalid)
	if keys, _ := f.store.Passkeys(ctx, "alice"); len(keys) != 1 {
		t.Errorf("%d passkeys after a replayed registration, want 1", len(keys))
	}

	resp := f.assertion(s, a)
	if _, err := f.svc.Check(ctx, s, resp); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Check(ctx, s, resp)
	wantCode(t, "the same assertion again", err, lapse.CodeChallengeInvalid)
	if got := f.stored("alice"); got.SignCount != 1 {
		t.Errorf("counter %d after an assertion and its replay, want 1", got.SignCount)
	}
}

func TestChallengeIsBoundToItsSessionCeremonyAndLifetime(t *testing.T) {
	f := newFixture(t)
	_, s := f.session("alice")
	_, other := f.session("alice")
	a := &passkeytest.Authenticator{Origin: origin}
	opts, err := f.svc.RegistrationOptions(ctx, s) // left unanswered
	if err != nil {
		t.Fatal(err)
	}
	f.register(s, a)

	_, err = f.svc.Check(ctx, other, f.assertion(s, a))
	wantCode(t, "a response to another session's challenge", err, lapse.CodeChallengeInvalid)

	var asGet map[string]map[string]any
	json.Unmarshal(opts, &asGet)
	asGet["publicKey"]["rpId"] = "example.com"
	asGet["publicKey"]["allowCredentials"] = []map[string]any{{"type": "public-key", "id": b64(f.stored("alice").CredentialID)}}
	optsGet, _ := json.Marshal(asGet)
	resp, err := a.Get(optsGet)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Check(ctx, s, resp)
	wantCode(t, "an assertion answering a registration's challenge", err, lapse.CodeChallengeInvalid)

	resp = f.assertion(s, a)
	f.clock.Advance(passkey.DefaultTimeout)
	_, err = f.svc.Check(ctx, s, resp)
	wantCode(t, "an assertion at the challenge's expiry", err, lapse.CodeChallengeInvalid)

	resp = f.assertion(s, a)
	f.clock.Advance(passkey.DefaultTimeout - time.Nanosecond)
	if _, err := f.svc.Check(ctx, s, resp); err != nil {
		t.Errorf("an assertion a nanosecond before the challenge's expiry: %v", err)
	}
}

func TestWrongOriginIsRefused(t *testing.T) {
	f := newFixture(t)
	_, s := f.session("alice")
	_, carol := f.session("carol")
	good := &passkeytest.Authenticator{Origin: origin}
	f.register(s, good)
	for _, o := range []string{"https://evil.example.net", "https://other.example.com", "http://app.example.com", "https://app.example.com:8443"} {
		// The phishing page relays lapse's options to the real
		// authenticator; the browser writes the page's origin into the
		// client data, which the signature covers.
		opts, _ := f.svc.StepUpOptions(ctx, s)
		good.Origin = o
		resp, err := good.Get(opts)
		good.Origin = origin
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Check(ctx, s, resp)
		wantCode(t, "an assertion made at "+o, err, lapse.CodePasskeyRejected)

		// A first passkey of carol's, registered from that origin.
		opts, err = f.svc.RegistrationOptions(ctx, carol)
		if err != nil {
			t.Fatal(err)
		}
		reg, _ := (&passkeytest.Authenticator{Origin: o}).Create(opts)
		_, err = f.svc.Register(ctx, carol, reg, "")
		wantCode(t, "a registration made at "+o, err, lapse.CodePasskeyRejected)
	}
	if got := f.stored("alice"); got.SignCount != 0 || !got.LastUsedAt.IsZero() {
		t.Errorf("refused assertions changed the passkey: counter %d, last used %v", got.SignCount, got.LastUsedAt)
	}
	if keys, _ := f.store.Passkeys(ctx, "carol"); len(keys) != 0 {
		t.Errorf("refused registrations stored %d passkeys", len(keys))
	}
}

func TestCounterRegressionIsRefused(t *testing.T) {
	f := newFixture(t)
	_, s := f.session("alice")
	a := &passkeytest.Authenticator{Origin: origin}
	f.register(s, a)
	for range 2 {
		if _, err := f.svc.Check(ctx, s, f.assertion(s, a)); err != nil {
			t.Fatal(err)
		}
	}
	// A copy of the key taken after its first use signs with counter 2
	// next: not past the 2 already seen.
	a.SetCounter(1)
	_, err := f.svc.Check(ctx, s, f.assertion(s, a))
	wantCode(t, "an assertion whose counter went back", err, lapse.CodeSignCountRegressed)
	a.SetCounter(0)
	_, err = f.svc.Check(ctx, s, f.assertion(s, a))
	wantCode(t, "an assertion whose counter went back further", err, lapse.CodeSignCountRegressed)
	if got := f.stored("alice"); got.SignCount != 2 {
		t.Errorf("stored counter %d after refused assertions, want still 2", got.SignCount)
	}
	a.SetCounter(2)
	if _, err := f.svc.Check(ctx, s, f.assertion(s, a)); err != nil {
		t.Errorf("an assertion with counter 3 after 2: %v", err)
	}
}

func TestUserVerificationIsRequired(t *testing.T) {
	f := newFixture(t)
	_, s := f.session("alice")
	a := &passkeytest.Authenticator{Origin: origin}
	opts, _ := f.svc.RegistrationOptions(ctx, s)
	for _, want := range []string{`"userVerification":"required"`, `"attestation":"none"`, `"residentKey":"preferred"`} {
		if !bytes.Contains(opts, []byte(want)) {
			t.Errorf("registration options lack %s: %s", want, opts)
		}
	}
	a.SkipUserVerification = true
	reg, _ := a.Create(opts)
	_, err := f.svc.Register(ctx, s, reg, "")
	wantCode(t, "a registration without user verification", err, lapse.CodePasskeyRejected)
	a.SkipUserVerification = false
	f.register(s, a)
	a.SkipUserVerification = true
	_, err = f.svc.Check(ctx, s, f.assertion(s, a))
	wantCode(t, "an assertion without user verification", err, lapse.CodePasskeyRejected)
}

func TestAnotherSubjectsPasskeyIsRefused(t *testing.T) {
	f := newFixture(t)
	_, alice := f.session("alice")
	_, bob := f.session("bob")
	a := &passkeytest.Authenticator{Origin: origin}
	f.register(alice, a)
	f.register(bob, a)
	// Alice's options, edited to allow Bob's credential, which the
	// same authenticator holds.
	opts, _ := f.svc.StepUpOptions(ctx, alice)
	var o map[string]map[string]any
	json.Unmarshal(opts, &o)
	o["publicKey"]["allowCredentials"] = []map[string]any{{"type": "public-key", "id": b64(f.stored("bob").CredentialID)}}
	edited, _ := json.Marshal(o)
	resp, err := a.Get(edited)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Check(ctx, alice, resp)
	wantCode(t, "alice stepping up with bob's passkey", err, lapse.CodePasskeyRejected)
}

func TestRegistrationNeedsARecentSignInThenAStepUp(t *testing.T) {
	f := newFixture(t)
	_, s := f.session("alice")
	f.clock.Advance(15 * time.Minute)
	_, err := f.svc.RegistrationOptions(ctx, s)
	wantCode(t, "a first passkey 15 minutes after sign-in", err, lapse.CodeStepUpRequired)

	tok, s := f.session("alice")
	a := &passkeytest.Authenticator{Origin: origin}
	f.register(s, a)
	// With a factor, a fresh sign-in alone (a stolen password) adds none.
	_, fresh := f.session("alice")
	_, err = f.svc.RegistrationOptions(ctx, fresh)
	wantCode(t, "a second passkey from a fresh AAL1 session", err, lapse.CodeStepUpRequired)
	methods, err := f.svc.Check(ctx, s, f.assertion(s, a))
	if err != nil {
		t.Fatal(err)
	}
	aal, amr := lapse.FactorAssurance(s, methods...)
	_, up, err := f.m.StepUp(ctx, tok.Reveal(), aal, amr, lapse.ActorSubject)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := f.svc.RegistrationOptions(ctx, up)
	if err != nil {
		t.Fatalf("a second passkey after a step-up: %v", err)
	}
	// The authenticator already holds one of the subject's passkeys: the
	// options exclude it, and it refuses, as a browser does.
	if _, err := a.Create(opts); err == nil {
		t.Error("the options did not exclude the passkey the authenticator holds")
	}
	b := &passkeytest.Authenticator{Origin: origin}
	reg, _ := b.Create(opts)
	p, err := f.svc.Register(ctx, up, reg, "  Work laptop ")
	if err != nil || p.Name != "Work laptop" || !bytes.Equal(p.UserHandle, f.storedFirst("alice").UserHandle) {
		t.Errorf("second passkey %+v, %v; want named Work laptop, with the subject's user handle", p, err)
	}
}

func (f *fixture) storedFirst(subject string) *lapse.Passkey {
	keys, _ := f.store.Passkeys(ctx, subject)
	return keys[0]
}

func TestRenameAndRemove(t *testing.T) {
	f := newFixture(t)
	tok, s := f.session("alice")
	a := &passkeytest.Authenticator{Origin: origin}
	p := f.register(s, a)
	for _, name := range []string{"", strings.Repeat("x", passkey.MaxNameLen+1), "tab\there"} {
		wantCode(t, "rename to "+name, f.svc.Rename(ctx, s, p.ID, name), lapse.CodeInvalid)
	}
	if err := f.svc.Rename(ctx, s, p.ID, "YubiKey"); err != nil || f.stored("alice").Name != "YubiKey" {
		t.Errorf("rename: %v, name %q", err, f.stored("alice").Name)
	}
	_, bob := f.session("bob")
	wantCode(t, "bob renaming alice's passkey", f.svc.Rename(ctx, bob, p.ID, "mine"), lapse.CodeFactorNotFound)
	wantCode(t, "removing at AAL1", f.svc.Remove(ctx, s, p.ID), lapse.CodeStepUpRequired)
	methods, err := f.svc.Check(ctx, s, f.assertion(s, a))
	if err != nil {
		t.Fatal(err)
	}
	aal, amr := lapse.FactorAssurance(s, methods...)
	_, up, err := f.m.StepUp(ctx, tok.Reveal(), aal, amr, lapse.ActorSubject)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(15 * time.Minute)
	wantCode(t, "removing 15 minutes after the step-up", f.svc.Remove(ctx, up, p.ID), lapse.CodeStepUpRequired)
	f.clock.Advance(-time.Nanosecond)
	if err := f.svc.Remove(ctx, up, p.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.StepUpOptions(ctx, s)
	wantCode(t, "step-up options without a passkey", err, lapse.CodeFactorNotFound)
}

func TestFailedAttemptsAreLimited(t *testing.T) {
	f := newFixture(t)
	_, s := f.session("alice")
	a := &passkeytest.Authenticator{Origin: origin}
	f.register(s, a)
	a.SkipUserVerification = true
	for i := range 5 {
		_, err := f.svc.Check(ctx, s, f.assertion(s, a))
		wantCode(t, "failed attempt "+string(rune('1'+i)), err, lapse.CodePasskeyRejected)
	}
	a.SkipUserVerification = false
	_, err := f.svc.Check(ctx, s, f.assertion(s, a))
	wantCode(t, "a good assertion after five failures", err, lapse.CodeTooManyAttempts)
	f.clock.Advance(5 * time.Minute)
	if _, err := f.svc.Check(ctx, s, f.assertion(s, a)); err != nil {
		t.Errorf("a good assertion once the failures left the window: %v", err)
	}
}

func TestConfigIsChecked(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		rpID    string
		origins []string
	}{
		{"", []string{origin}},
		{"127.0.0.1", []string{"http://127.0.0.1:8080"}},
		{"https://example.com", []string{origin}},
		{"example.com", nil},
		{"example.com", []string{"https://example.org"}},
		{"example.com", []string{"http://app.example.com"}},
		{"example.com", []string{"https://app.example.com/login"}},
		{"example.com", []string{"https://badexample.com"}},
	} {
		if _, err := passkey.New(passkey.Config{Manager: f.m, RPID: c.rpID, Origins: c.origins}); lapse.ErrorCode(err) != lapse.CodeInvalid {
			t.Errorf("New(%q, %q) = %v, want invalid_request", c.rpID, c.origins, err)
		}
	}
	for _, c := range []struct {
		rpID, origin string
	}{{"localhost", "http://localhost:8090"}, {"example.com", "https://example.com"}, {"example.com", "https://a.b.example.com:8443"}} {
		if _, err := passkey.New(passkey.Config{Manager: f.m, RPID: c.rpID, Origins: []string{c.origin}}); err != nil {
			t.Errorf("New(%q, %q) = %v, want a service", c.rpID, c.origin, err)
		}
	}
}

// FuzzCheck holds that no response body, however malformed, panics or
// steps a session up.
func FuzzCheck(f *testing.F) {
	fx := newFixture(f)
	_, s := fx.session("alice")
	a := &passkeytest.Authenticator{Origin: origin}
	fx.register(s, a)
	spent := fx.assertion(s, a)
	if _, err := fx.svc.Check(ctx, s, spent); err != nil {
		f.Fatal(err)
	}
	f.Add(spent)
	f.Add([]byte(`{"id":"","rawId":"","type":"public-key","response":{}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		methods, err := fx.svc.Check(ctx, s, body)
		if err == nil {
			t.Fatalf("a fuzzed body passed: %v", methods)
		}
		switch lapse.ErrorCode(err) {
		case lapse.CodeInvalid, lapse.CodeChallengeInvalid, lapse.CodePasskeyRejected, lapse.CodeTooManyAttempts:
		default:
			t.Fatalf("code %q (%v) for a fuzzed body", lapse.ErrorCode(err), err)
		}
	})
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
