package httpapi

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/feed"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/problem"
	"github.com/lapsehq/lapse/sqlite"
	"github.com/lapsehq/lapse/throttle"
)

// t0 has nanoseconds so that the nine fractional digits of every time
// are exercised.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC)

// harness is the API served over real HTTP from a SQLite store that can
// be told to fail, with a fake clock and the server's log captured.
type harness struct {
	t     *testing.T
	clock *lapsetest.Clock
	store *faultStore
	srv   *httptest.Server
	// server is the API the harness serves.
	server *Server
	key    string
	// keyring holds the stored API keys (nil with noAuditLog).
	keyring *lapse.Keyring
	// cookie is the name of the session cookie.
	cookie string
	log    *syncBuffer
	// tokens are the tokens issued so far: no response but the one that
	// issued a token, and no log line, may hold it.
	tokens []string
}

type harnessOptions struct {
	noCache    bool   // every verify reads the store
	feed       bool   // run an event feed for GET /v1/session/events
	noAuditLog bool   // hide the store's audit log from the server
	cookie     string // Config.SessionCookie
	// throttleBurst is the wrong keys a client address may send before
	// it is throttled; 0 means so many that tests of other things, all
	// sent from 127.0.0.1, never meet the throttle.
	throttleBurst int
	// streamsPerSession and streamsPerNode are Config's; 0 its defaults.
	streamsPerSession, streamsPerNode int
}

func newHarness(t *testing.T, opts ...harnessOptions) *harness {
	t.Helper()
	var o harnessOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "lapse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, clock: lapsetest.NewClock(t0), store: &faultStore{Store: st}, key: lapse.NewAPIKey(), log: &syncBuffer{}}
	cfg := lapse.Config{Store: h.store, Policy: harnessPolicy(), Clock: h.clock}
	if o.noCache {
		cfg.CacheSize = -1
	}
	if o.noAuditLog {
		cfg.Store = struct{ lapse.Store }{h.store} // only the methods of lapse.Store
	}
	m, err := lapse.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ring, err := lapse.NewKeyring(m)
	if err != nil {
		ring = nil // a store with only the methods of lapse.Store
	}
	h.keyring = ring
	scfg := Config{Manager: m, Keys: NewKeys(lapse.HashSecret(h.key)), Keyring: ring, Logger: logger, SessionCookie: o.cookie,
		Throttle:          throttle.New(throttle.Config{Burst: cmp.Or(o.throttleBurst, 1<<20), Clock: h.clock}),
		StreamsPerSession: o.streamsPerSession, StreamsPerNode: o.streamsPerNode}
	if fs, ok := cfg.Store.(lapse.FactorStore); ok {
		scfg.Factors = newFactors(t, m, fs)                                   // factor_test.go
		scfg.Passkeys, scfg.StepUp = newPasskeys(t, m, fs), h.stepUpCookie(m) // passkey_test.go
	}
	h.cookie = cmp.Or(o.cookie, defaultSessionCookie)
	var stopFeed func()
	if o.feed {
		f := feed.New(h.store, 5*time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		<-f.Ready()
		stopFeed = func() { cancel(); <-done }
		scfg.Events = f
	}
	s, err := New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	h.server = s
	mux := http.NewServeMux()
	s.Register(mux)
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	if stopFeed != nil {
		// Before the server closes: stopping the feed ends every stream.
		t.Cleanup(stopFeed)
	}
	t.Cleanup(h.checkLog)
	return h
}

// harnessPolicy is lapsetest's policy with a reminder after 8h on the
// standard tier, so that answers have sessions with and without a
// remind_at.
func harnessPolicy() *lapse.Policy {
	p := lapsetest.Policy()
	std := p.Tiers["standard"]
	std.RemindAfter = 8 * time.Hour
	p.Tiers["standard"] = std
	if err := p.Validate(); err != nil {
		panic(err)
	}
	return p
}

// checkLog fails the test if any log line holds a token.
func (h *harness) checkLog() {
	logged := h.log.String()
	for _, tok := range h.tokens {
		if strings.Contains(logged, tok) {
			h.t.Errorf("the log holds a session token:\n%s", logged)
		}
	}
	if strings.Contains(logged, h.key) {
		h.t.Errorf("the log holds the API key:\n%s", logged)
	}
}

// response is what the server answered.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) String() string {
	return fmt.Sprintf("%d %s %s", r.status, r.header.Get("Content-Type"), bytes.TrimSpace(r.body))
}

// problem decodes an error body.
func (r *response) problem(t *testing.T) problem.Problem {
	t.Helper()
	var p problem.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("error body %s is not a problem: %v", r, err)
	}
	return p
}

// newRequest builds a request with the API key; body is sent as is when
// it is a string or []byte and as JSON otherwise.
// apiKey creates a stored API key with scopes and returns it and its record.
func (h *harness) apiKey(scopes ...lapse.Scope) (string, *lapse.APIKey) {
	h.t.Helper()
	return h.tenantKey("", scopes...)
}

// tenantKey creates a stored API key bound to tenant.
func (h *harness) tenantKey(tenant string, scopes ...lapse.Scope) (string, *lapse.APIKey) {
	h.t.Helper()
	key, k, err := h.keyring.Create(context.Background(), lapse.KeySpec{Name: "test", Scopes: scopes, Tenant: tenant}, "system", "")
	if err != nil {
		h.t.Fatal(err)
	}
	return key, k
}

// otherScopes returns every scope but s.
func otherScopes(s lapse.Scope) []lapse.Scope {
	var out []lapse.Scope
	for _, sc := range lapse.Scopes() {
		if sc != s {
			out = append(out, sc)
		}
	}
	return out
}

func (h *harness) newRequest(method, path string, body any) *http.Request {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.key)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// call sends a request with the API key.
func (h *harness) call(method, path string, body any) *response {
	h.t.Helper()
	return h.send(h.newRequest(method, path, body))
}

