// Package console is lapse's web console for operators and auditors,
// served by lapse serve under /console/: live sessions (filter, inspect,
// revoke), the effective policy of every tenant beside its compliance
// findings, the audit log and its chain verification, and charts of
// activity drawn on the server as inline SVG.
//
// Pages are plain HTML from embedded templates with one embedded style
// sheet: no script, no framework, no build step. Every page needs a
// console session, which the admin API key typed into the sign-in form
// opens. Console sessions are lapse sessions in the platform's own store,
// in their own tier ([Tier]: 15 minutes idle, 8 hours absolute), so they
// expire, are swept and are audited like any other; the cookie holds the
// session token. Every state-changing form carries a synchronizer token
// bound to the session, and every POST is also refused when its Origin or
// Sec-Fetch-Site header says it came from another site.
package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lapsehq/lapse/throttle"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/problem"
)

//go:embed templates/*.html static/*
var files embed.FS

// Prefix is the path the console is served under.
const Prefix = "/console/"

// Tier is the tier of console sessions, in the platform tenant (""),
// with subjects from [SubjectOf], so no platform user can see or end an
// operator's session. [New] refuses a platform policy that declares a
// tier of the same name.
const Tier = "lapse-console"

// Actor is the actor recorded on the events of failed sign-ins, which
// have no identity yet; what a signed-in operator does is recorded with
// their own ([Identity.Actor]).
const Actor = "console"

// Config configures a [Console]. Manager and Keys are required; the zero
// value of every other field is a documented default.
type Config struct {
	// Manager is the platform's session manager: the console lists,
	// shows and revokes its sessions, reads its policy and clock, and
	// keeps its own sessions in its store.
	Manager *lapse.Manager
	// Keys returns the identity a key typed at sign-in opens the console
	// as, and false for a key that may not: lapse serve accepts a usable
	// stored key with the console scope and no tenant, as an admin. It
	// should compare in constant time.
	Keys func(ctx context.Context, key string) (Identity, bool)
	// Operators keeps the named operators who sign in with a name, a
	// password and a one-time code, which Factors checks; with both, that
	// form is the sign-in page's first and the key form its second. nil
	// (either) offers the key form only.
	Operators lapse.OperatorStore
	Factors   Factors
	// Keyring, when set, gives admins the API keys page: list the keys
	// (a tenant's admin, that tenant's) and revoke one; and the console
	// session a key opened ends once the key is revoked or expires. nil
	// leaves the page out and a key's session to its own timeouts.
	Keyring *lapse.Keyring
	// Metrics is gathered for the verify-latency chart (the
	// lapse_verify_duration_seconds histogram); nil leaves that chart out.
	Metrics prometheus.Gatherer
	// Log receives internal errors; nil discards them.
	Log *slog.Logger
	// Observer is told of the console's own sessions created and ended,
	// as the platform's manager tells its observer of the platform's, so
	// that the metrics that count sessions count the operators' too (the
	// console's own verifies are not the platform's and are not told);
	// nil tells no one.
	Observer lapse.Observer
	// IdleTimeout and AbsoluteTimeout bound console sessions; zero means
	// 15 minutes and 8 hours.
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	// Throttle counts the wrong keys typed at sign-in per client address
	// and refuses an address that typed too many (429) before looking at
	// its key; share it with the API's (httpapi.Config.Throttle). nil
	// means a limiter of its own with throttle's defaults.
	Throttle *throttle.Limiter
	// TrustedProxies are the networks of the reverse proxies in front of
	// lapse, whose X-Forwarded-For names the client address (see
	// throttle.ClientAddr). Empty trusts no header.
	TrustedProxies []netip.Prefix
	// DevInsecureCookies lets the console set its cookie without the
	// Secure attribute (and so without the __Host- prefix, which needs
	// it) on requests that came over plain HTTP to a loopback host
	// (localhost, 127.0.0.0/8, ::1), for browsers that refuse Secure
	// cookies from http://localhost. Requests to any other host still get
	// the Secure cookie. Never set it in production.
	DevInsecureCookies bool
	// IdP, when set, lets operators sign in at an OpenID Connect identity
	// provider too, with a role mapped from a claim.
	IdP *IdP
}

