package oidc_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/oidc"
	"github.com/lapsehq/lapse/oidc/oidctest"
)

// env is lapse's relying party on an app's origin (a test server that
// also serves the app's pages), a real OP beside it, and a browser-like
// client.
type env struct {
	t     testing.TB
	m     *lapse.Manager
	store *lapsetest.Store
	op    *oidctest.Provider
	app   *httptest.Server
	rp    *oidc.RP
	// tamper, when set, rewrites the OP's token responses to lapse.
	mu     sync.Mutex
	tamper func([]byte) []byte
}

const otherApp = "https://other.app.example"

func newEnv(t testing.TB, change ...func(*oidc.Config)) *env {
	t.Helper()
	p := &lapse.Policy{DefaultTier: "standard", Tiers: map[string]lapse.Tier{
		"standard": {IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour, WarnBefore: time.Minute},
	}}
	// The real clock: the OP's tokens carry real times.
	m, _, st := lapsetest.NewManager(t, lapse.Config{Policy: p, Clock: lapse.SystemClock{}})
	e := &env{t: t, m: m, store: st}
	mux := http.NewServeMux()
	e.app = httptest.NewUnstartedServer(mux)
	base := "http://" + e.app.Listener.Addr().String()
	e.op = oidctest.Start(t, oidctest.Options{
		RedirectURIs:           []string{base + oidc.CallbackPath},
		PostLogoutRedirectURIs: []string{base + "/.lapse/signed-out?reason=logout"},
		BackChannelLogoutURI:   base + oidc.Prefix + "/backchannel-logout",
	})
	cfg := oidc.Config{
		Manager: m, Issuer: e.op.Issuer, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret,
		RedirectURL: base + oidc.CallbackPath, AppOrigins: []string{otherApp}, EndSession: true,
		Assurance:  oidc.Assurance{ACR: map[string]int{oidctest.MFA: 2}},
		HTTPClient: &http.Client{Transport: tamperer{e}, Timeout: 10 * time.Second},
		// The app's rules: /billing/ needs a sign-in of the last 5
		// minutes, /admin/ AAL2.
		Requirement: func(r *http.Request, rd string) (int, time.Duration) {
			switch {
			case strings.HasPrefix(rd, "/billing/"):
				return 0, 5 * time.Minute
			case strings.HasPrefix(rd, "/admin/"):
				return 2, 0
			}
			return 0, 0
		},
	}
	for _, c := range change {
		c(&cfg)
	}
	var err error
	e.rp, err = oidc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rp.Register(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app page "+r.URL.RequestURI()) })
	e.app.Start()
	t.Cleanup(e.app.Close)
	return e
}

// tamperer is the RP's transport to the OP.
type tamperer struct{ e *env }

func (tr tamperer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	tr.e.mu.Lock()
	f := tr.e.tamper
	tr.e.mu.Unlock()
	if err != nil || f == nil || !strings.HasSuffix(r.URL.Path, "/oauth/token") {
		return resp, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	b = f(b)
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// browser returns a client with its own cookies that follows redirects
// on loopback only: an answer sending it elsewhere is returned as it is.
func (e *env) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		if r.URL.Hostname() != "127.0.0.1" || len(via) > 20 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// signIn signs username in through the RP's sign-in with rd, and
// returns the last answer and its body.
func (e *env) signIn(c *http.Client, username, rd string) (*http.Response, string) {
	e.t.Helper()
	resp, err := e.op.SignIn(c, e.app.URL+oidc.Prefix+"/login?rd="+url.QueryEscape(rd), username)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// token returns the session cookie the browser holds, "" for none.
func (e *env) token(c *http.Client) string {
	u, _ := url.Parse(e.app.URL)
	for _, k := range c.Jar.Cookies(u) {
		if k.Name == "lapse" {
			return k.Value
		}
	}
	return ""
}

func (e *env) session(c *http.Client) lapse.Session {
	e.t.Helper()
	tok := e.token(c)
	if tok == "" {
		e.t.Fatal("the browser holds no session cookie")
	}
	s, err := e.m.Current(context.Background(), tok)
	if err != nil {
		e.t.Fatalf("the browser's session: %v", err)
	}
	return s
}

// sessions returns every session of subject, ended ones too.
func (e *env) sessions(subject string) []*lapse.Session {
	e.t.Helper()
	ss, err := e.store.Sessions(context.Background(), lapse.Filter{Subject: subject, AnyTenant: true, IncludeEnded: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return ss
}

func (e *env) status(id string) (lapse.Status, lapse.Reason) {
	e.t.Helper()
	s, err := e.m.Session(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return s.Status, s.EndReason
}

func TestSignIn(t *testing.T) {
	e := newEnv(t)
	c := e.browser()
	var setCookie []string
	c.Transport = recordCookies{&setCookie}
	resp, body := e.signIn(c, "alice", "/app/docs?x=1")
	if resp.StatusCode != 200 || body != "app page /app/docs?x=1" {
		t.Fatalf("after sign-in: %d %q, want the app's page at rd", resp.StatusCode, body)
	}
	s := e.session(c)
	sids := e.op.SIDs("u-alice")
	want := lapse.IdPSession{Issuer: e.op.Issuer, Subject: "u-alice", SID: sids[len(sids)-1]}
	if s.Subject != "u-alice" || s.IdP != want || s.AAL != 1 || !slices.Equal(s.AMR, []string{"pwd"}) || s.Tier != "standard" {
		t.Errorf("session: subject %q idp %+v aal %d amr %v tier %s; want u-alice, %+v, AAL1 [pwd], standard", s.Subject, s.IdP, s.AAL, s.AMR, s.Tier, want)
	}
	var cookie string
	for _, h := range setCookie {
		if strings.HasPrefix(h, "lapse=lps_") {
			cookie = h
		}
	}
	for _, attr := range []string{"Path=/", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("session cookie %q lacks %s", cookie, attr)
		}
	}
}

// recordCookies keeps the Set-Cookie headers lapse answers.
type recordCookies struct{ into *[]string }

func (rc recordCookies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		*rc.into = append(*rc.into, resp.Header.Values("Set-Cookie")...)
	}
	return resp, err
}

func TestSignInTakesTheSubjectFromTheConfiguredClaim(t *testing.T) {
	e := newEnv(t, func(c *oidc.Config) { c.SubjectClaim = "email" })
	c := e.browser()
	e.signIn(c, "alice", "/")
	if s := e.session(c); s.Subject != "alice@example.com" || s.IdP.Subject != "u-alice" {
		t.Errorf("subject %q, idp sub %q; want alice@example.com and u-alice", s.Subject, s.IdP.Subject)
	}
}

func TestAALFromAMR(t *testing.T) {
	e := newEnv(t)
	c := e.browser()
	e.signIn(c, "bob", "/")
	if s := e.session(c); s.AAL != 2 || !slices.Equal(s.AMR, []string{"pwd", "otp"}) {
		t.Errorf("bob (password and OTP): AAL %d AMR %v, want AAL2 [pwd otp]", s.AAL, s.AMR)
	}
	for _, c := range []struct {
		acr  string
		amr  []string
		want int
	}{
		{"", []string{"pwd"}, 1},
		{"", []string{"pwd", "otp"}, 2},
		{"", []string{"otp", "sms"}, 1}, // two things one has: one kind
		{"", []string{"mfa"}, 2},
		{"", []string{"hwk", "pin"}, 2},
		{oidctest.MFA, nil, 2},
		{"unknown", []string{"pwd"}, 1},
	} {
		a := oidc.Assurance{ACR: map[string]int{oidctest.MFA: 2}}
		if got := a.Level(c.acr, c.amr); got != c.want {
			t.Errorf("Level(%q, %v) = %d, want %d", c.acr, c.amr, got, c.want)
		}
	}
}

func TestTamperedIDTokenRefused(t *testing.T) {
	e := newEnv(t)
	e.tamper = func(b []byte) []byte {
		var tok map[string]any
		json.Unmarshal(b, &tok)
		parts := strings.Split(tok["id_token"].(string), ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		payload = bytes.Replace(payload, []byte(`"u-alice"`), []byte(`"u-bob"`), -1)
		parts[1] = base64.RawURLEncoding.EncodeToString(payload)
		tok["id_token"] = strings.Join(parts, ".")
		out, _ := json.Marshal(tok)
		return out
	}
	c := e.browser()
	resp, body := e.signIn(c, "alice", "/")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "could not be verified") || e.token(c) != "" {
		t.Errorf("a tampered ID token: %d %q, cookie %q; want 401, no session", resp.StatusCode, body, e.token(c))
	}
	if n := len(e.sessions("u-bob")) + len(e.sessions("u-alice")); n != 0 {
		t.Errorf("%d sessions created, want none", n)
	}
}

func TestWrongNonceRefused(t *testing.T) {
	e := newEnv(t)
	e.op.WrongNonce(true)
	c := e.browser()
	resp, body := e.signIn(c, "alice", "/")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not for this sign-in") || len(e.sessions("u-alice")) != 0 {
		t.Errorf("an ID token with another nonce: %d %q, %d sessions; want 401 and none", resp.StatusCode, body, len(e.sessions("u-alice")))
	}
}

func TestWrongStateRefused(t *testing.T) {
	e := newEnv(t)
	c := e.browser()
	// The browser starts a sign-in and goes to the OP; the answer that
	// comes back names another state, or none, or comes to a browser
	// that never started it.
	noFollow := *c
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noFollow.Get(e.app.URL + oidc.Prefix + "/login?rd=/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	if resp.StatusCode != 302 || !strings.HasPrefix(loc.String(), e.op.Issuer) || q.Get("state") == "" || q.Get("nonce") == "" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		t.Fatalf("sign-in start: %d to %s; want the OP with state, nonce and an S256 code challenge", resp.StatusCode, loc)
	}
	state := q.Get("state")
	flip := "x"
	if strings.HasSuffix(state, "x") {
		flip = "y"
	}
	other := e.browser()
	for name, tc := range map[string]struct {
		c     *http.Client
		query string
	}{
		"another_state":     {c, "state=" + url.QueryEscape(state[:len(state)-1]+flip) + "&code=abc"},
		"no_state":          {c, "code=abc"},
		"another_browser":   {other, "state=" + url.QueryEscape(state) + "&code=abc"},
		"state_of_a_prefix": {c, "state=" + url.QueryEscape(state[:16]) + "&code=abc"},
	} {
		resp, err := tc.c.Get(e.app.URL + oidc.CallbackPath + "?" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), "not valid in this browser") {
			t.Errorf("%s: %d %s, want 400", name, resp.StatusCode, b)
		}
	}
	if len(e.sessions("u-alice")) != 0 || e.token(c) != "" {
		t.Error("a refused callback created a session")
	}
}

func TestOpenRedirectRefused(t *testing.T) {
	e := newEnv(t)
	for rd, want := range map[string]string{
		"https://evil.example/x":                  "/",
		"//evil.example/x":                        "/",
		`/\evil.example`:                          "/",
		"javascript:alert(1)":                     "/",
		otherApp + "/docs?y=2":                    otherApp + "/docs?y=2",
		"/docs/1?z=3":                             "/docs/1?z=3",
		"https://other.app.example.evil.example/": "/",
	} {
		c := e.browser()
		resp, body := e.signIn(c, "alice", rd)
		got := resp.Request.URL.RequestURI()
		if resp.StatusCode == 302 {
			got = resp.Header.Get("Location")
		}
		if got != want && !(resp.StatusCode == 200 && body == "app page "+want) {
			t.Errorf("rd %q: ended at %d %q, want %q", rd, resp.StatusCode, got, want)
		}
		if e.token(c) == "" {
			t.Errorf("rd %q: not signed in", rd)
		}
	}
}

func TestStepUpWithMaxAge(t *testing.T) {
	e := newEnv(t)
	c := e.browser()
	e.signIn(c, "alice", "/")
	before := e.session(c)
	oldTok := e.token(c)
	resp2, err := e.op.SignIn(c, e.app.URL+oidc.Prefix+"/stepup?rd="+url.QueryEscape("/billing/invoices"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if string(b) != "app page /billing/invoices" {
		t.Fatalf("after the step-up: %d %q, want billing", resp2.StatusCode, b)
	}
	if got := e.op.Asked().Get("max_age"); got != "300" {
		t.Errorf("the step-up asked max_age %q, want 300 (the route's 5 minutes)", got)
	}
	after := e.session(c)
	if after.ID != before.ID || e.token(c) == oldTok {
		t.Fatalf("the step-up: session %s -> %s, token rotated %v; want the same session with a new token", before.ID, after.ID, e.token(c) != oldTok)
	}
	evs, err := e.store.QueryEvents(context.Background(), lapse.EventQuery{SessionID: after.ID, Types: []lapse.EventType{lapse.EventSteppedUp}})
	if err != nil || len(evs) != 1 || evs[0].Actor != lapse.ActorIdP {
		t.Errorf("stepped-up events %+v (%v), want one by actor idp", evs, err)
	}
	if _, err := e.m.Verify(context.Background(), e.token(c), lapse.VerifyOptions{MaxAuthAge: 5 * time.Minute}); err != nil {
		t.Errorf("after the step-up, a 5-minute age limit: %v", err)
	}

	// An OP that answers with an old authentication is refused.
	e.op.StaleAuth(time.Hour)
	tok := e.token(c)
	resp3, err := e.op.SignIn(c, e.app.URL+oidc.Prefix+"/stepup?rd="+url.QueryEscape("/billing/invoices"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp3.Body)
	resp3.Body.Close()
	if resp3.StatusCode != 403 || !strings.Contains(string(b), "recent sign-in") || e.token(c) != tok {
		t.Errorf("a stale auth_time: %d %q, token changed %v; want 403 and the session as it was", resp3.StatusCode, b, e.token(c) != tok)
	}
}

func TestStepUpToAAL2AsksForTheACR(t *testing.T) {
	e := newEnv(t)
	c := e.browser()
	e.signIn(c, "carol", "/")
	if s := e.session(c); s.AAL != 1 {
		t.Fatalf("carol signed in at AAL %d, want 1", s.AAL)
	}
	resp, err := e.op.SignIn(c, e.app.URL+oidc.Prefix+"/stepup?rd="+url.QueryEscape("/admin/users"), "carol")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := e.op.Asked().Get("acr_values"); got != oidctest.MFA {
		t.Errorf("acr_values %q, want %q", got, oidctest.MFA)
	}
	if s := e.session(c); s.AAL != 2 || !slices.Equal(s.AMR, []string{"pwd", "otp"}) {
		t.Errorf("after the step-up: AAL %d AMR %v, want 2 [pwd otp]", s.AAL, s.AMR)
	}
	// alice has no second factor: her step-up is refused.
	c2 := e.browser()
	e.signIn(c2, "alice", "/")
	resp, err = e.op.SignIn(c2, e.app.URL+oidc.Prefix+"/stepup?rd="+url.QueryEscape("/admin/users"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || e.session(c2).AAL != 1 {
		t.Errorf("a step-up the OP answered at AAL1: %d %s, want 403", resp.StatusCode, b)
	}
}

func TestRPInitiatedLogout(t *testing.T) {
	e := newEnv(t)
	c := e.browser()
	e.signIn(c, "alice", "/")
	s := e.session(c)
	post := func(site string) *http.Response {
		req, _ := http.NewRequest("POST", e.app.URL+oidc.Prefix+"/logout", nil)
		req.Header.Set("Sec-Fetch-Site", site)
		noFollow := *c
		noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post("cross-site"); resp.StatusCode != 403 {
		t.Errorf("a logout from another site: %d, want 403", resp.StatusCode)
	}
	if st, _ := e.status(s.ID); st != lapse.StatusActive {
		t.Fatalf("a refused logout ended the session: %s", st)
	}
	resp := post("same-origin")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	if resp.StatusCode != 303 || !strings.HasPrefix(loc.String(), e.op.Issuer) || q.Get("id_token_hint") == "" ||
		q.Get("post_logout_redirect_uri") != e.app.URL+"/.lapse/signed-out?reason=logout" || q.Get("client_id") != oidctest.ClientID {
		t.Fatalf("logout: %d to %s; want the OP's end_session_endpoint with id_token_hint and post_logout_redirect_uri", resp.StatusCode, loc)
	}
	if st, reason := e.status(s.ID); st != lapse.StatusRevoked || reason != lapse.ReasonLogout {
		t.Errorf("after logout the session is %s (%s), want revoked (logout)", st, reason)
	}
	// The browser follows to the OP, which ends its session and sends it
	// back to lapse's signed-out page.
	r2, err := c.Get(loc.String())
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.Request.URL.Path != "/.lapse/signed-out" || !slices.Equal(e.op.Terminated(), []string{"u-alice"}) {
		t.Errorf("at the OP: ended at %s, terminated %v; want the signed-out page and u-alice's session ended", r2.Request.URL, e.op.Terminated())
	}
}

// bcl POSTs a logout token to lapse's back-channel logout endpoint.
func (e *env) bcl(tok string) (int, string) {
	e.t.Helper()
	status, body, err := e.op.PostLogout(tok)
	if err != nil {
		e.t.Fatal(err)
	}
	return status, body
}

func TestBackChannelLogout(t *testing.T) {
	e := newEnv(t)
	c1, c2 := e.browser(), e.browser()
	e.signIn(c1, "alice", "/")
	e.signIn(c2, "alice", "/")
	s1, s2 := e.session(c1), e.session(c2)

	// By sid: that session only.
	tok, err := e.op.LogoutToken(oidctest.LogoutClaims{Subject: "u-alice", SID: s1.IdP.SID})
	if err != nil {
		t.Fatal(err)
	}
	if status, body := e.bcl(tok); status != 200 {
		t.Fatalf("back-channel logout: %d %s, want 200", status, body)
	}
	if st, reason := e.status(s1.ID); st != lapse.StatusRevoked || reason != lapse.ReasonIdPLogout {
		t.Errorf("the session of the sid: %s (%s), want revoked (idp_logout)", st, reason)
	}
	if st, _ := e.status(s2.ID); st != lapse.StatusActive {
		t.Errorf("the other session: %s, want active", st)
	}
	evs, err := e.store.QueryEvents(context.Background(), lapse.EventQuery{SessionID: s1.ID, Types: []lapse.EventType{lapse.EventRevoked}})
	if err != nil || len(evs) != 1 || evs[0].Reason != lapse.ReasonIdPLogout || evs[0].Actor != lapse.ActorIdP {
		t.Errorf("revoke events %+v (%v), want one with reason idp_logout by actor idp", evs, err)
	}

	// By sub alone: every session of the account.
	all, _ := e.op.LogoutToken(oidctest.LogoutClaims{Subject: "u-alice"})
	if status, body := e.bcl(all); status != 200 {
		t.Fatalf("back-channel logout by sub: %d %s", status, body)
	}
	if st, _ := e.status(s2.ID); st != lapse.StatusRevoked {
		t.Errorf("by sub: the second session is %s, want revoked", st)
	}

	// A new sign-in; then a replay of that token, and tokens that are
	// not valid, each refused with nothing revoked.
	c3 := e.browser()
	e.signIn(c3, "alice", "/")
	s3 := e.session(c3)
	badKey, _ := oidctest.SignLogoutToken(oidctest.OtherKey(), "", e.op.Issuer, oidctest.LogoutClaims{Subject: "u-alice"})
	withNonce, _ := e.op.LogoutToken(oidctest.LogoutClaims{Subject: "u-alice", Nonce: "n"})
	noEvent, _ := e.op.LogoutToken(oidctest.LogoutClaims{Subject: "u-alice", NoEvent: true})
	old, _ := e.op.LogoutToken(oidctest.LogoutClaims{Subject: "u-alice", IssuedAt: time.Now().Add(-time.Hour), Expiry: time.Now().Add(time.Minute)})
	otherIssuer, _ := e.op.LogoutToken(oidctest.LogoutClaims{Subject: "u-alice"})
	parts := strings.Split(otherIssuer, ".")
	for name, tok := range map[string]string{
		"replayed": all, "signed_by_another_key": badKey, "with_a_nonce": withNonce, "without_the_event": noEvent,
		"issued_an_hour_ago": old, "with_a_forged_payload": parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+e.op.Issuer+`","aud":"lapse","sub":"u-alice","jti":"x","iat":1,"exp":99999999999,"events":{"http://schemas.openid.net/event/backchannel-logout":{}}}`)) + "." + parts[2],
		"empty": "",
	} {
		status, body := e.bcl(tok)
		if status != 400 || !strings.Contains(body, `"error":"invalid_request"`) {
			t.Errorf("%s: %d %s, want 400 invalid_request", name, status, body)
		}
	}
	if st, _ := e.status(s3.ID); st != lapse.StatusActive {
		t.Errorf("after refused logout tokens, the new session is %s, want active", st)
	}
}