// send sends req and checks what holds for every answer: an error is
// problem+json with the status its code maps to, and no answer holds a
// token it did not issue. Of an event stream, which does not end by
// itself, the body is the first event.
func (h *harness) send(req *http.Request) *response {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	defer cancel()
	res, err := h.srv.Client().Do(req.WithContext(ctx))
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	var body []byte
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt == "text/event-stream" {
		var ev sseEvent
		ev, err = readEvent(bufio.NewReader(res.Body))
		body = []byte(ev.raw)
	} else {
		body, err = io.ReadAll(res.Body)
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return h.inspect(req, &response{status: res.StatusCode, header: res.Header, body: body})
}

// inspect makes the checks of send on an answer.
func (h *harness) inspect(req *http.Request, r *response) *response {
	h.t.Helper()
	body := r.body
	for _, tok := range h.tokens {
		if bytes.Contains(body, []byte(tok)) {
			h.t.Errorf("%s %s: the answer holds a token issued earlier: %s", req.Method, req.URL.Path, r)
		}
	}
	if bytes.Contains(body, []byte(h.key)) {
		h.t.Errorf("%s %s: the answer holds the API key", req.Method, req.URL.Path)
	}
	if r.status >= 400 {
		if mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); mt != "application/problem+json" {
			h.t.Errorf("%s %s: error Content-Type = %q, want application/problem+json", req.Method, req.URL.Path, r.header.Get("Content-Type"))
		}
		p := r.problem(h.t)
		if p.Code == "" || p.Status != r.status || p.Type != problem.Type(p.Code) || p.Title != http.StatusText(r.status) || p.Detail == "" {
			h.t.Errorf("%s %s: problem %+v does not match status %d", req.Method, req.URL.Path, p, r.status)
		}
	}
	if r.status == http.StatusCreated {
		var tr struct{ Token string }
		if json.Unmarshal(body, &tr) == nil && tr.Token != "" {
			h.tokens = append(h.tokens, tr.Token)
		}
	}
	return r
}

// create creates a session and returns its token and id.
func (h *harness) create(body map[string]any) (token, id string) {
	h.t.Helper()
	r := h.call("POST", "/v1/sessions", body)
	if r.status != http.StatusCreated {
		h.t.Fatalf("create %v: got %s, want 201", body, r)
	}
	var tr tokenResponse
	if err := json.Unmarshal(r.body, &tr); err != nil {
		h.t.Fatal(err)
	}
	return tr.Token, tr.Session.ID
}

// verify verifies token with the given extra members.
func (h *harness) verify(token string, extra map[string]any) *response {
	h.t.Helper()
	body := map[string]any{"token": token}
	for k, v := range extra {
		body[k] = v
	}
	return h.call("POST", "/v1/sessions/verify", body)
}

// session decodes the session of a 200 answer, enveloped or not.
func session(t *testing.T, r *response) Session {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("got %s, want 200", r)
	}
	var env struct{ Session *Session }
	if err := json.Unmarshal(r.body, &env); err != nil {
		t.Fatal(err)
	}
	if env.Session != nil {
		return *env.Session
	}
	var s Session
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func wantProblem(t *testing.T, r *response, status int, code lapse.Code) problem.Problem {
	t.Helper()
	if r.status != status {
		t.Fatalf("got %s, want %d %s", r, status, code)
	}
	p := r.problem(t)
	if p.Code != code {
		t.Fatalf("got code %q (%s), want %q", p.Code, p.Detail, code)
	}
	return p
}

// faultStore is a SQLite store whose reads, writes and audit queries
// fail with err while err is set. Its event log (Events, LastSeq) is
// left alone: the event feed, like the sweeper, retries on its own.
type faultStore struct {
	*sqlite.Store
	mu  sync.Mutex
	err error
}

func (f *faultStore) failWith(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *faultStore) fault() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *faultStore) Create(ctx context.Context, s *lapse.Session, limit int) ([]*lapse.Session, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.Store.Create(ctx, s, limit)
}

func (f *faultStore) Session(ctx context.Context, id string) (*lapse.Session, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.Store.Session(ctx, id)
}

func (f *faultStore) SessionByToken(ctx context.Context, h lapse.TokenHash) (*lapse.Session, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.Store.SessionByToken(ctx, h)
}

func (f *faultStore) End(ctx context.Context, id string, e lapse.Ending) (*lapse.Session, bool, error) {
	if err := f.fault(); err != nil {
		return nil, false, err
	}
	return f.Store.End(ctx, id, e)
}

func (f *faultStore) EndMatching(ctx context.Context, flt lapse.Filter, e lapse.Ending) ([]*lapse.Session, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.Store.EndMatching(ctx, flt, e)
}

func (f *faultStore) Sessions(ctx context.Context, flt lapse.Filter) ([]*lapse.Session, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.Store.Sessions(ctx, flt)
}

func (f *faultStore) Touch(ctx context.Context, seen *lapse.Session, at, idleExpiresAt, warnAt time.Time, force bool) (*lapse.Session, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.Store.Touch(ctx, seen, at, idleExpiresAt, warnAt, force)
}

func (f *faultStore) QueryEvents(ctx context.Context, q lapse.EventQuery) ([]lapse.Event, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.Store.QueryEvents(ctx, q)
}

func (f *faultStore) CreateKey(ctx context.Context, k *lapse.APIKey, ev *lapse.Event) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.Store.CreateKey(ctx, k, ev)
}

func (f *faultStore) Key(ctx context.Context, id string) (*lapse.APIKey, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.Store.Key(ctx, id)
}

func (f *faultStore) Keys(ctx context.Context) ([]*lapse.APIKey, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.Store.Keys(ctx)
}

func (f *faultStore) RevokeKey(ctx context.Context, id string, at time.Time, ev *lapse.Event) (*lapse.APIKey, bool, error) {
	if err := f.fault(); err != nil {
		return nil, false, err
	}
	return f.Store.RevokeKey(ctx, id, at, ev)
}

func (f *faultStore) Ping(ctx context.Context) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.Store.Ping(ctx)
}