// Console is the web console: an [http.Handler] for paths under [Prefix].
// It is safe for concurrent use.
type Console struct {
	m        *lapse.Manager
	own      *lapse.Manager // console sessions
	throttle *throttle.Limiter
	trusted  []netip.Prefix
	keys     func(context.Context, string) (Identity, bool)
	ring     *lapse.Keyring      // nil: no keys page
	ops      lapse.OperatorStore // nil: key sign-in only
	hashing  chan struct{}       // one slot per password check running
	factors  Factors
	names    *throttle.Limiter // failed operator sign-ins per name
	metrics  prometheus.Gatherer
	log      *slog.Logger
	dev      bool
	absolute time.Duration
	mux      *http.ServeMux
	origin   *http.CrossOriginProtection
	pages    map[string]*template.Template
	idp      *IdP
}

// New returns a console for cfg. It fails with [lapse.CodeInvalid] when
// Manager or Keys is missing or when the platform policy declares a tier
// named [Tier].
func New(cfg Config) (*Console, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	idle, abs := cfg.IdleTimeout, cfg.AbsoluteTimeout
	if idle == 0 {
		idle = 15 * time.Minute
	}
	if abs == 0 {
		abs = 8 * time.Hour
	}
	var obs lapse.Observer
	if cfg.Observer != nil {
		obs = sessionsOnly{cfg.Observer}
	}
	own, err := ownManager(cfg.Manager, idle, abs, obs)
	if err != nil {
		return nil, err
	}
	c := &Console{
		m: cfg.Manager, own: own, keys: cfg.Keys, metrics: cfg.Metrics, log: cfg.Log,
		throttle: cfg.Throttle, trusted: cfg.TrustedProxies,
		dev: cfg.DevInsecureCookies, absolute: abs, idp: cfg.IdP, ring: cfg.Keyring,
		mux: http.NewServeMux(), origin: http.NewCrossOriginProtection(),
		names:   throttle.New(throttle.Config{Burst: nameBurst, Every: nameEvery, Clock: cfg.Manager.Clock()}),
		hashing: make(chan struct{}, runtime.GOMAXPROCS(0)),
	}
	if cfg.Operators != nil && cfg.Factors != nil {
		c.ops, c.factors = cfg.Operators, cfg.Factors
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.throttle == nil {
		c.throttle = throttle.New(throttle.Config{Clock: cfg.Manager.Clock()})
	}
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

// validate checks what New needs of cfg.
func (cfg *Config) validate() error {
	switch {
	case cfg.Manager == nil:
		return lapse.Errorf(lapse.CodeInvalid, "console.New: Config.Manager is required")
	case cfg.Keys == nil:
		return lapse.Errorf(lapse.CodeInvalid, "console.New: Config.Keys is required")
	}
	if cfg.IdP != nil {
		if err := cfg.IdP.validate(); err != nil {
			return lapse.Errorf(lapse.CodeInvalid, "console.New: %v", err)
		}
		if _, ok := cfg.Manager.Store().(lapse.ReplayGuard); !ok {
			return lapse.Errorf(lapse.CodeInvalid, "console.New: the store keeps no single-use keys (lapse.ReplayGuard), which the identity provider's back-channel logout needs")
		}
	}
	if _, ok := cfg.Manager.Policy().Tiers[Tier]; ok {
		return lapse.Errorf(lapse.CodeInvalid, "console.New: the policy declares tier %q, which console sessions use; rename it", Tier)
	}
	return nil
}

func (c *Console) routes() {
	c.mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", staticFiles()))
	c.mux.HandleFunc("GET /console/signin", c.signInPage)
	c.mux.HandleFunc("POST /console/signin", c.signIn)
	if c.idp != nil {
		c.mux.HandleFunc("GET "+IdPStartPath, c.idpStart)
		c.mux.HandleFunc("GET "+IdPCallbackPath, c.idpCallback)
		c.mux.HandleFunc("POST "+IdPLogoutPath, c.idpLogout)
	}
	c.mux.Handle("POST /console/signout", c.auth(c.signOut))
	c.mux.Handle("GET /console/{$}", c.auth(func(w http.ResponseWriter, r *http.Request, a *access) error {
		http.Redirect(w, r, Prefix+"sessions", http.StatusSeeOther)
		return nil
	}))
	c.mux.Handle("GET /console/sessions", c.auth(c.sessionsPage))
	c.mux.Handle("GET /console/sessions/{id}", c.auth(c.sessionPage))
	c.mux.Handle("POST /console/sessions/{id}/revoke", c.authAs(RoleOperator, c.revokeSession))
	c.mux.Handle("GET /console/revoke-subject", c.authAs(RoleOperator, c.revokeSubjectPage))
	c.mux.Handle("POST /console/revoke-subject", c.authAs(RoleOperator, c.revokeSubject))
	c.mux.Handle("GET /console/policy", c.auth(c.policyPage))
	c.mux.Handle("GET /console/audit", c.auth(c.auditPage))
	c.mux.Handle("POST /console/audit/verify", c.auth(c.verifyChain))
	c.mux.Handle("GET /console/charts", c.auth(c.chartsPage))
	c.mux.Handle("GET /console/operators", c.authAs(RoleAdmin, c.operatorsPage))
	c.mux.Handle("POST /console/operators/{id}/disable", c.authAs(RoleAdmin, c.disableOperator))
	if c.ring != nil {
		c.mux.Handle("GET /console/keys", c.authAs(RoleAdmin, c.keysPage))
		c.mux.Handle("POST /console/keys/{id}/revoke", c.authAs(RoleAdmin, c.revokeKey))
	}
	c.mux.Handle("/console/", c.auth(func(w http.ResponseWriter, r *http.Request, a *access) error {
		return errNotFound
	}))
}

// ServeHTTP serves the console's pages, with headers that keep them out
// of caches and frames and allow no script.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, "/console/static/") {
		h.Set("Cache-Control", "no-store")
	}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := c.origin.Check(r); err != nil {
			c.fail(w, r, nil, errCrossSite)
			return
		}
	}
	c.mux.ServeHTTP(w, r)
}

