package middleware_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/middleware"
	"github.com/lapsehq/lapse/problem"
)

type fixture struct {
	m     *lapse.Manager
	clock *lapsetest.Clock
	mw    *middleware.Middleware
}

func newFixture(t *testing.T, cfg middleware.Config) *fixture {
	t.Helper()
	m, clock, _ := lapsetest.NewManager(t, lapse.Config{})
	cfg.Manager = m
	mw, err := middleware.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{m: m, clock: clock, mw: mw}
}

// login signs subject in through the middleware and returns the cookie
// it set.
func (f *fixture) login(t *testing.T, p lapse.CreateParams) *http.Cookie {
	t.Helper()
	if p.Subject == "" {
		p.Subject = "alice"
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "https://app.example/signin", nil)
	if _, err := f.mw.Login(w, r, p); err != nil {
		t.Fatalf("Login: %v", err)
	}
	return sessionCookie(t, w.Result())
}

func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-lapse" || c.Name == "lapse" {
			return c
		}
	}
	t.Fatalf("no session cookie in %v", resp.Header["Set-Cookie"])
	return nil
}

// seen records what the protected handler saw.
type seen struct {
	called  bool
	session lapse.Session
	ok      bool
	csrf    string
}

func (s *seen) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.called = true
		s.session, s.ok = middleware.Session(r.Context())
		s.csrf = middleware.CSRFToken(r.Context())
		io.WriteString(w, "ok")
	})
}

