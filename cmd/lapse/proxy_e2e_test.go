package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lapsehq/lapse/forwardauth/proxytest"
)

// These tests run the built lapse binary behind a real nginx and a real
// Caddy, each on the very config docs/proxy.md shows (docs/proxy/nginx.conf
// and docs/proxy/Caddyfile, with only addresses and the key replaced), in
// front of an upstream app that echoes the headers it receives.

const proxyKey = "proxy-key-for-the-tests-0123456789abcdef"

// proxyConfig is lapse's config for the proxy tests: "durable" sessions
// for what must not depend on timing, "quick" ones for idle expiry.
const proxyConfig = `
default_tier: durable
tiers:
  durable: {idle_timeout: 1h, absolute_timeout: 12h, warn_before: 2m}
  quick:   {idle_timeout: 8s, absolute_timeout: 5m, warn_before: 2s}
sweep_interval: 50ms
forward_auth:
  cookie: lapse
  signin_url: /login
  stepup_url: /.lapse/stepup
  proxy_key_env: LAPSE_PROXY_KEY
  rules:
    - path: /healthz
      access: public
    - path: /login
      access: public
    - path: /logout
      access: public
    - path: /api/poll
      activity: none
    - path: /billing/
      require_aal: 2
      max_auth_age: 15m
`

// gatewayEnv is lapse behind one proxy, with its upstream app.
type gatewayEnv struct {
	t     *testing.T
	lapse *server
	proxy *proxytest.Proxy
	hits  atomic.Int64 // requests the app received
	// signIn is the sign-in example's URL, when started.
	signIn string
}