// access is what an authenticated request carries: the console session,
// who holds it, and the synchronizer token its forms must return.
type access struct {
	session *lapse.Session
	who     Identity
	csrf    string
	// own is the request's context before it was bound to the
	// operator's tenant: the console's own sessions belong to no tenant,
	// so ending the operator's own session needs it.
	own context.Context
}

// handler is a page or action of a signed-in operator. An error it
// returns is shown as an error page.
type handler func(w http.ResponseWriter, r *http.Request, a *access) error

// auth runs h for a request with a valid console session of any role.
func (c *Console) auth(h handler) http.Handler { return c.authAs(RoleViewer, h) }

// authAs runs h for a request with a valid console session whose role
// allows need, and for a POST also a valid synchronizer token. A request
// without a session is sent to the sign-in page, one whose role falls
// short is refused (403); the action it asked for is not taken. h runs
// with a context bound to the operator's tenant ([lapse.WithTenant]), so
// the platform's manager reaches no other tenant's sessions, and naming
// the operator ([lapse.WithActor]), so their events carry their name.
func (c *Console) authAs(need Role, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := c.session(r)
		if err != nil {
			c.toSignIn(w, r, err)
			return
		}
		if r.Method == http.MethodPost && !validCSRF(r.PostFormValue("csrf"), a.csrf) {
			c.fail(w, r, a, errCSRF)
			return
		}
		if !a.who.Role.Allows(need) {
			c.fail(w, r, a, errRole(need))
			return
		}
		a.own = r.Context()
		ctx := lapse.WithActor(lapse.WithTenant(r.Context(), a.who.Tenant), a.who.Actor, a.who.Name)
		r = r.WithContext(ctx)
		if err := h(w, r, a); err != nil {
			c.fail(w, r, a, err)
		}
	})
}

// Errors shown to the operator as they are.
var (
	errNotFound  = &pageError{http.StatusNotFound, "Not found", "There is no such page in the console."}
	errCrossSite = &pageError{http.StatusForbidden, "Refused: cross-site request",
		"This request came from another site, so the console did not act on it. Open the console itself and try again."}
	errCSRF = &pageError{http.StatusForbidden, "Refused: the form expired",
		"This form was not issued by your current console session (it is older than your sign-in, or came from elsewhere), so the console did not act on it. Reload the page and try again."}
)

// pageError is an error with the status and text the operator sees.
type pageError struct {
	status int
	title  string
	text   string
}

func (e *pageError) Error() string { return e.title + ": " + e.text }

