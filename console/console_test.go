package console_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/console"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/metrics"
	"github.com/lapsehq/lapse/postgres"
	"github.com/lapsehq/lapse/postgres/pgtest"
	"github.com/lapsehq/lapse/redis"
	"github.com/lapsehq/lapse/redis/redistest"
	"github.com/lapsehq/lapse/sqlite"
	"github.com/lapsehq/lapse/totp"
)

const adminKey = "lpk_test-admin-key-0123456789abcdefghijklmnopqrstuvwxyz"

// admin is who adminKey signs in as.
var admin = console.Identity{Actor: "key:test", Name: "test key", Role: console.RoleAdmin}

// keyOnly is the Keys of a console that lets only adminKey in, as admin.
func keyOnly(_ context.Context, k string) (console.Identity, bool) { return admin, k == adminKey }

// env is a console served over TLS on a fresh store (SQLite unless an
// option says otherwise), with a fake clock, the lapsetest policy and a
// metrics registry.
type env struct {
	t       *testing.T
	clock   *lapsetest.Clock
	store   auditStore
	dbPath  string // of the SQLite store
	m       *lapse.Manager
	metrics *metrics.Metrics
	srv     *httptest.Server
	client  *http.Client
	totp    *totp.Service  // with the operators option
	ring    *lapse.Keyring // with the keys option
}

type option func(*console.Config, *envOptions)

// auditStore is what every store the console tests run on is.
type auditStore interface {
	lapse.Store
	lapse.AuditLog
	lapse.SessionLister
}

type envOptions struct {
	policy *lapse.Policy
	open   func(t *testing.T) auditStore // nil: SQLite in the test's directory
	store  func(auditStore) lapse.Store
	plain  bool // plain HTTP instead of TLS
	// base is the console's https URL, known before an option runs.
	base string
	// operators offers the operator sign-in, with totp as its factor.
	operators bool
	// keys gives the console the store's keyring (e.ring).
	keys bool
}

// onStore runs the console on the store open makes.
func onStore(open func(t *testing.T) auditStore) option {
	return func(_ *console.Config, o *envOptions) { o.open = open }
}