func do(h http.Handler, r *http.Request) *http.Response {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func get(target string, c *http.Cookie) *http.Request {
	r := httptest.NewRequest("GET", target, nil)
	if c != nil {
		r.AddCookie(c)
	}
	return r
}

func post(target string, c *http.Cookie, form url.Values) *http.Request {
	r := httptest.NewRequest("POST", target, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c != nil {
		r.AddCookie(c)
	}
	return r
}

func wantRedirect(t *testing.T, resp *http.Response, want string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
		t.Errorf("got %d to %q, want 303 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

func wantProblem(t *testing.T, resp *http.Response, status int, code lapse.Code) map[string]any {
	t.Helper()
	var p map[string]any
	json.NewDecoder(resp.Body).Decode(&p)
	if resp.StatusCode != status || p["code"] != string(code) || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("got %d %s %v, want %d problem+json with code %q", resp.StatusCode, resp.Header.Get("Content-Type"), p, status, code)
	}
	return p
}

func TestPage(t *testing.T) {
	t.Run("no_cookie_redirects_to_sign_in_with_next", func(t *testing.T) {
		f := newFixture(t, middleware.Config{})
		var s seen
		resp := do(f.mw.Page(middleware.Requirement{})(s.handler()), get("/docs/7?x=1", nil))
		wantRedirect(t, resp, "/signin?next=%2Fdocs%2F7%3Fx%3D1")
		if s.called {
			t.Error("the handler ran without a session")
		}
	})
	t.Run("valid_session_reaches_handler_with_session_and_csrf_token", func(t *testing.T) {
		f := newFixture(t, middleware.Config{})
		c := f.login(t, lapse.CreateParams{})
		var s seen
		resp := do(f.mw.Page(middleware.Requirement{})(s.handler()), get("/docs", c))
		if resp.StatusCode != 200 || !s.ok || s.session.Subject != "alice" || s.csrf == "" {
			t.Fatalf("got %d, session %v (%v), csrf %q; want 200 with alice's session and a token", resp.StatusCode, s.session.Subject, s.ok, s.csrf)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", cc)
		}
	})
	t.Run("request_records_activity", func(t *testing.T) {
		f := newFixture(t, middleware.Config{})
		c := f.login(t, lapse.CreateParams{})
		f.clock.Advance(10 * time.Minute)
		var s seen
		do(f.mw.Page(middleware.Requirement{})(s.handler()), get("/docs", c))
		if want := f.clock.Now().Add(30 * time.Minute); !s.session.IdleExpiresAt.Equal(want) {
			t.Errorf("idle deadline %v, want %v", s.session.IdleExpiresAt, want)
		}
	})
	t.Run("no_touch_route_records_no_activity", func(t *testing.T) {
		f := newFixture(t, middleware.Config{})
		c := f.login(t, lapse.CreateParams{})
		start := f.clock.Now()
		f.clock.Advance(10 * time.Minute)
		var s seen
		do(f.mw.Page(middleware.Requirement{NoTouch: true})(s.handler()), get("/status", c))
		if want := start.Add(30 * time.Minute); !s.session.IdleExpiresAt.Equal(want) {
			t.Errorf("idle deadline %v, want it unmoved at %v", s.session.IdleExpiresAt, want)
		}
	})
	t.Run("idle_session_redirects_with_reason_and_clears_cookie", func(t *testing.T) {
		f := newFixture(t, middleware.Config{SignedOutURL: "/signed-out"})
		c := f.login(t, lapse.CreateParams{})
		f.clock.Advance(31 * time.Minute)
		resp := do(f.mw.Page(middleware.Requirement{})(new(seen).handler()), get("/docs", c))
		wantRedirect(t, resp, "/signed-out?next=%2Fdocs&reason=idle_timeout")
		cleared := sessionCookie(t, resp)
		if cleared.MaxAge >= 0 || cleared.Value != "" {
			t.Errorf("cookie %v, want it cleared", cleared)
		}
	})
	t.Run("revoked_session_redirects_with_why_it_ended", func(t *testing.T) {
		f := newFixture(t, middleware.Config{SignedOutURL: "/signed-out"})
		for _, reason := range []lapse.Reason{lapse.ReasonLogout, lapse.ReasonAdmin, lapse.ReasonTheft} {
			c := f.login(t, lapse.CreateParams{})
			s, err := f.m.Current(t.Context(), c.Value)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.m.End(t.Context(), s.ID, reason, lapse.ActorSystem); err != nil {
				t.Fatal(err)
			}
			resp := do(f.mw.Page(middleware.Requirement{})(new(seen).handler()), get("/docs", c))
			wantRedirect(t, resp, "/signed-out?next=%2Fdocs&reason="+string(reason))
		}
	})
	t.Run("route_aal_unmet_redirects_to_step_up", func(t *testing.T) {
		f := newFixture(t, middleware.Config{})
		c := f.login(t, lapse.CreateParams{})
		var s seen
		resp := do(f.mw.Page(middleware.Requirement{AAL: 2})(s.handler()), get("/billing", c))
		wantRedirect(t, resp, "/stepup?next=%2Fbilling")
		if s.called {
			t.Error("the handler ran for an AAL1 session")
		}
	})
	t.Run("old_authentication_redirects_to_step_up", func(t *testing.T) {
		f := newFixture(t, middleware.Config{StepUpURL: "/verify"})
		c := f.login(t, lapse.CreateParams{AAL: 2})
		h := f.mw.Page(middleware.Requirement{AAL: 2, MaxAuthAge: 5 * time.Minute})(new(seen).handler())
		if resp := do(h, get("/billing", c)); resp.StatusCode != 200 {
			t.Fatalf("fresh AAL2 session: got %d, want 200", resp.StatusCode)
		}
		f.clock.Advance(5 * time.Minute)
		wantRedirect(t, do(h, get("/billing", c)), "/verify?next=%2Fbilling")
	})
	t.Run("step_up_route_admits_session_below_its_tier", func(t *testing.T) {
		f := newFixture(t, middleware.Config{})
		c := f.login(t, lapse.CreateParams{Tier: "sensitive"}) // the tier requires AAL2
		if resp := do(f.mw.Page(middleware.Requirement{})(new(seen).handler()), get("/docs", c)); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("ordinary route: got %d, want a redirect to step up", resp.StatusCode)
		}
		var s seen
		resp := do(f.mw.Page(middleware.Requirement{StepUp: true})(s.handler()), get("/stepup", c))
		if resp.StatusCode != 200 || !s.ok {
			t.Errorf("step-up route: got %d (session %v), want 200 with the session", resp.StatusCode, s.ok)
		}
	})
}

func TestAPI(t *testing.T) {
	t.Run("no_cookie_is_401_session_not_found", func(t *testing.T) {
		f := newFixture(t, middleware.Config{})
		wantProblem(t, do(f.mw.API(middleware.Requirement{})(new(seen).handler()), get("/api/x", nil)), 401, lapse.CodeSessionNotFound)
	})
	t.Run("expired_is_401_with_its_code", func(t *testing.T) {
		f := newFixture(t, middleware.Config{})
		c := f.login(t, lapse.CreateParams{})
		f.clock.Advance(31 * time.Minute)
		p := wantProblem(t, do(f.mw.API(middleware.Requirement{})(new(seen).handler()), get("/api/x", c)), 401, lapse.CodeSessionExpiredIdle)
		if p["end_reason"] != string(lapse.ReasonIdleTimeout) {
			t.Errorf("end_reason = %v, want idle_timeout, as lapse's HTTP API says it", p["end_reason"])
		}
	})
	t.Run("step_up_is_403_with_requirement", func(t *testing.T) {
		f := newFixture(t, middleware.Config{})
		c := f.login(t, lapse.CreateParams{})
		p := wantProblem(t, do(f.mw.API(middleware.Requirement{AAL: 2, MaxAuthAge: time.Minute})(new(seen).handler()), get("/api/x", c)), 403, lapse.CodeStepUpRequired)
		if p["required_aal"] != 2.0 || p["aal"] != 1.0 || p["max_auth_age"] != "1m0s" {
			t.Errorf("problem %v, want required_aal 2, aal 1, max_auth_age 1m0s", p)
		}
	})
}

func TestCSRF(t *testing.T) {
	t.Run("post_without_token_is_refused_and_does_not_touch", func(t *testing.T) {
		f := newFixture(t, middleware.Config{})
		c := f.login(t, lapse.CreateParams{})
		before, _ := f.m.Current(t.Context(), c.Value)
		f.clock.Advance(10 * time.Minute)
		var s seen
		resp := do(f.mw.Page(middleware.Requirement{})(s.handler()), post("/notes", c, nil))
		if resp.StatusCode != 403 || s.called {
			t.Errorf("got %d (handler ran: %v), want 403", resp.StatusCode, s.called)
		}
		after, _ := f.m.Current(t.Context(), c.Value)
		if !after.LastActiveAt.Equal(before.LastActiveAt) {
			t.Errorf("last active %v, want %v: a refused request must not count as activity", after.LastActiveAt, before.LastActiveAt)
		}
	})
	t.Run("form_field_and_header_are_accepted", func(t *testing.T) {
		f := newFixture(t, middleware.Config{})
		c := f.login(t, lapse.CreateParams{})
		var page seen
		do(f.mw.Page(middleware.Requirement{})(page.handler()), get("/notes", c))
		h := f.mw.API(middleware.Requirement{})(new(seen).handler())
		if resp := do(h, post("/notes", c, url.Values{middleware.CSRFField: {page.csrf}})); resp.StatusCode != 200 {
			t.Errorf("form field: got %d, want 200", resp.StatusCode)
		}
		r := post("/notes", c, nil)
		r.Header.Set(middleware.CSRFHeader, page.csrf)
		if resp := do(h, r); resp.StatusCode != 200 {
			t.Errorf("header: got %d, want 200", resp.StatusCode)
		}
		r = post("/notes", c, url.Values{middleware.CSRFField: {page.csrf + "x"}})
		wantProblem(t, do(h, r), 403, problem.CodeCSRFToken)
	})
	t.Run("cross_site_request_is_refused_even_with_token", func(t *testing.T) {
		f := newFixture(t, middleware.Config{})
		c := f.login(t, lapse.CreateParams{})
		var page seen
		do(f.mw.Page(middleware.Requirement{})(page.handler()), get("/notes", c))
		r := post("/notes", c, url.Values{middleware.CSRFField: {page.csrf}})
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		wantProblem(t, do(f.mw.API(middleware.Requirement{})(new(seen).handler()), r), 403, problem.CodeCrossOrigin)
		r = post("/notes", c, url.Values{middleware.CSRFField: {page.csrf}})
		r.Header.Set("Origin", "https://evil.example")
		wantProblem(t, do(f.mw.API(middleware.Requirement{})(new(seen).handler()), r), 403, problem.CodeCrossOrigin)
	})
	t.Run("trusted_origin_is_allowed", func(t *testing.T) {
		f := newFixture(t, middleware.Config{TrustedOrigins: []string{"https://admin.example"}})
		c := f.login(t, lapse.CreateParams{})
		var page seen
		do(f.mw.Page(middleware.Requirement{})(page.handler()), get("/notes", c))
		r := post("/notes", c, url.Values{middleware.CSRFField: {page.csrf}})
		r.Header.Set("Origin", "https://admin.example")
		r.Header.Set("Sec-Fetch-Site", "same-site")
		if resp := do(f.mw.API(middleware.Requirement{})(new(seen).handler()), r); resp.StatusCode != 200 {
			t.Errorf("got %d, want 200", resp.StatusCode)
		}
	})
	t.Run("token_survives_step_up", func(t *testing.T) {
		f := newFixture(t, middleware.Config{})
		c := f.login(t, lapse.CreateParams{})
		var before, after seen
		do(f.mw.Page(middleware.Requirement{})(before.handler()), get("/", c))
		w := httptest.NewRecorder()
		if _, err := f.mw.StepUp(w, get("/stepup", c), 2, []string{"pwd", "otp"}); err != nil {
			t.Fatal(err)
		}
		do(f.mw.Page(middleware.Requirement{})(after.handler()), get("/", sessionCookie(t, w.Result())))
		if before.csrf == "" || before.csrf != after.csrf {
			t.Errorf("token %q before step-up, %q after; want the same", before.csrf, after.csrf)
		}
	})
	t.Run("tokens_differ_between_sessions", func(t *testing.T) {
		f := newFixture(t, middleware.Config{})
		var a, b seen
		do(f.mw.Page(middleware.Requirement{})(a.handler()), get("/", f.login(t, lapse.CreateParams{})))
		do(f.mw.Page(middleware.Requirement{})(b.handler()), get("/", f.login(t, lapse.CreateParams{})))
		if a.csrf == b.csrf {
			t.Error("two sessions got the same CSRF token")
		}
	})
	t.Run("same_origin_guards_routes_without_session", func(t *testing.T) {
		f := newFixture(t, middleware.Config{})
		h := f.mw.SameOrigin(new(seen).handler())
		r := post("/signin", nil, nil)
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		if resp := do(h, r); resp.StatusCode != 403 {
			t.Errorf("cross-site sign-in: got %d, want 403", resp.StatusCode)
		}
		r = post("/signin", nil, nil)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		if resp := do(h, r); resp.StatusCode != 200 {
			t.Errorf("same-origin sign-in: got %d, want 200", resp.StatusCode)
		}
	})
}

func TestOptional(t *testing.T) {
	f := newFixture(t, middleware.Config{})
	var anon seen
	if resp := do(f.mw.Optional(anon.handler()), get("/", nil)); resp.StatusCode != 200 || anon.ok {
		t.Errorf("no cookie: got %d with session %v, want 200 without", resp.StatusCode, anon.ok)
	}
	c := f.login(t, lapse.CreateParams{})
	var in seen
	do(f.mw.Optional(in.handler()), get("/", c))
	if !in.ok {
		t.Error("valid cookie: no session attached")
	}
	f.clock.Advance(time.Hour)
	var out seen
	resp := do(f.mw.Optional(out.handler()), get("/", c))
	if resp.StatusCode != 200 || out.ok || sessionCookie(t, resp).MaxAge >= 0 {
		t.Errorf("expired cookie: got %d, session %v; want 200, no session, cookie cleared", resp.StatusCode, out.ok)
	}
}

func TestCookie(t *testing.T) {
	t.Run("secure_host_prefixed_httponly_lax_by_default", func(t *testing.T) {
		f := newFixture(t, middleware.Config{})
		c := f.login(t, lapse.CreateParams{})
		if c.Name != "__Host-lapse" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || c.MaxAge != 0 {
			t.Errorf("cookie %+v, want __Host-lapse, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain, a browser-session cookie", c)
		}
		if _, err := lapse.ParseToken(c.Value); err != nil {
			t.Errorf("cookie value is not a session token: %v", err)
		}
	})
	t.Run("persistent_cookie_expires_with_the_session", func(t *testing.T) {
		f := newFixture(t, middleware.Config{Persistent: true, SameSite: http.SameSiteStrictMode})
		c := f.login(t, lapse.CreateParams{})
		if c.MaxAge != int((12*time.Hour).Seconds()) || c.SameSite != http.SameSiteStrictMode {
			t.Errorf("Max-Age %d, SameSite %v; want 43200 (the absolute timeout) and Strict", c.MaxAge, c.SameSite)
		}
	})
	t.Run("dev_cookie_drops_secure_and_prefix_on_loopback", func(t *testing.T) {
		f := newFixture(t, middleware.Config{InsecureDevCookie: true})
		w := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "http://127.0.0.1:8080/signin", nil)
		req.RemoteAddr = "127.0.0.1:50000"
		if _, err := f.mw.Login(w, req, lapse.CreateParams{Subject: "a"}); err != nil {
			t.Fatal(err)
		}
		// The Host header is the client's to choose: a loopback Host from
		// elsewhere gets no insecure cookie.
		forged := httptest.NewRequest("POST", "http://127.0.0.1:8080/signin", nil)
		forged.RemoteAddr = "203.0.113.9:50000"
		if _, err := f.mw.Login(httptest.NewRecorder(), forged, lapse.CreateParams{Subject: "a"}); err == nil {
			t.Errorf("a loopback Host header from 203.0.113.9 got an insecure cookie")
		}
		c := sessionCookie(t, w.Result())
		if c.Name != "lapse" || c.Secure || !c.HttpOnly {
			t.Errorf("cookie %+v, want lapse, not Secure, HttpOnly", c)
		}
	})
	t.Run("dev_cookie_refused_beyond_loopback", func(t *testing.T) {
		f := newFixture(t, middleware.Config{InsecureDevCookie: true})
		w := httptest.NewRecorder()
		_, err := f.mw.Login(w, httptest.NewRequest("POST", "http://app.example/signin", nil), lapse.CreateParams{Subject: "a"})
		if err != middleware.ErrInsecureCookie || len(w.Result().Cookies()) != 0 {
			t.Errorf("err %v, cookies %v; want ErrInsecureCookie and no cookie", err, w.Result().Cookies())
		}
	})
	t.Run("contradictory_settings_are_refused", func(t *testing.T) {
		for name, cfg := range map[string]middleware.Config{
			"host_prefix_without_secure":   {CookieName: "__Host-x", InsecureDevCookie: true},
			"samesite_none_without_secure": {SameSite: http.SameSiteNoneMode, InsecureDevCookie: true},
			"short_csrf_key":               {CSRFKey: []byte("short")},
			"bad_trusted_origin":           {TrustedOrigins: []string{"not an origin"}},
		} {
			cfg.Manager = newFixture(t, middleware.Config{}).m
			if _, err := middleware.New(cfg); err == nil {
				t.Errorf("%s: New succeeded, want an error", name)
			}
		}
	})
}

func TestLogin(t *testing.T) {
	t.Run("records_client_and_ends_previous_session", func(t *testing.T) {
		f := newFixture(t, middleware.Config{})
		old := f.login(t, lapse.CreateParams{})
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "https://app.example/signin", nil)
		r.RemoteAddr = "203.0.113.7:5555"
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
		r.AddCookie(old)
		s, err := f.mw.Login(w, r, lapse.CreateParams{Subject: "alice", AMR: []string{"pwd"}})
		if err != nil {
			t.Fatal(err)
		}
		if s.IP != "203.0.113.7" || !strings.Contains(s.UserAgent, "Firefox") {
			t.Errorf("IP %q, user agent %q; want the request's", s.IP, s.UserAgent)
		}
		if sessionCookie(t, w.Result()).Value == old.Value {
			t.Error("login kept the old token")
		}
		if _, err := f.m.Current(t.Context(), old.Value); lapse.ErrorCode(err) != lapse.CodeSessionRevoked {
			t.Errorf("old session: %v, want it revoked", err)
		}
	})
}