// errRole is the refusal of an action that needs a role the operator
// does not have.
func errRole(need Role) *pageError {
	return &pageError{http.StatusForbidden, "Refused: your role does not allow this",
		fmt.Sprintf("This needs the %s role. Ask an admin of this console if you should have it.", need)}
}

// pageTitles name the lapse errors an operator may meet.
var pageTitles = map[lapse.Code]string{
	lapse.CodeSessionNotFound:  "No such session",
	lapse.CodeInvalid:          "Invalid request",
	lapse.CodeStoreUnavailable: "The session store is unavailable",
}

// fail shows err as an error page: a [*pageError] as it is, a lapse
// error with the status lapse's HTTP API answers its code with (an
// unknown session is a 404 here, as the API's routes by id have it) and
// its message; anything else, and any failure of the server, is logged.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, a *access, err error) {
	var pe *pageError
	if !errors.As(err, &pe) {
		code := lapse.ErrorCode(err)
		pe = &pageError{problem.Status(code), "Something went wrong", lapse.ErrorMessage(err)}
		if title, ok := pageTitles[code]; ok {
			pe.title = title
		}
		if code == lapse.CodeSessionNotFound {
			pe.status = http.StatusNotFound
		}
		if pe.status >= 500 {
			c.log.Error("console", "path", r.URL.Path, "err", err)
		}
	}
	v := &errorView{base: c.base(r, a, pe.title, ""), Text: pe.text}
	c.render(w, pe.status, "error", v)
}

type errorView struct {
	base
	Text string
}

// base is what every page shows: its title, the navigation, and the
// operator's console session.
type base struct {
	Title   string
	Nav     string
	CSRF    string
	Session *lapse.Session
	// Who holds the session; CanRevoke says whether their role may
	// revoke, so the page offers only what they may do.
	Who       Identity
	CanRevoke bool
	// CanManage says whether the operators page is theirs: an admin of
	// the whole platform, on a console with named operators. CanKeys says
	// whether the API keys page is: an admin, on a console with a keyring.
	CanManage bool
	CanKeys   bool
	Now       time.Time
	Notice    string
}

func (c *Console) base(r *http.Request, a *access, title, nav string) base {
	b := base{Title: title, Nav: nav, Now: c.m.Clock().Now()}
	if a != nil {
		b.CSRF, b.Session, b.Who = a.csrf, a.session, a.who
		b.CanRevoke = a.who.Role.Allows(RoleOperator)
		b.CanManage = a.who.Role.Allows(RoleAdmin) && a.who.Tenant == "" && c.ops != nil
		b.CanKeys = a.who.Role.Allows(RoleAdmin) && c.ring != nil
	}
	return b
}

// render executes the named page into a buffer, then writes it, so that
// a template error becomes a clean 500.
func (c *Console) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		c.log.Error("console: rendering a page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(files, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// staticFiles serves the embedded style sheet, cached for a day.
func staticFiles() http.Handler {
	sub, _ := fs.Sub(files, "static")
	fsrv := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		fsrv.ServeHTTP(w, r)
	})
}

// localPath returns p if it is a path inside the console, so that a
// redirect target taken from a form or a query cannot lead elsewhere,
// and fallback otherwise.
func localPath(p, fallback string) string {
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, Prefix) ||
		strings.Contains(u.Path, "..") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return fallback
	}
	return u.RequestURI()
}

// timeout bounds the store work of one page.
func timeout(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 20*time.Second)
}

// ownManager returns the manager of the console's own sessions, in m's
// store: the one tier [Tier], lapse's reserved subjects, and no cache,
// so that a console session revoked anywhere is refused at once.
func ownManager(m *lapse.Manager, idle, abs time.Duration, obs lapse.Observer) (*lapse.Manager, error) {
	policy := &lapse.Policy{
		DefaultTier: Tier,
		Tiers:       map[string]lapse.Tier{Tier: {IdleTimeout: idle, AbsoluteTimeout: abs, WarnBefore: min(2*time.Minute, idle/2)}},
	}
	return lapse.New(lapse.Config{Store: m.Store(), Policy: policy, Clock: m.Clock(), CacheSize: -1, Reserved: true, Observer: obs})
}

// sessionsOnly passes on the sessions created and ended, not the
// verifies: the charts show the platform's verifications.
type sessionsOnly struct{ lapse.Observer }

func (sessionsOnly) Verified(lapse.Code, time.Duration) {}