// newGateway starts lapse on lapseConfig, the app (with /login and /logout handed to
// the sign-in example when signIn is set) and the proxy.
func newGateway(t *testing.T, startProxy func(testing.TB, string, proxytest.Vars) *proxytest.Proxy, conf, lapseConfig string, signIn bool) *gatewayEnv {
	t.Helper()
	e := &gatewayEnv{t: t}
	e.lapse = start(t, t.TempDir(), lapseConfig, "LAPSE_API_KEY="+testKey, "LAPSE_PROXY_KEY="+proxyKey)
	mux := http.NewServeMux()
	mux.Handle("/", proxytest.Echo())
	if signIn {
		e.signIn = startSignIn(t, e.lapse.url)
		u, _ := url.Parse(e.signIn)
		rp := httputil.NewSingleHostReverseProxy(u)
		mux.Handle("/login", rp)
		mux.Handle("/logout", rp)
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(app.Close)
	e.proxy = startProxy(t, conf, proxytest.Vars{
		Lapse: strings.TrimPrefix(e.lapse.url, "http://"), App: strings.TrimPrefix(app.URL, "http://"), ProxyKey: proxyKey,
	})
	return e
}

// noRedirect is a client that shows redirects rather than following them.
var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

// navigation and fetch are the request headers of a browser's top-level
// navigation and of a page's script.
var (
	navigation = []string{"Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document", "Accept", "text/html,*/*;q=0.8"}
	fetchJSON  = []string{"Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty", "Accept", "application/json"}
)

// get sends a request through the proxy with the session cookie tok
// ("" for none) and headers hdr.
func (e *gatewayEnv) get(path, tok string, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.proxy.URL+path, nil)
	if tok != "" {
		req.Header.Set("Cookie", "lapse="+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// echoed asserts that the app answered and returns what it received.
func (e *gatewayEnv) echoed(path, tok string, hdr ...string) *proxytest.Echoed {
	e.t.Helper()
	resp, body := e.get(path, tok, append(hdr, fetchJSON...)...)
	if resp.StatusCode != 200 {
		e.t.Fatalf("GET %s: %d %s, want 200 from the app", path, resp.StatusCode, body)
	}
	ec, err := proxytest.Decode([]byte(body))
	if err != nil {
		e.t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	return ec
}

func (e *gatewayEnv) session(body map[string]any) (tok, id string) {
	e.t.Helper()
	if body["subject"] == nil {
		body["subject"] = "alice"
	}
	return e.lapse.create(e.t, body)
}

// status returns the session's status as lapse has it; reading it is
// not activity.
func (e *gatewayEnv) status(id string) string {
	e.t.Helper()
	r := call(e.t, "GET", e.lapse.url+"/v1/sessions/"+id, testKey, nil)
	s, _ := r.body["status"].(string)
	return s
}

// waitStatus waits until the session has status want, with a guard only
// against it never happening.
func (e *gatewayEnv) waitStatus(id, want string, during func()) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for e.status(id) != want {
		if time.Now().After(deadline) {
			e.t.Fatalf("session %s never became %s", id, want)
		}
		if during != nil {
			during()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestGatewayBehindNginx(t *testing.T) {
	proxytest.Need(t, "nginx", "nginx-light")
	e := newGateway(t, proxytest.Nginx, filepath.Join("..", "..", "docs", "proxy", "nginx.conf"), proxyConfig, true)
	runGatewayTests(t, e)
	t.Run("internal_auth_location_is_not_reachable", func(t *testing.T) {
		if resp, _ := e.get("/.lapse-auth", ""); resp.StatusCode != 404 {
			t.Errorf("GET /.lapse-auth: %d, want 404", resp.StatusCode)
		}
	})
	t.Run("sign_in_handoff_from_node", func(t *testing.T) { testSignInHandoff(t, e) })
}

func TestGatewayBehindCaddy(t *testing.T) {
	proxytest.Need(t, "caddy", "caddy")
	e := newGateway(t, proxytest.Caddy, filepath.Join("..", "..", "docs", "proxy", "Caddyfile"), proxyConfig, false)
	runGatewayTests(t, e)
}

func runGatewayTests(t *testing.T, e *gatewayEnv) {
	t.Run("allowed_with_identity_headers", func(t *testing.T) {
		tok, id := e.session(map[string]any{"subject": "alice", "tenant": "", "aal": 1})
		ec := e.echoed("/docs/1?x=1", tok)
		for name, want := range map[string]string{"X-Lapse-Subject": "alice", "X-Lapse-Session": id, "X-Lapse-AAL": "1", "X-Lapse-Tier": "durable"} {
			if got := ec.Header(name); len(got) != 1 || got[0] != want {
				t.Errorf("the app got %s = %q, want %q", name, got, want)
			}
		}
		if w := ec.Header("X-Lapse-Warn-At"); len(w) != 1 || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(w[0]) {
			t.Errorf("X-Lapse-Warn-At = %q, want an RFC 3339 time", w)
		}
		if ec.URI != "/docs/1?x=1" {
			t.Errorf("the app got %q, want /docs/1?x=1", ec.URI)
		}
	})
	t.Run("signed_out_is_sent_to_sign_in", func(t *testing.T) {
		before := e.hits.Load()
		resp, _ := e.get("/docs/1?x=1", "", navigation...)
		if resp.StatusCode != 302 || resp.Header.Get("Location") != "/login?rd=%2Fdocs%2F1%3Fx%3D1" {
			t.Errorf("navigation: %d Location %q, want 302 to /login?rd=%%2Fdocs%%2F1%%3Fx%%3D1", resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp, _ := e.get("/docs/1", "", fetchJSON...); resp.StatusCode != 401 {
			t.Errorf("a script's request: %d, want 401", resp.StatusCode)
		}
		if e.hits.Load() != before {
			t.Error("the app received a signed-out request")
		}
	})
	t.Run("public_route_needs_no_session", func(t *testing.T) {
		ec := e.echoed("/healthz", "")
		if got := ec.Header("X-Lapse-Subject"); len(got) > 0 && got[0] != "" {
			t.Errorf("a public request carries X-Lapse-Subject %q", got)
		}
	})
	t.Run("step_up_route", func(t *testing.T) {
		aal1, _ := e.session(map[string]any{"aal": 1, "amr": []string{"pwd"}})
		resp, _ := e.get("/billing/invoices", aal1, navigation...)
		if resp.StatusCode != 302 || resp.Header.Get("Location") != "/.lapse/stepup?rd=%2Fbilling%2Finvoices" {
			t.Errorf("AAL1 navigation: %d Location %q, want 302 to the step-up page", resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp, _ := e.get("/billing/invoices", aal1, fetchJSON...); resp.StatusCode != 403 {
			t.Errorf("AAL1 script: %d, want 403", resp.StatusCode)
		}
		// Spellings an app resolves to /billing/ meet the same rule.
		if resp, _ := e.get("/x/..//billing;v=1/invoices", aal1, fetchJSON...); resp.StatusCode != 403 {
			t.Errorf("AAL1, /x/..//billing;v=1/invoices: %d, want 403", resp.StatusCode)
		}
		aal2, _ := e.session(map[string]any{"subject": "bob", "aal": 2, "amr": []string{"pwd", "otp"}})
		if ec := e.echoed("/billing/invoices", aal2); ec.Header("X-Lapse-AAL")[0] != "2" {
			t.Errorf("AAL2: the app got X-Lapse-AAL %q, want 2", ec.Header("X-Lapse-AAL"))
		}
	})
	t.Run("revoked_is_refused_on_the_next_request", func(t *testing.T) {
		tok, _ := e.session(map[string]any{})
		e.echoed("/docs", tok)
		if r := call(t, "POST", e.lapse.url+"/v1/sessions/revoke", testKey, map[string]any{"token": tok}); r.status != 204 {
			t.Fatalf("revoke: %d", r.status)
		}
		if resp, _ := e.get("/docs", tok, fetchJSON...); resp.StatusCode != 401 {
			t.Errorf("after the revoke: %d, want 401", resp.StatusCode)
		}
		if resp, _ := e.get("/docs", tok, navigation...); resp.StatusCode != 302 {
			t.Errorf("after the revoke, a navigation: %d, want 302 to sign in", resp.StatusCode)
		}
	})
	t.Run("idle_session_expires", func(t *testing.T) {
		tok, id := e.session(map[string]any{"tier": "quick"})
		e.echoed("/docs", tok)
		e.waitStatus(id, "expired", nil)
		if resp, _ := e.get("/docs", tok, fetchJSON...); resp.StatusCode != 401 {
			t.Errorf("after the idle timeout: %d, want 401", resp.StatusCode)
		}
	})
	t.Run("polling_with_activity_none_does_not_keep_a_session_alive_while_all_does", func(t *testing.T) {
		poller, pid := e.session(map[string]any{"tier": "quick"})
		worker, wid := e.session(map[string]any{"subject": "bob", "tier": "quick"})
		// Both poll; only the worker's requests are activity.
		e.waitStatus(pid, "expired", func() {
			e.get("/api/poll", poller, fetchJSON...)
			e.get("/docs", worker, fetchJSON...)
		})
		if s := e.status(wid); s != "active" {
			t.Errorf("the session polling a route with activity all is %s, want active", s)
		}
		if resp, _ := e.get("/api/poll", poller, fetchJSON...); resp.StatusCode != 401 {
			t.Errorf("the expired poller: %d, want 401", resp.StatusCode)
		}
		e.echoed("/docs", worker)
	})
	t.Run("spoofed_identity_never_reaches_the_app", func(t *testing.T) {
		spoof := []string{"X-Lapse-Subject", "mallory", "X-Lapse-Tenant", "evil", "X-Lapse-AAL", "3", "X-Lapse-Session", "ses_fake",
			"X-Lapse-Tier", "gold", "X-Lapse-Warn-At", "2099-01-01T00:00:00Z", "X-Lapse-Redirect", "https://evil.example/", "X-Lapse-Proxy-Key", "guess"}
		tok, _ := e.session(map[string]any{"aal": 1})
		ec := e.echoed("/docs", tok, spoof...)
		want := map[string]string{"X-Lapse-Subject": "alice", "X-Lapse-AAL": "1", "X-Lapse-Tier": "durable"}
		for i := 0; i < len(spoof); i += 2 {
			got := ec.Header(spoof[i])
			for _, v := range got {
				if v == spoof[i+1] {
					t.Errorf("signed in: the app got the client's own %s: %q", spoof[i], v)
				}
			}
			if w, ok := want[spoof[i]]; ok && (len(got) != 1 || got[0] != w) {
				t.Errorf("signed in: the app got %s = %q, want only lapse's %q", spoof[i], got, w)
			}
		}
		ec = e.echoed("/healthz", "", spoof...)
		for i := 0; i < len(spoof); i += 2 {
			for _, v := range ec.Header(spoof[i]) {
				if v != "" {
					t.Errorf("public route: the app got %s: %q, want none", spoof[i], v)
				}
			}
		}
		before := e.hits.Load()
		if resp, _ := e.get("/docs", "", append(spoof, fetchJSON...)...); resp.StatusCode != 401 || e.hits.Load() != before {
			t.Errorf("signed out with spoofed headers: %d (app reached: %v), want 401 and the app untouched", resp.StatusCode, e.hits.Load() != before)
		}
	})
	t.Run("the_browser_reaches_lapse_only_under_.lapse", func(t *testing.T) {
		tok, _ := e.session(map[string]any{})
		if resp, body := e.get("/.lapse/v1/session", tok, fetchJSON...); resp.StatusCode != 200 || !strings.Contains(body, `"subject":"alice"`) {
			t.Errorf("GET /.lapse/v1/session: %d %s, want 200 with the session", resp.StatusCode, body)
		}
		for _, p := range []string{"/.lapse/v1/auth-request", "/.lapse/v1/forward-auth", "/.lapse/v1/sessions/x", "/.lapse/console/"} {
			if resp, _ := e.get(p, tok, fetchJSON...); resp.StatusCode != 404 {
				t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
			}
		}
		if resp, body := e.get("/.lapse/web/lapse-start.js", ""); resp.StatusCode != 200 || !strings.Contains(body, "lapse-client.js") {
			t.Errorf("GET /.lapse/web/lapse-start.js: %d", resp.StatusCode)
		}
	})
	t.Run("lapse_refuses_a_caller_without_the_proxy_key", func(t *testing.T) {
		tok, _ := e.session(map[string]any{})
		req, _ := http.NewRequest("GET", e.lapse.url+"/v1/auth-request", nil)
		req.Header.Set("X-Original-URI", "/docs")
		req.Header.Set("Cookie", "lapse="+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 || resp.Header.Get("X-Lapse-Subject") != "" {
			t.Errorf("a direct call without the key: %d, want 403 and no identity", resp.StatusCode)
		}
	})
}

// startSignIn runs the Node sign-in example against lapse at lapseURL and
// returns the URL it listens on.
func startSignIn(t *testing.T, lapseURL string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is not installed; the sign-in example's test needs it")
		}
		t.Skip("node is not installed: skipping the sign-in example")
	}
	cmd := exec.Command(node, filepath.Join("..", "..", "docs", "examples", "signin-node", "server.mjs"))
	cmd.Env = append(os.Environ(), "LAPSE_URL="+lapseURL, "LAPSE_API_KEY="+testKey, "PORT=0")
	cmd.Stderr = os.Stderr
	u, err := proxytest.Listening(cmd)
	if cmd.Process != nil {
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// testSignInHandoff signs in through the Node example behind the proxy:
// the example creates the session with lapse's API and sets the cookie,
// and the proxy lets the cookie in.
func testSignInHandoff(t *testing.T, e *gatewayEnv) {
	resp, body := e.get("/login?rd=%2Fdocs%2F1", "", navigation...)
	if resp.StatusCode != 200 || !strings.Contains(body, `name="password"`) {
		t.Fatalf("GET /login: %d, want the form: %s", resp.StatusCode, body)
	}
	post := func(form url.Values) *http.Response {
		req, _ := http.NewRequest("POST", e.proxy.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post(url.Values{"user": {"alice"}, "password": {"wrong"}, "rd": {"/docs/1"}}); resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Errorf("a wrong password: %d with cookies %v, want 401 and none", resp.StatusCode, resp.Cookies())
	}
	resp = post(url.Values{"user": {"alice"}, "password": {"alice-password"}, "rd": {"/docs/1"}})
	var tok string
	for _, c := range resp.Cookies() {
		if c.Name == "lapse" && c.HttpOnly && c.SameSite == http.SameSiteLaxMode && c.Path == "/" {
			tok = c.Value
		}
	}
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/docs/1" || !strings.HasPrefix(tok, "lps_") {
		t.Fatalf("POST /login: %d Location %q cookies %v, want 303 to /docs/1 with an HttpOnly lapse cookie", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
	}
	if ec := e.echoed("/docs/1", tok); ec.Header("X-Lapse-Subject")[0] != "alice" {
		t.Errorf("the app got X-Lapse-Subject %q, want alice", ec.Header("X-Lapse-Subject"))
	}
	if resp := post(url.Values{"user": {"alice"}, "password": {"alice-password"}, "rd": {"//evil.example/"}}); resp.Header.Get("Location") != "/" {
		t.Errorf("rd to another site: Location %q, want /", resp.Header.Get("Location"))
	}
}
