package dbsc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/dbsc"
	"github.com/lapsehq/lapse/dbsc/dbsctest"
	"github.com/lapsehq/lapse/lapsetest"
)

const lifetime = 5 * time.Minute

// policy has a tier for each way of binding.
func policy(t *testing.T) *lapse.Policy {
	base := lapse.Tier{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour, BoundCookieLifetime: lifetime}
	tier := func(mode lapse.DeviceBindingMode, theft lapse.TheftAction) lapse.Tier {
		t := base
		t.DeviceBinding, t.OnTheft, t.BindGrace = mode, theft, time.Minute
		return t
	}
	p := &lapse.Policy{DefaultTier: "bound", Tiers: map[string]lapse.Tier{
		"bound":    tier(lapse.DeviceBindingPreferred, lapse.TheftRevoke),
		"record":   tier(lapse.DeviceBindingPreferred, lapse.TheftRecord),
		"required": tier(lapse.DeviceBindingRequired, ""),
		"off":      base,
	}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

type fixture struct {
	t     *testing.T
	m     *lapse.Manager
	clock *lapsetest.Clock
	st    *lapsetest.Store
	b     *dbsc.Binder
	h     http.Handler
}

func newFixture(t *testing.T) *fixture {
	m, clock, st := lapsetest.NewManager(t, lapse.Config{Policy: policy(t)})
	b, err := dbsc.New(dbsc.Config{Manager: m, Token: func(r *http.Request) string {
		if c, err := r.Cookie("lapse"); err == nil {
			return c.Value
		}
		return ""
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, m: m, clock: clock, st: st, b: b, h: b.Handler()}
}

// signIn creates a session in tier and returns its token, the session and
// the challenge of the registration offer.
func (f *fixture) signIn(tier string) (lapse.Token, *lapse.Session, string) {
	f.t.Helper()
	tok, s, err := f.m.Create(context.Background(), lapse.CreateParams{Subject: "alice", Tier: tier, AAL: 1, AMR: []string{"pwd"}})
	if err != nil {
		f.t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if err := f.b.Offer(w, httptest.NewRequest("POST", "/signin", nil), s); err != nil {
		f.t.Fatal(err)
	}
	v := w.Header().Get(dbsc.HeaderRegistration)
	algs, params := dbsctest.Params(v)
	if algs != "(ES256 RS256)" || params["path"] != "/.lapse/dbsc/register" || params["challenge"] == "" {
		f.t.Fatalf("%s: %q, want both algorithms, the register path and a challenge", dbsc.HeaderRegistration, v)
	}
	return tok, s, params["challenge"]
}

// post sends a request to the binder's handler with the session cookie
// (when tok is not empty) and headers.
func (f *fixture) post(path string, tok lapse.Token, headers map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "https://app.example"+path, nil)
	if tok != "" {
		r.AddCookie(&http.Cookie{Name: "lapse", Value: tok.Reveal()})
	}
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// register binds the session with key and returns the bound cookie.
func (f *fixture) register(tok lapse.Token, key *dbsctest.Key, challenge string) string {
	f.t.Helper()
	w := f.post("/.lapse/dbsc/register", tok, map[string]string{dbsc.HeaderResponse: key.Registration(challenge, "https://app.example/.lapse/dbsc/register")})
	if w.Code != 200 {
		f.t.Fatalf("register: %d %s", w.Code, w.Body)
	}
	return f.boundCookie(w)
}

func (f *fixture) boundCookie(w *httptest.ResponseRecorder) string {
	f.t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == dbsc.DefaultCookieName && c.Value != "" {
			if !c.Secure || !c.HttpOnly || c.Path != "/" || c.MaxAge != int(lifetime/time.Second) {
				f.t.Errorf("bound cookie %+v: want Secure, HttpOnly, Path=/ and Max-Age of the tier's lifetime", c)
			}
			return c.Value
		}
	}
	f.t.Fatalf("no bound cookie in %v", w.Header())
	return ""
}

func instructions(t *testing.T, w *httptest.ResponseRecorder) dbsc.Instructions {
	t.Helper()
	var in dbsc.Instructions
	if err := json.Unmarshal(w.Body.Bytes(), &in); err != nil {
		t.Fatalf("instructions %q: %v", w.Body, err)
	}
	return in
}

// refresh runs the two steps of a refresh with key and returns the last
// answer.
func (f *fixture) refresh(id string, tok lapse.Token, key *dbsctest.Key) *httptest.ResponseRecorder {
	f.t.Helper()
	w := f.post("/.lapse/dbsc/refresh", tok, map[string]string{dbsc.HeaderSessionID: `"` + id + `"`})
	if w.Code != http.StatusForbidden {
		return w
	}
	_, params := dbsctest.Params(w.Header().Get(dbsc.HeaderChallenge))
	if params["id"] != id {
		f.t.Fatalf("%s %q names session %q, want %q", dbsc.HeaderChallenge, w.Header().Get(dbsc.HeaderChallenge), params["id"], id)
	}
	c, _ := dbsctest.Params(w.Header().Get(dbsc.HeaderChallenge))
	return f.post("/.lapse/dbsc/refresh", tok, map[string]string{dbsc.HeaderSessionID: `"` + id + `"`, dbsc.HeaderResponse: key.Refresh(strings.Trim(c, `"`))})
}

// check runs the binder's per-request check of s with a bound cookie.
func (f *fixture) check(s *lapse.Session, cookie string, skipped bool) error {
	r := httptest.NewRequest("GET", "/", nil)
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: dbsc.DefaultCookieName, Value: cookie})
	}
	if skipped {
		r.Header.Set(dbsc.HeaderSkipped, `unreachable;session_identifier="`+s.ID+`"`)
	}
	return f.b.Check(r, s)
}

func (f *fixture) events(id string) []lapse.EventType {
	evs, err := f.st.QueryEvents(context.Background(), lapse.EventQuery{SessionID: id})
	if err != nil {
		f.t.Fatal(err)
	}
	var types []lapse.EventType
	for _, e := range evs {
		types = append(types, e.Type)
	}
	return types
}

func TestRegistrationAndRefresh(t *testing.T) {
	for name, newKey := range map[string]func() *dbsctest.Key{"ES256": dbsctest.NewES256, "RS256": dbsctest.NewRS256} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			tok, s, c := f.signIn("bound")
			key := newKey()
			w := f.post("/.lapse/dbsc/register", tok, map[string]string{dbsc.HeaderResponse: key.Registration(c, "")})
			if w.Code != 200 {
				t.Fatalf("register: %d %s", w.Code, w.Body)
			}
			cookie := f.boundCookie(w)
			in := instructions(t, w)
			if in.SessionIdentifier != s.ID || in.RefreshURL != "/.lapse/dbsc/refresh" || in.Continue == nil || !*in.Continue ||
				len(in.Credentials) != 1 || in.Credentials[0].Name != dbsc.DefaultCookieName || in.Scope == nil {
				t.Errorf("instructions %s: want the session id, the refresh URL, the bound cookie and continue", w.Body)
			}
			if d, _ := f.st.DeviceBinding(context.Background(), s.ID); d == nil || d.Key.Thumbprint != key.Thumbprint() {
				t.Errorf("binding %+v, want the key's thumbprint %s", d, key.Thumbprint())
			}
			if ev := f.events(s.ID); len(ev) != 2 || ev[1] != lapse.EventDeviceBound {
				t.Errorf("events %v, want created then %s", ev, lapse.EventDeviceBound)
			}
			if err := f.check(s, cookie, false); err != nil {
				t.Errorf("a request with the bound cookie: %v", err)
			}
			f.clock.Advance(lifetime - time.Second)
			w = f.refresh(s.ID, tok, key)
			if w.Code != 200 {
				t.Fatalf("refresh: %d %s", w.Code, w.Body)
			}
			fresh := f.boundCookie(w)
			if fresh == cookie || f.check(s, fresh, false) != nil {
				t.Errorf("the refresh's cookie is not a new working one")
			}
			// Requests sent during the refresh carry the replaced cookie: it
			// works until its own expiry, and not after.
			if err := f.check(s, cookie, false); err != nil {
				t.Errorf("the replaced bound cookie within its lifetime: %v", err)
			}
			f.clock.Advance(time.Second + lapse.BoundCookieSlack)
			if err := f.check(s, cookie, true); lapse.ErrorCode(err) != lapse.CodeDeviceProofRequired {
				t.Errorf("the replaced bound cookie past its lifetime: %v, want %s", err, lapse.CodeDeviceProofRequired)
			}
			if err := f.check(s, fresh, false); err != nil {
				t.Errorf("the refresh's cookie: %v", err)
			}
		})
	}
}

