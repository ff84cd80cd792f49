package console_test

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	pqtotp "github.com/pquerna/otp/totp"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/console"
)

const opPassword = "a long enough operator password"

func withOperators() option {
	return func(_ *console.Config, o *envOptions) { o.operators = true }
}

// operator is a named operator made for a test, with the secret of
// their authenticator app.
type operator struct {
	*lapse.Operator
	secret string
}

// createOperator creates an operator as lapse operators create does.
func (e *env) createOperator(name string, role console.Role, tenant string) operator {
	e.t.Helper()
	o, enr, err := console.CreateOperator(context.Background(), e.m, e.totp,
		console.NewOperator{Name: name, Role: role, Tenant: tenant, Password: opPassword}, "cli")
	if err != nil {
		e.t.Fatalf("CreateOperator(%s): %v", name, err)
	}
	return operator{o, enr.TOTP.Secret}
}

// code is the operator's authenticator app's code now.
func (e *env) code(op operator) string {
	e.t.Helper()
	c, err := pqtotp.GenerateCode(op.secret, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// signInAs posts the operator form with a fresh client from addr (through
// the trusted proxy, when the env trusts one) and returns the client.
func (e *env) signInAs(addr, name, pw, code string) (*http.Client, response) {
	e.t.Helper()
	c := e.newClient()
	req, _ := http.NewRequest("GET", e.srv.URL+"/console/signin", nil)
	req.Header.Set("X-Forwarded-For", addr)
	page := e.do(c, req)
	h := http.Header{"Origin": {e.srv.URL}, "Sec-Fetch-Site": {"same-origin"}, "X-Forwarded-For": {addr}}
	form := url.Values{"csrf": {csrfOf(e.t, page.body)}, "name": {name}, "password": {pw}, "code": {code}}
	return c, e.postWith(c, "/console/signin", form, h)
}

func (e *env) events(types ...lapse.EventType) []lapse.Event {
	e.t.Helper()
	evs, err := e.store.QueryEvents(context.Background(), lapse.EventQuery{Types: types})
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

var alertText = regexp.MustCompile(`<p class="error" id="signin-error" role="alert">([^<]*)</p>`)

// TestOperatorSignsIn: a name, password and code open a console session
// as the operator, recorded with their actor and the client's address;
// signing out is recorded too.
func TestOperatorSignsIn(t *testing.T) {
	e := newEnv(t, withOperators(), withTrustedProxies(netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")))
	op := e.createOperator("vera", console.RoleViewer, "")
	c, res := e.signInAs("198.51.100.4", "vera", opPassword, e.code(op))
	if res.status != http.StatusSeeOther || res.location != "/console/sessions" {
		t.Fatalf("sign-in = %d to %q; want 303 to /console/sessions\n%s", res.status, res.location, res.body)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/console/sessions", nil)
	page := e.do(c, req)
	if !strings.Contains(page.body, `<p class="who"><span class="who-name">vera</span> · viewer</p>`) {
		t.Errorf("the sessions page does not show vera as a viewer:\n%s", page.body)
	}
	ins := e.events(lapse.EventOperatorSignedIn)
	if len(ins) != 1 || ins[0].Actor != op.Actor() || ins[0].ActorName != op.Name || ins[0].IP != "198.51.100.4" {
		t.Fatalf("signed_in events = %+v; want one by %s (%s) from 198.51.100.4", ins, op.Actor(), op.Name)
	}
	out := e.postWith(c, "/console/signout", url.Values{"csrf": {csrfOf(t, page.body)}},
		http.Header{"Origin": {e.srv.URL}, "Sec-Fetch-Site": {"same-origin"}, "X-Forwarded-For": {"198.51.100.4"}})
	wantStatus(t, "sign-out", out, http.StatusSeeOther)
	if outs := e.events(lapse.EventOperatorSignedOut); len(outs) != 1 || outs[0].Actor != op.Actor() || outs[0].ActorName != op.Name || outs[0].IP != "198.51.100.4" {
		t.Errorf("signed_out events = %+v; want one by %s from 198.51.100.4", outs, op.Actor())
	}
}

// TestOperatorSignInFailuresLookAlike: a wrong name, a wrong password, a
// wrong code, a replayed code and a disabled operator all get the same
// 401 and the same message, and each is recorded as a failed sign-in
// under the operator's actor, or "console" for a name that is no one's.
func TestOperatorSignInFailuresLookAlike(t *testing.T) {
	e := newEnv(t, withOperators())
	op := e.createOperator("otto", console.RoleOperator, "")
	gone := e.createOperator("gone", console.RoleAdmin, "")
	now := e.clock.Now()
	if _, _, err := console.ChangeOperator(context.Background(), e.m, gone.ID, lapse.OperatorChange{DisabledAt: &now}, "cli"); err != nil {
		t.Fatal(err)
	}
	// A first sign-in spends the code of this time step.
	used := e.code(op)
	if _, res := e.signInAs("192.0.2.1", "otto", opPassword, used); res.status != http.StatusSeeOther {
		t.Fatalf("first sign-in: %d; want 303", res.status)
	}
	wrongCode := "000000"
	if wrongCode == used {
		wrongCode = "111111"
	}
	for _, c := range []struct {
		name, user, pw, code, actor string
	}{
		{"unknown name", "nobody", opPassword, used, console.Actor},
		{"wrong password", "otto", opPassword + "!", e.code(op), op.Actor()},
		{"wrong code", "otto", opPassword, wrongCode, op.Actor()},
		{"replayed code", "otto", opPassword, used, op.Actor()},
		{"disabled operator", "gone", opPassword, e.code(gone), gone.Actor()},
		{"empty form", "", "", "", console.Actor},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			before := len(e.events(lapse.EventOperatorSignInFailed))
			_, res := e.signInAs("192.0.2.1", c.user, c.pw, c.code)
			m := alertText.FindStringSubmatch(res.body)
			if res.status != http.StatusUnauthorized || m == nil || m[1] != "Wrong name, password or code." {
				t.Errorf("status %d, message %q; want 401 and %q", res.status, m, "Wrong name, password or code.")
			}
			evs := e.events(lapse.EventOperatorSignInFailed)
			if len(evs) != before+1 {
				t.Fatalf("sign_in_failed events = %d; want %d", len(evs), before+1)
			}
			if ev := evs[len(evs)-1]; ev.Actor != c.actor || ev.IP != "127.0.0.1" || ev.Reason != lapse.ReasonInvalidCredentials {
				t.Errorf("event = %+v; want actor %s, ip 127.0.0.1, reason invalid_credentials", ev, c.actor)
			}
		})
	}
}

// TestDisablingRevokesTheOpenSession: an operator's console session ends
// the moment they are disabled, and a change of role or tenant ends it too.
func TestDisablingRevokesTheOpenSession(t *testing.T) {
	for _, change := range []struct {
		name string
		do   func(*lapse.OperatorChange, time.Time)
	}{
		{"disabled", func(ch *lapse.OperatorChange, now time.Time) { ch.DisabledAt = &now }},
		{"role_changed", func(ch *lapse.OperatorChange, _ time.Time) { ch.Role = new(string(console.RoleViewer)) }},
		{"tenant_changed", func(ch *lapse.OperatorChange, _ time.Time) { ch.Tenant = new("acme") }},
	} {
		t.Run(change.name, func(t *testing.T) {
			e := newEnv(t, withOperators())
			op := e.createOperator("ada", console.RoleAdmin, "")
			c, res := e.signInAs("192.0.2.1", "ada", opPassword, e.code(op))
			wantStatus(t, "sign-in", res, http.StatusSeeOther)
			var ch lapse.OperatorChange
			change.do(&ch, e.clock.Now())
			if _, n, err := console.ChangeOperator(context.Background(), e.m, op.ID, ch, "cli"); err != nil || n != 1 {
				t.Fatalf("ChangeOperator = %d, %v; want 1 session ended", n, err)
			}
			e.wantChangeEnded(c, op.ID)
		})
	}
}

// TestResetTOTPReplacesTheFactor: ResetTOTP ends the operator's open
// session, records the change by its actor, and returns a new secret and
// recovery codes; afterwards a code of the old secret the old factor
// would have accepted (the next time step) and an old recovery code are
// refused, and the new secret's code and recovery codes are accepted.
func TestResetTOTPReplacesTheFactor(t *testing.T) {
	e := newEnv(t, withOperators())
	o, old, err := console.CreateOperator(context.Background(), e.m, e.totp,
		console.NewOperator{Name: "ada", Role: console.RoleAdmin, Password: opPassword}, "cli")
	if err != nil {
		t.Fatal(err)
	}
	c, res := e.signInAs("192.0.2.1", "ada", opPassword, e.code(operator{o, old.TOTP.Secret}))
	wantStatus(t, "sign-in", res, http.StatusSeeOther)
	enr, n, err := console.ResetTOTP(context.Background(), e.m, e.totp, o, "cli")
	if err != nil || n != 1 {
		t.Fatalf("ResetTOTP = %d, %v; want 1 session ended", n, err)
	}
	e.wantChangeEnded(c, o.ID)
	if enr.TOTP.Secret == old.TOTP.Secret || len(enr.RecoveryCodes) == 0 {
		t.Fatalf("ResetTOTP returned the old secret or no recovery codes: %+v", enr)
	}
	next, err := pqtotp.GenerateCode(old.TOTP.Secret, e.clock.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for what, code := range map[string]string{"the old secret's next code": next, "an old recovery code": old.RecoveryCodes[0]} {
		if _, res := e.signInAs("192.0.2.2", "ada", opPassword, code); res.status != http.StatusUnauthorized {
			t.Errorf("sign-in with %s = %d; want 401", what, res.status)
		}
	}
	for what, code := range map[string]string{"the new secret's code": e.code(operator{o, enr.TOTP.Secret}), "a new recovery code": enr.RecoveryCodes[0]} {
		if _, res := e.signInAs("192.0.2.3", "ada", opPassword, code); res.status != http.StatusSeeOther {
			t.Errorf("sign-in with %s = %d; want 303", what, res.status)
		}
	}
}

// wantChangeEnded checks that the console session of client c has
// ended (its next request goes to the sign-in page, ended=revoked), and
// that the operator with id was created and then changed once, by cli.
func (e *env) wantChangeEnded(c *http.Client, id string) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/console/sessions", nil)
	if res := e.do(c, req); res.status != http.StatusSeeOther || !strings.Contains(res.location, "ended=revoked") {
		e.t.Errorf("the next request: %d to %q; want 303 to the sign-in page, ended=revoked", res.status, res.location)
	}
	if evs := e.events(lapse.EventOperatorChanged); len(evs) != 2 || evs[1].Actor != "cli" || evs[1].Reason != lapse.Reason(id) {
		e.t.Errorf("operator.changed events = %+v; want the create and the change, by cli, naming %s", evs, id)
	}
}

// TestOperatorSignInIsThrottledPerName: failures for one name from many
// addresses throttle that name (and only it), with the same 429 whether
// the name is an operator's or not.
func TestOperatorSignInIsThrottledPerName(t *testing.T) {
	e := newEnv(t, withOperators(), withTrustedProxies(netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")))
	op := e.createOperator("otto", console.RoleOperator, "")
	e.createOperator("ada", console.RoleAdmin, "")
	for _, name := range []string{"otto", "nobody"} {
		for i := range 10 {
			if _, res := e.signInAs(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String(), name, "wrong password!!", "000000"); res.status != http.StatusUnauthorized {
				t.Fatalf("%s: failure %d: %d; want 401", name, i+1, res.status)
			}
		}
	}
	_, otto := e.signInAs("203.0.113.1", "otto", opPassword, e.code(op))
	_, nobody := e.signInAs("203.0.113.2", "nobody", opPassword, "000000")
	for name, res := range map[string]response{"otto": otto, "nobody": nobody} {
		if res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") != "30" || !strings.Contains(res.body, "Too many failed sign-ins") {
			t.Errorf("%s after ten failures: %d, Retry-After %q; want 429, 30", name, res.status, res.header.Get("Retry-After"))
		}
	}
	_, res := e.signInAs("203.0.113.3", "ada", opPassword+"x", "000000")
	wantStatus(t, "another name", res, http.StatusUnauthorized)
}

// TestKeySignInStaysBesideOperators: with operators, the key form is the
// second one on the page and still signs in, recorded as the key.
func TestKeySignInStaysBesideOperators(t *testing.T) {
	e := newEnv(t, withOperators())
	page := e.get("/console/signin")
	if i, j := strings.Index(page.body, `name="password"`), strings.Index(page.body, "Sign in with an API key"); i < 0 || j < i {
		t.Errorf("the sign-in page does not offer the operator form first and the key form second:\n%s", page.body)
	}
	e.signIn()
	if evs := e.events(lapse.EventOperatorSignedIn); len(evs) != 1 || evs[0].Actor != admin.Actor {
		t.Errorf("signed_in events = %+v; want one by %s", evs, admin.Actor)
	}
}