var (
	errUnavailable = &lapse.Error{Code: lapse.CodeStoreUnavailable, Message: "the session store failed", Err: errors.New("disk I/O error")}
	errConflict    = &lapse.Error{Code: lapse.CodeConflict, Message: "a session with this id or token exists"}
	errUncoded     = errors.New("an error without a code")
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// pathOf fills a route's path parameters.
func pathOf(pattern string) string {
	return strings.NewReplacer("{id}", "ses_0000000000000000000000", "{subject}", "alice").Replace(pattern)
}

func TestAPIKey(t *testing.T) {
	h := newHarness(t)
	tok, _ := h.create(map[string]any{"subject": "alice"})
	cases := []struct {
		name   string
		auth   string // Authorization header; "" sends none
		wantOK bool
	}{
		{"missing_key_is_unauthorized", "", false},
		{"wrong_key_is_unauthorized", "Bearer " + lapse.NewAPIKey(), false},
		{"empty_bearer_is_unauthorized", "Bearer ", false},
		{"basic_scheme_is_unauthorized", "Basic " + h.key, false},
		{"key_without_scheme_is_unauthorized", h.key, false},
		{"session_token_is_unauthorized", "Bearer " + tok, false},
		{"right_key_is_accepted", "Bearer " + h.key, true},
		{"scheme_is_case_insensitive", "bearer " + h.key, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, rt := range routes {
				if rt.public() {
					continue
				}
				req := h.newRequest(rt.method, pathOf(rt.path), "{}")
				req.Header.Del("Authorization")
				if c.auth != "" {
					req.Header.Set("Authorization", c.auth)
				}
				r := h.send(req)
				if !c.wantOK {
					wantProblem(t, r, http.StatusUnauthorized, problem.CodeUnauthorized)
					if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="lapse"` {
						t.Errorf("%s %s: WWW-Authenticate = %q, want Bearer realm=\"lapse\"", rt.method, rt.path, got)
					}
					continue
				}
				if r.status == http.StatusUnauthorized && r.problem(t).Code == problem.CodeUnauthorized {
					t.Errorf("%s %s: got %s, want the key accepted", rt.method, rt.path, r)
				}
			}
		})
	}
	t.Run("public_routes_need_no_key", func(t *testing.T) {
		for _, rt := range routes {
			if !rt.public() || rt.session {
				continue // the session routes: see TestSessionAuthentication
			}
			req := h.newRequest(rt.method, rt.path, nil)
			req.Header.Del("Authorization")
			if r := h.send(req); r.status != http.StatusOK {
				t.Errorf("%s %s: got %s, want 200", rt.method, rt.path, r)
			}
		}
	})
}

func TestCreate(t *testing.T) {
	cases := []struct {
		name string
		body map[string]any
		want func(t *testing.T, s Session)
	}{
		{"defaults_apply_the_default_tier", map[string]any{"subject": "alice"}, func(t *testing.T, s Session) {
			want := Session{
				ID: s.ID, Subject: "alice", Tenant: "", Tier: "standard", AAL: 1, AMR: []string{}, Status: lapse.StatusActive,
				CreatedAt: formatTime(t0), LastActiveAt: formatTime(t0), AuthenticatedAt: formatTime(t0),
				IdleExpiresAt: formatTime(t0.Add(30 * time.Minute)), ExpiresAt: formatTime(t0.Add(12 * time.Hour)),
				WarnAt: formatTime(t0.Add(28 * time.Minute)), RemindAt: new(formatTime(t0.Add(8 * time.Hour))), Metadata: json.RawMessage(`{}`),
			}
			if !sameSession(s, want) {
				t.Errorf("got %+v, want %+v", s, want)
			}
		}},
		{"every_member_is_kept", map[string]any{"subject": "bob", "tenant": "acme", "tier": "sensitive", "aal": 2,
			"amr": []string{"pwd", "otp"}, "ip": "2001:db8::1", "user_agent": "curl/8", "metadata": map[string]any{"plan": "pro"}},
			func(t *testing.T, s Session) {
				if s.Tenant != "acme" || s.Tier != "sensitive" || s.AAL != 2 || strings.Join(s.AMR, ",") != "pwd,otp" ||
					s.IP != "2001:db8::1" || s.UserAgent != "curl/8" || string(s.Metadata) != `{"plan":"pro"}` {
					t.Errorf("got %+v, want every member kept", s)
				}
				if want := formatTime(t0.Add(5 * time.Minute)); s.IdleExpiresAt != want {
					t.Errorf("idle_expires_at = %s, want %s (sensitive tier)", s.IdleExpiresAt, want)
				}
			}},
		{"tenant_override_tightens_the_tier", map[string]any{"subject": "carol", "tenant": "acme"}, func(t *testing.T, s Session) {
			if want := formatTime(t0.Add(10 * time.Minute)); s.IdleExpiresAt != want {
				t.Errorf("idle_expires_at = %s, want %s (acme's standard tier)", s.IdleExpiresAt, want)
			}
		}},
		{"null_metadata_is_no_metadata", map[string]any{"subject": "dan", "metadata": nil}, func(t *testing.T, s Session) {
			if string(s.Metadata) != `{}` {
				t.Errorf("metadata = %s, want {}", s.Metadata)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			r := h.call("POST", "/v1/sessions", c.body)
			if r.status != http.StatusCreated {
				t.Fatalf("got %s, want 201", r)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var tr tokenResponse
			if err := json.Unmarshal(r.body, &tr); err != nil {
				t.Fatal(err)
			}
			if _, err := lapse.ParseToken(tr.Token); err != nil {
				t.Errorf("token %q is not a well-formed token", lapse.Token(tr.Token))
			}
			if tr.Session.EndReason != nil || tr.Session.EndedAt != nil {
				t.Errorf("end_reason, ended_at = %v, %v; want null, null while active", tr.Session.EndReason, tr.Session.EndedAt)
			}
			c.want(t, tr.Session)
		})
	}
}

func sameSession(a, b Session) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestVerify(t *testing.T) {
	type step func(h *harness, tok string)
	advance := func(d time.Duration) step { return func(h *harness, _ string) { h.clock.Advance(d) } }
	touchEvery := func(every, total time.Duration) step {
		return func(h *harness, tok string) {
			for d := every; d <= total; d += every {
				h.clock.Advance(every)
				if r := h.verify(tok, nil); r.status != http.StatusOK && d < total {
					h.t.Fatalf("verify after %s: got %s, want 200", d, r)
				}
			}
		}
	}
	revoke := func(h *harness, tok string) {
		if r := h.call("POST", "/v1/sessions/revoke", map[string]any{"token": tok}); r.status != http.StatusNoContent {
			h.t.Fatalf("revoke: got %s, want 204", r)
		}
	}
	cases := []struct {
		name       string
		create     map[string]any
		before     []step
		token      string // sent instead of the session's token, if set
		opts       map[string]any
		wantStatus int
		wantCode   lapse.Code
		check      func(t *testing.T, r *response)
	}{
		{name: "valid_session_is_returned", create: map[string]any{"subject": "alice"}, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				if s := session(t, r); s.Subject != "alice" || s.Status != lapse.StatusActive {
					t.Errorf("got %+v, want alice's active session", s)
				}
			}},
		{name: "unknown_token_is_session_not_found", token: string(lapse.NewToken()), wantStatus: 401, wantCode: lapse.CodeSessionNotFound},
		{name: "malformed_token_is_session_not_found", token: "lps_not-a-token", wantStatus: 401, wantCode: lapse.CodeSessionNotFound},
		{name: "idle_deadline_passed_is_session_expired_idle", create: map[string]any{"subject": "alice"},
			before: []step{advance(30 * time.Minute)}, wantStatus: 401, wantCode: lapse.CodeSessionExpiredIdle},
		{name: "absolute_deadline_passed_is_session_expired_absolute", create: map[string]any{"subject": "alice"},
			before: []step{touchEvery(20*time.Minute, 12*time.Hour)}, wantStatus: 401, wantCode: lapse.CodeSessionExpiredAbsolute},
		{name: "revoked_session_is_session_revoked", create: map[string]any{"subject": "alice"},
			before: []step{revoke}, wantStatus: 401, wantCode: lapse.CodeSessionRevoked},
		{name: "tier_aal_not_met_is_step_up_required", create: map[string]any{"subject": "alice", "tier": "sensitive", "aal": 1},
			wantStatus: 403, wantCode: lapse.CodeStepUpRequired, check: func(t *testing.T, r *response) {
				p := r.problem(t)
				if p.RequiredAAL != 2 || p.MaxAuthAge != "15m0s" || p.AAL != 1 || p.AuthenticatedAt != formatTime(t0) {
					t.Errorf("got %+v, want required_aal 2, max_auth_age 15m0s, aal 1, authenticated_at %s", p, formatTime(t0))
				}
			}},
		{name: "tier_auth_age_passed_is_step_up_required", create: map[string]any{"subject": "alice", "tier": "sensitive", "aal": 2},
			before: []step{touchEvery(4*time.Minute, 12*time.Minute), advance(3 * time.Minute)}, wantStatus: 403, wantCode: lapse.CodeStepUpRequired,
			check: func(t *testing.T, r *response) {
				if p := r.problem(t); p.MaxAuthAge != "15m0s" || p.AAL != 2 {
					t.Errorf("got %+v, want max_auth_age 15m0s and aal 2", p)
				}
			}},
		{name: "call_require_aal_not_met_is_step_up_required", create: map[string]any{"subject": "alice"},
			opts: map[string]any{"require_aal": 2}, wantStatus: 403, wantCode: lapse.CodeStepUpRequired,
			check: func(t *testing.T, r *response) {
				if p := r.problem(t); p.RequiredAAL != 2 || p.MaxAuthAge != "" {
					t.Errorf("got %+v, want required_aal 2 and no max_auth_age", p)
				}
			}},
		{name: "call_max_auth_age_passed_is_step_up_required", create: map[string]any{"subject": "alice"},
			before: []step{advance(5 * time.Minute)}, opts: map[string]any{"max_auth_age": "5m"}, wantStatus: 403, wantCode: lapse.CodeStepUpRequired,
			check: func(t *testing.T, r *response) {
				if p := r.problem(t); p.MaxAuthAge != "5m0s" || p.RequiredAAL != 0 {
					t.Errorf("got %+v, want max_auth_age 5m0s and no required_aal", p)
				}
			}},
		{name: "call_max_auth_age_met_is_valid", create: map[string]any{"subject": "alice"},
			before: []step{advance(4 * time.Minute)}, opts: map[string]any{"max_auth_age": "5m", "require_aal": 1}, wantStatus: 200},
		{name: "null_max_auth_age_is_no_limit", create: map[string]any{"subject": "alice"},
			before: []step{advance(4 * time.Minute)}, opts: map[string]any{"max_auth_age": nil}, wantStatus: 200},
		{name: "touch_slides_the_idle_deadline", create: map[string]any{"subject": "alice"},
			before: []step{advance(20 * time.Minute)}, wantStatus: 200, check: func(t *testing.T, r *response) {
				if s, want := session(t, r), formatTime(t0.Add(50*time.Minute)); s.IdleExpiresAt != want || s.LastActiveAt != formatTime(t0.Add(20*time.Minute)) {
					t.Errorf("idle_expires_at = %s, want %s", s.IdleExpiresAt, want)
				}
			}},
		{name: "touch_false_does_not_slide", create: map[string]any{"subject": "alice"},
			before: []step{advance(20 * time.Minute)}, opts: map[string]any{"touch": false}, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				if s, want := session(t, r), formatTime(t0.Add(30*time.Minute)); s.IdleExpiresAt != want || s.LastActiveAt != formatTime(t0) {
					t.Errorf("idle_expires_at = %s, last_active_at = %s; want %s and %s unchanged", s.IdleExpiresAt, s.LastActiveAt, want, formatTime(t0))
				}
			}},
		{name: "touch_never_slides_past_the_absolute_deadline", create: map[string]any{"subject": "alice"},
			before: []step{touchEvery(20*time.Minute, 11*time.Hour+40*time.Minute)}, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				if s := session(t, r); s.IdleExpiresAt != s.ExpiresAt || s.ExpiresAt != formatTime(t0.Add(12*time.Hour)) {
					t.Errorf("idle_expires_at = %s, expires_at = %s; want both %s", s.IdleExpiresAt, s.ExpiresAt, formatTime(t0.Add(12*time.Hour)))
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			tok := c.token
			if c.create != nil {
				tok, _ = h.create(c.create)
			}
			for _, st := range c.before {
				st(h, tok)
			}
			r := h.verify(tok, c.opts)
			if c.wantCode != "" {
				wantProblem(t, r, c.wantStatus, c.wantCode)
			} else if r.status != c.wantStatus {
				t.Fatalf("got %s, want %d", r, c.wantStatus)
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
	t.Run("touch_false_lets_the_session_expire", func(t *testing.T) {
		h := newHarness(t)
		tok, _ := h.create(map[string]any{"subject": "alice"})
		h.clock.Advance(20 * time.Minute)
		if r := h.verify(tok, map[string]any{"touch": false}); r.status != http.StatusOK {
			t.Fatalf("got %s, want 200", r)
		}
		h.clock.Advance(10 * time.Minute)
		wantProblem(t, h.verify(tok, nil), http.StatusUnauthorized, lapse.CodeSessionExpiredIdle)
	})
}

func TestRevoke(t *testing.T) {
	h := newHarness(t)
	tok, id := h.create(map[string]any{"subject": "alice"})
	cases := []struct {
		name  string
		token string
	}{
		{"live_token_is_revoked", tok},
		{"revoking_again_is_idempotent", tok},
		{"unknown_token_is_no_error", string(lapse.NewToken())},
		{"malformed_token_is_no_error", "not-a-token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.call("POST", "/v1/sessions/revoke", map[string]any{"token": c.token})
			if r.status != http.StatusNoContent || len(r.body) != 0 {
				t.Fatalf("got %s, want 204 with no body", r)
			}
		})
	}
	t.Run("revoked_session_does_not_verify", func(t *testing.T) {
		wantProblem(t, h.verify(tok, nil), http.StatusUnauthorized, lapse.CodeSessionRevoked)
		s := session(t, h.call("GET", "/v1/sessions/"+id, nil))
		if s.Status != lapse.StatusRevoked || s.EndReason == nil || *s.EndReason != lapse.ReasonLogout || s.EndedAt == nil || *s.EndedAt != formatTime(t0) {
			t.Errorf("got %+v, want revoked for logout at %s", s, formatTime(t0))
		}
	})
}

func TestSessionByID(t *testing.T) {
	h := newHarness(t)
	tok, id := h.create(map[string]any{"subject": "alice"})
	_, lapsed := h.create(map[string]any{"subject": "bob", "tier": "sensitive", "aal": 2})
	unknown := "ses_0000000000000000000000"
	cases := []struct {
		name, method, id string
		wantStatus       int
		check            func(t *testing.T, r *response)
	}{
		{"get_returns_the_session", "GET", id, 200, func(t *testing.T, r *response) {
			if s := session(t, r); s.ID != id || s.Status != lapse.StatusActive {
				t.Errorf("got %+v, want session %s active", s, id)
			}
		}},
		{"get_unknown_id_is_404", "GET", unknown, 404, nil},
		{"delete_unknown_id_is_404", "DELETE", unknown, 404, nil},
		{"delete_revokes_for_admin", "DELETE", id, 204, nil},
		{"get_shows_the_admin_revoke", "GET", id, 200, func(t *testing.T, r *response) {
			s := session(t, r)
			if s.Status != lapse.StatusRevoked || s.EndReason == nil || *s.EndReason != lapse.ReasonAdmin || s.EndedAt == nil {
				t.Errorf("got %+v, want revoked for admin", s)
			}
		}},
		{"delete_again_is_204", "DELETE", id, 204, nil},
		{"get_shows_a_lapsed_session_expired", "GET", lapsed, 200, func(t *testing.T, r *response) {
			s := session(t, r)
			if s.Status != lapse.StatusExpired || s.EndReason == nil || *s.EndReason != lapse.ReasonIdleTimeout || s.EndedAt == nil || *s.EndedAt != formatTime(t0.Add(5*time.Minute)) {
				t.Errorf("got %+v, want expired for idle_timeout at %s", s, formatTime(t0.Add(5*time.Minute)))
			}
		}},
	}
	h.clock.Advance(6 * time.Minute)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.call(c.method, "/v1/sessions/"+c.id, nil)
			if c.wantStatus == 404 {
				wantProblem(t, r, 404, lapse.CodeSessionNotFound)
				return
			}
			if r.status != c.wantStatus {
				t.Fatalf("got %s, want %d", r, c.wantStatus)
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
	wantProblem(t, h.verify(tok, nil), http.StatusUnauthorized, lapse.CodeSessionRevoked)
}

func TestSubjectSessions(t *testing.T) {
	h := newHarness(t)
	ids := map[string]string{}
	tokens := map[string]string{}
	for _, s := range []struct{ name, subject, tenant string }{
		{"a1", "alice", ""}, {"a2", "alice", ""}, {"a3", "alice", "acme"}, {"b1", "bob", ""},
	} {
		tokens[s.name], ids[s.name] = h.create(map[string]any{"subject": s.subject, "tenant": s.tenant})
		h.clock.Advance(time.Second)
	}
	h.call("POST", "/v1/sessions/revoke", map[string]any{"token": tokens["a2"]})
	names := func(r *response) string {
		var list sessionsResponse
		if err := json.Unmarshal(r.body, &list); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range list.Sessions {
			for n, id := range ids {
				if id == s.ID {
					out = append(out, n)
				}
			}
		}
		return strings.Join(out, ",")
	}
	list := []struct {
		name, query, want string
	}{
		{"active_ones_newest_first", "", "a3,a1"},
		{"status_active_is_the_default", "?status=active", "a3,a1"},
		{"status_all_includes_ended", "?status=all", "a3,a2,a1"},
		{"tenant_limits_to_one_tenant", "?tenant=acme", "a3"},
		{"empty_tenant_is_the_platform_itself", "?tenant=", "a1"},
	}
	for _, c := range list {
		t.Run("list/"+c.name, func(t *testing.T) {
			r := h.call("GET", "/v1/subjects/alice/sessions"+c.query, nil)
			if r.status != http.StatusOK {
				t.Fatalf("got %s, want 200", r)
			}
			if got := names(r); got != c.want {
				t.Errorf("got [%s], want [%s]", got, c.want)
			}
		})
	}
	t.Run("list/unknown_subject_is_empty", func(t *testing.T) {
		r := h.call("GET", "/v1/subjects/nobody/sessions", nil)
		if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"sessions":[]}` {
			t.Errorf("got %s, want 200 {\"sessions\":[]}", r)
		}
	})
	t.Run("list/bad_status_is_invalid_request", func(t *testing.T) {
		wantProblem(t, h.call("GET", "/v1/subjects/alice/sessions?status=ended", nil), 400, lapse.CodeInvalid)
	})
	end := []struct {
		name, query string
		wantStatus  int
		wantCode    lapse.Code
		wantRevoked int
	}{
		{"bad_reason_is_invalid_request", "?reason=bored", 400, lapse.CodeInvalid, 0},
		{"logout_is_not_a_subject_reason", "?reason=logout", 400, lapse.CodeInvalid, 0},
		{"except_keeps_one_and_reason_is_recorded", "?except=" + ids["a1"] + "&reason=password_change", 200, "", 1},
		{"nothing_left_but_the_kept_one", "?except=" + ids["a1"], 200, "", 0},
		{"without_except_all_go", "?reason=admin", 200, "", 1},
	}
	for _, c := range end {
		t.Run("end/"+c.name, func(t *testing.T) {
			r := h.call("DELETE", "/v1/subjects/alice/sessions"+c.query, nil)
			if c.wantCode != "" {
				wantProblem(t, r, c.wantStatus, c.wantCode)
				return
			}
			if want := fmt.Sprintf(`{"revoked":%d}`, c.wantRevoked); r.status != c.wantStatus || strings.TrimSpace(string(r.body)) != want {
				t.Errorf("got %s, want %d %s", r, c.wantStatus, want)
			}
		})
	}
	t.Run("end/reasons_are_recorded", func(t *testing.T) {
		for name, want := range map[string]lapse.Reason{"a1": lapse.ReasonAdmin, "a2": lapse.ReasonLogout, "a3": lapse.ReasonPasswordChange} {
			s := session(t, h.call("GET", "/v1/sessions/"+ids[name], nil))
			if s.Status != lapse.StatusRevoked || s.EndReason == nil || *s.EndReason != want {
				t.Errorf("%s: got status %s reason %v, want revoked for %s", name, s.Status, s.EndReason, want)
			}
		}
		if r := h.verify(tokens["b1"], nil); r.status != http.StatusOK {
			t.Errorf("bob's session: got %s, want 200", r)
		}
	})
}

// big is a JSON string member longer than the body cap.
var big = strings.Repeat("x", MaxBodyBytes+1)

func TestRequestErrors(t *testing.T) {
	h := newHarness(t)
	tok, _ := h.create(map[string]any{"subject": "alice"})
	cases := []struct {
		name, path, body string
		wantCode         lapse.Code
	}{
		{"empty_body_is_malformed_json", "/v1/sessions", "", problem.CodeMalformedJSON},
		{"truncated_json_is_malformed_json", "/v1/sessions", `{"subject":`, problem.CodeMalformedJSON},
		{"array_body_is_malformed_json", "/v1/sessions", `[{"subject":"alice"}]`, problem.CodeMalformedJSON},
		{"trailing_data_is_malformed_json", "/v1/sessions", `{"subject":"alice"} {}`, problem.CodeMalformedJSON},
		{"wrong_member_type_is_malformed_json", "/v1/sessions", `{"subject":"alice","aal":"2"}`, problem.CodeMalformedJSON},
		{"fractional_aal_is_malformed_json", "/v1/sessions", `{"subject":"alice","aal":1.5}`, problem.CodeMalformedJSON},
		{"unknown_member_is_unknown_field", "/v1/sessions", `{"subject":"alice","subjet":"x"}`, problem.CodeUnknownField},
		{"unknown_member_on_verify_is_unknown_field", "/v1/sessions/verify", `{"token":"` + tok + `","tuch":false}`, problem.CodeUnknownField},
		{"unknown_member_on_revoke_is_unknown_field", "/v1/sessions/revoke", `{"token":"` + tok + `","all":true}`, problem.CodeUnknownField},
		{"oversized_body_is_body_too_large", "/v1/sessions", `{"subject":"` + big + `"}`, problem.CodeBodyTooLarge},
		{"oversized_padding_is_body_too_large", "/v1/sessions/verify", `{"token":"` + tok + `"}` + strings.Repeat(" ", MaxBodyBytes), problem.CodeBodyTooLarge},
		{"unparsable_duration_is_invalid_duration", "/v1/sessions/verify", `{"token":"` + tok + `","max_auth_age":"5 minutes"}`, problem.CodeInvalidDuration},
		{"negative_duration_is_invalid_duration", "/v1/sessions/verify", `{"token":"` + tok + `","max_auth_age":"-5m"}`, problem.CodeInvalidDuration},
		{"numeric_duration_is_invalid_duration", "/v1/sessions/verify", `{"token":"` + tok + `","max_auth_age":300}`, problem.CodeInvalidDuration},
		{"unknown_tier_is_unknown_tier", "/v1/sessions", `{"subject":"alice","tier":"gold"}`, lapse.CodeUnknownTier},
		{"unknown_tenant_is_unknown_tenant", "/v1/sessions", `{"subject":"alice","tenant":"globex"}`, lapse.CodeUnknownTenant},
		{"missing_subject_is_invalid_request", "/v1/sessions", `{"tier":"standard"}`, lapse.CodeInvalid},
		{"aal_out_of_range_is_invalid_request", "/v1/sessions", `{"subject":"alice","aal":4}`, lapse.CodeInvalid},
		{"bad_ip_is_invalid_request", "/v1/sessions", `{"subject":"alice","ip":"localhost"}`, lapse.CodeInvalid},
		{"metadata_not_an_object_is_invalid_request", "/v1/sessions", `{"subject":"alice","metadata":[1]}`, lapse.CodeInvalid},
		{"metadata_not_utf8_is_invalid_request", "/v1/sessions", "{\"subject\":\"alice\",\"metadata\":{\"k\":\"\xff\"}}", lapse.CodeInvalid},
		{"missing_token_on_verify_is_invalid_request", "/v1/sessions/verify", `{"touch":false}`, lapse.CodeInvalid},
		{"require_aal_out_of_range_is_invalid_request", "/v1/sessions/verify", `{"token":"` + tok + `","require_aal":4}`, lapse.CodeInvalid},
		{"missing_token_on_revoke_is_invalid_request", "/v1/sessions/revoke", `{}`, lapse.CodeInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := wantProblem(t, h.call("POST", c.path, c.body), http.StatusBadRequest, c.wantCode)
			if strings.Contains(p.Detail, tok) {
				t.Errorf("detail %q holds the token", p.Detail)
			}
		})
	}
	if r := h.verify(tok, nil); r.status != http.StatusOK {
		t.Errorf("after the bad requests the session: got %s, want 200", r)
	}
}

func TestUnroutedRequests(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name, method, path string
		wantStatus         int
		wantAllow          string
	}{
		{"unknown_v1_path_is_not_found", "GET", "/v1/nothing", 404, ""},
		{"unknown_nested_path_is_not_found", "POST", "/v1/sessions/x/y", 404, ""},
		{"get_on_create_is_method_not_allowed", "GET", "/v1/sessions", 405, "POST"},
		{"put_on_create_is_method_not_allowed", "PUT", "/v1/sessions", 405, "POST"},
		{"patch_on_a_session_is_method_not_allowed", "PATCH", "/v1/sessions/ses_x", 405, "GET, DELETE"},
		{"post_on_subject_sessions_is_method_not_allowed", "POST", "/v1/subjects/alice/sessions", 405, "GET, DELETE"},
		{"post_on_healthz_is_method_not_allowed", "POST", "/healthz", 405, "GET"},
		{"delete_on_openapi_is_method_not_allowed", "DELETE", "/openapi.json", 405, "GET"},
		{"post_on_audit_is_method_not_allowed", "POST", "/v1/audit", 405, "GET"},
		{"delete_on_the_session_is_method_not_allowed", "DELETE", "/v1/session", 405, "GET"},
		{"get_on_extend_is_method_not_allowed", "GET", "/v1/session/extend", 405, "POST"},
		{"unknown_session_path_is_not_found", "GET", "/v1/session/nothing", 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, withKey := range []bool{true, false} {
				req := h.newRequest(c.method, c.path, nil)
				if !withKey {
					req.Header.Del("Authorization")
				}
				r := h.send(req)
				code := problem.CodeNotFound
				if c.wantStatus == 405 {
					code = problem.CodeMethodNotAllowed
				}
				wantProblem(t, r, c.wantStatus, code)
				if got := r.header.Get("Allow"); got != c.wantAllow {
					t.Errorf("Allow = %q, want %q", got, c.wantAllow)
				}
			}
		})
	}
}

