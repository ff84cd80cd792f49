package forwardauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/problem"
)

type fixture struct {
	t     testing.TB
	m     *lapse.Manager
	clock *lapsetest.Clock
	g     *Gateway
	mux   *http.ServeMux
}

// testRules are the rules of the example, and a tier floor.
var testRules = []Rule{
	{Path: "/healthz", Access: AccessPublic},
	{Path: "/api/poll", Activity: ActivityNone},
	{Path: "/billing/", RequireAAL: 2, MaxAuthAge: 15 * time.Minute},
	{Path: "/admin/", Tier: "sensitive"},
	{Path: "/app/", Activity: ActivityNavigation},
	{Host: "status.example.com", Path: "/", Access: AccessPublic},
}

func newFixture(t testing.TB, mod func(*Config)) *fixture {
	t.Helper()
	m, clock, _ := lapsetest.NewManager(t, lapse.Config{})
	cfg := Config{Manager: m, Rules: testRules}
	if mod != nil {
		mod(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	g.Register(mux)
	return &fixture{t: t, m: m, clock: clock, g: g, mux: mux}
}

func (f *fixture) session(p lapse.CreateParams) (string, *lapse.Session) {
	f.t.Helper()
	if p.Subject == "" {
		p.Subject = "alice"
	}
	tok, s, err := f.m.Create(context.Background(), p)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok.Reveal(), s
}

// ask sends the proxy's question about a browser request for uri.
func (f *fixture) ask(endpoint, uri, token string, hdr ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	r := httptest.NewRequest("GET", endpoint, nil)
	r.RemoteAddr = "127.0.0.1:40000"
	if uri != "" {
		r.Header.Set("X-Original-URI", uri)
	}
	if token != "" {
		r.Header.Set("Cookie", "lapse="+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	return w
}

func (f *fixture) lastActive(id string) time.Time {
	f.t.Helper()
	s, err := f.m.Session(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return s.LastActiveAt
}

func problemCode(t *testing.T, w *httptest.ResponseRecorder) lapse.Code {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	var p problem.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	return p.Code
}

const (
	authRequest = "/v1/auth-request"
	forwardAuth = "/v1/forward-auth"
)

func TestAllowedRequestGetsIdentityHeaders(t *testing.T) {
	f := newFixture(t, nil)
	tok, s := f.session(lapse.CreateParams{Subject: "alice", Tenant: "acme", AAL: 1})
	for _, ep := range []string{authRequest, forwardAuth} {
		w := f.ask(ep, "/docs/1", tok)
		if w.Code != 200 {
			t.Fatalf("%s: status %d, want 200: %s", ep, w.Code, w.Body)
		}
		want := map[string]string{
			"X-Lapse-Subject": "alice", "X-Lapse-Tenant": "acme", "X-Lapse-Session": s.ID,
			"X-Lapse-AAL": "1", "X-Lapse-Tier": "standard", "X-Lapse-Warn-At": s.WarnAt.UTC().Format(time.RFC3339),
		}
		for name, v := range want {
			// The exact spelling, not Go's canonical one: X-Lapse-AAL.
			if got := w.Header()[name]; len(got) != 1 || got[0] != v {
				t.Errorf("%s: %s = %q, want %q", ep, name, got, v)
			}
		}
	}
}

func TestSignedOut(t *testing.T) {
	f := newFixture(t, nil)
	t.Run("auth_request_is_401_with_the_sign_in_url", func(t *testing.T) {
		w := f.ask(authRequest, "/docs/1?x=1", "")
		if w.Code != 401 {
			t.Fatalf("status %d, want 401", w.Code)
		}
		if got, want := w.Header().Get(HeaderRedirect), "/login?rd=%2Fdocs%2F1%3Fx%3D1"; got != want {
			t.Errorf("X-Lapse-Redirect %q, want %q", got, want)
		}
		if w.Header().Get("X-Lapse-Subject") != "" {
			t.Error("a refusal carries an identity")
		}
	})
	t.Run("forward_auth_sends_a_navigation_to_sign_in", func(t *testing.T) {
		for _, hdr := range [][]string{{"Sec-Fetch-Mode", "navigate"}, {"Accept", "text/html,*/*"}} {
			w := f.ask(forwardAuth, "/docs/1", "", hdr...)
			if w.Code != 302 || w.Header().Get("Location") != "/login?rd=%2Fdocs%2F1" {
				t.Errorf("%v: %d Location %q, want 302 to /login?rd=%%2Fdocs%%2F1", hdr, w.Code, w.Header().Get("Location"))
			}
		}
	})
	t.Run("forward_auth_answers_a_fetch_with_401_problem", func(t *testing.T) {
		// A script's request that says it is not a navigation, even with
		// Accept: text/html (htmx), keeps its status.
		w := f.ask(forwardAuth, "/docs/1", "", "Sec-Fetch-Mode", "cors", "Accept", "text/html")
		if w.Code != 401 || problemCode(t, w) != lapse.CodeSessionNotFound {
			t.Fatalf("status %d %s, want 401 session_not_found", w.Code, w.Body)
		}
		if w.Header().Get("WWW-Authenticate") == "" || w.Header().Get(HeaderRedirect) == "" {
			t.Errorf("headers %v: want WWW-Authenticate and X-Lapse-Redirect", w.Header())
		}
	})
	t.Run("an_absolute_sign_in_url_gets_an_absolute_rd", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.SignInURL = "https://id.example.com/signin?app=1" })
		w := f.ask(authRequest, "/docs/1", "", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "App.example.com:8443")
		want := "https://id.example.com/signin?app=1&rd=https%3A%2F%2Fapp.example.com%3A8443%2Fdocs%2F1"
		if got := w.Header().Get(HeaderRedirect); got != want {
			t.Errorf("X-Lapse-Redirect %q, want %q", got, want)
		}
	})
	t.Run("rd_is_never_another_origin", func(t *testing.T) {
		for _, uri := range []string{"//evil.example/x", `/\evil.example/x`, "https://evil.example/x"} {
			w := f.ask(authRequest, uri, "")
			rd := redirectParam(t, w.Header().Get(HeaderRedirect))
			if !strings.HasPrefix(rd, "/") || strings.HasPrefix(rd, "//") || strings.HasPrefix(rd, `/\`) {
				t.Errorf("%s: rd %q is not a local path", uri, rd)
			}
		}
	})
}

// exact returns the header written under exactly name, such as
// X-Lapse-AAL, which Header.Get would look up as X-Lapse-Aal.
func exact(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func redirectParam(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Query().Get("rd")
}

func TestEndedSessionIsSentToSignIn(t *testing.T) {
	f := newFixture(t, nil)
	t.Run("revoked", func(t *testing.T) {
		tok, _ := f.session(lapse.CreateParams{})
		if w := f.ask(authRequest, "/docs", tok); w.Code != 200 {
			t.Fatalf("before the revoke: %d", w.Code)
		}
		if err := f.m.Revoke(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		w := f.ask(forwardAuth, "/docs", tok, "Sec-Fetch-Mode", "cors")
		if w.Code != 401 || problemCode(t, w) != lapse.CodeSessionRevoked {
			t.Fatalf("after the revoke: %d %s, want 401 session_revoked", w.Code, w.Body)
		}
	})
	t.Run("idle", func(t *testing.T) {
		tok, _ := f.session(lapse.CreateParams{})
		f.clock.Advance(31 * time.Minute)
		w := f.ask(authRequest, "/docs", tok)
		if w.Code != 401 || problemCode(t, w) != lapse.CodeSessionExpiredIdle {
			t.Fatalf("%d %s, want 401 session_expired_idle", w.Code, w.Body)
		}
	})
}

func TestPublicRouteNeedsNoSessionAndRecordsNothing(t *testing.T) {
	f := newFixture(t, nil)
	if w := f.ask(authRequest, "/healthz", ""); w.Code != 200 || w.Header().Get(HeaderSubject) != "" {
		t.Fatalf("without a session: %d, subject %q; want 200 and none", w.Code, w.Header().Get(HeaderSubject))
	}
	// Every identity header is there, empty: a proxy that copies a
	// missing one may pass on something else.
	w := f.ask(authRequest, "/healthz", "")
	for _, name := range []string{HeaderSubject, HeaderTenant, HeaderSession, HeaderAAL, HeaderTier, HeaderWarnAt} {
		if v, ok := w.Header()[name]; !ok || len(v) != 1 || v[0] != "" {
			t.Errorf("public route: %s = %q, want present and empty", name, v)
		}
	}
	if w := f.ask(forwardAuth, "/", "", "X-Forwarded-Host", "status.example.com"); w.Code != 200 {
		t.Errorf("the public host: %d, want 200", w.Code)
	}
	if w := f.ask(forwardAuth, "/", "", "X-Forwarded-Host", "app.example.com", "Sec-Fetch-Mode", "cors"); w.Code != 401 {
		t.Errorf("another host: %d, want 401", w.Code)
	}
	tok, s := f.session(lapse.CreateParams{})
	f.clock.Advance(10 * time.Minute)
	if w := f.ask(authRequest, "/healthz", tok); w.Code != 200 || w.Header().Get(HeaderSubject) != "" {
		t.Fatalf("with a session: %d, subject %q; want 200 and no identity", w.Code, w.Header().Get(HeaderSubject))
	}
	if got := f.lastActive(s.ID); !got.Equal(s.LastActiveAt) {
		t.Errorf("a public request moved last_active_at from %v to %v", s.LastActiveAt, got)
	}
}

func TestStepUpRoute(t *testing.T) {
	f := newFixture(t, nil)
	aal1, _ := f.session(lapse.CreateParams{AAL: 1})
	aal2, _ := f.session(lapse.CreateParams{Subject: "bob", AAL: 2, AMR: []string{"pwd", "otp"}})
	t.Run("aal1_is_sent_to_step_up", func(t *testing.T) {
		w := f.ask(authRequest, "/billing/invoices", aal1)
		if w.Code != 403 || w.Header().Get(HeaderRedirect) != "/.lapse/stepup?rd=%2Fbilling%2Finvoices" {
			t.Fatalf("%d, X-Lapse-Redirect %q; want 403 to the step-up page", w.Code, w.Header().Get(HeaderRedirect))
		}
		if problemCode(t, w) != lapse.CodeStepUpRequired {
			t.Error("want step_up_required")
		}
		w = f.ask(forwardAuth, "/billing/", aal1, "Sec-Fetch-Mode", "navigate")
		if w.Code != 302 || !strings.HasPrefix(w.Header().Get("Location"), "/.lapse/stepup?rd=") {
			t.Errorf("forward-auth navigation: %d %q, want 302 to the step-up page", w.Code, w.Header().Get("Location"))
		}
	})
	t.Run("aal2_is_allowed", func(t *testing.T) {
		if w := f.ask(authRequest, "/billing/invoices", aal2); w.Code != 200 || exact(w.Header(), HeaderAAL) != "2" {
			t.Fatalf("%d, want 200 with AAL 2", w.Code)
		}
	})
	t.Run("every_spelling_of_the_path_meets_the_rule", func(t *testing.T) {
		for _, uri := range []string{"/billing", "/billing/", "/./billing/x", "//billing/x", "/x/../billing/", "/%62illing/x",
			"/billing;jsessionid=1/x", `/billing\x`, "/healthz/../billing/", "/healthz%2f..%2fbilling/", "http://app.example.com/billing/x"} {
			if w := f.ask(authRequest, uri, aal1); w.Code != 403 {
				t.Errorf("%s: %d, want 403", uri, w.Code)
			}
		}
		for _, uri := range []string{"/billingx", "/bill/ing"} {
			if w := f.ask(authRequest, uri, aal1); w.Code != 200 {
				t.Errorf("%s: %d, want 200 (not the billing rule)", uri, w.Code)
			}
		}
	})
	t.Run("an_old_authentication_is_sent_to_step_up", func(t *testing.T) {
		f.clock.Advance(16 * time.Minute)
		f.ask(authRequest, "/docs", aal2) // keep it from idling out meanwhile
		if w := f.ask(authRequest, "/billing/", aal2); w.Code != 403 {
			t.Fatalf("%d, want 403: max_auth_age 15m has passed", w.Code)
		}
	})
}

func TestTierFloor(t *testing.T) {
	f := newFixture(t, nil)
	std, s := f.session(lapse.CreateParams{})
	sens, _ := f.session(lapse.CreateParams{Subject: "bob", Tier: "sensitive", AAL: 2})
	f.clock.Advance(2 * time.Minute)
	w := f.ask(authRequest, "/admin/", std)
	if w.Code != 403 || w.Header().Get(HeaderRedirect) != "" || problemCode(t, w) != problem.CodeTierRequired {
		t.Fatalf("standard session: %d %q %s; want 403 tier_required without a redirect", w.Code, w.Header().Get(HeaderRedirect), w.Body)
	}
	if got := f.lastActive(s.ID); !got.Equal(s.LastActiveAt) {
		t.Error("a request refused by the tier floor counted as activity")
	}
	if w := f.ask(forwardAuth, "/admin/", std, "Sec-Fetch-Mode", "navigate"); w.Code != 403 {
		t.Errorf("forward-auth: %d, want 403 (no page can change a tier)", w.Code)
	}
	if w := f.ask(authRequest, "/admin/", sens); w.Code != 200 {
		t.Errorf("sensitive session: %d, want 200", w.Code)
	}
}

func TestActivity(t *testing.T) {
	nav := []string{"Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}
	cases := []struct {
		name  string
		uri   string
		hdr   []string
		moves bool
	}{
		{"all_counts_a_fetch", "/docs", []string{"Sec-Fetch-Mode", "cors"}, true},
		{"none_never_counts", "/api/poll", nav, false},
		{"navigation_counts_a_top_level_navigation", "/app/x", nav, true},
		{"navigation_does_not_count_a_fetch", "/app/x", []string{"Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty"}, false},
		{"navigation_does_not_count_an_iframe", "/app/x", []string{"Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe"}, false},
		{"navigation_does_not_count_a_request_without_fetch_metadata", "/app/x", nil, false},
		{"a_prefetch_never_counts", "/docs", append([]string{"Sec-Purpose", "prefetch"}, nav...), false},
		{"a_preflight_never_counts", "/docs", []string{"X-Original-Method", "OPTIONS", "Access-Control-Request-Method", "POST"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, nil)
			tok, s := f.session(lapse.CreateParams{})
			f.clock.Advance(5 * time.Minute) // past the touch interval
			if w := f.ask(authRequest, c.uri, tok, c.hdr...); w.Code != 200 {
				t.Fatalf("%d, want 200", w.Code)
			}
			moved := !f.lastActive(s.ID).Equal(s.LastActiveAt)
			if moved != c.moves {
				t.Errorf("last_active_at moved: %v, want %v", moved, c.moves)
			}
		})
	}
	t.Run("polling_with_none_lets_the_session_idle_out", func(t *testing.T) {
		f := newFixture(t, nil)
		tok, _ := f.session(lapse.CreateParams{})
		for range 40 { // a poll a minute, past the 30-minute idle timeout
			f.clock.Advance(time.Minute)
			f.ask(authRequest, "/api/poll", tok)
		}
		if w := f.ask(authRequest, "/api/poll", tok); w.Code != 401 {
			t.Fatalf("%d, want 401: polling is not activity", w.Code)
		}
	})
}

func TestBearerToken(t *testing.T) {
	f := newFixture(t, nil)
	tok, _ := f.session(lapse.CreateParams{})
	if w := f.ask(authRequest, "/docs", "", "Authorization", "Bearer "+tok); w.Code != 200 {
		t.Errorf("Bearer lps_: %d, want 200", w.Code)
	}
	// The app's own Bearer token (a JWT) is not lapse's: the cookie counts.
	if w := f.ask(authRequest, "/docs", tok, "Authorization", "Bearer eyJhbGciOi.x.y"); w.Code != 200 {
		t.Errorf("another Bearer token with the cookie: %d, want 200", w.Code)
	}
}

func TestOnlyTrustedProxiesMayAsk(t *testing.T) {
	key := "proxy-key-0123456789-0123456789-0123456789"
	f := newFixture(t, func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
		c.ProxyKey = func(_ context.Context, k string) error {
			if k != key {
				return errors.New("not the key")
			}
			return nil
		}
	})
	tok, _ := f.session(lapse.CreateParams{})
	ask := func(remote, k string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", authRequest, nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Original-URI", "/docs")
		r.Header.Set("Cookie", "lapse="+tok)
		if k != "" {
			r.Header.Set(HeaderProxyKey, k)
		}
		w := httptest.NewRecorder()
		f.mux.ServeHTTP(w, r)
		return w
	}
	for _, c := range []struct {
		remote, key string
		want        int
	}{
		{"10.1.2.3:5000", key, 200},
		{"[::ffff:10.1.2.3]:5000", key, 200},
		{"127.0.0.1:5000", key, 200},
		{"192.0.2.1:5000", key, 403},
		{"10.1.2.3:5000", "", 403},
		{"10.1.2.3:5000", "wrong", 403},
	} {
		w := ask(c.remote, c.key)
		if w.Code != c.want {
			t.Errorf("from %s with key %q: %d, want %d", c.remote, c.key, w.Code, c.want)
		}
		if c.want == 403 && (problemCode(t, w) != problem.CodeUntrustedProxy || w.Header().Get(HeaderSubject) != "") {
			t.Errorf("from %s: %s, want untrusted_proxy and no identity", c.remote, w.Body)
		}
	}
}

func TestMissingOriginalRequestIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	tok, _ := f.session(lapse.CreateParams{})
	for _, uri := range []string{"", "not-a-path", "/%zz"} {
		w := f.ask(authRequest, uri, tok)
		if w.Code != 403 || problemCode(t, w) != problem.CodeNoOriginalRequest {
			t.Errorf("X-Original-URI %q: %d %s, want 403 original_request_missing", uri, w.Code, w.Body)
		}
	}
}

func TestForwardedHeadersOfTraefikAndCaddy(t *testing.T) {
	f := newFixture(t, nil)
	tok, _ := f.session(lapse.CreateParams{})
	r := httptest.NewRequest("GET", forwardAuth, nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set("X-Forwarded-Method", "GET")
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("X-Forwarded-Host", "app.example.com")
	r.Header.Set("X-Forwarded-Uri", "/billing/x")
	r.Header.Set("Sec-Fetch-Mode", "navigate")
	r.Header.Set("Cookie", "lapse="+tok)
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	if w.Code != 302 || w.Header().Get("Location") != "/.lapse/stepup?rd=%2Fbilling%2Fx" {
		t.Fatalf("%d %q, want 302 to the step-up page", w.Code, w.Header().Get("Location"))
	}
}

func TestEnvoyAppendsTheOriginalPath(t *testing.T) {
	f := newFixture(t, nil)
	tok, _ := f.session(lapse.CreateParams{})
	for _, c := range []struct {
		method, target string
		want           int
	}{
		{"POST", "/v1/forward-auth/billing/pay?x=1", 403},
		{"GET", "/v1/forward-auth/docs/1", 200},
		{"DELETE", "/v1/forward-auth/healthz", 200},
	} {
		r := httptest.NewRequest(c.method, c.target, nil)
		r.RemoteAddr = "127.0.0.1:1"
		r.Header.Set("Cookie", "lapse="+tok)
		r.Header.Set("Sec-Fetch-Mode", "cors")
		w := httptest.NewRecorder()
		f.mux.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.target, w.Code, c.want)
		}
	}
}

func TestStepUpReplacesTheCookie(t *testing.T) {
	f := newFixture(t, nil)
	tok, _ := f.session(lapse.CreateParams{})
	for _, c := range []struct {
		host, proto string
		secure      bool
	}{
		{"127.0.0.1:8080", "http", false},
		{"localhost", "", false},
		{"app.example.com", "http", true},
		{"127.0.0.1:8080", "https", true},
	} {
		r := httptest.NewRequest("POST", "/.lapse/stepup", nil)
		r.Host = c.host
		if c.proto != "" {
			r.Header.Set("X-Forwarded-Proto", c.proto)
		}
		r.AddCookie(&http.Cookie{Name: "lapse", Value: tok})
		w := httptest.NewRecorder()
		s, err := f.g.StepUp(w, r, 2, []string{"pwd", "otp"})
		if err != nil {
			t.Fatal(err)
		}
		cookies := w.Result().Cookies()
		if len(cookies) != 1 || cookies[0].Name != "lapse" || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteLaxMode || cookies[0].Path != "/" {
			t.Fatalf("cookies %v", cookies)
		}
		if cookies[0].Secure != c.secure {
			t.Errorf("%s over %q: Secure %v, want %v", c.host, c.proto, cookies[0].Secure, c.secure)
		}
		if s.AAL != 2 {
			t.Errorf("AAL %d, want 2", s.AAL)
		}
		tok = cookies[0].Value
		if w := f.ask(authRequest, "/billing/", tok); w.Code != 200 {
			t.Fatalf("the new cookie on /billing/: %d, want 200", w.Code)
		}
	}
	if _, err := f.g.StepUp(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), 2, nil); lapse.ErrorCode(err) != lapse.CodeSessionNotFound {
		t.Errorf("without a cookie: %v, want session_not_found", err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	cfg := Config{
		Cookie:    "a b",
		SignInURL: "//evil.example",
		StepUpURL: "javascript:alert(1)",
		Rules: []Rule{
			{Path: "billing"},
			{Path: "/a/../b"},
			{Path: "/x", Access: "private"},
			{Path: "/x", Access: AccessPublic, RequireAAL: 2},
			{Path: "/x", Activity: "sometimes"},
			{Path: "/x", RequireAAL: 4},
			{Path: "/x", Tier: "gold"},
			{Path: "/x", Host: "App.example.com:80"},
		},
	}
	err := cfg.Validate(lapsetest.Policy())
	var pe *lapse.PolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("Validate: %v, want a *lapse.PolicyError", err)
	}
	got := map[string]bool{}
	for _, p := range pe.Problems {
		got[p.Path] = true
	}
	for _, want := range []string{"forward_auth.cookie", "forward_auth.signin_url", "forward_auth.stepup_url",
		"forward_auth.rules[0].path", "forward_auth.rules[1].path", "forward_auth.rules[2].access", "forward_auth.rules[3].access",
		"forward_auth.rules[4].activity", "forward_auth.rules[5].require_aal", "forward_auth.rules[6].tier", "forward_auth.rules[7].host"} {
		if !got[want] {
			t.Errorf("no problem at %s; got %v", want, pe.Problems)
		}
	}
	if len(pe.Problems) != 11 {
		t.Errorf("%d problems, want 11: %v", len(pe.Problems), pe.Problems)
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"/":                 "/",
		"/a/b?q=1":          "/a/b",
		"/a//b/":            "/a/b/",
		"/a/./b/../c":       "/a/c",
		"/../../etc":        "/etc",
		"/%2e%2e/b":         "/b",
		"/a;p=1/b;q":        "/a/b",
		`/a\b`:              "/a/b",
		"https://h.example": "/",
		"http://h/x/../y":   "/y",
	} {
		if got, ok := cleanPath(in); !ok || got != want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "x", "%zz", "/%zz", "ftp://h/x", "*"} {
		if got, ok := cleanPath(bad); ok {
			t.Errorf("cleanPath(%q) = %q, want refused", bad, got)
		}
	}
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2e/x", "/a;b/c", `/a\b`, "http://h/x", "//x", "/billing/", "/%23", "/billing%3F/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		p, ok := cleanPath(uri)
		if !ok {
			return
		}
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.Contains(p, `\`) || strings.Contains(p, ";") {
			t.Fatalf("cleanPath(%q) = %q", uri, p)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("cleanPath(%q) = %q keeps a dot segment", uri, p)
			}
		}
		// Cleaning is idempotent for a path with nothing left that reads
		// differently raw: no escape, and no "?" or "#" (decoded from %3F
		// and %23, they are part of the path, but start the query or the
		// fragment when read again as a request target).
		if again, ok := cleanPath(p); ok && !strings.ContainsAny(p, "%?#") && again != p {
			t.Fatalf("cleanPath(%q) = %q, but cleanPath(%q) = %q", uri, p, p, again)
		}
	})
}

func TestIngressNginxOriginalURL(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.SignInURL = "https://id.example.com/signin" })
	w := f.ask(authRequest, "", "", "X-Original-URL", "https://app.example.com/docs/1?x=1", "X-Original-Method", "GET")
	want := "https://id.example.com/signin?rd=https%3A%2F%2Fapp.example.com%2Fdocs%2F1%3Fx%3D1"
	if w.Code != 401 || w.Header().Get(HeaderRedirect) != want {
		t.Fatalf("%d %q, want 401 with %q", w.Code, w.Header().Get(HeaderRedirect), want)
	}
}