func TestRefreshIsNotActivity(t *testing.T) {
	f := newFixture(t)
	tok, s, c := f.signIn("bound")
	key := dbsctest.NewES256()
	f.register(tok, key, c)
	f.clock.Advance(4 * time.Minute)
	if w := f.refresh(s.ID, "", key); w.Code != 200 {
		t.Fatalf("refresh: %d %s", w.Code, w.Body)
	}
	got, err := f.m.Session(context.Background(), s.ID)
	if err != nil || !got.LastActiveAt.Equal(s.LastActiveAt) || !got.IdleExpiresAt.Equal(s.IdleExpiresAt) {
		t.Errorf("after a refresh: last active %v, idle deadline %v (%v); want them unchanged at %v, %v",
			got.LastActiveAt, got.IdleExpiresAt, err, s.LastActiveAt, s.IdleExpiresAt)
	}
}

func TestReplayedChallengeIsRefused(t *testing.T) {
	f := newFixture(t)
	tok, s, c := f.signIn("bound")
	key := dbsctest.NewES256()
	f.register(tok, key, c)
	w := f.post("/.lapse/dbsc/register", tok, map[string]string{dbsc.HeaderResponse: key.Registration(c, "")})
	if w.Code == 200 {
		t.Errorf("a second registration over the same challenge was taken")
	}
	w = f.post("/.lapse/dbsc/refresh", "", map[string]string{dbsc.HeaderSessionID: `"` + s.ID + `"`})
	ch, _ := dbsctest.Params(w.Header().Get(dbsc.HeaderChallenge))
	proof := key.Refresh(strings.Trim(ch, `"`))
	hdr := map[string]string{dbsc.HeaderSessionID: `"` + s.ID + `"`, dbsc.HeaderResponse: proof}
	if w := f.post("/.lapse/dbsc/refresh", "", hdr); w.Code != 200 {
		t.Fatalf("first answer to the challenge: %d %s", w.Code, w.Body)
	}
	w = f.post("/.lapse/dbsc/refresh", "", hdr)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), string(lapse.CodeChallengeInvalid)) || w.Header().Get(dbsc.HeaderChallenge) == "" {
		t.Errorf("the replayed proof: %d %s; want 403 %s with a new challenge", w.Code, w.Body, lapse.CodeChallengeInvalid)
	}
	made := key.Refresh("a-challenge-lapse-never-issued")
	if w := f.post("/.lapse/dbsc/refresh", "", map[string]string{dbsc.HeaderSessionID: `"` + s.ID + `"`, dbsc.HeaderResponse: made}); w.Code == 200 {
		t.Errorf("a proof over a made-up challenge was taken")
	}
}

