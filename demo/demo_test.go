package demo_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/demo"
	"github.com/lapsehq/lapse/lapsetest"
)

// client is a cookie-keeping HTTP client of one demo app, without a
// browser: for the server-side rules of the demo.
type client struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newClient(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(method, path string, form url.Values, header ...string) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func (c *client) signIn(email string) {
	c.t.Helper()
	resp, _ := c.do("POST", "/signin", url.Values{"email": {email}, "password": {"demo"}})
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("sign-in as %s: %d, want 303", email, resp.StatusCode)
	}
}

// csrf returns the CSRF token the page at path carries.
func (c *client) csrf(path string) string {
	c.t.Helper()
	_, body := c.do("GET", path, nil)
	const marker = `name="csrf-token" content="`
	i := strings.Index(body, marker)
	if i < 0 {
		c.t.Fatalf("%s has no CSRF token", path)
	}
	rest := body[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}

func wantLocation(t *testing.T, resp *http.Response, want string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
		t.Errorf("got %d to %q, want 303 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

func newServer(t *testing.T, cfg demo.Config) (*demo.App, string) {
	t.Helper()
	cfg.DataDir = t.TempDir()
	app, err := demo.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(func() { srv.Close(); app.Close() })
	return app, srv.URL
}

func TestSignIn(t *testing.T) {
	_, base := newServer(t, demo.Config{})
	c := newClient(t, base)
	if resp, body := c.do("POST", "/signin", url.Values{"email": {"ada@example.com"}, "password": {"nope"}}); resp.StatusCode != 401 || !strings.Contains(body, `role="alert"`) {
		t.Errorf("wrong password: %d, want 401 with an alert", resp.StatusCode)
	}
	resp, _ := c.do("POST", "/signin", url.Values{"email": {"ada@example.com"}, "password": {"demo"}}, "Sec-Fetch-Site", "cross-site")
	if resp.StatusCode != 403 {
		t.Errorf("cross-site sign-in (login CSRF): %d, want 403", resp.StatusCode)
	}
	wantLocation(t, c.do2("/documents/retro"), "/signin?next=%2Fdocuments%2Fretro")
	resp, _ = c.do("POST", "/signin", url.Values{"email": {"ada@example.com"}, "password": {"demo"}, "next": {"/documents/retro"}})
	wantLocation(t, resp, "/documents/retro")
	if resp, _ := c.do("POST", "/signin", url.Values{"email": {"ada@example.com"}, "password": {"demo"}, "next": {"//evil.example"}}); resp.Header.Get("Location") != "/documents" {
		t.Errorf("open redirect: sign-in sent to %q", resp.Header.Get("Location"))
	}
	if resp, _ := c.do("GET", "/documents", nil); resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v, want a CSP and no-store", resp.Header)
	}
}

func (c *client) do2(path string) *http.Response {
	resp, _ := c.do("GET", path, nil)
	return resp
}

func TestBillingNeedsARecentSecondFactor(t *testing.T) {
	clock := lapsetest.NewClock(time.Now())
	times := demo.DefaultTimeouts()
	times.AuthAge = time.Minute // shorter than the idle timeout
	_, base := newServer(t, demo.Config{Clock: clock, Timeouts: times})
	c := newClient(t, base)
	c.signIn("ada@example.com")
	wantLocation(t, c.do2("/billing"), "/stepup?next=%2Fbilling")
	token := c.csrf("/stepup?next=/billing")
	if resp, body := c.do("POST", "/stepup", url.Values{"code": {"654321"}, "next": {"/billing"}, "csrf_token": {token}}); resp.StatusCode != 422 || !strings.Contains(body, "not right") {
		t.Errorf("wrong code: %d, want 422 saying so", resp.StatusCode)
	}
	if resp, _ := c.do("POST", "/stepup", url.Values{"code": {"123456"}, "next": {"/billing"}}); resp.StatusCode != 403 {
		t.Errorf("step-up without the CSRF token: %d, want 403", resp.StatusCode)
	}
	resp, _ := c.do("POST", "/stepup", url.Values{"code": {"123456"}, "next": {"/billing"}, "csrf_token": {token}})
	wantLocation(t, resp, "/billing")
	if resp, body := c.do("GET", "/billing", nil); resp.StatusCode != 200 || !strings.Contains(body, "Invoices") {
		t.Fatalf("billing after step-up: %d, want 200", resp.StatusCode)
	}
	clock.Advance(times.AuthAge)
	wantLocation(t, c.do2("/billing"), "/stepup?next=%2Fbilling")
	if resp := c.do2("/documents"); resp.StatusCode != 200 {
		t.Errorf("documents with an old second factor: %d, want 200", resp.StatusCode)
	}
}

func TestSensitiveTierAsksForTheCodeAtSignIn(t *testing.T) {
	_, base := newServer(t, demo.Config{})
	c := newClient(t, base)
	c.signIn("ben@example.com")
	wantLocation(t, c.do2("/documents"), "/stepup?next=%2Fdocuments")
	token := c.csrf("/stepup?next=/documents")
	resp, _ := c.do("POST", "/stepup", url.Values{"code": {"123456"}, "next": {"/documents"}, "csrf_token": {token}})
	wantLocation(t, resp, "/documents")
	if resp, body := c.do("GET", "/documents", nil); resp.StatusCode != 200 || !strings.Contains(body, "sensitive-tier session") {
		t.Errorf("documents after the code: %d, want 200 on a sensitive-tier session", resp.StatusCode)
	}
}

func TestOperatorConsole(t *testing.T) {
	app, base := newServer(t, demo.Config{})
	ada := newClient(t, base)
	ada.signIn("ada@example.com")
	if resp := ada.do2("/admin"); resp.StatusCode != 403 {
		t.Errorf("ada on the console: %d, want 403", resp.StatusCode)
	}
	olga := newClient(t, base)
	olga.signIn("olga@example.com")
	token := olga.csrf("/admin")
	_, body := olga.do("GET", "/admin", nil)
	if !strings.Contains(body, "ada@example.com") {
		t.Fatal("the console does not list ada's session")
	}
	ss, _ := app.Manager().Sessions(t.Context(), sessionsOf("ada@example.com"))
	resp, _ := olga.do("POST", "/admin/revoke", url.Values{"id": {ss[0].ID}, "csrf_token": {token}})
	wantLocation(t, resp, "/admin?revoked")
	wantLocation(t, ada.do2("/documents"), "/signed-out?next=%2Fdocuments&reason=revoked")
}

func TestDocumentsSaveNeedsTheCSRFToken(t *testing.T) {
	_, base := newServer(t, demo.Config{})
	c := newClient(t, base)
	c.signIn("ada@example.com")
	if resp, _ := c.do("POST", "/documents/roadmap", url.Values{"notes": {"forged"}}); resp.StatusCode != 403 {
		t.Errorf("save without the token: %d, want 403", resp.StatusCode)
	}
	token := c.csrf("/documents/roadmap")
	resp, _ := c.do("POST", "/documents/roadmap", url.Values{"notes": {"ship it"}, "csrf_token": {token}})
	wantLocation(t, resp, "/documents/roadmap?saved")
	if _, body := c.do("GET", "/documents/roadmap", nil); !strings.Contains(body, "ship it") {
		t.Error("the notes were not saved")
	}
}

func sessionsOf(subject string) lapse.Filter { return lapse.Filter{Subject: subject} }
