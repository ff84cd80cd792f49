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

// signedInAs returns an env whose adminKey signs in as who, signed in,
// and the session's synchronizer token.
func signedInAs(t *testing.T, who console.Identity) (*env, string) {
	e := newEnv(t, func(c *console.Config, _ *envOptions) {
		c.Keys = func(_ context.Context, k string) (console.Identity, bool) { return who, k == adminKey }
	})
	return e, e.signIn()
}

// TestViewerCannotRevoke: a viewer sees sessions but is offered no
// revoke, and a revoke it posts anyway is refused (403) and ends nothing.
func TestViewerCannotRevoke(t *testing.T) {
	e, csrf := signedInAs(t, console.Identity{Actor: "operator:v1", Name: "vera", Role: console.RoleViewer})
	s := e.create("alice", "", "standard")
	page := e.get("/console/sessions/" + s.ID)
	wantStatus(t, "session page", page, http.StatusOK)
	if strings.Contains(page.body, "/revoke") {
		t.Errorf("a viewer's session page offers a revoke:\n%s", page.body)
	}
	for _, post := range []struct {
		path string
		form url.Values
	}{
		{"/console/sessions/" + s.ID + "/revoke", url.Values{"csrf": {csrf}}},
		{"/console/revoke-subject", url.Values{"csrf": {csrf}, "subject": {"alice"}, "all_tenants": {"1"}}},
	} {
		res := e.post(post.path, post.form)
		wantStatus(t, post.path, res, http.StatusForbidden)
		if !strings.Contains(res.body, "operator role") {
			t.Errorf("%s: the refusal does not name the role needed:\n%s", post.path, res.body)
		}
	}
	if e.status(s.ID) != lapse.StatusActive {
		t.Errorf("a viewer's revoke ended the session")
	}
}

// TestOperatorRevokesAsThemselves: an operator's revoke is recorded with
// the operator as its actor, by id and name.
func TestOperatorRevokesAsThemselves(t *testing.T) {
	who := console.Identity{Actor: "operator:o1", Name: "otto", Role: console.RoleOperator}
	e, csrf := signedInAs(t, who)
	s := e.create("alice", "", "standard")
	res := e.post("/console/sessions/"+s.ID+"/revoke", url.Values{"csrf": {csrf}})
	wantStatus(t, "revoke", res, http.StatusSeeOther)
	evs, _ := e.store.QueryEvents(context.Background(), lapse.EventQuery{SessionID: s.ID, Types: []lapse.EventType{lapse.EventRevoked}})
	if len(evs) != 1 || evs[0].Actor != who.Actor || evs[0].ActorName != who.Name {
		t.Errorf("revoke events = %+v, want one by %s named %s", evs, who.Actor, who.Name)
	}
}

// TestTenantOperatorSeesOnlyTheirTenant: an operator bound to acme
// lists, reads and revokes acme's sessions only; another tenant's session
// answers as an unknown one, and the audit log shows acme's events only.
func TestTenantOperatorSeesOnlyTheirTenant(t *testing.T) {
	e, csrf := signedInAs(t, console.Identity{Actor: "operator:a1", Name: "ada", Role: console.RoleOperator, Tenant: "acme"})
	mine := e.create("alice", "acme", "standard")
	other := e.create("bob", "", "standard")

	list := e.get("/console/sessions?status=all")
	if !strings.Contains(list.body, mine.ID) || strings.Contains(list.body, other.ID) {
		t.Errorf("acme's operator lists: has acme's %v, has the platform's %v",
			strings.Contains(list.body, mine.ID), strings.Contains(list.body, other.ID))
	}
	unknown := e.get("/console/sessions/ses_0000000000000000000000")
	page := e.get("/console/sessions/" + other.ID)
	if page.status != unknown.status || page.status != http.StatusNotFound {
		t.Errorf("another tenant's session = %d, an unknown one %d; want both 404", page.status, unknown.status)
	}
	res := e.post("/console/sessions/"+other.ID+"/revoke", url.Values{"csrf": {csrf}})
	if res.status != http.StatusNotFound || e.status(other.ID) != lapse.StatusActive {
		t.Errorf("revoking another tenant's session = %d, status %s; want 404 and still active", res.status, e.status(other.ID))
	}
	res = e.post("/console/revoke-subject", url.Values{"csrf": {csrf}, "subject": {"bob"}, "all_tenants": {"1"}})
	if e.status(other.ID) != lapse.StatusActive {
		t.Errorf("revoke-all of bob in every tenant (%d) reached another tenant's session", res.status)
	}
	audit := e.get("/console/audit?tenant=")
	if !strings.Contains(audit.body, mine.ID) || strings.Contains(audit.body, other.ID) {
		t.Errorf("acme's operator's audit log: has acme's event %v, has the platform's %v",
			strings.Contains(audit.body, mine.ID), strings.Contains(audit.body, other.ID))
	}
	verify := e.post("/console/audit/verify", url.Values{"csrf": {csrf}})
	wantStatus(t, "chain verification by a tenant's operator", verify, http.StatusForbidden)
}