func TestStepUp(t *testing.T) {
	f := newFixture(t, middleware.Config{})
	c := f.login(t, lapse.CreateParams{})
	w := httptest.NewRecorder()
	s, err := f.mw.StepUp(w, get("/stepup", c), 2, []string{"pwd", "otp"})
	if err != nil {
		t.Fatal(err)
	}
	nc := sessionCookie(t, w.Result())
	if nc.Value == c.Value || s.AAL != 2 {
		t.Fatalf("new cookie same as old: %v; AAL %d; want a new token at AAL2", nc.Value == c.Value, s.AAL)
	}
	h := f.mw.Page(middleware.Requirement{AAL: 2})(new(seen).handler())
	if resp := do(h, get("/billing", nc)); resp.StatusCode != 200 {
		t.Errorf("new token on an AAL2 route: got %d, want 200", resp.StatusCode)
	}
	if resp := do(h, get("/billing", c)); resp.StatusCode != 200 {
		t.Errorf("old token within the grace: got %d, want 200", resp.StatusCode)
	}
	f.clock.Advance(lapse.RotateGrace)
	if resp := do(h, get("/billing", c)); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("old token after the grace: got %d, want a redirect to sign in", resp.StatusCode)
	}
	if _, err := f.mw.StepUp(httptest.NewRecorder(), get("/stepup", nil), 2, nil); lapse.ErrorCode(err) != lapse.CodeSessionNotFound {
		t.Errorf("no cookie: %v, want session_not_found", err)
	}
}

