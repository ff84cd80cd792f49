package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/console"
)

// withKeys gives the console its store's keyring, and signs in as who.
func withKeys(t *testing.T, who console.Identity) (*env, string) {
	e := newEnv(t, func(c *console.Config, o *envOptions) {
		o.keys = true
		c.Keys = func(_ context.Context, k string) (console.Identity, bool) { return who, k == adminKey }
	})
	return e, e.signIn()
}

func (e *env) newKey(name, tenant string, scopes ...lapse.Scope) *lapse.APIKey {
	e.t.Helper()
	_, k, err := e.ring.Create(context.Background(), lapse.KeySpec{Name: name, Scopes: scopes, Tenant: tenant}, "cli", "")
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// TestAdminRevokesAKey: an admin lists the keys and revokes one; the
// revocation is recorded with the admin as actor, by id and name, and
// the key no longer authenticates.
func TestAdminRevokesAKey(t *testing.T) {
	who := console.Identity{Actor: "operator:ad1", Name: "ada", Role: console.RoleAdmin}
	e, csrf := withKeys(t, who)
	k := e.newKey("billing-app", "", lapse.ScopeSessionsVerify)
	page := e.get("/console/keys")
	wantStatus(t, "keys page", page, http.StatusOK)
	if !strings.Contains(page.body, "billing-app") || !strings.Contains(page.body, k.ID) {
		t.Fatalf("the keys page does not list billing-app (%s):\n%s", k.ID, page.body)
	}
	res := e.post("/console/keys/"+k.ID+"/revoke", url.Values{"csrf": {csrf}})
	wantStatus(t, "revoke", res, http.StatusSeeOther)
	got, err := e.ring.Key(context.Background(), k.ID)
	if err != nil || got.RevokedAt.IsZero() {
		t.Fatalf("after the revoke the key is %+v (%v), want revoked", got, err)
	}
	evs, _ := e.store.QueryEvents(context.Background(), lapse.EventQuery{Types: []lapse.EventType{lapse.EventKeyRevoked}})
	if len(evs) != 1 || evs[0].Actor != who.Actor || evs[0].ActorName != who.Name {
		t.Errorf("key.revoked events = %+v, want one by %s named %s", evs, who.Actor, who.Name)
	}
}

// TestKeysPageNeedsAdmin: an operator (who may revoke sessions) may
// neither see the keys nor revoke one.
func TestKeysPageNeedsAdmin(t *testing.T) {
	e, csrf := withKeys(t, console.Identity{Actor: "operator:o1", Name: "otto", Role: console.RoleOperator})
	k := e.newKey("billing-app", "", lapse.ScopeSessionsVerify)
	wantStatus(t, "keys page", e.get("/console/keys"), http.StatusForbidden)
	wantStatus(t, "revoke", e.post("/console/keys/"+k.ID+"/revoke", url.Values{"csrf": {csrf}}), http.StatusForbidden)
	if got, _ := e.ring.Key(context.Background(), k.ID); !got.RevokedAt.IsZero() {
		t.Errorf("an operator's revoke revoked the key")
	}
}

// TestTenantAdminSeesTheirTenantsKeysOnly: an admin bound to acme lists
// and revokes acme's keys only; another tenant's key, or a platform key,
// answers as an unknown one and stays usable.
func TestTenantAdminSeesTheirTenantsKeysOnly(t *testing.T) {
	e, csrf := withKeys(t, console.Identity{Actor: "operator:a1", Name: "ada", Role: console.RoleAdmin, Tenant: "acme"})
	mine := e.newKey("acme-app", "acme", lapse.ScopeSessionsVerify)
	other := e.newKey("platform-app", "", lapse.ScopeSessionsVerify)
	page := e.get("/console/keys")
	if !strings.Contains(page.body, mine.ID) || strings.Contains(page.body, other.ID) {
		t.Errorf("acme's admin's keys page: lists acme's key %v, lists the platform's %v",
			strings.Contains(page.body, mine.ID), strings.Contains(page.body, other.ID))
	}
	unknown := e.post("/console/keys/0000000000000000/revoke", url.Values{"csrf": {csrf}})
	res := e.post("/console/keys/"+other.ID+"/revoke", url.Values{"csrf": {csrf}})
	if res.status != http.StatusNotFound || unknown.status != http.StatusNotFound {
		t.Errorf("revoking the platform's key = %d, an unknown one = %d; want both 404", res.status, unknown.status)
	}
	if got, _ := e.ring.Key(context.Background(), other.ID); !got.RevokedAt.IsZero() {
		t.Errorf("acme's admin revoked the platform's key")
	}
	wantStatus(t, "revoking acme's key", e.post("/console/keys/"+mine.ID+"/revoke", url.Values{"csrf": {csrf}}), http.StatusSeeOther)
}

// TestRevokedKeyEndsItsConsoleSession: the console session a key opened
// ends at its next request once the key is revoked, wherever it was
// revoked, as disabling an operator ends theirs.
func TestRevokedKeyEndsItsConsoleSession(t *testing.T) {
	var e *env
	e = newEnv(t, func(c *console.Config, o *envOptions) {
		o.keys = true
		c.Keys = func(ctx context.Context, k string) (console.Identity, bool) {
			key, ok, err := e.ring.Authenticate(ctx, k)
			if err != nil || !ok {
				return console.Identity{}, false
			}
			return console.Identity{Actor: key.Actor(), Name: key.Name, Role: console.RoleAdmin}, true
		}
	})
	secret, k, err := e.ring.Create(context.Background(), lapse.KeySpec{Name: "break-glass", Scopes: []lapse.Scope{lapse.ScopeConsole}}, "cli", "")
	if err != nil {
		t.Fatal(err)
	}
	page := e.get("/console/signin")
	wantStatus(t, "sign-in", e.post("/console/signin", url.Values{"csrf": {csrfOf(t, page.body)}, "key": {secret}}), http.StatusSeeOther)
	wantStatus(t, "sessions page while the key is usable", e.get("/console/sessions"), http.StatusOK)
	if _, err := e.ring.Revoke(context.Background(), k.ID, "cli", ""); err != nil {
		t.Fatal(err)
	}
	res := e.get("/console/sessions")
	if res.status != http.StatusSeeOther || !strings.Contains(res.location, "ended=revoked") {
		t.Errorf("after the key's revocation the sessions page = %d to %q, want 303 to the sign-in page (ended=revoked)", res.status, res.location)
	}
}