func TestStoreFailures(t *testing.T) {
	h := newHarness(t, harnessOptions{noCache: true, feed: true})
	tok, id := h.create(map[string]any{"subject": "alice"})
	calls := []struct {
		name, method, path string
		body               any
		asSession          bool // sent with tok instead of the API key
	}{
		{"create", "POST", "/v1/sessions", map[string]any{"subject": "alice"}, false},
		{"verify", "POST", "/v1/sessions/verify", map[string]any{"token": tok}, false},
		{"revoke", "POST", "/v1/sessions/revoke", map[string]any{"token": tok}, false},
		{"get", "GET", "/v1/sessions/" + id, nil, false},
		{"delete", "DELETE", "/v1/sessions/" + id, nil, false},
		{"list", "GET", "/v1/subjects/alice/sessions", nil, false},
		{"end_subject", "DELETE", "/v1/subjects/alice/sessions", nil, false},
		{"audit", "GET", "/v1/audit", nil, false},
		{"current", "GET", "/v1/session", nil, true},
		{"extend", "POST", "/v1/session/extend", nil, true},
		{"logout", "POST", "/v1/session/logout", nil, true},
		{"events", "GET", "/v1/session/events", nil, true},
		{"readyz", "GET", "/readyz", nil, false},
	}
	faults := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   lapse.Code
	}{
		{"unavailable_store_is_503", errUnavailable, 503, lapse.CodeStoreUnavailable},
		{"uncoded_error_is_500", errUncoded, 500, lapse.CodeInternal},
	}
	for _, f := range faults {
		for _, c := range calls {
			if c.name == "readyz" && f.err == errUncoded {
				continue // readiness reports any failure as unavailable
			}
			t.Run(f.name+"/"+c.name, func(t *testing.T) {
				h.store.failWith(f.err)
				defer h.store.failWith(nil)
				code := f.wantCode
				if c.name == "readyz" {
					code = lapse.CodeStoreUnavailable
				}
				req := h.newRequest(c.method, c.path, c.body)
				if c.asSession {
					req = h.asSession(c.method, c.path, tok, viaBearer)
				}
				p := wantProblem(t, h.send(req), f.wantStatus, code)
				if strings.Contains(p.Detail, "disk") || strings.Contains(p.Detail, "without a code") {
					t.Errorf("detail %q reveals the internal cause", p.Detail)
				}
			})
		}
	}
	t.Run("retry_after_comes_with_503", func(t *testing.T) {
		h.store.failWith(errUnavailable)
		defer h.store.failWith(nil)
		if got := h.call("GET", "/readyz", nil).header.Get("Retry-After"); got == "" {
			t.Error("Retry-After is missing")
		}
	})
	t.Run("internal_causes_are_logged", func(t *testing.T) {
		if logged := h.log.String(); !strings.Contains(logged, "disk I/O error") || !strings.Contains(logged, "an error without a code") {
			t.Errorf("the log does not hold the causes:\n%s", logged)
		}
	})
	t.Run("the_session_survives", func(t *testing.T) {
		if r := h.verify(tok, nil); r.status != http.StatusOK {
			t.Errorf("got %s, want 200", r)
		}
	})
}