func TestLogout(t *testing.T) {
	f := newFixture(t, middleware.Config{})
	c := f.login(t, lapse.CreateParams{})
	w := httptest.NewRecorder()
	if err := f.mw.Logout(w, post("/signout", c, nil)); err != nil {
		t.Fatal(err)
	}
	if sessionCookie(t, w.Result()).MaxAge >= 0 {
		t.Error("cookie not cleared")
	}
	if _, err := f.m.Current(t.Context(), c.Value); lapse.ErrorCode(err) != lapse.CodeSessionRevoked {
		t.Errorf("session after logout: %v, want revoked", err)
	}
	if err := f.mw.Logout(httptest.NewRecorder(), post("/signout", nil, nil)); err != nil {
		t.Errorf("logout without a session: %v, want nil", err)
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/docs?x=1":             "/docs?x=1",
		"":                      "/",
		"//evil.example/x":      "/",
		"/\\evil.example":       "/",
		"https://evil.example/": "/",
		"docs":                  "/",
		"/a\r\nSet-Cookie: x":   "/",
		"/\v/evil.example":      "/",
		"/\t/evil.example":      "/",
		"/\x00/evil.example":    "/",
		"/\x1b[31m":             "/",
		"/a\x7f":                "/",
		"/\u0085/evil.example":  "/",
		"/caf\u00e9?q=\u00fc":   "/caf\u00e9?q=\u00fc",
	} {
		if got := middleware.LocalPath(in); got != want {
			t.Errorf("LocalPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// flakyStore fails its first SessionByToken call, as a store hiccup would.
type flakyStore struct {
	*lapsetest.Store
	failed bool
}

func (s *flakyStore) SessionByToken(ctx context.Context, h lapse.TokenHash) (*lapse.Session, error) {
	if !s.failed {
		s.failed = true
		return nil, &lapse.Error{Code: lapse.CodeStoreUnavailable, Message: "store hiccup"}
	}
	return s.Store.SessionByToken(ctx, h)
}

func TestOptionalPostUncheckedForCSRFGoesOnSignedOut(t *testing.T) {
	st := lapsetest.NewStore()
	defer st.Close()
	flaky := &flakyStore{Store: st, failed: true}
	m, _, _ := lapsetest.NewManager(t, lapse.Config{Store: flaky, CacheSize: -1})
	mw, err := middleware.New(middleware.Config{Manager: m})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{m: m, mw: mw}
	c := f.login(t, lapse.CreateParams{})
	flaky.failed = false // the CSRF check's lookup fails; the next one would succeed
	var got seen
	resp := do(mw.Optional(got.handler()), post("/comment", c, nil)) // no CSRF token
	if resp.StatusCode != 200 || got.ok {
		t.Errorf("a POST without a CSRF token reached the handler signed in (status %d, session %v); want it signed out", resp.StatusCode, got.ok)
	}
}
