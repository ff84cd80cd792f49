package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/console"
	"github.com/lapsehq/lapse/oidc"
	"github.com/lapsehq/lapse/oidc/oidctest"
)

// idpRoles are the role mappings of the tests, as docs/oidc.md shows
// them: lapse-admins are admins, acme-support operators of acme,
// globex-support operators of globex, auditors viewers.
var idpRoles = []console.RoleMap{
	{Value: "lapse-admins", Role: console.RoleAdmin},
	{Value: "acme-support", Role: console.RoleOperator, Tenant: "acme"},
	{Value: "globex-support", Role: console.RoleOperator, Tenant: "globex"},
	{Value: "auditors", Role: console.RoleViewer},
}

// withIdP runs a real OP (oidctest) beside the console and lets
// operators sign in there, with idpRoles; change adjusts the IdP.
func withIdP(t *testing.T, op **oidctest.Provider, change ...func(*console.IdP)) option {
	return func(c *console.Config, o *envOptions) {
		p := oidctest.Start(t, oidctest.Options{RedirectURIs: []string{o.base + console.IdPCallbackPath}})
		login, err := oidc.NewLogin(oidc.LoginConfig{
			Issuer: p.Issuer, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret,
			RedirectURL: o.base + console.IdPCallbackPath, CallbackPath: console.IdPCallbackPath,
			CookiePrefix: "lapse_console_oidc_", Assurance: oidc.Assurance{ACR: map[string]int{oidctest.MFA: 2}},
			// The OP's tokens carry real times.
			Clock: lapse.SystemClock{},
		})
		if err != nil {
			t.Fatal(err)
		}
		c.IdP = &console.IdP{Login: login, Name: "Test IdP", Roles: idpRoles}
		for _, ch := range change {
			ch(c.IdP)
		}
		*op = p
	}
}

// idpSignIn signs the env's client in as username at the OP, from
// /console/oidc/start?next=next, and returns the last answer (the
// callback's).
func (e *env) idpSignIn(op *oidctest.Provider, username, next string) response {
	e.t.Helper()
	follow := *e.client // shares the jar, follows redirects
	follow.CheckRedirect = nil
	start := e.srv.URL + console.IdPStartPath
	if next != "" {
		start += "?next=" + url.QueryEscape(next)
	}
	res, err := op.SignIn(&follow, start, username)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, res.Body)
	return response{status: res.StatusCode, body: b.String(), header: res.Header}
}

