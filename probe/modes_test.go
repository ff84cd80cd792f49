package probe_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/lapsehq/lapse/probe"
	"github.com/lapsehq/lapse/probe/probetest"
)

// runVirtual probes app with a target file in a synctest bubble, where the waits cost
// no real time.
func runVirtual(t *testing.T, app *probetest.App, file []byte) *probe.Report {
	t.Helper()
	target, err := probe.ParseTarget("app.yaml", file, probetest.Env)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := probe.Run(context.Background(), target, probe.Options{Transport: memTransport{app}})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// expectation is what a check must find: its status and, in its detail or evidence,
// each of says.
type expectation struct {
	status probe.Status
	says   []string
}

// assertVerdicts checks every check of rep: those in want as given, the others pass.
func assertVerdicts(t *testing.T, rep *probe.Report, want map[string]expectation) {
	t.Helper()
	for _, c := range rep.Checks {
		w, ok := want[c.ID]
		if !ok {
			w.status = probe.Pass
		}
		all := c.Detail + "\n" + strings.Join(c.Evidence, "\n")
		if c.Status != w.status {
			t.Errorf("%s: got %s, want %s\n  detail: %s\n  evidence:\n    %s", c.ID, c.Status, w.status, c.Detail, strings.Join(c.Evidence, "\n    "))
			continue
		}
		for _, s := range w.says {
			if !strings.Contains(all, s) {
				t.Errorf("%s: the report does not say %q; it says:\n%s", c.ID, s, all)
			}
		}
	}
}

// probeHandler runs checks of the web target file of app against h, which serves app
// with changes.
func probeHandler(t *testing.T, app *probetest.App, h http.Handler, checks ...string) *probe.Report {
	t.Helper()
	target, err := probe.ParseTarget("app.yaml", app.TargetFile("https://app.test", probetest.Web, ""), probetest.Env)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := probe.Run(context.Background(), target, probe.Options{Checks: checks, Transport: memTransport{h}})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

var (
	skipCookies = expectation{status: probe.Skip, says: []string{"the session travels in a header"}}
	skipFixing  = expectation{status: probe.Skip, says: []string{"there is no id to fix before sign-in"}}
)

// TestRunJudgesEachKindOfApp probes each kind of probetest app, in virtual time, and
// checks each verdict and that the evidence names the credential and what it reached.
func TestRunJudgesEachKindOfApp(t *testing.T) {
	const pair = "cookies __Host-remember-series+__Host-remember-token (session.cookies)"
	cases := []struct {
		name string
		kind probetest.Kind
		flaw probetest.Flaw
		edit func(string) string // changes the target file
		want map[string]expectation
	}{
		{name: "remember_me_ended_by_logout", kind: probetest.RememberMe, want: map[string]expectation{
			"logout-invalidates": {probe.Pass, []string{
				"after sign-in: " + pair + ": signed the browser back in, with a new cookie __Host-sid (GET /account → 303 /remember-me?to=/account → 303 /account → 200)",
				"after sign-out: " + pair + ": refused (GET /account → 303 /remember-me?to=/account → 303 /login → 200)",
				"after sign-out: all 3 cookies the sign-in set together: refused"}},
			"idle-timeout": {probe.Pass, []string{"idle 2s: refused: cookie __Host-sid refused; " + pair + " signed the browser back in",
				"not judged against the idle timeout, but against sign-out and the absolute timeout"}},
			"absolute-timeout":        {probe.Pass, []string{"4.5s after sign-in: " + pair + ": refused"}},
			"cookie-attributes":       {probe.Pass, []string{"__Host-remember-token: advice: persists for 4s, within the absolute timeout"}},
			"password-change-revokes": {probe.Pass, []string{"another session's " + pair + ": refused"}},
			"concurrent-logout":       {probe.Pass, []string{"another session's " + pair + ": refused"}},
		}},
		{name: "remember_me_survives_logout", kind: probetest.RememberMe, flaw: probetest.RememberMeSurvivesLogout, want: map[string]expectation{
			"logout-invalidates": {probe.Fail, []string{
				pair + " still signed the browser back in 3.75s after sign-out (refused at 4s)",
				"after sign-out: cookie __Host-sid", "refused (GET /account → 303 /login → 200)",
				"after sign-out: " + pair + ": signed the browser back in, with a new cookie __Host-sid (GET /account → 303 /remember-me?to=/account → 303 /account → 200)"}},
		}},
		{name: "remember_me_outlives_the_absolute_timeout", kind: probetest.RememberMe, flaw: probetest.RememberMeOutlivesAbsolute, want: map[string]expectation{
			"cookie-attributes": {probe.Fail, []string{"__Host-remember-series: persists for 7 days, beyond the absolute timeout"}},
			"absolute-timeout": {probe.Fail, []string{"still authenticating 4.5s after sign-in: " + pair + ", signing the browser back in",
				"the app signed the session back in with a new cookie __Host-sid"}},
		}},
		{name: "remember_me_redirect_not_followed", kind: probetest.RememberMe, flaw: probetest.RememberMeSurvivesLogout,
			edit: func(f string) string { return strings.Replace(f, "  follow_redirects: true\n", "", 1) },
			want: map[string]expectation{
				// Without following the redirect the probe cannot see the sign-in, and says so.
				"logout-invalidates": {probe.Pass, []string{"advice: " + pair + " was refused with a redirect to /remember-me?to=/account, which the probe did not follow; if that signs the browser back in, set authenticated.follow_redirects: true"}},
			}},
		{name: "token_in_a_raw_body", kind: probetest.RawBody, want: map[string]expectation{
			"cookie-attributes": skipCookies, "fixation": skipFixing,
			"logout-invalidates": {probe.Pass, []string{"after sign-out: bearer token", "refused (GET /api/me → 401)"}},
		}},
		{name: "token_in_a_header", kind: probetest.HeaderToken, want: map[string]expectation{
			"cookie-attributes": skipCookies, "fixation": skipFixing,
			"logout-invalidates": {probe.Pass, []string{"after sign-in: token in header X-Session-Token", "accepted (GET /api/me → 200)"}},
		}},
		{name: "token_in_a_cookie_set_by_script", kind: probetest.ScriptCookie, want: map[string]expectation{
			"cookie-attributes":  {probe.Fail, []string{"cookie token carries the session token and is set by the page's script (session.token.cookie): a cookie set by a script cannot be HttpOnly"}},
			"fixation":           skipFixing,
			"logout-invalidates": {probe.Pass, []string{"after sign-out: token in cookie token", "refused (GET /api/me → 401)"}},
		}},
		{name: "no_logout_route", kind: probetest.NoLogout, want: map[string]expectation{
			"cookie-attributes": skipCookies, "fixation": skipFixing,
			"logout-invalidates": {probe.Fail, []string{"no server-side sign-out: a stolen token lives until it expires"}},
		}},
		{name: "password_change_refused_with_a_302", kind: probetest.RefusedPasswordChange, want: map[string]expectation{
			"password-change-revokes": {probe.Error, []string{
				"password_change did not take effect (POST /password → 302 /account?password=unchanged → 200), so nothing was judged",
				"signing in with credentials.new_password failed",
				"credentials.password signs in, so the account's password is credentials.password"}},
		}},
		{name: "password_change_refused_against_expect_location", kind: probetest.RefusedPasswordChange,
			edit: func(f string) string {
				return strings.Replace(f, "    new: \"{{new_password}}\"\n", "    new: \"{{new_password}}\"\n  expect_location: password=changed\n", 1)
			},
			want: map[string]expectation{
				"password-change-revokes": {probe.Error, []string{`password_change did not take effect, so nothing was judged: unexpected answer: POST /password → 302 /account?password=unchanged → 200, expected a URL containing "password=changed"`}},
			}},
		{name: "json_web_tokens", kind: probetest.JWT, want: map[string]expectation{
			"token-entropy":     {probe.Pass, []string{"20 JSON Web Tokens from separate sign-ins: all different", "its entropy is not estimated"}},
			"cookie-attributes": skipCookies, "fixation": skipFixing,
			"logout-invalidates": {probe.Fail, []string{
				"the token (a JSON Web Token) was still accepted 1.75s after sign-out (refused at 2s); a stateless token cannot be ended server-side",
				"after sign-out: refresh token", "refused (POST /jwt/refresh → 401)"}},
			"password-change-revokes": {probe.Fail, []string{"its token (a JSON Web Token) was still accepted; a stateless token cannot be ended server-side"}},
			"concurrent-logout":       {probe.Fail, []string{"its token (a JSON Web Token) was still accepted"}},
			"absolute-timeout":        {probe.Pass, []string{"4.5s after sign-in: refresh token", "refused (POST /jwt/refresh → 401)"}},
		}},
		{name: "logout_all_without_a_success_condition", kind: probetest.JWT,
			edit: func(f string) string { return strings.Replace(f, "  expect_status: [204]\n", "", 1) },
			want: map[string]expectation{
				"token-entropy":     {probe.Pass, nil},
				"cookie-attributes": skipCookies, "fixation": skipFixing,
				"logout-invalidates":      {probe.Fail, nil},
				"password-change-revokes": {probe.Fail, nil},
				"concurrent-logout":       {probe.Error, []string{"the target file gives no expect_status, expect_location or expect_body, so the probe cannot tell a request the app refused from one that left the session alive"}},
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				app := probetest.NewApp(tc.flaw, idle, absolute)
				file := string(app.TargetFile("https://app.test", tc.kind, ""))
				if tc.edit != nil {
					file = tc.edit(file)
				}
				rep := runVirtual(t, app, []byte(file))
				assertVerdicts(t, rep, tc.want)
				assertNoSecrets(t, rep, app.Issued())
			})
		})
	}
}