func TestChallengeOfAnotherSessionIsRefused(t *testing.T) {
	f := newFixture(t)
	_, _, c := f.signIn("bound")
	tok2, _, _ := f.signIn("bound")
	w := f.post("/.lapse/dbsc/register", tok2, map[string]string{dbsc.HeaderResponse: dbsctest.NewES256().Registration(c, "")})
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), string(lapse.CodeChallengeInvalid)) {
		t.Errorf("registration over another session's challenge: %d %s; want 403 %s", w.Code, w.Body, lapse.CodeChallengeInvalid)
	}
}

func TestProofByAnotherKey(t *testing.T) {
	t.Run("is_refused_and_leaves_the_session_without_its_cookies", func(t *testing.T) {
		f := newFixture(t)
		tok, s, c := f.signIn("bound")
		f.register(tok, dbsctest.NewES256(), c)
		w := f.refresh(s.ID, "", dbsctest.NewES256())
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), string(lapse.CodeDeviceProofInvalid)) {
			t.Errorf("refresh by another key: %d %s; want 403 %s", w.Code, w.Body, lapse.CodeDeviceProofInvalid)
		}
		if got, _ := f.m.Session(context.Background(), s.ID); got.Status != lapse.StatusActive {
			t.Errorf("a bad proof with no cookie (anyone can send one) ended the session: %s", got.Status)
		}
	})
	t.Run("with_the_sessions_cookie_is_theft", func(t *testing.T) {
		f := newFixture(t)
		tok, s, c := f.signIn("bound")
		f.register(tok, dbsctest.NewES256(), c)
		w := f.refresh(s.ID, tok, dbsctest.NewES256())
		if in := instructions(t, w); w.Code != 200 || in.Continue == nil || *in.Continue {
			t.Errorf("refresh by another key with the stolen cookie: %d %s; want continue false", w.Code, w.Body)
		}
		got, _ := f.m.Session(context.Background(), s.ID)
		if got.Status != lapse.StatusRevoked || got.EndReason != lapse.ReasonTheft {
			t.Errorf("session %s (%s), want revoked for theft", got.Status, got.EndReason)
		}
		if ev := f.events(s.ID); !contains(ev, lapse.EventTheftSuspected) {
			t.Errorf("events %v, want %s", ev, lapse.EventTheftSuspected)
		}
	})
}