// consoleSessions returns the console sessions of the IdP account sub.
func (e *env) consoleSessions(op *oidctest.Provider, sub string) []*lapse.Session {
	e.t.Helper()
	ss, err := e.store.ListSessions(context.Background(), lapse.SessionQuery{
		Subject: console.SubjectOf(console.IdPActor(op.Issuer, sub)), Tier: console.Tier, Reserved: true, Now: e.clock.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	return ss
}

func identityOf(t *testing.T, s *lapse.Session) console.Identity {
	t.Helper()
	var who console.Identity
	if err := json.Unmarshal(s.Metadata, &who); err != nil {
		t.Fatal(err)
	}
	return who
}

// TestIdPSignInMapsGroupsToRoleAndTenant: alice's groups acme-support
// and auditors make her an operator bound to acme (the highest role);
// she then lists and reads acme's sessions only. bob's lapse-admins make
// him an admin of the whole platform. The groups claim is read from the
// ID token or, when the provider keeps it there, from userinfo.
func TestIdPSignInMapsGroupsToRoleAndTenant(t *testing.T) {
	for _, where := range []string{"id_token", "userinfo"} {
		t.Run(where, func(t *testing.T) {
			var op *oidctest.Provider
			e := newEnv(t, withIdP(t, &op))
			op.GroupsInUserInfo(where == "userinfo")
			mine := e.create("alice", "acme", "standard")
			other := e.create("bob", "", "standard")

			res := e.idpSignIn(op, "alice", "/console/sessions?status=all")
			wantStatus(t, "alice's callback", res, http.StatusOK)
			if !strings.Contains(res.body, `content="0;url=/console/sessions?status=all"`) {
				t.Errorf("the callback's page does not go on to next:\n%s", res.body)
			}
			ss := e.consoleSessions(op, "u-alice")
			if len(ss) != 1 {
				t.Fatalf("alice has %d console sessions, want 1", len(ss))
			}
			who := identityOf(t, ss[0])
			want := console.Identity{Actor: console.IdPActor(op.Issuer, "u-alice"), Name: "alice", Role: console.RoleOperator, Tenant: "acme"}
			if who != want {
				t.Errorf("alice signed in as %+v, want %+v", who, want)
			}
			if s := ss[0]; s.IdP.Issuer != op.Issuer || s.IdP.Subject != "u-alice" || s.IdP.SID == "" || s.AAL != 1 {
				t.Errorf("alice's console session: IdP %+v, AAL %d; want the OP's session, AAL 1", s.IdP, s.AAL)
			}
			list := e.get("/console/sessions?status=all")
			wantStatus(t, "alice's session list", list, http.StatusOK)
			if !strings.Contains(list.body, mine.ID) || strings.Contains(list.body, other.ID) {
				t.Errorf("acme's operator lists: has acme's %v, has the platform's %v",
					strings.Contains(list.body, mine.ID), strings.Contains(list.body, other.ID))
			}
			if page := e.get("/console/sessions/" + other.ID); page.status != http.StatusNotFound {
				t.Errorf("another tenant's session = %d to acme's operator, want 404", page.status)
			}

			e.client = e.newClient()
			wantStatus(t, "bob's callback", e.idpSignIn(op, "bob", ""), http.StatusOK)
			ss = e.consoleSessions(op, "u-bob")
			if len(ss) != 1 {
				t.Fatalf("bob has %d console sessions, want 1", len(ss))
			}
			if who := identityOf(t, ss[0]); who.Role != console.RoleAdmin || who.Tenant != "" || ss[0].AAL != 2 {
				t.Errorf("bob signed in as %+v at AAL %d, want a platform admin at AAL 2", who, ss[0].AAL)
			}
			list = e.get("/console/sessions?status=all")
			if !strings.Contains(list.body, mine.ID) || !strings.Contains(list.body, other.ID) {
				t.Errorf("the platform's admin does not list every tenant's sessions")
			}
		})
	}
}

// refusedSignIns returns the refused sign-ins the audit log holds.
func (e *env) refusedSignIns() []lapse.Event {
	e.t.Helper()
	evs, err := e.store.QueryEvents(context.Background(), lapse.EventQuery{Types: []lapse.EventType{lapse.EventOperatorSignInFailed}})
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

// TestIdPSignInRefusals: a user whose groups map to no role (carol), to
// operator in two tenants (dave), or whom the provider signed in with a
// password alone where the console requires AAL2 (alice), is refused
// with a 403 page that says why, gets no console session, and the
// refusal is in the audit log with the actor the sign-in would have had.
func TestIdPSignInRefusals(t *testing.T) {
	for _, c := range []struct {
		name, user, sub string
		requireAAL      int
		reason          lapse.Reason
		says            string
	}{
		{"no_matching_group", "carol", "u-carol", 0, console.ReasonNoRole, "no role in this console"},
		{"operator_of_two_tenants", "dave", "u-dave", 0, console.ReasonSeveralTenants, "several tenants"},
		{"aal1_where_aal2_required", "alice", "u-alice", 2, console.ReasonAAL, "second factor"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var op *oidctest.Provider
			e := newEnv(t, withIdP(t, &op, func(idp *console.IdP) { idp.RequireAAL = c.requireAAL }))
			res := e.idpSignIn(op, c.user, "")
			wantStatus(t, c.user+"'s callback", res, http.StatusForbidden)
			if !strings.Contains(res.body, c.says) {
				t.Errorf("the refusal does not say %q:\n%s", c.says, res.body)
			}
			if ss := e.consoleSessions(op, c.sub); len(ss) != 0 {
				t.Errorf("a refused sign-in opened %d console sessions", len(ss))
			}
			if res := e.get("/console/sessions"); res.status != http.StatusSeeOther {
				t.Errorf("after a refused sign-in, the sessions page = %d, want 303 to the sign-in page", res.status)
			}
			evs := e.refusedSignIns()
			if len(evs) != 1 || evs[0].Actor != console.IdPActor(op.Issuer, c.sub) || evs[0].Reason != c.reason || evs[0].IP == "" {
				t.Errorf("recorded refusals = %+v, want one by %s for %s with an address", evs, console.IdPActor(op.Issuer, c.sub), c.reason)
			}
		})
	}
}

// TestIdPRequireAALTakesMFA: with require_aal 2, the console asks the OP
// for the multi-factor acr, so bob (a second factor always) and dave (a
// second factor when asked) get in, at AAL2.
func TestIdPRequireAALTakesMFA(t *testing.T) {
	var op *oidctest.Provider
	e := newEnv(t, withIdP(t, &op, func(idp *console.IdP) {
		idp.RequireAAL = 2
		idp.Roles = []console.RoleMap{{Value: "lapse-admins", Role: console.RoleAdmin}, {Value: "acme-support", Role: console.RoleOperator, Tenant: "acme"}}
	}))
	for _, u := range []struct{ name, sub string }{{"bob", "u-bob"}, {"dave", "u-dave"}} {
		e.client = e.newClient()
		wantStatus(t, u.name+"'s callback", e.idpSignIn(op, u.name, ""), http.StatusOK)
		if got := op.Asked().Get("acr_values"); got != oidctest.MFA {
			t.Errorf("the console asked the OP for acr_values %q, want %q", got, oidctest.MFA)
		}
		wantStatus(t, u.name+"'s session list", e.get("/console/sessions"), http.StatusOK)
		if ss := e.consoleSessions(op, u.sub); len(ss) != 1 || ss[0].AAL != 2 {
			t.Errorf("%s's console sessions = %d, want one at AAL 2", u.name, len(ss))
		}
	}
}

// TestIdPCallbackChecksTheFlow: a callback whose state is not the one
// its browser started with, one from a browser that started no flow, and
// one whose flow cookie was tampered with are refused, and open no
// session.
func TestIdPCallbackChecksTheFlow(t *testing.T) {
	var op *oidctest.Provider
	e := newEnv(t, withIdP(t, &op))
	start := e.get(console.IdPStartPath)
	wantStatus(t, "start", start, http.StatusFound)
	auth, err := url.Parse(start.location)
	if err != nil || !strings.HasPrefix(start.location, op.Issuer) {
		t.Fatalf("start went to %q, not the OP", start.location)
	}
	state := auth.Query().Get("state")
	base, _ := url.Parse(e.srv.URL + console.IdPCallbackPath)
	var flowCookie *http.Cookie
	for _, ck := range e.client.Jar.Cookies(base) {
		if strings.HasPrefix(ck.Name, "lapse_console_oidc_") {
			flowCookie = ck
		}
	}
	if flowCookie == nil {
		t.Fatal("start set no flow cookie for the callback")
	}
	// One character of the state and two of the cookie changed, to
	// another value whatever they were.
	wrongState := state[:len(state)-1] + "x"
	if wrongState == state {
		wrongState = state[:len(state)-1] + "y"
	}
	tampered := flowCookie.Value[:len(flowCookie.Value)-2] + "AA"
	if tampered == flowCookie.Value {
		tampered = flowCookie.Value[:len(flowCookie.Value)-2] + "BB"
	}
	for _, c := range []struct {
		name   string
		client *http.Client
		state  string
		cookie string // replaces the flow cookie's value when set
	}{
		{"wrong_state", e.client, wrongState, ""},
		{"no_state", e.client, "", ""},
		{"another_browser", e.newClient(), state, ""},
		{"tampered_cookie", e.client, state, tampered},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.srv.URL+console.IdPCallbackPath+"?"+url.Values{"state": {c.state}, "code": {"whatever"}}.Encode(), nil)
			if c.cookie != "" {
				req.Header.Set("Cookie", flowCookie.Name+"="+c.cookie)
			}
			res := e.do(c.client, req)
			wantStatus(t, "callback", res, http.StatusBadRequest)
			if res.header.Get("Set-Cookie") != "" && strings.Contains(res.header.Get("Set-Cookie"), "lapse-console=") {
				t.Errorf("a refused callback set a console cookie")
			}
		})
	}
	if res := e.get("/console/sessions"); res.status != http.StatusSeeOther {
		t.Errorf("after refused callbacks, the sessions page = %d, want 303 to the sign-in page", res.status)
	}
}