// eachStore runs test as a subtest on each store lapse has: SQLite, a
// private Redis and a fresh database of a private PostgreSQL.
func eachStore(t *testing.T, test func(t *testing.T, on option)) {
	for _, c := range []struct {
		name string
		open func(t *testing.T) auditStore
	}{
		{"sqlite", nil},
		{"redis", func(t *testing.T) auditStore {
			st, err := redis.Open(context.Background(), redistest.NewServer(t).URL())
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
		{"postgres", func(t *testing.T) auditStore {
			st, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
	} {
		t.Run(c.name, func(t *testing.T) { test(t, onStore(c.open)) })
	}
}

func TestMain(m *testing.M) { pgtest.Main(m) }

func withPolicy(p *lapse.Policy) option {
	return func(_ *console.Config, o *envOptions) { o.policy = p }
}

func newEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	e := &env{t: t, clock: lapsetest.NewClock(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC))}
	cfg := console.Config{Keys: keyOnly}
	mux := http.NewServeMux()
	e.srv = httptest.NewUnstartedServer(mux)
	o := envOptions{policy: lapsetest.Policy(), base: "https://" + e.srv.Listener.Addr().String()}
	for _, opt := range opts {
		opt(&cfg, &o)
	}
	if o.open != nil {
		e.store = o.open(t)
	} else {
		e.dbPath = filepath.Join(t.TempDir(), "lapse.db")
		st, err := sqlite.Open(e.dbPath)
		if err != nil {
			t.Fatal(err)
		}
		e.store = st
	}
	t.Cleanup(func() { e.store.Close() })
	var err error
	var st lapse.Store = e.store
	if o.store != nil {
		st = o.store(e.store)
	}
	e.metrics = metrics.New(st, e.clock, o.policy.TierNames())
	if e.m, err = lapse.New(lapse.Config{Store: st, Policy: o.policy, Clock: e.clock, Observer: e.metrics}); err != nil {
		t.Fatal(err)
	}
	cfg.Manager, cfg.Metrics, cfg.Observer = e.m, e.metrics.Registry(), e.metrics
	if o.operators {
		if e.totp, err = totp.New(totp.Config{Manager: e.m, Key: make([]byte, totp.KeySize)}); err != nil {
			t.Fatal(err)
		}
		cfg.Operators, cfg.Factors = e.store.(lapse.OperatorStore), e.totp
	}
	if o.keys {
		if e.ring, err = lapse.NewKeyring(e.m); err != nil {
			t.Fatal(err)
		}
		cfg.Keyring = e.ring
	}
	c, err := console.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/console/", c)
	if o.plain {
		e.srv.Start()
	} else {
		e.srv.StartTLS()
	}
	t.Cleanup(e.srv.Close)
	e.client = e.newClient()
	return e
}

// newClient returns a browser-like client with its own cookie jar that
// does not follow redirects, so tests see them.
func (e *env) newClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	c := *e.srv.Client() // a copy: the server's client is shared
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

type response struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (e *env) do(c *http.Client, req *http.Request) response {
	e.t.Helper()
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, body: string(b), location: res.Header.Get("Location"), header: res.Header}
}

func (e *env) get(path string) response {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	return e.do(e.client, req)
}

// post sends a form as a same-origin browser form would.
func (e *env) post(path string, form url.Values) response {
	e.t.Helper()
	return e.postWith(e.client, path, form, http.Header{"Origin": {e.srv.URL}, "Sec-Fetch-Site": {"same-origin"}})
}

func (e *env) postWith(c *http.Client, path string, form url.Values, h http.Header) response {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range h {
		req.Header[k] = v
	}
	return e.do(c, req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in the page:\n%s", body)
	}
	return m[1]
}

// signIn signs the env's client in and returns the CSRF token of its
// console session.
func (e *env) signIn() string {
	e.t.Helper()
	page := e.get("/console/signin")
	res := e.post("/console/signin", url.Values{"csrf": {csrfOf(e.t, page.body)}, "key": {adminKey}})
	if res.status != http.StatusSeeOther || res.location != "/console/sessions" {
		e.t.Fatalf("sign-in = %d to %q, want 303 to /console/sessions\n%s", res.status, res.location, res.body)
	}
	return csrfOf(e.t, e.get("/console/sessions").body)
}

// create starts a platform session.
func (e *env) create(subject, tenant, tier string) *lapse.Session {
	e.t.Helper()
	_, s, err := e.m.Create(context.Background(), lapse.CreateParams{Subject: subject, Tenant: tenant, Tier: tier, IP: "203.0.113.7"})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) status(id string) lapse.Status {
	e.t.Helper()
	s, err := e.m.Session(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return s.Status
}

func wantStatus(t *testing.T, what string, res response, want int) {
	t.Helper()
	if res.status != want {
		t.Fatalf("%s: status %d, want %d\n%s", what, res.status, want, res.body)
	}
}

func TestEveryPageRefusesWithoutSignIn(t *testing.T) {
	e := newEnv(t)
	s := e.create("alice", "", "standard")
	for _, path := range []string{
		"/console/", "/console/sessions?subject=alice", "/console/sessions/" + s.ID, "/console/policy",
		"/console/audit", "/console/charts?window=1h", "/console/revoke-subject?subject=alice", "/console/nowhere",
	} {
		res := e.get(path)
		want := "/console/signin?next=" + url.QueryEscape(path)
		if res.status != http.StatusSeeOther || res.location != want {
			t.Errorf("GET %s without a session = %d to %q, want 303 to %q", path, res.status, res.location, want)
		}
		if strings.Contains(res.body, "203.0.113.7") || strings.Contains(res.body, "<table") {
			t.Errorf("GET %s without a session leaked data: %s", path, res.body)
		}
	}
	for _, path := range []string{"/console/sessions/" + s.ID + "/revoke", "/console/revoke-subject", "/console/audit/verify", "/console/signout"} {
		res := e.post(path, url.Values{"subject": {"alice"}, "csrf": {"guess"}})
		if res.status != http.StatusSeeOther || res.location != "/console/signin" {
			t.Errorf("POST %s without a session = %d to %q, want 303 to /console/signin", path, res.status, res.location)
		}
	}
	if got := e.status(s.ID); got != lapse.StatusActive {
		t.Errorf("alice's session is %s after actions without a session, want active", got)
	}
	// A made-up or platform token in the cookie opens nothing.
	tok, _, _ := e.m.Create(context.Background(), lapse.CreateParams{Subject: "mallory"})
	u, _ := url.Parse(e.srv.URL)
	e.client.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-lapse-console", Value: tok.Reveal(), Path: "/"}})
	if res := e.get("/console/sessions"); res.status != http.StatusSeeOther {
		t.Errorf("a platform session's token opened the console: %d", res.status)
	}
}

func TestSignIn(t *testing.T) { eachStore(t, testSignIn) }

func testSignIn(t *testing.T, on option) {
	e := newEnv(t, on)
	page := e.get("/console/signin")
	wantStatus(t, "sign-in page", page, http.StatusOK)
	for _, want := range []string{`<label for="key">Admin API key</label>`, `type="password"`, `class="skip" href="#main"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("sign-in page lacks %s", want)
		}
	}
	token := csrfOf(t, page.body)

	t.Run("wrong_key_is_refused", func(t *testing.T) {
		res := e.post("/console/signin", url.Values{"csrf": {token}, "key": {"lpk_wrong"}})
		wantStatus(t, "wrong key", res, http.StatusUnauthorized)
		if !strings.Contains(res.body, "That is not an API key with the console scope.") || strings.Contains(res.body, "lpk_wrong") {
			t.Errorf("wrong-key page does not say so, or echoes the key:\n%s", res.body)
		}
		token = csrfOf(t, res.body) // the page set a new one
	})
	t.Run("form_without_its_token_is_refused", func(t *testing.T) {
		other := e.newClient()
		res := e.postWith(other, "/console/signin", url.Values{"csrf": {token}, "key": {adminKey}}, nil)
		wantStatus(t, "sign-in without the sign-in cookie", res, http.StatusForbidden)
	})
	t.Run("cross_site_sign_in_is_refused", func(t *testing.T) {
		res := e.postWith(e.client, "/console/signin", url.Values{"csrf": {token}, "key": {adminKey}},
			http.Header{"Origin": {"https://evil.example"}})
		wantStatus(t, "sign-in from another origin", res, http.StatusForbidden)
	})
	t.Run("admin_key_opens_a_console_session", func(t *testing.T) {
		res := e.post("/console/signin", url.Values{"csrf": {token}, "key": {adminKey}, "next": {"/console/policy"}})
		if res.status != http.StatusSeeOther || res.location != "/console/policy" {
			t.Fatalf("sign-in = %d to %q, want 303 to /console/policy", res.status, res.location)
		}
		var ck string
		for _, v := range res.header.Values("Set-Cookie") {
			if strings.HasPrefix(v, "__Host-lapse-console=") && !strings.HasPrefix(v, "__Host-lapse-console=;") {
				ck = v
			}
		}
		for _, attr := range []string{"Path=/", "Max-Age=28800", "HttpOnly", "Secure", "SameSite=Strict"} {
			if !strings.Contains(ck, attr) {
				t.Errorf("session cookie %q lacks %s", ck, attr)
			}
		}
		if strings.Contains(ck, "Domain=") {
			t.Errorf("session cookie %q names a domain; __Host- cookies must not", ck)
		}
		wantStatus(t, "policy page after sign-in", e.get("/console/policy"), http.StatusOK)
		// In lapse's own namespace, which the platform's manager does not
		// list: read the store.
		ss, _ := e.store.ListSessions(context.Background(), lapse.SessionQuery{Tier: console.Tier, Status: lapse.StatusActive, Reserved: true, Now: e.clock.Now()})
		if len(ss) != 1 || ss[0].Subject != console.SubjectOf(admin.Actor) || ss[0].Policy.IdleTimeout != 15*time.Minute || ss[0].Policy.AbsoluteTimeout != 8*time.Hour {
			t.Errorf("console sessions = %+v, want one of subject %s with 15m idle and 8h absolute", ss, console.SubjectOf(admin.Actor))
		}
	})
	t.Run("next_never_leaves_the_console", func(t *testing.T) {
		c := e.client
		defer func() { e.client = c }()
		for _, next := range []string{"https://evil.example/", "//evil.example/console/", "/elsewhere", "/console/../v1/keys"} {
			e.client = e.newClient()
			page := e.get("/console/signin?next=" + url.QueryEscape(next))
			res := e.post("/console/signin", url.Values{"csrf": {csrfOf(t, page.body)}, "key": {adminKey}, "next": {next}})
			if res.location != "/console/sessions" {
				t.Errorf("sign-in with next=%q went to %q, want /console/sessions", next, res.location)
			}
		}
	})
}

func TestConsoleSessionTimesOut(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	// Activity every 10 minutes keeps it alive until the absolute deadline.
	for range 47 {
		e.clock.Advance(10 * time.Minute)
		wantStatus(t, "a page 10 minutes after the last", e.get("/console/sessions"), http.StatusOK)
	}
	e.clock.Advance(10 * time.Minute) // 8h tenth minute
	res := e.get("/console/sessions")
	if res.status != http.StatusSeeOther || !strings.Contains(res.location, "ended=absolute") {
		t.Fatalf("after 8 hours = %d to %q, want the sign-in page saying the session reached its end", res.status, res.location)
	}
	e.signIn()
	e.clock.Advance(15 * time.Minute)
	res = e.get("/console/audit")
	if res.status != http.StatusSeeOther || !strings.Contains(res.location, "ended=idle") {
		t.Fatalf("after 15 idle minutes = %d to %q, want the sign-in page saying it idled out", res.status, res.location)
	}
	page := e.get(res.location)
	if !strings.Contains(page.body, "signed out after a period without activity") {
		t.Errorf("the sign-in page does not say why:\n%s", page.body)
	}
}

func TestSignOutRevokesTheConsoleSession(t *testing.T) {
	e := newEnv(t)
	csrf := e.signIn()
	u, _ := url.Parse(e.srv.URL)
	old := e.client.Jar.Cookies(u)
	res := e.post("/console/signout", url.Values{"csrf": {csrf}})
	if res.status != http.StatusSeeOther || res.location != "/console/signin?ended=signedout" {
		t.Fatalf("sign-out = %d to %q", res.status, res.location)
	}
	if res := e.get("/console/sessions"); res.status != http.StatusSeeOther {
		t.Errorf("after sign-out a page answered %d, want a redirect to sign in", res.status)
	}
	replay := e.newClient()
	replay.Jar.SetCookies(u, old)
	if res := e.do(replay, mustRequest("GET", e.srv.URL+"/console/sessions")); res.status != http.StatusSeeOther {
		t.Errorf("the signed-out cookie still opens the console: %d", res.status)
	}
	evs, _ := e.store.QueryEvents(context.Background(), lapse.EventQuery{Types: []lapse.EventType{lapse.EventRevoked}})
	if len(evs) != 1 || evs[0].Tier != console.Tier || evs[0].Reason != lapse.ReasonLogout {
		t.Errorf("sign-out events = %+v, want one logout of a console session", evs)
	}
}

func mustRequest(method, u string) *http.Request {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		panic(err)
	}
	return req
}

func TestCrossSiteActionsAreRefused(t *testing.T) {
	e := newEnv(t)
	csrf := e.signIn()
	s := e.create("alice", "", "standard")
	path := "/console/sessions/" + s.ID + "/revoke"
	other := newEnv(t)
	otherCSRF := other.signIn()
	for _, c := range []struct {
		name string
		form url.Values
		h    http.Header
	}{
		{"missing_token", url.Values{}, http.Header{"Origin": {e.srv.URL}}},
		{"wrong_token", url.Values{"csrf": {"AAAA"}}, nil},
		{"another_sessions_token", url.Values{"csrf": {otherCSRF}}, nil},
		{"token_in_query_not_form", nil, nil},
		{"foreign_origin", url.Values{"csrf": {csrf}}, http.Header{"Origin": {"https://evil.example"}}},
		{"cross_site_fetch", url.Values{"csrf": {csrf}}, http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		{"same_site_sibling", url.Values{"csrf": {csrf}}, http.Header{"Sec-Fetch-Site": {"same-site"}, "Origin": {"https://sub." + strings.TrimPrefix(e.srv.URL, "https://")}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := path
			if c.form == nil {
				p += "?csrf=" + url.QueryEscape(csrf)
			}
			res := e.postWith(e.client, p, c.form, c.h)
			wantStatus(t, "revoke", res, http.StatusForbidden)
			if !strings.Contains(res.body, "Refused") {
				t.Errorf("the refusal does not say so:\n%s", res.body)
			}
			if got := e.status(s.ID); got != lapse.StatusActive {
				t.Fatalf("the session is %s after a refused revoke", got)
			}
		})
	}
	res := e.post(path, url.Values{"csrf": {csrf}})
	wantStatus(t, "same-origin revoke with the token", res, http.StatusSeeOther)
	if got := e.status(s.ID); got != lapse.StatusRevoked {
		t.Fatalf("after a valid revoke the session is %s, want revoked", got)
	}
}

func TestSessionsFilters(t *testing.T) { eachStore(t, testSessionsFilters) }

func testSessionsFilters(t *testing.T, on option) {
	e := newEnv(t, on)
	e.signIn()
	alice := e.create("alice@example.com", "acme", "standard")
	e.clock.Advance(time.Second)
	bob := e.create("bob@example.com", "", "sensitive")
	e.clock.Advance(time.Second)
	carol := e.create("carol@example.com", "acme", "sensitive")
	e.clock.Advance(time.Second)
	gone := e.create("dave@example.com", "", "standard")
	e.m.End(context.Background(), gone.ID, lapse.ReasonTheft, "test")
	e.clock.Advance(time.Second)
	lapsed := e.create("erin@example.com", "", "sensitive")
	e.clock.Advance(6 * time.Minute) // sensitive idles out after 5m
	all := []*lapse.Session{alice, bob, carol, gone, lapsed}
	for _, c := range []struct {
		query string
		want  []*lapse.Session
	}{
		{"", []*lapse.Session{alice}},
		{"?status=all", all},
		{"?status=revoked", []*lapse.Session{gone}},
		{"?status=expired", []*lapse.Session{bob, carol, lapsed}},
		{"?status=all&tenant=acme", []*lapse.Session{alice, carol}},
		{"?status=all&tier=sensitive", []*lapse.Session{bob, carol, lapsed}},
		{"?status=all&subject=bob%40example.com", []*lapse.Session{bob}},
		{"?status=expired&tenant=acme&tier=sensitive", []*lapse.Session{carol}},
	} {
		res := e.get("/console/sessions" + c.query)
		wantStatus(t, c.query, res, http.StatusOK)
		for _, s := range all {
			if got, want := strings.Contains(res.body, s.ID), contains(c.want, s); got != want {
				t.Errorf("sessions%s: shows %s (%s) = %v, want %v", c.query, s.ID, s.Subject, got, want)
			}
		}
	}
	if res := e.get("/console/sessions?status=sleeping"); res.status != http.StatusBadRequest {
		t.Errorf("an unknown status answered %d, want 400", res.status)
	}
}

func contains(ss []*lapse.Session, s *lapse.Session) bool {
	for _, x := range ss {
		if x.ID == s.ID {
			return true
		}
	}
	return false
}

func TestSessionsPaginate(t *testing.T) { eachStore(t, testSessionsPaginate) }

func testSessionsPaginate(t *testing.T, on option) {
	e := newEnv(t, on)
	e.signIn()
	var ids []string
	for i := range 61 {
		ids = append(ids, e.create(fmt.Sprintf("user%02d", i), "", "standard").ID)
		e.clock.Advance(time.Second)
	}
	seen := map[string]int{}
	next := "/console/sessions?tier=standard"
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("more pages than expected")
		}
		res := e.get(next)
		wantStatus(t, next, res, http.StatusOK)
		for _, id := range ids {
			if strings.Contains(res.body, `href="/console/sessions/`+id+`"`) {
				seen[id]++
			}
		}
		next = ""
		if m := regexp.MustCompile(`href="(/console/sessions\?[^"]*after=[^"]*)" rel="next"`).FindStringSubmatch(res.body); m != nil {
			next = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("session %s was shown %d times across the pages, want once", id, seen[id])
		}
	}
}

func TestSessionDetailShowsEvents(t *testing.T) { eachStore(t, testSessionDetailShowsEvents) }

func testSessionDetailShowsEvents(t *testing.T, on option) {
	e := newEnv(t, on)
	e.signIn()
	s := e.create("alice", "acme", "standard")
	e.clock.Advance(time.Minute)
	e.m.End(context.Background(), s.ID, lapse.ReasonPasswordChange, "api")
	res := e.get("/console/sessions/" + s.ID)
	wantStatus(t, "detail", res, http.StatusOK)
	for _, want := range []string{"session.created", "session.revoked", "password change", "revoked: password change", "203.0.113.7", "acme"} {
		if !strings.Contains(res.body, want) {
			t.Errorf("detail page lacks %q", want)
		}
	}
	if res := e.get("/console/sessions/ses_nope"); res.status != http.StatusNotFound {
		t.Errorf("unknown session answered %d, want 404", res.status)
	}
}

func TestRevoke(t *testing.T) { eachStore(t, testRevoke) }

func testRevoke(t *testing.T, on option) {
	e := newEnv(t, on)
	csrf := e.signIn()
	ctx := context.Background()
	t.Run("one_session_with_a_reason", func(t *testing.T) {
		s := e.create("alice", "", "standard")
		keep := e.create("alice", "", "standard")
		res := e.post("/console/sessions/"+s.ID+"/revoke", url.Values{"csrf": {csrf}, "reason": {"theft"}, "back": {"/console/sessions?subject=alice"}})
		if res.status != http.StatusSeeOther || !strings.HasPrefix(res.location, "/console/sessions?") || !strings.Contains(res.location, "notice=revoked") {
			t.Fatalf("revoke = %d to %q", res.status, res.location)
		}
		got, _ := e.m.Session(ctx, s.ID)
		if got.Status != lapse.StatusRevoked || got.EndReason != lapse.ReasonTheft {
			t.Errorf("revoked session = %s %s, want revoked theft", got.Status, got.EndReason)
		}
		evs, _ := e.store.QueryEvents(ctx, lapse.EventQuery{SessionID: s.ID, Types: []lapse.EventType{lapse.EventRevoked}})
		if len(evs) != 1 || evs[0].Actor != admin.Actor {
			t.Errorf("revoke events = %+v, want one by actor %q", evs, admin.Actor)
		}
		if e.status(keep.ID) != lapse.StatusActive {
			t.Errorf("the other session of alice was revoked too")
		}
		page := e.get(res.location)
		if !strings.Contains(page.body, "Revoked 1 session.") || strings.Contains(page.body, s.ID) || !strings.Contains(page.body, keep.ID) {
			t.Errorf("after the revoke the list does not say so, or still shows the session")
		}
	})
	t.Run("a_reason_not_for_revoking_is_refused", func(t *testing.T) {
		s := e.create("alice", "", "standard")
		res := e.post("/console/sessions/"+s.ID+"/revoke", url.Values{"csrf": {csrf}, "reason": {"idle_timeout"}})
		wantStatus(t, "revoke with reason idle_timeout", res, http.StatusBadRequest)
	})
	t.Run("all_of_a_subject_in_one_tenant_or_all", func(t *testing.T) {
		a1 := e.create("bob", "acme", "standard")
		a2 := e.create("bob", "acme", "sensitive")
		p1 := e.create("bob", "", "standard")
		other := e.create("carol", "acme", "standard")
		page := e.get("/console/revoke-subject?subject=bob&tenant=acme")
		wantStatus(t, "confirmation", page, http.StatusOK)
		if !strings.Contains(page.body, a1.ID) || !strings.Contains(page.body, a2.ID) || strings.Contains(page.body, p1.ID) {
			t.Errorf("the confirmation does not list exactly bob's sessions in acme")
		}
		res := e.post("/console/revoke-subject", url.Values{"csrf": {csrf}, "subject": {"bob"}, "tenant": {"acme"}})
		if res.status != http.StatusSeeOther || !strings.Contains(res.location, "n=2") {
			t.Fatalf("revoke-subject = %d to %q, want 2 revoked", res.status, res.location)
		}
		for s, want := range map[*lapse.Session]lapse.Status{a1: lapse.StatusRevoked, a2: lapse.StatusRevoked, p1: lapse.StatusActive, other: lapse.StatusActive} {
			if got := e.status(s.ID); got != want {
				t.Errorf("%s of %s in %q is %s, want %s", s.ID, s.Subject, s.Tenant, got, want)
			}
		}
		res = e.post("/console/revoke-subject", url.Values{"csrf": {csrf}, "subject": {"bob"}, "all_tenants": {"1"}})
		if !strings.Contains(res.location, "n=1") || e.status(p1.ID) != lapse.StatusRevoked {
			t.Errorf("revoke-subject in every tenant = %q; platform session %s", res.location, e.status(p1.ID))
		}
	})
}

func TestPolicyPage(t *testing.T) {
	p := lapsetest.Policy()
	st := p.Tiers["sensitive"]
	st.Profiles = []string{"pci-dss-4"}
	p.Tiers["sensitive"] = st
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withPolicy(p))
	e.signIn()
	res := e.get("/console/policy")
	wantStatus(t, "policy", res, http.StatusOK)
	for _, want := range []string{"Platform tiers", "Tenant acme", `data-label="Idle" class="over">10m</td>`, "pci-dss-4", "passed", "no profile", "lapse-console"} {
		if !strings.Contains(res.body, want) {
			t.Errorf("policy page lacks %q", want)
		}
	}
	// The standard tier idles out after 30m: PCI DSS 8.2.8 wants 15m at most.
	res = e.get("/console/policy?profile=pci-dss-4")
	wantStatus(t, "policy audited against pci-dss-4", res, http.StatusOK)
	if !strings.Contains(res.body, `<code>idle_timeout</code> is 30m, required at most 15m`) || !strings.Contains(res.body, "failed") {
		t.Errorf("the pci-dss-4 audit does not show the standard tier's idle timeout failing:\n%s", res.body)
	}
	if res := e.get("/console/policy?profile=iso-9001"); res.status != http.StatusBadRequest {
		t.Errorf("an unknown profile answered %d, want 400", res.status)
	}
}

func TestAuditLogFiltersAndPages(t *testing.T) { eachStore(t, testAuditLogFiltersAndPages) }

func testAuditLogFiltersAndPages(t *testing.T, on option) {
	e := newEnv(t, on)
	e.signIn()
	start := e.clock.Now()
	alice := e.create("alice", "acme", "standard")
	e.clock.Advance(time.Minute)
	e.m.End(context.Background(), alice.ID, lapse.ReasonAdmin, "api")
	e.clock.Advance(time.Hour)
	for i := range 230 {
		e.create(fmt.Sprintf("u%d", i), "", "standard")
	}
	e.clock.Advance(time.Hour)
	e.signIn() // the first console session idled out meanwhile: 237 events in all (each sign-in is a session.created and an operator.signed_in)
	ids := func(body string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`<td role="cell" data-label="#" class="num">(\d+)`).FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	for _, c := range []struct {
		query string
		want  int
	}{
		{"?subject=alice", 2},
		{"?tenant=acme", 2},
		{"?session=" + alice.ID, 2},
		{"?type=session.revoked", 1},
		{"?subject=alice&type=session.created", 1},
		{"?since=" + start.Add(30*time.Minute).Format("2006-01-02T15:04") + "&until=" + start.Add(90*time.Minute).Format("2006-01-02T15:04"), 100},
		{"?until=" + start.Add(30*time.Minute).Format("2006-01-02T15:04") + "&type=session.created", 2}, // alice and the console sign-in
	} {
		res := e.get("/console/audit" + c.query)
		wantStatus(t, c.query, res, http.StatusOK)
		if got := len(ids(res.body)); got != c.want {
			t.Errorf("audit%s shows %d events, want %d", c.query, got, c.want)
		}
	}
	// Newest first, 100 a page, down to the first record.
	res := e.get("/console/audit")
	var all []string
	for pages := 0; ; pages++ {
		page := ids(res.body)
		all = append(all, page...)
		m := regexp.MustCompile(`href="([^"]*before=[^"]*)" rel="next"`).FindStringSubmatch(res.body)
		if m == nil || pages > 5 {
			break
		}
		res = e.get(strings.ReplaceAll(m[1], "&amp;", "&"))
	}
	if len(all) != 237 || all[0] != "237" || all[len(all)-1] != "1" {
		t.Errorf("paging the log gave %d events from %s to %s, want 237 from 237 to 1", len(all), all[0], all[len(all)-1])
	}
	if res := e.get("/console/audit?type=session.bogus"); res.status != http.StatusBadRequest {
		t.Errorf("an unknown type answered %d, want 400", res.status)
	}
	if res := e.get("/console/audit?since=yesterday"); res.status != http.StatusBadRequest {
		t.Errorf("an unreadable time answered %d, want 400", res.status)
	}
}

func TestVerifyChainShowsATamperedRecord(t *testing.T) {
	e := newEnv(t)
	csrf := e.signIn()
	for i := range 5 {
		e.create(fmt.Sprintf("user%d", i), "", "standard")
	}
	res := e.post("/console/audit/verify", url.Values{"csrf": {csrf}})
	wantStatus(t, "verify", res, http.StatusOK)
	if !strings.Contains(res.body, "The chain is intact.") || !strings.Contains(res.body, "7 records checked") {
		t.Fatalf("verify of an untouched log does not say it is intact:\n%s", res.body)
	}
	head := regexp.MustCompile(`Head: record (\d+), hash <code class="wrap">([0-9a-f]{64})</code>`).FindStringSubmatch(res.body)
	if head == nil {
		t.Fatalf("verify does not show the head to note")
	}
	// Someone with the database file rewrites who record 3 was about.
	db, err := sql.Open("sqlite", e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE events SET subject = 'nobody' WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	res = e.post("/console/audit/verify", url.Values{"csrf": {csrf}})
	wantStatus(t, "verify after tampering", res, http.StatusOK)
	for _, want := range []string{"The chain is broken at record 3:</strong> its content does not match its hash (the record was altered)", `<tr role="row" class="broken">`, "before=4&amp;broken=3"} {
		if !strings.Contains(res.body, want) {
			t.Errorf("verify after tampering lacks %q", want)
		}
	}
	// A cut-off tail shows against the head noted earlier.
	if _, err := db.Exec(`UPDATE events SET subject = 'user0' WHERE seq = 3; DELETE FROM events WHERE seq = 7`); err != nil {
		t.Fatal(err)
	}
	res = e.post("/console/audit/verify", url.Values{"csrf": {csrf}, "head_seq": {head[1]}, "head_hash": {head[2]}})
	if !strings.Contains(res.body, "the tail was cut off") {
		t.Errorf("verify against the noted head does not see the cut tail:\n%s", res.body)
	}
	if res := e.post("/console/audit/verify", url.Values{"csrf": {csrf}, "head_seq": {"6"}, "head_hash": {"xyz"}}); res.status != http.StatusBadRequest {
		t.Errorf("a malformed head answered %d, want 400", res.status)
	}
}

func TestCharts(t *testing.T) { eachStore(t, testCharts) }

func testCharts(t *testing.T, on option) {
	e := newEnv(t, on)
	ctx := context.Background()
	// Over the last hours: sessions come, some idle out, some are revoked.
	for h := range 6 {
		for i := range 3 + h {
			tier := "standard"
			if i%3 == 0 {
				tier = "sensitive"
			}
			s := e.create(fmt.Sprintf("u%d-%d", h, i), "", tier)
			if i%4 == 1 {
				e.m.End(ctx, s.ID, lapse.ReasonLogout, lapse.ActorSubject)
			}
		}
		for range 5 {
			e.clock.Advance(12 * time.Minute)
			e.m.Sweep(ctx)
		}
	}
	tok, _, _ := e.m.Create(ctx, lapse.CreateParams{Subject: "v"})
	for range 50 {
		e.m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{})
	}
	e.signIn()
	res := e.get("/console/charts?window=6h")
	wantStatus(t, "charts", res, http.StatusOK)
	for _, want := range []string{
		`<svg class="chart"`, `role="img"`, `<title id="active-t">Active sessions by tier</title>`,
		"Expirations and revocations by reason", "expired: idle", "revoked: logout", "sessions ended in the last 6h",
		"Verify latency", "50 verifications since lapse started", "as a table", `<th scope="row">`,
	} {
		if !strings.Contains(res.body, want) {
			t.Errorf("charts page lacks %q", want)
		}
	}
	summary := regexp.MustCompile(`Now \d+ active \(([^)]*)\)`).FindStringSubmatch(res.body)
	if summary == nil || !regexp.MustCompile(`^(standard|sensitive) \d+, (standard|sensitive) \d+, lapse-console 1$`).MatchString(summary[1]) {
		t.Errorf("the active-sessions summary does not say how many are active now by tier")
	}
	if res := e.get("/console/charts?window=1y"); res.status != http.StatusBadRequest {
		t.Errorf("an unknown window answered %d, want 400", res.status)
	}
}

// listless hides every optional interface of a store, like a store that
// cannot list sessions across subjects.
type listless struct{ lapse.Store }

func TestListingWithoutALister(t *testing.T) {
	e := newEnv(t, func(_ *console.Config, o *envOptions) {
		o.store = func(s auditStore) lapse.Store { return listless{s} }
	})
	e.signIn()
	alice := e.create("alice", "acme", "standard")
	res := e.get("/console/sessions")
	if !strings.Contains(res.body, "cannot list sessions across subjects") || strings.Contains(res.body, alice.ID) {
		t.Errorf("without a lister, the sessions page does not ask for a subject")
	}
	res = e.get("/console/sessions?subject=alice")
	if !strings.Contains(res.body, alice.ID) {
		t.Errorf("with a subject, the sessions page does not list alice's session")
	}
	for path, want := range map[string]string{"/console/audit": "keeps no hash-chained audit log", "/console/charts": "keeps no audit log"} {
		if res := e.get(path); !strings.Contains(res.body, want) {
			t.Errorf("%s without an audit log lacks %q", path, want)
		}
	}
}

func TestDevInsecureCookiesOnlyOnLoopbackHTTP(t *testing.T) {
	e := newEnv(t, func(c *console.Config, o *envOptions) { c.DevInsecureCookies, o.plain = true, true })
	page := e.get("/console/signin")
	res := e.post("/console/signin", url.Values{"csrf": {csrfOf(t, page.body)}, "key": {adminKey}})
	ck := strings.Join(res.header.Values("Set-Cookie"), "\n")
	if !strings.Contains(ck, "\nlapse-console=") && !strings.HasPrefix(ck, "lapse-console=") || strings.Contains(ck, "Secure") {
		t.Errorf("on http://127.0.0.1 with DevInsecureCookies, cookies = %q, want lapse-console without Secure", ck)
	}
	wantStatus(t, "a page over loopback HTTP", e.get("/console/sessions"), http.StatusOK)
	req := mustRequest("GET", e.srv.URL+"/console/signin")
	req.Host = "console.example.com"
	res = e.do(e.newClient(), req)
	if ck := res.header.Get("Set-Cookie"); !strings.HasPrefix(ck, "__Host-") || !strings.Contains(ck, "Secure") {
		t.Errorf("for host console.example.com the cookie is %q, want a __Host- Secure one", ck)
	}
}

func TestHeadersAndStyleSheet(t *testing.T) {
	e := newEnv(t)
	res := e.get("/console/signin")
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'", "X-Frame-Options": "DENY",
		"Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8",
	} {
		if got := res.header.Get(k); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to contain %q", k, got, want)
		}
	}
	css := e.get("/console/static/console.css")
	if css.status != http.StatusOK || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") {
		t.Errorf("style sheet = %d %s", css.status, css.header.Get("Content-Type"))
	}
}

func TestNewRefusesAPolicyWithTheConsoleTier(t *testing.T) {
	p := lapsetest.Policy()
	p.Tiers[console.Tier] = lapse.Tier{IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "lapse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, _ := lapse.New(lapse.Config{Store: st, Policy: p})
	_, err = console.New(console.Config{Manager: m, Keys: func(context.Context, string) (console.Identity, bool) { return console.Identity{}, false }})
	if lapse.ErrorCode(err) != lapse.CodeInvalid {
		t.Errorf("New with a policy declaring %s = %v, want an invalid error", console.Tier, err)
	}
}

func TestSessionDetailShowsSignals(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	tok, s, err := e.m.Create(context.Background(), lapse.CreateParams{Subject: "alice", IP: "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	quiet := e.create("bob", "", "standard")
	ctx := lapse.WithClient(context.Background(), lapse.Client{IP: netip.MustParseAddr("198.51.100.4")})
	if _, err := e.m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	res := e.get("/console/sessions/" + s.ID)
	wantStatus(t, "detail", res, http.StatusOK)
	for _, want := range []string{`data-signal="session.client_changed"`, "from 198.51.100.4", "client drift allow"} {
		if !strings.Contains(res.body, want) {
			t.Errorf("detail page lacks %q", want)
		}
	}
	if res := e.get("/console/sessions/" + quiet.ID); !strings.Contains(res.body, "No signs of suspicious activity.") {
		t.Errorf("a session without signals does not say so")
	}
}

// TestConsoleSessionsAreCountedAsCreated checks that an operator's
// sign-in counts in lapse_sessions_created_total, as it counts in
// lapse_sessions_active.
func TestConsoleSessionsAreCountedAsCreated(t *testing.T) {
	e := newEnv(t)
	created := func() float64 {
		mfs, err := e.metrics.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		var n float64
		for _, mf := range mfs {
			if mf.GetName() == "lapse_sessions_created_total" {
				for _, m := range mf.GetMetric() {
					n += m.GetCounter().GetValue()
				}
			}
		}
		return n
	}
	before := created()
	e.signIn()
	if after := created(); after != before+1 {
		t.Errorf("lapse_sessions_created_total %v after a sign-in, was %v; want one more", after, before)
	}
}
