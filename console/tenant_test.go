package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/console"
	"github.com/lapsehq/lapse/lapsetest"
)

// TestTenantOperatorSeesNothingElse: on every page, an operator bound to
// acme meets acme only: the sessions page offers no other tenant in its
// filter nor a revoke in every tenant, the console's own sessions (of the
// platform) stay out of reach, the audit page's tenant is fixed to
// acme, and the policy page shows acme's effective tiers only.
func TestTenantOperatorSeesNothingElse(t *testing.T) {
	e := newEnv(t, withOperators(), withPolicy(tenantsPolicy()))
	platformAdmin := e.createOperator("root", console.RoleAdmin, "")
	if _, res := e.signInAs("192.0.2.1", "root", opPassword, e.code(platformAdmin)); res.status != http.StatusSeeOther {
		t.Fatalf("root's sign-in: %d", res.status)
	}
	op := e.createOperator("ada", console.RoleOperator, "acme")
	c, res := e.signInAs("192.0.2.2", "ada", opPassword, e.code(op))
	wantStatus(t, "ada's sign-in", res, http.StatusSeeOther)
	get := func(path string) response {
		t.Helper()
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		return e.do(c, req)
	}
	e.create("alice", "acme", "standard")
	e.create("bob", "globex", "standard")
	rootSubject := console.SubjectOf(platformAdmin.Actor())

	list := get("/console/sessions?subject=alice")
	if strings.Contains(list.body, `<option value="globex">`) || !strings.Contains(list.body, `<option value="acme">`) {
		t.Errorf("the tenant filter's options are not acme's alone:\n%s", list.body)
	}
	if strings.Contains(list.body, "all_tenants=1") {
		t.Errorf("the sessions page offers acme's operator a revoke in every tenant:\n%s", list.body)
	}
	for _, path := range []string{
		"/console/sessions?status=all&subject=" + url.QueryEscape(rootSubject),
		"/console/sessions?status=all&tier=" + console.Tier,
		"/console/revoke-subject?all_tenants=1&subject=" + url.QueryEscape(rootSubject),
	} {
		if page := get(path); strings.Contains(page.body, "192.0.2.1") || strings.Contains(page.body, `href="/console/sessions/ses_`) {
			t.Errorf("%s shows a console session of the platform to acme's operator:\n%s", path, page.body)
		}
	}
	audit := get("/console/audit?tenant=globex")
	if strings.Contains(audit.body, "bob") || !strings.Contains(audit.body, `name="tenant" value="acme" readonly`) {
		t.Errorf("the audit page is not fixed to acme:\n%s", audit.body)
	}
	policy := get("/console/policy")
	if !strings.Contains(policy.body, "Tenant acme") || strings.Contains(policy.body, "Tenant globex") || strings.Contains(policy.body, "Platform tiers") {
		t.Errorf("the policy page shows more than acme's tiers:\n%s", policy.body)
	}
	if ops := get("/console/operators"); ops.status != http.StatusForbidden {
		t.Errorf("the operators page for acme's operator: %d; want 403", ops.status)
	}
}

// tenantsPolicy is the lapsetest policy with a second tenant, globex.
func tenantsPolicy() *lapse.Policy {
	p := lapsetest.Policy()
	p.Tenants["globex"] = map[string]lapse.TierOverride{}
	if err := p.Validate(); err != nil {
		panic(err)
	}
	return p
}

// TestOperatorsPage: a platform admin lists the operators and disables
// one, which ends that operator's console session at once and is
// recorded with the admin as actor; a viewer's forged disable is refused.
func TestOperatorsPage(t *testing.T) {
	e := newEnv(t, withOperators())
	root := e.createOperator("root", console.RoleAdmin, "")
	vera := e.createOperator("vera", console.RoleViewer, "")
	rc, res := e.signInAs("192.0.2.1", "root", opPassword, e.code(root))
	wantStatus(t, "root's sign-in", res, http.StatusSeeOther)
	vc, res := e.signInAs("192.0.2.2", "vera", opPassword, e.code(vera))
	wantStatus(t, "vera's sign-in", res, http.StatusSeeOther)
	page := func(c *http.Client, path string) response {
		t.Helper()
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		return e.do(c, req)
	}
	post := func(c *http.Client, path, csrf string) response {
		t.Helper()
		return e.postWith(c, path, url.Values{"csrf": {csrf}}, http.Header{"Origin": {e.srv.URL}, "Sec-Fetch-Site": {"same-origin"}})
	}
	// A viewer is offered no operators page, and a disable they forge is refused.
	vs := page(vc, "/console/sessions")
	if strings.Contains(vs.body, `href="/console/operators"`) {
		t.Errorf("a viewer is offered the operators page")
	}
	if res := post(vc, "/console/operators/"+root.ID+"/disable", csrfOf(t, vs.body)); res.status != http.StatusForbidden {
		t.Errorf("a viewer's forged disable: %d; want 403", res.status)
	}
	list := page(rc, "/console/operators")
	wantStatus(t, "operators page", list, http.StatusOK)
	for _, want := range []string{"root", "vera", "/console/operators/" + vera.ID + "/disable"} {
		if !strings.Contains(list.body, want) {
			t.Errorf("the operators page lacks %q", want)
		}
	}
	if strings.Contains(list.body, "/console/operators/"+root.ID+"/disable") {
		t.Errorf("the operators page offers root to disable themselves")
	}
	res = post(rc, "/console/operators/"+vera.ID+"/disable", csrfOf(t, list.body))
	if res.status != http.StatusSeeOther || !strings.Contains(res.location, "notice=disabled") {
		t.Fatalf("disable: %d to %q; want 303 back with a notice", res.status, res.location)
	}
	if res := page(vc, "/console/sessions"); res.status != http.StatusSeeOther || !strings.Contains(res.location, "ended=revoked") {
		t.Errorf("vera's next request: %d to %q; want the sign-in page, ended=revoked", res.status, res.location)
	}
	evs := e.events(lapse.EventOperatorChanged)
	if last := evs[len(evs)-1]; last.Actor != root.Actor() || last.Reason != lapse.Reason(vera.ID) || last.IP != "127.0.0.1" {
		t.Errorf("the disable's event = %+v; want by %s about %s from 127.0.0.1", last, root.Actor(), vera.ID)
	}
	e.clock.Advance(30 * time.Second) // a fresh code, so only the disabling can refuse it
	if _, res := e.signInAs("192.0.2.2", "vera", opPassword, e.code(vera)); res.status != http.StatusUnauthorized {
		t.Errorf("vera's sign-in once disabled: %d; want 401", res.status)
	}
}

// TestTenantOperatorSignsOut: an operator bound to a tenant can end their
// own console session, which belongs to no tenant.
func TestTenantOperatorSignsOut(t *testing.T) {
	e := newEnv(t, withOperators())
	ada := e.createOperator("ada", console.RoleViewer, "acme")
	c, res := e.signInAs("192.0.2.1", "ada", opPassword, e.code(ada))
	wantStatus(t, "sign-in", res, http.StatusSeeOther)
	req, _ := http.NewRequest("GET", e.srv.URL+"/console/sessions", nil)
	page := e.do(c, req)
	out := e.postWith(c, "/console/signout", url.Values{"csrf": {csrfOf(t, page.body)}}, http.Header{"Origin": {e.srv.URL}, "Sec-Fetch-Site": {"same-origin"}})
	if out.status != http.StatusSeeOther || !strings.Contains(out.location, "ended=signedout") {
		t.Errorf("sign-out: %d to %q; want 303 to the sign-in page, ended=signedout", out.status, out.location)
	}
}