// TestNoTokenInAnswersOrLogs sends tokens through every route, through
// errors of every kind and store failures that are logged, and checks
// that no answer but the one issuing a token and no log line holds it.
// (send and the harness's cleanup make the checks.)
func TestNoTokenInAnswersOrLogs(t *testing.T) {
	h := newHarness(t, harnessOptions{noCache: true})
	tok, id := h.create(map[string]any{"subject": "alice", "metadata": map[string]any{"note": "hello"}})
	other, _ := h.create(map[string]any{"subject": "alice", "tier": "sensitive", "aal": 1})
	for _, body := range []string{
		`{"token":"` + tok + `"}`,
		`{"token":"` + other + `"}`,
		`{"token":"` + tok + `","touch":false,"require_aal":3}`,
		`{"token":"` + tok + `","max_auth_age":"` + tok + `"}`,
		`{"token":"` + tok + `","max_auth_age":"` + tok[:20] + `"}`,
		`{"token":"` + tok + `","extra":"` + tok + `"}`,
		`{"token":"` + tok + `",`,
		`{"token":` + tok + `}`,
		`{"token":"` + tok + `"}` + tok,
		`{"token":["` + tok + `"]}`,
	} {
		h.call("POST", "/v1/sessions/verify", body)
		h.call("POST", "/v1/sessions/revoke", strings.Replace(body, tok, other, 1))
	}
	for _, fault := range []error{errUnavailable, errUncoded} {
		h.store.failWith(fault)
		h.call("POST", "/v1/sessions/verify", map[string]any{"token": tok})
		h.call("POST", "/v1/sessions/revoke", map[string]any{"token": tok})
		h.call("POST", "/v1/sessions", map[string]any{"subject": "alice"})
		h.call("GET", "/readyz", nil)
		h.call("GET", "/v1/audit", nil)
		for _, v := range []via{viaBearer, viaCookieCSRF} {
			h.send(h.asSession("GET", "/v1/session", tok, v))
			h.send(h.asSession("POST", "/v1/session/extend", tok, v))
			h.send(h.asSession("POST", "/v1/session/logout", tok, v))
		}
		h.store.failWith(nil)
	}
	h.send(h.asSession("GET", "/v1/session", tok, viaCookie))
	h.send(h.asSession("POST", "/v1/session/extend", tok, viaCookie))
	h.send(h.asSession("POST", "/v1/session/extend", tok, viaBearer))
	h.send(h.asSession("POST", "/v1/session/logout", other, viaCookieCSRF))
	h.call("GET", "/v1/audit", nil)
	h.call("GET", "/v1/sessions/"+id, nil)
	h.call("GET", "/v1/subjects/alice/sessions?status=all", nil)
	h.call("DELETE", "/v1/subjects/alice/sessions", nil)
	h.call("POST", "/v1/sessions/verify", map[string]any{"token": tok})
	if h.log.String() == "" {
		t.Fatal("nothing was logged; the failures should have been")
	}
}

