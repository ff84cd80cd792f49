package probe

import (
	"testing"
	"time"

	"github.com/lapsehq/lapse/probe/probetest"
)

// FuzzParseTarget checks that no target file makes ParseTarget panic, and that a file it
// accepts is a usable target.
func FuzzParseTarget(f *testing.F) {
	app := probetest.NewApp(probetest.Sound, time.Minute, time.Hour)
	f.Add(app.TargetFile("https://app.example", probetest.Web, ""))
	f.Add(app.TargetFile("https://app.example", probetest.API, "checks:\n  skip: [fixation]\n"))
	f.Add([]byte("base_url: ${X}\nlogin: &a {url: /l, json: {a: [1, {b: '{{password}}'}]}}\nlogout: *a\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("policy: {idle_timeout: 30d, tolerance: -1s}\n"))
	for _, kind := range []probetest.Kind{probetest.RememberMe, probetest.RawBody, probetest.HeaderToken, probetest.ScriptCookie, probetest.JWT, probetest.NoLogout} {
		f.Add(app.TargetFile("https://app.example", kind, ""))
	}
	f.Add([]byte("base_url: http://a\nlogin: {url: /l}\nsession: {cookies: [a, b], token: {pattern: '(x)', cookie: c}}\nauthenticated: {url: /m, follow_redirects: true, location_contains: /m}\nlogout: none\n"))
	f.Add([]byte("base_url: https://a\nlogin: {url: 'http://a/l', expect_location: x, expect_body: y}\nsession: {token: {response_header: X}}\nauthenticated: {url: //b/m}\nlogout: &n none\nlogout_all: *n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tg, err := ParseTarget("fuzz.yaml", data, probetest.Env)
		if err != nil {
			return
		}
		if tg.BaseURL == "" || tg.Login.URL == "" || tg.Authenticated.Status == 0 || tg.Login.Method == "" {
			t.Errorf("accepted a target without base_url, login or defaults: %+v", tg)
		}
		if tg.Logout.None == (tg.Logout.URL != "") {
			t.Errorf("accepted a logout that is both none and a request, or neither: %+v", tg.Logout)
		}
		if tok := tg.Session.Token; tok != nil && tok.Cookie == "" && tok.Header == "" {
			t.Errorf("accepted a token sent nowhere: %+v", tok)
		}
		c, err := newClient(tg, nil)
		if err != nil {
			t.Errorf("accepted base_url %q that the client cannot use: %v", tg.BaseURL, err)
			return
		}
		for _, r := range []*Request{&tg.Login, &tg.Authenticated.Request, &tg.Logout.Request, tg.LogoutAll, tg.PasswordChange, tg.Refresh} {
			if r == nil || r.URL == "" {
				continue
			}
			refs := []string{r.URL}
			if r.CSRF != nil {
				refs = append(refs, r.CSRF.URL)
			}
			for _, ref := range refs {
				if u, err := c.base.Parse(ref); ref != "" && (err != nil || !sameOrigin(u, c.base)) {
					t.Errorf("accepted a request to %q, off the origin of %q", ref, tg.BaseURL)
				}
			}
		}
	})
}
