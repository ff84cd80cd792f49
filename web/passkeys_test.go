package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/passkey"
	"github.com/lapsehq/lapse/web"
)

type passkeyFixture struct {
	m       *lapse.Manager
	clock   *lapsetest.Clock
	store   *lapsetest.Store
	pages   *web.Pages
	current *lapse.Session
}

func newPasskeyFixture(t *testing.T) *passkeyFixture {
	t.Helper()
	f := &passkeyFixture{}
	f.m, f.clock, f.store = lapsetest.NewManager(t, lapse.Config{Clock: lapsetest.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))})
	svc, err := passkey.New(passkey.Config{Manager: f.m, RPID: "localhost", Origins: []string{"http://localhost:8090"}})
	if err != nil {
		t.Fatal(err)
	}
	f.pages, err = web.NewPages(web.Config{
		Manager: f.m, Passkeys: svc,
		Session:   func(*http.Request) (lapse.Session, bool) { return *f.current, f.current != nil },
		CSRFToken: func(*http.Request) string { return "tok" },
		StepUpURL: func(back string) string { return "/.lapse/stepup?rd=" + url.QueryEscape(back) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// add stores a passkey of subject, as a registration would.
func (f *passkeyFixture) add(t *testing.T, subject, id, name string, synced bool) {
	t.Helper()
	err := f.store.AddPasskey(t.Context(), &lapse.Passkey{ID: id, Subject: subject, Name: name, CredentialID: []byte(id),
		UserHandle: []byte("h"), PublicKey: []byte{1}, BackupEligible: synced, CreatedAt: f.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
}

func passkeyForm(form url.Values) *http.Request {
	r := httptest.NewRequest("POST", "/account/passkeys", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func TestPasskeysPage(t *testing.T) {
	t.Run("lists_own_passkeys_with_their_kind_and_the_add_form", func(t *testing.T) {
		f := newPasskeyFixture(t)
		_, f.current, _ = f.m.Create(t.Context(), lapse.CreateParams{Subject: "ada"})
		f.add(t, "ada", "pk_1", "Work laptop", false)
		f.add(t, "ada", "pk_2", "Phone", true)
		f.add(t, "bob", "pk_3", "Bob's key", false)
		f.clock.Advance(2 * time.Hour)
		resp, body := serve(f.pages.Passkeys(), httptest.NewRequest("GET", "/account/passkeys", nil))
		if resp.StatusCode != 200 {
			t.Fatalf("got %d, want 200", resp.StatusCode)
		}
		for _, want := range []string{"Work laptop", "on one device only", "Phone", "synced to your devices", "2 hours ago", "never",
			`data-lapse-passkey="register"`, `src="/lapse/web/lapse-passkey.js"`, `value="tok"`} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		if strings.Contains(body, "Bob") {
			t.Error("page shows another user's passkey")
		}
	})
	t.Run("rename_and_other_users_passkey", func(t *testing.T) {
		f := newPasskeyFixture(t)
		_, f.current, _ = f.m.Create(t.Context(), lapse.CreateParams{Subject: "ada"})
		f.add(t, "ada", "pk_1", "Key", false)
		f.add(t, "bob", "pk_3", "Bob's key", false)
		resp, _ := serve(f.pages.Passkeys(), passkeyForm(url.Values{"action": {"rename"}, "id": {"pk_1"}, "name": {"YubiKey"}, "csrf_token": {"tok"}}))
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account/passkeys?done=renamed" {
			t.Errorf("rename: %d to %q, want 303 back", resp.StatusCode, resp.Header.Get("Location"))
		}
		if keys, _ := f.store.Passkeys(t.Context(), "ada"); keys[0].Name != "YubiKey" {
			t.Errorf("name %q after rename", keys[0].Name)
		}
		if resp, _ := serve(f.pages.Passkeys(), passkeyForm(url.Values{"action": {"rename"}, "id": {"pk_3"}, "name": {"x"}, "csrf_token": {"tok"}})); resp.StatusCode != 404 {
			t.Errorf("renaming bob's passkey: %d, want 404", resp.StatusCode)
		}
		if resp, _ := serve(f.pages.Passkeys(), passkeyForm(url.Values{"action": {"rename"}, "id": {"pk_1"}, "name": {"x"}})); resp.StatusCode != 403 {
			t.Errorf("rename without the CSRF token: %d, want 403", resp.StatusCode)
		}
	})
	t.Run("remove_needs_a_recent_step_up_then_ends_the_other_sessions", func(t *testing.T) {
		f := newPasskeyFixture(t)
		tok, s, _ := f.m.Create(t.Context(), lapse.CreateParams{Subject: "ada", AMR: []string{"pwd"}})
		_, other, _ := f.m.Create(t.Context(), lapse.CreateParams{Subject: "ada"})
		f.current = s
		f.add(t, "ada", "pk_1", "Key", false)
		form := url.Values{"action": {"remove"}, "id": {"pk_1"}, "end_others": {"on"}, "csrf_token": {"tok"}}
		resp, body := serve(f.pages.Passkeys(), passkeyForm(form))
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `href="/.lapse/stepup?rd=%2Faccount%2Fpasskeys"`) {
			t.Fatalf("remove at AAL1: %d, want 403 linking to the step-up page", resp.StatusCode)
		}
		_, up, err := f.m.StepUp(t.Context(), tok.Reveal(), 2, []string{"pwd", "hwk", "user"}, lapse.ActorSubject)
		if err != nil {
			t.Fatal(err)
		}
		f.current = up
		resp, _ = serve(f.pages.Passkeys(), passkeyForm(form))
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account/passkeys?done=removed&n=1" {
			t.Fatalf("remove after a step-up: %d to %q, want 303 with one other session ended", resp.StatusCode, resp.Header.Get("Location"))
		}
		if got, _ := f.m.Session(t.Context(), other.ID); got.Status != lapse.StatusRevoked || got.EndReason != lapse.ReasonPasswordChange {
			t.Errorf("the other session %s (%s), want revoked (password_change)", got.Status, got.EndReason)
		}
		_, body = serve(f.pages.Passkeys(), httptest.NewRequest("GET", "/account/passkeys?done=removed&n=1", nil))
		if !strings.Contains(body, "The passkey was removed. 1 other session was signed out.") || !strings.Contains(body, "no passkey yet") {
			t.Error("after removing: no notice, or the passkey still listed")
		}
	})
	t.Run("without_a_passkey_service_is_404", func(t *testing.T) {
		f := newFixture(t, nil)
		if resp, _ := serve(f.pages.Passkeys(), httptest.NewRequest("GET", "/account/passkeys", nil)); resp.StatusCode != 404 {
			t.Errorf("got %d, want 404", resp.StatusCode)
		}
	})
}