func TestAlgorithmsOtherThanES256AndRS256AreRefused(t *testing.T) {
	f := newFixture(t)
	tok, s, c := f.signIn("bound")
	key := dbsctest.NewES256()
	for alg, jwt := range map[string]string{
		"none":                 unsigned("none", c, key),
		"HS256":                key.Sign(map[string]any{"alg": "HS256", "typ": "dbsc+jwt"}, map[string]any{"jti": c, "key": key.JWK()}),
		"RS256 with an EC key": key.Sign(map[string]any{"alg": "RS256", "typ": "dbsc+jwt"}, map[string]any{"jti": c, "key": key.JWK()}),
		"typ JWT":              key.Sign(map[string]any{"alg": "ES256", "typ": "JWT"}, map[string]any{"jti": c, "key": key.JWK()}),
	} {
		w := f.post("/.lapse/dbsc/register", tok, map[string]string{dbsc.HeaderResponse: jwt})
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), string(lapse.CodeDeviceProofInvalid)) {
			t.Errorf("%s: %d %s; want 403 %s", alg, w.Code, w.Body, lapse.CodeDeviceProofInvalid)
		}
	}
	if d, _ := f.st.DeviceBinding(context.Background(), s.ID); d != nil {
		t.Errorf("a refused proof bound the session: %+v", d)
	}
	// The challenge was not spent by the refused proofs.
	f.register(tok, key, c)
}

// unsigned returns a registration "proof" with alg and an empty signature.
func unsigned(alg, challenge string, key *dbsctest.Key) string {
	jwt := key.Sign(map[string]any{"alg": alg, "typ": "dbsc+jwt"}, map[string]any{"jti": challenge, "key": key.JWK()})
	return jwt[:strings.LastIndexByte(jwt, '.')+1]
}

func TestRefreshAfterTheSessionEndedSaysStop(t *testing.T) {
	for name, end := range map[string]func(f *fixture, tok lapse.Token, s *lapse.Session){
		"revoke": func(f *fixture, _ lapse.Token, s *lapse.Session) {
			f.m.End(context.Background(), s.ID, lapse.ReasonAdmin, lapse.ActorAPI)
		},
		"logout": func(f *fixture, tok lapse.Token, _ *lapse.Session) { f.m.Revoke(context.Background(), tok.Reveal()) },
		"expiry": func(f *fixture, _ lapse.Token, _ *lapse.Session) { f.clock.Advance(31 * time.Minute) },
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			tok, s, c := f.signIn("bound")
			key := dbsctest.NewES256()
			f.register(tok, key, c)
			end(f, tok, s)
			w := f.post("/.lapse/dbsc/refresh", "", map[string]string{dbsc.HeaderSessionID: `"` + s.ID + `"`})
			in := instructions(t, w)
			if w.Code != 200 || in.SessionIdentifier != s.ID || in.Continue == nil || *in.Continue {
				t.Errorf("refresh after %s: %d %s; want 200 with continue false", name, w.Code, w.Body)
			}
		})
	}
}

func TestBoundCookieIsRefusedPastItsLifetime(t *testing.T) {
	f := newFixture(t)
	tok, s, c := f.signIn("record")
	cookie := f.register(tok, dbsctest.NewES256(), c)
	f.clock.Advance(lifetime - time.Second)
	if err := f.check(s, cookie, false); err != nil {
		t.Fatalf("within its lifetime: %v", err)
	}
	f.clock.Advance(time.Second + lapse.BoundCookieSlack)
	if err := f.check(s, cookie, false); lapse.ErrorCode(err) != lapse.CodeDeviceProofRequired {
		t.Errorf("past its lifetime: %v, want %s", err, lapse.CodeDeviceProofRequired)
	}
}

