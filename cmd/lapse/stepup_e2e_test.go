package main

import (
	"bytes"
	"context"
	"encoding/base32"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	pqtotp "github.com/pquerna/otp/totp"
)

// stepUpConfig has a billing tier that needs a second factor at most 15
// minutes old.
const stepUpConfig = `
default_tier: standard
tiers:
  standard: {idle_timeout: 30m, absolute_timeout: 12h}
  billing:  {idle_timeout: 15m, absolute_timeout: 12h, require_aal: 2, max_auth_age: 15m}
`

// TestStepUpEndToEnd runs the built binary: enrol a subject in the
// built-in TOTP factor, confirm it with a code the test computes from the
// secret, step a billing session up with the next code, reach the AAL2
// tier, and be refused when the code is replayed.
func TestStepUpEndToEnd(t *testing.T) { eachStore(t, testStepUpEndToEnd) }

func testStepUpEndToEnd(t *testing.T, st storeUnderTest) {
	dir := t.TempDir()
	s := start(t, dir, stepUpConfig+st.yaml(), "LAPSE_API_KEY="+testKey)
	otpAt := func(secret string, at time.Time) string {
		t.Helper()
		c, err := pqtotp.GenerateCode(secret, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	want := func(what string, r reply, status int, errCode string) {
		t.Helper()
		if r.status != status || (errCode != "" && code(r) != errCode) {
			t.Fatalf("%s: %d %s, want %d %s", what, r.status, r.raw, status, errCode)
		}
	}

	// Enrol alice from her (fresh) standard session.
	tok, _ := s.create(t, map[string]any{"subject": "alice", "amr": []string{"pwd"}})
	r := call(t, "POST", s.url+"/v1/subjects/alice/factors/totp", testKey, map[string]any{"token": tok, "account": "alice@example.com", "issuer": "Acme"})
	want("enrol", r, 201, "")
	secret, _ := r.body["secret"].(string)
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil || len(raw) != 20 {
		t.Fatalf("secret %q is not 20 bytes of base32", secret)
	}
	first := time.Now()
	r = call(t, "POST", s.url+"/v1/subjects/alice/factors/totp/confirm", testKey, map[string]any{"token": tok, "code": otpAt(secret, first)})
	want("confirm", r, 200, "")
	recovery, _ := r.body["recovery_codes"].([]any)
	if len(recovery) != 10 {
		t.Fatalf("confirm gave %d recovery codes, want 10: %s", len(recovery), r.raw)
	}

	t.Run("secret_is_sealed_and_its_key_kept_apart", func(t *testing.T) {
		info, err := os.Stat(filepath.Join(dir, "factor.key"))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("factor.key: %v, mode %v; want a 0600 file in the data directory", err, info)
		}
		for _, name := range []string{"lapse.db", "lapse.db-wal"} {
			b, _ := os.ReadFile(filepath.Join(dir, name))
			if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, raw) {
				t.Errorf("%s holds the TOTP secret in the clear", name)
			}
		}
		// What the store keeps, read back through the store itself.
		store, err := openStore(context.Background(), lapse.SecretURL(st.url), dir)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		f, err := store.(lapse.FactorStore).Factors(context.Background(), "alice")
		if err != nil || f.TOTP == nil || len(f.TOTP.Secret) == 0 {
			t.Fatalf("the store's factors of alice = %+v, %v; want a sealed secret", f, err)
		}
		if bytes.Contains(f.TOTP.Secret, []byte(secret)) || bytes.Contains(f.TOTP.Secret, raw) {
			t.Errorf("the %s store holds the TOTP secret in the clear", st.name)
		}
	})

	// A billing session falls short, and is told what it can step up with.
	bill, _ := s.create(t, map[string]any{"subject": "alice", "tier": "billing", "amr": []string{"pwd"}})
	r = s.verify(t, bill)
	want("billing session before the step-up", r, 403, "step_up_required")
	if f, _ := r.body["factors"].([]any); !slices.Equal(f, []any{"totp", "recovery_code"}) || r.body["required_aal"] != 2.0 {
		t.Errorf("step_up_required problem: %s; want required_aal 2 and factors [totp recovery_code]", r.raw)
	}

	// The factor key survives a restart: it is read back from the data
	// directory.
	s.kill(syscall.SIGTERM)
	s = start(t, dir, stepUpConfig+st.yaml(), "LAPSE_API_KEY="+testKey)

	// Step up with the next time step's code (the confirmation used this
	// one; the ±1 step window accepts the next).
	next := otpAt(secret, first.Add(30*time.Second))
	r = call(t, "POST", s.url+"/v1/sessions/step-up/totp", testKey, map[string]any{"token": bill, "code": next})
	want("step-up with the next code", r, 200, "")
	stepped, _ := r.body["token"].(string)
	if stepped == "" || stepped == bill {
		t.Fatalf("step-up gave token %q, want a new one", stepped)
	}
	r = call(t, "POST", s.url+"/v1/sessions/verify", testKey, map[string]any{"token": stepped, "require_aal": 2})
	want("the billing tier after the step-up", r, 200, "")
	sess, _ := r.body["session"].(map[string]any)
	if amr, _ := sess["amr"].([]any); sess["aal"] != 2.0 || !slices.Contains(amr, any("otp")) {
		t.Errorf("stepped-up session: aal %v amr %v, want 2 with otp", sess["aal"], amr)
	}

	// The same code again, from another of alice's sessions, and an older
	// one: refused.
	other, _ := s.create(t, map[string]any{"subject": "alice", "tier": "billing"})
	r = call(t, "POST", s.url+"/v1/sessions/step-up/totp", testKey, map[string]any{"token": other, "code": next})
	want("replayed code", r, 403, "code_reused")
	r = call(t, "POST", s.url+"/v1/sessions/step-up/totp", testKey, map[string]any{"token": other, "code": otpAt(secret, first)})
	want("older code", r, 403, "code_reused")
	want("the other session is still short", s.verify(t, other), 403, "step_up_required")

	// A recovery code works once.
	rc, _ := recovery[0].(string)
	r = call(t, "POST", s.url+"/v1/sessions/step-up/totp", testKey, map[string]any{"token": other, "code": rc})
	want("recovery code", r, 200, "")
	third, _ := s.create(t, map[string]any{"subject": "alice", "tier": "billing"})
	r = call(t, "POST", s.url+"/v1/sessions/step-up/totp", testKey, map[string]any{"token": third, "code": rc})
	want("the same recovery code again", r, 403, "code_rejected")

	// An app with its own MFA steps up without lapse's factor.
	r = call(t, "POST", s.url+"/v1/sessions/step-up", testKey, map[string]any{"token": third, "aal": 2, "amr": []string{"pwd", "hwk"}})
	want("app-asserted step-up", r, 200, "")
	thirdStepped, _ := r.body["token"].(string)

	// The password changes: every other session ends, the caller's stays.
	r = call(t, "POST", s.url+"/v1/subjects/alice/credential-changed", testKey, map[string]any{"keep": stepped})
	want("credential change", r, 200, "")
	if n, _ := r.body["revoked"].(float64); n != 3 {
		t.Errorf("credential change revoked %v sessions, want 3 (tok, other, third)", r.body["revoked"])
	}
	want("kept session", s.verify(t, stepped), 200, "")
	for _, gone := range []string{tok, thirdStepped} {
		want("another session after the change", s.verify(t, gone), 401, "session_revoked")
	}
}