// TestIdPSignInRefusesOpenRedirect: a next outside the console (another
// host, a scheme-relative URL, a path elsewhere) ends at the sessions
// page; one inside is kept.
func TestIdPSignInRefusesOpenRedirect(t *testing.T) {
	var op *oidctest.Provider
	e := newEnv(t, withIdP(t, &op))
	for next, want := range map[string]string{
		"https://evil.example/console/": "/console/sessions",
		"//evil.example/console/":       "/console/sessions",
		"/elsewhere":                    "/console/sessions",
		`/console/\evil`:                "/console/sessions",
		"/console/policy":               "/console/policy",
	} {
		e.client = e.newClient()
		res := e.idpSignIn(op, "bob", next)
		wantStatus(t, "callback", res, http.StatusOK)
		if got := `content="0;url=` + want + `"`; !strings.Contains(res.body, got) {
			t.Errorf("next %q: the page after sign-in does not go to %s:\n%s", next, want, res.body)
		}
	}
}

// TestIdPBackChannelLogoutEndsConsoleSession: the OP's back-channel
// logout of bob's session there ends his console session at once.
func TestIdPBackChannelLogoutEndsConsoleSession(t *testing.T) {
	var op *oidctest.Provider
	e := newEnv(t, withIdP(t, &op))
	wantStatus(t, "bob's callback", e.idpSignIn(op, "bob", ""), http.StatusOK)
	wantStatus(t, "bob's session list", e.get("/console/sessions"), http.StatusOK)
	sids := op.SIDs("u-bob")
	tok, err := op.LogoutToken(oidctest.LogoutClaims{Subject: "u-bob", SID: sids[len(sids)-1]})
	if err != nil {
		t.Fatal(err)
	}
	res := e.postWith(e.newClient(), console.IdPLogoutPath, url.Values{"logout_token": {tok}}, nil)
	wantStatus(t, "back-channel logout", res, http.StatusOK)
	if res := e.get("/console/sessions"); res.status != http.StatusSeeOther || !strings.Contains(res.location, "ended=revoked") {
		t.Errorf("after the IdP's logout, the sessions page = %d to %q, want 303 to the sign-in page (revoked)", res.status, res.location)
	}
	again := e.postWith(e.newClient(), console.IdPLogoutPath, url.Values{"logout_token": {tok}}, nil)
	wantStatus(t, "the same logout token again", again, http.StatusBadRequest)
}

// TestSignInPageOffersIdP: the sign-in page links to the IdP's sign-in,
// with the page's next, only when an IdP is configured.
func TestSignInPageOffersIdP(t *testing.T) {
	var op *oidctest.Provider
	page := newEnv(t, withIdP(t, &op)).get("/console/signin?next=" + url.QueryEscape("/console/policy"))
	if !strings.Contains(page.body, `href="/console/oidc/start?next=%2fconsole%2fpolicy"`) || !strings.Contains(page.body, "Sign in with Test IdP") {
		t.Errorf("the sign-in page offers no sign-in at the IdP:\n%s", page.body)
	}
	if plain := newEnv(t).get("/console/signin"); strings.Contains(plain.body, "/console/oidc/") {
		t.Errorf("without an IdP, the sign-in page offers one")
	}
	if res := newEnv(t).get(console.IdPStartPath); res.status == http.StatusFound {
		t.Errorf("without an IdP, %s redirects", console.IdPStartPath)
	}
}