func TestTheftSignals(t *testing.T) {
	t.Run("missing_bound_cookie_revokes_in_a_revoke_tier", func(t *testing.T) {
		f := newFixture(t)
		tok, s, c := f.signIn("bound")
		f.register(tok, dbsctest.NewES256(), c)
		// Just after the binding, a request the browser sent before it had
		// the bound cookie is let through, not taken for theft.
		if err := f.check(s, "", false); err != nil {
			t.Errorf("without the bound cookie just after the binding: %v, want it let through", err)
		}
		f.clock.Advance(lapse.BoundCookieSlack)
		if err := f.check(s, "", false); lapse.ErrorCode(err) != lapse.CodeSessionRevoked {
			t.Errorf("the session's token without the bound cookie: %v, want %s", err, lapse.CodeSessionRevoked)
		}
		if got, _ := f.m.Session(context.Background(), s.ID); got.EndReason != lapse.ReasonTheft {
			t.Errorf("end reason %q, want %q", got.EndReason, lapse.ReasonTheft)
		}
		if ev := f.events(s.ID); !contains(ev, lapse.EventTheftSuspected) {
			t.Errorf("events %v, want %s", ev, lapse.EventTheftSuspected)
		}
	})
	t.Run("missing_bound_cookie_is_recorded_in_a_record_tier", func(t *testing.T) {
		f := newFixture(t)
		tok, s, c := f.signIn("record")
		f.register(tok, dbsctest.NewES256(), c)
		if err := f.check(s, "forged", false); lapse.ErrorCode(err) != lapse.CodeDeviceProofRequired {
			t.Errorf("a wrong bound cookie: %v, want %s", err, lapse.CodeDeviceProofRequired)
		}
		if got, _ := f.m.Session(context.Background(), s.ID); got.Status != lapse.StatusActive {
			t.Errorf("status %s, want active: the tier only records", got.Status)
		}
		if ev := f.events(s.ID); !contains(ev, lapse.EventTheftSuspected) {
			t.Errorf("events %v, want %s", ev, lapse.EventTheftSuspected)
		}
	})
	t.Run("a_skipped_refresh_is_refused_but_not_theft", func(t *testing.T) {
		f := newFixture(t)
		tok, s, c := f.signIn("bound")
		f.register(tok, dbsctest.NewES256(), c)
		if err := f.check(s, "", true); lapse.ErrorCode(err) != lapse.CodeDeviceProofRequired {
			t.Errorf("with %s: %v, want %s", dbsc.HeaderSkipped, err, lapse.CodeDeviceProofRequired)
		}
		if ev := f.events(s.ID); contains(ev, lapse.EventTheftSuspected) {
			t.Errorf("events %v: a skipped refresh is not theft", ev)
		}
	})
}

func TestRequiredTier(t *testing.T) {
	f := newFixture(t)
	_, s, _ := f.signIn("required")
	if err := f.check(s, "", false); err != nil {
		t.Errorf("within the grace, unbound: %v", err)
	}
	f.clock.Advance(time.Minute)
	if err := f.check(s, "", false); lapse.ErrorCode(err) != lapse.CodeDeviceUnbound {
		t.Errorf("past the grace, unbound: %v, want %s", err, lapse.CodeDeviceUnbound)
	}
	tok, s2, c := f.signIn("required")
	cookie := f.register(tok, dbsctest.NewES256(), c)
	f.clock.Advance(2 * time.Minute)
	if err := f.check(s2, cookie, false); err != nil {
		t.Errorf("bound, past the grace: %v", err)
	}
}

func TestTierWithBindingOffOffersNothingAndChecksNothing(t *testing.T) {
	f := newFixture(t)
	_, s, err := f.m.Create(context.Background(), lapse.CreateParams{Subject: "alice", Tier: "off", AAL: 1})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	f.b.Offer(w, httptest.NewRequest("POST", "/signin", nil), s)
	if v := w.Header().Get(dbsc.HeaderRegistration); v != "" {
		t.Errorf("offer %q in a tier without binding", v)
	}
	if err := f.check(s, "", false); err != nil {
		t.Errorf("check in a tier without binding: %v", err)
	}
}

func TestRegistrationNeedsTheSession(t *testing.T) {
	f := newFixture(t)
	_, _, c := f.signIn("bound")
	w := f.post("/.lapse/dbsc/register", "", map[string]string{dbsc.HeaderResponse: dbsctest.NewES256().Registration(c, "")})
	if w.Code != http.StatusUnauthorized {
		t.Errorf("registration without the session cookie: %d %s, want 401", w.Code, w.Body)
	}
}

func contains(evs []lapse.EventType, want lapse.EventType) bool {
	for _, e := range evs {
		if e == want {
			return true
		}
	}
	return false
}