// TestCookieAttributesJudgeOnlyWhatTheSignInSet has the sign-in page set a tracking
// cookie and an old remember-me cookie that the sign-in then deletes: neither is the
// sign-in's, so neither is judged or said to persist.
func TestCookieAttributesJudgeOnlyWhatTheSignInSet(t *testing.T) {
	app := probetest.NewApp(probetest.Sound, idle, absolute)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/login":
			w.Header().Add("Set-Cookie", "tracking=t1; Path=/; Max-Age=31536000")
			w.Header().Add("Set-Cookie", "legacy_remember=old; Path=/; Max-Age=31536000; Secure; HttpOnly; SameSite=Lax")
		case r.Method == http.MethodPost && r.URL.Path == "/login":
			w.Header().Add("Set-Cookie", "legacy_remember=; Path=/; Max-Age=0")
		}
		app.ServeHTTP(w, r)
	})
	c := probeHandler(t, app, h, "cookie-attributes").Checks[1]
	all := c.Detail + "\n" + strings.Join(c.Evidence, "\n")
	if c.Status != probe.Pass || strings.Contains(all, "tracking") || strings.Contains(all, "legacy_remember") || !strings.Contains(c.Detail, "1 cookie(s)") {
		t.Errorf("got %s:\n%s\nwant a pass judging __Host-sid alone", c.Status, all)
	}
}
