package demo_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	pqtotp "github.com/pquerna/otp/totp"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/demo"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/postgres"
	"github.com/lapsehq/lapse/postgres/pgtest"
	"github.com/lapsehq/lapse/redis"
	"github.com/lapsehq/lapse/redis/redistest"
	"github.com/lapsehq/lapse/totp"
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

// storeFor opens the store a test runs the demo on; nil means the
// demo's own SQLite store.
type storeFor func(t *testing.T) demo.Store

// eachStore runs test as a subtest on each store lapse has: SQLite, a
// private Redis and a fresh database of a private PostgreSQL.
func eachStore(t *testing.T, test func(t *testing.T, store storeFor)) {
	for _, c := range []struct {
		name string
		open storeFor
	}{
		{"sqlite", func(*testing.T) demo.Store { return nil }},
		{"redis", func(t *testing.T) demo.Store {
			st, err := redis.Open(context.Background(), redistest.NewServer(t).URL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}},
		{"postgres", func(t *testing.T) demo.Store {
			st, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}},
	} {
		t.Run(c.name, func(t *testing.T) { test(t, c.open) })
	}
}

func TestMain(m *testing.M) { pgtest.Main(m) }

func newServer(t *testing.T, store storeFor, cfg demo.Config) (*demo.App, string) {
	t.Helper()
	cfg.DataDir = t.TempDir()
	if st := store(t); st != nil {
		cfg.Store = st
	}
	app, err := demo.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(func() { srv.Close(); app.Close() })
	return app, srv.URL
}

func TestSignIn(t *testing.T) { eachStore(t, testSignIn) }

func testSignIn(t *testing.T, store storeFor) {
	_, base := newServer(t, store, demo.Config{})
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

// codeAt is the code an authenticator app with secret shows at t.
func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := pqtotp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// wrongCode is a code the app does not show around at.
func wrongCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	good := map[string]bool{}
	for _, d := range []time.Duration{-totp.Period, 0, totp.Period} {
		good[codeAt(t, secret, at.Add(d))] = true
	}
	for i := 0; ; i++ {
		if c := fmt.Sprintf("%06d", i); !good[c] {
			return c
		}
	}
}

var (
	secretRE   = regexp.MustCompile(`id="totp-secret" class="secret">([A-Z2-7]+)<`)
	recoveryRE = regexp.MustCompile(`<code class="recovery__code">([0-9A-Z-]+)</code>`)
)

// enrol sets up the signed-in user's authenticator app from the
// two-step page, as a person would: it starts the setup, reads the key
// off the page, confirms with the code of now, and returns the key and
// the recovery codes the page shows.
func (c *client) enrol(now time.Time, next string) (secret string, recovery []string) {
	c.t.Helper()
	page := "/account/two-step?next=" + url.QueryEscape(next)
	token := c.csrf(page)
	resp, body := c.do("POST", "/account/two-step/enrol", url.Values{"csrf_token": {token}, "next": {next}})
	m := secretRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil || !strings.Contains(body, `src="data:image/png;base64,`) {
		c.t.Fatalf("starting the setup: %d, want 200 with a QR code and the key:\n%s", resp.StatusCode, body)
	}
	secret = m[1]
	resp, body = c.do("POST", "/account/two-step/confirm", url.Values{"csrf_token": {token}, "next": {next}, "code": {wrongCode(c.t, secret, now)}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `role="alert"`) {
		c.t.Errorf("confirming with a wrong code: %d, want 422 with an alert", resp.StatusCode)
	}
	resp, body = c.do("POST", "/account/two-step/confirm", url.Values{"csrf_token": {token}, "next": {next}, "code": {codeAt(c.t, secret, now)}})
	for _, m := range recoveryRE.FindAllStringSubmatch(body, -1) {
		recovery = append(recovery, m[1])
	}
	if resp.StatusCode != http.StatusOK || len(recovery) != totp.RecoveryCodes {
		c.t.Fatalf("confirming with the app's code: %d with %d recovery codes, want 200 with %d:\n%s", resp.StatusCode, len(recovery), totp.RecoveryCodes, body)
	}
	// The code counted as a step-up: the page's header says so already.
	if !strings.Contains(body, `title="Signed in with a second factor"`) {
		c.t.Errorf("the page of the recovery codes does not show the session at AAL2")
	}
	return secret, recovery
}

func TestBillingNeedsARecentSecondFactor(t *testing.T) {
	eachStore(t, testBillingNeedsARecentSecondFactor)
}

func testBillingNeedsARecentSecondFactor(t *testing.T, store storeFor) {
	clock := lapsetest.NewClock(time.Now())
	times := demo.DefaultTimeouts()
	times.AuthAge = time.Minute // shorter than the idle timeout
	app, base := newServer(t, store, demo.Config{Clock: clock, Timeouts: times})
	c := newClient(t, base)
	c.signIn("ada@example.com")
	laptop := newClient(t, base) // ada's other device
	laptop.signIn("ada@example.com")
	wantLocation(t, c.do2("/billing"), "/stepup?next=%2Fbilling")
	// Without a factor, the step-up page sends the user to set one up.
	wantLocation(t, c.do2("/stepup?next=/billing"), "/account/two-step?next=%2Fbilling")
	secret, recovery := c.enrol(clock.Now(), "/billing")

	// A factor changed: ada's other sessions are over, and say why.
	wantLocation(t, laptop.do2("/documents"), "/signed-out?next=%2Fdocuments&reason=password_change")
	ss, _ := app.Manager().Sessions(t.Context(), lapse.Filter{Subject: "ada@example.com", IncludeEnded: true})
	var states []string
	for _, s := range ss {
		states = append(states, fmt.Sprintf("%s %s", s.Status, s.EndReason))
	}
	slices.Sort(states)
	if want := []string{"active ", "revoked password_change"}; !slices.Equal(states, want) {
		t.Errorf("ada's sessions %q, want %q: this one active, the laptop's revoked", states, want)
	}

	// The code that turned the factor on was a second factor given just
	// now: billing opens without asking for another.
	if resp, body := c.do("GET", "/billing", nil); resp.StatusCode != 200 || !strings.Contains(body, "Invoices") {
		t.Fatalf("billing right after turning the factor on: %d, want 200", resp.StatusCode)
	}
	token := c.csrf("/stepup?next=/billing")
	step := func(code string, csrf ...string) (*http.Response, string) {
		form := url.Values{"code": {code}, "next": {"/billing"}}
		if len(csrf) > 0 {
			form.Set("csrf_token", csrf[0])
		}
		return c.do("POST", "/stepup", form)
	}
	if resp, body := step(codeAt(t, secret, clock.Now()), token); resp.StatusCode != 422 || !strings.Contains(body, "already used") {
		t.Errorf("the code that confirmed the setup, again: %d, want 422 saying it was used", resp.StatusCode)
	}
	if resp, body := step(wrongCode(t, secret, clock.Now()), token); resp.StatusCode != 422 || !strings.Contains(body, "wrong") {
		t.Errorf("wrong code: %d, want 422 saying so", resp.StatusCode)
	}
	clock.Advance(times.AuthAge)
	wantLocation(t, c.do2("/billing"), "/stepup?next=%2Fbilling")
	if resp, _ := step(codeAt(t, secret, clock.Now())); resp.StatusCode != 403 {
		t.Errorf("step-up without the CSRF token: %d, want 403", resp.StatusCode)
	}
	resp, _ := step(codeAt(t, secret, clock.Now()), token)
	wantLocation(t, resp, "/billing")
	if resp, body := c.do("GET", "/billing", nil); resp.StatusCode != 200 || !strings.Contains(body, "Invoices") {
		t.Fatalf("billing after step-up: %d, want 200", resp.StatusCode)
	}
	clock.Advance(times.AuthAge)
	wantLocation(t, c.do2("/billing"), "/stepup?next=%2Fbilling")
	if resp := c.do2("/documents"); resp.StatusCode != 200 {
		t.Errorf("documents with an old second factor: %d, want 200", resp.StatusCode)
	}
	// A recovery code stands in for the app, once.
	resp, _ = step(strings.ToLower(recovery[0]), token)
	wantLocation(t, resp, "/billing")
	s, _ := app.Manager().Sessions(t.Context(), lapse.Filter{Subject: "ada@example.com"})
	if len(s) != 1 || s[0].AAL != 2 || !slices.Contains(s[0].AMR, lapse.MethodRecoveryCode) || !slices.Contains(s[0].AMR, lapse.MethodOTP) {
		t.Errorf("sessions %v, want one at AAL2 with otp and recovery_code", s)
	}
}

func TestSensitiveTierAsksForTheCodeAtSignIn(t *testing.T) {
	eachStore(t, testSensitiveTierAsksForTheCodeAtSignIn)
}

func testSensitiveTierAsksForTheCodeAtSignIn(t *testing.T, store storeFor) {
	clock := lapsetest.NewClock(time.Now())
	_, base := newServer(t, store, demo.Config{Clock: clock})
	c := newClient(t, base)
	c.signIn("ben@example.com")
	wantLocation(t, c.do2("/documents"), "/stepup?next=%2Fdocuments")
	wantLocation(t, c.do2("/stepup?next=/documents"), "/account/two-step?next=%2Fdocuments")
	secret, _ := c.enrol(clock.Now(), "/documents")
	// Turning the factor on was the second factor of this sign-in.
	if resp, body := c.do("GET", "/documents", nil); resp.StatusCode != 200 || !strings.Contains(body, "sensitive-tier session") {
		t.Errorf("documents right after turning the factor on: %d, want 200 on a sensitive-tier session", resp.StatusCode)
	}
	// The next sign-in asks for a code from the app.
	resp, _ := c.do("POST", "/signout", url.Values{"csrf_token": {c.csrf("/documents")}})
	wantLocation(t, resp, "/signed-out?reason=logout")
	c.signIn("ben@example.com")
	wantLocation(t, c.do2("/documents"), "/stepup?next=%2Fdocuments")
	clock.Advance(totp.Period)
	token := c.csrf("/stepup?next=/documents")
	resp, _ = c.do("POST", "/stepup", url.Values{"code": {codeAt(t, secret, clock.Now())}, "next": {"/documents"}, "csrf_token": {token}})
	wantLocation(t, resp, "/documents")
	if resp, body := c.do("GET", "/documents", nil); resp.StatusCode != 200 || !strings.Contains(body, "sensitive-tier session") {
		t.Errorf("documents after the code: %d, want 200 on a sensitive-tier session", resp.StatusCode)
	}
}

func TestSettingUpTheFactorNeedsARecentSignIn(t *testing.T) {
	eachStore(t, testSettingUpTheFactorNeedsARecentSignIn)
}

func testSettingUpTheFactorNeedsARecentSignIn(t *testing.T, store storeFor) {
	clock := lapsetest.NewClock(time.Now())
	times := demo.DefaultTimeouts()
	times.Idle = time.Hour
	_, base := newServer(t, store, demo.Config{Clock: clock, Timeouts: times})
	c := newClient(t, base)
	c.signIn("ada@example.com")
	clock.Advance(demo.RecentAuth)
	token := c.csrf("/account/two-step?next=/billing")
	if _, body := c.do("GET", "/account/two-step?next=/billing", nil); !strings.Contains(body, "Sign in again") || strings.Contains(body, "Set up an authenticator app") {
		t.Errorf("the setup page %d minutes after sign-in offers the setup; want it to ask for a new sign-in", demo.RecentAuth/time.Minute)
	}
	if resp, body := c.do("POST", "/account/two-step/enrol", url.Values{"csrf_token": {token}, "next": {"/billing"}}); resp.StatusCode != 403 || secretRE.MatchString(body) {
		t.Errorf("starting the setup with an old sign-in: %d, want 403 without a key", resp.StatusCode)
	}
	resp, _ := c.do("POST", "/signout", url.Values{"csrf_token": {token}, "next": {"/account/two-step?next=/billing"}})
	wantLocation(t, resp, "/signin?next=%2Faccount%2Ftwo-step%3Fnext%3D%2Fbilling")
	resp, _ = c.do("POST", "/signin", url.Values{"email": {"ada@example.com"}, "password": {"demo"}, "next": {"/account/two-step?next=/billing"}})
	wantLocation(t, resp, "/account/two-step?next=/billing")
	if _, body := c.do("GET", "/account/two-step?next=/billing", nil); !strings.Contains(body, "Set up an authenticator app") {
		t.Error("after a new sign-in, the setup page does not offer the setup")
	}
}

func TestRemovingTheFactorNeedsARecentStepUp(t *testing.T) {
	eachStore(t, testRemovingTheFactorNeedsARecentStepUp)
}

func testRemovingTheFactorNeedsARecentStepUp(t *testing.T, store storeFor) {
	clock := lapsetest.NewClock(time.Now())
	times := demo.DefaultTimeouts()
	times.Idle = time.Hour
	app, base := newServer(t, store, demo.Config{Clock: clock, Timeouts: times})
	c := newClient(t, base)
	c.signIn("ada@example.com")
	secret, _ := c.enrol(clock.Now(), "/")
	// Turning it on counted as a step-up; that one is now too old.
	clock.Advance(demo.RecentAuth)
	token := c.csrf("/account/two-step")
	resp, _ := c.do("POST", "/account/two-step/remove", url.Values{"csrf_token": {token}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/stepup") {
		t.Fatalf("removing without a step-up: %d to %q, want 303 to the step-up page", resp.StatusCode, resp.Header.Get("Location"))
	}
	clock.Advance(totp.Period)
	resp, _ = c.do("POST", "/stepup", url.Values{"code": {codeAt(t, secret, clock.Now())}, "next": {"/account/two-step"}, "csrf_token": {token}})
	wantLocation(t, resp, "/account/two-step")
	resp, _ = c.do("POST", "/account/two-step/remove", url.Values{"csrf_token": {token}})
	wantLocation(t, resp, "/account/two-step?removed")
	if st, err := app.Manager().Store().(lapse.FactorStore).Factors(t.Context(), "ada@example.com"); err != nil || st.TOTP != nil {
		t.Errorf("factors after removal: %+v, %v; want none", st, err)
	}
	wantLocation(t, c.do2("/stepup?next=/billing"), "/account/two-step?next=%2Fbilling")
}

func TestOperatorConsole(t *testing.T) { eachStore(t, testOperatorConsole) }

func testOperatorConsole(t *testing.T, store storeFor) {
	app, base := newServer(t, store, demo.Config{})
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
	// The commands it shows are the real ones: this demo's address, ada's
	// session, the reason an administrator's revoke records.
	for _, want := range []string{base + "/lapse/v1/sessions/" + ss[0].ID, base + "/lapse/v1/subjects/ada@example.com/sessions?reason=admin", app.APIKey(), "<code>/console/</code>"} {
		if !strings.Contains(body, want) {
			t.Errorf("the operator page lacks %q", want)
		}
	}
	resp, _ := olga.do("POST", "/admin/revoke", url.Values{"id": {ss[0].ID}, "csrf_token": {token}})
	wantLocation(t, resp, "/admin?revoked")
	// Ada's next page says why: an administrator ended it.
	wantLocation(t, ada.do2("/documents"), "/signed-out?next=%2Fdocuments&reason=admin")
}

func TestDocumentsSaveNeedsTheCSRFToken(t *testing.T) {
	eachStore(t, testDocumentsSaveNeedsTheCSRFToken)
}

func testDocumentsSaveNeedsTheCSRFToken(t *testing.T, store storeFor) {
	_, base := newServer(t, store, demo.Config{})
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