// FuzzDecodeRequests posts arbitrary bodies to each POST route. No body
// makes the server panic or answer 5xx, and every 4xx is problem+json
// with a code. "$TOKEN" in a body is replaced with a live session's
// token, so that the fuzzer also reaches valid sessions.
func FuzzDecodeRequests(f *testing.F) {
	var posts []string
	for _, rt := range routes {
		if rt.method == "POST" && !rt.session { // the session's POSTs read no body
			posts = append(posts, rt.path)
		}
	}
	st, err := sqlite.Open(filepath.Join(f.TempDir(), "lapse.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	clock := lapsetest.NewClock(t0)
	m, err := lapse.New(lapse.Config{Store: st, Policy: lapsetest.Policy(), Clock: clock})
	if err != nil {
		f.Fatal(err)
	}
	key := lapse.NewAPIKey()
	s, err := New(Config{Manager: m, Keys: NewKeys(lapse.HashSecret(key))})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	tok, _, err := m.Create(context.Background(), lapse.CreateParams{Subject: "alice", Tier: "sensitive", AAL: 2})
	if err != nil {
		f.Fatal(err)
	}

	for i := range posts {
		for _, body := range []string{
			``, `{}`, `null`, `[]`, `"x"`, `{"a":1}`, `{} {}`, `{"subject":"alice"}`,
			`{"subject":"alice","tenant":"acme","tier":"sensitive","aal":2,"amr":["pwd","otp"],"ip":"192.0.2.1","user_agent":"ua","metadata":{"k":[1,{"x":null}]}}`,
			`{"subject":"a\u0000b","metadata":"{}"}`, `{"subject":"alice","aal":-1,"amr":[""]}`,
			`{"token":"$TOKEN"}`, `{"token":"$TOKEN","touch":false,"require_aal":2,"max_auth_age":"1h"}`,
			`{"token":"$TOKEN","max_auth_age":"-1s"}`, `{"token":"$TOKEN","max_auth_age":null,"touch":null}`,
			`{"token":"lps_0000000000000000000000000000000000000000000000000"}`,
			`{"token":"$TOKEN","require_aal":1e400}`, "{\"subject\":\"\xff\",\"metadata\":{\"\xff\":1}}",
		} {
			f.Add(uint8(i), []byte(body))
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		path := posts[int(route)%len(posts)]
		body = bytes.ReplaceAll(body, []byte("$TOKEN"), []byte(tok.Reveal()))
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		switch {
		case rec.Code >= 200 && rec.Code < 300:
		case rec.Code >= 400 && rec.Code < 500:
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("POST %s %q: %d with Content-Type %q, want application/problem+json", path, body, rec.Code, ct)
			}
			var p problem.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Code == "" || p.Status != rec.Code {
				t.Fatalf("POST %s %q: %d with body %s, want a problem with a code (%v)", path, body, rec.Code, rec.Body, err)
			}
		default:
			t.Fatalf("POST %s %q: got %d %s, want 2xx or 4xx", path, body, rec.Code, rec.Body)
		}
	})
}

var _ lapse.Store = (*faultStore)(nil)
