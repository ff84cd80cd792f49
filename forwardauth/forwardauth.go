// Package forwardauth puts lapse in front of any app: a reverse proxy
// (nginx auth_request, Caddy forward_auth, Traefik ForwardAuth, Envoy
// ext_authz) asks it, on every request, whether the request's session
// may go on, and lapse answers by the app's per-route rules: which
// routes are public, which need a recent second factor or a stricter
// tier, and which requests count as the user's activity.
//
// [Gateway.Register] adds the two endpoints:
//
//   - GET /v1/auth-request, for nginx's auth_request: 200 (allow), 401
//     (no valid session) or 403 (a step-up is needed, or the request is
//     refused), with X-Lapse-Redirect naming where to send a browser.
//   - GET /v1/forward-auth, for Traefik, Caddy and Envoy: the same
//     decision, but a navigation that must sign in or step up gets 302
//     to that page, and other requests 401 or 403 problem+json.
//
// On 200 both set X-Lapse-Subject, X-Lapse-Tenant, X-Lapse-Session,
// X-Lapse-AAL, X-Lapse-Tier and X-Lapse-Warn-At for the proxy to pass to
// the app. Only proxies may call them: a caller must come from
// [Config.TrustedProxies] and, when [Config.ProxyKey] is set, send its
// key in X-Lapse-Proxy-Key. See docs/proxy.md.
//
// The gateway also serves the browser side's needs: [Gateway.Session]
// and [Gateway.StepUp] read and replace the session cookie, for the
// pages lapse serves on the app's origin (the step-up page).
package forwardauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/dbsc"
	"github.com/lapsehq/lapse/problem"
	"github.com/lapsehq/lapse/throttle"
)

// Headers of the gateway's answers, with the spelling the proxy configs
// name. They are written exactly so, not in Go's canonical form.
const (
	HeaderRedirect = "X-Lapse-Redirect"
	HeaderSubject  = "X-Lapse-Subject"
	HeaderTenant   = "X-Lapse-Tenant"
	HeaderSession  = "X-Lapse-Session"
	HeaderAAL      = "X-Lapse-AAL"
	HeaderTier     = "X-Lapse-Tier"
	HeaderWarnAt   = "X-Lapse-Warn-At"
	// HeaderProxyKey carries the proxy's key, when one is configured.
	HeaderProxyKey = "X-Lapse-Proxy-Key"
)

// The gateway refuses with the session codes of lapse and, for what a
// step-up cannot fix, [problem.CodeTierRequired],
// [problem.CodeUntrustedProxy] and [problem.CodeNoOriginalRequest].

// Prefix is the path prefix on the app's origin that the proxy routes to
// lapse itself: the browser client and its session routes, the step-up
// page and the signed-out page live under it, so that the session cookie
// goes with their requests. lapse serves nothing else under it: neither
// the admin API nor the gateway's endpoints.
const Prefix = "/.lapse"

// Defaults of [Config].
const (
	DefaultCookie    = "lapse"
	DefaultSignInURL = "/login"
	DefaultStepUpURL = Prefix + "/stepup"
)

// Config configures a [Gateway]. Manager is required; every other zero
// value is a documented default.
type Config struct {
	// Manager verifies the sessions.
	Manager *lapse.Manager
	// Cookie is the name of the session cookie on the app's domain;
	// "" means DefaultCookie ("lapse").
	Cookie string
	// SignInURL is where a signed-out navigation goes, with
	// ?rd=<original URL>: a path on the app's origin or an absolute URL;
	// "" means DefaultSignInURL ("/login").
	SignInURL string
	// StepUpURL is where a navigation that needs a step-up goes, with
	// ?rd=; "" means DefaultStepUpURL ("/.lapse/stepup", lapse's own
	// page).
	StepUpURL string
	// Rules are the per-route rules, first match wins.
	Rules []Rule
	// TrustedProxies are the addresses allowed to call the endpoints; nil
	// means loopback only (127.0.0.0/8 and ::1).
	TrustedProxies []netip.Prefix
	// ProxyKey, when set, must accept the key a caller sends in
	// X-Lapse-Proxy-Key (return nil); nil asks for no key. It must compare
	// in constant time. A refusal with [problem.CodeInsufficientScope] (a
	// valid API key without the scope the gateway needs) is answered with
	// that code, one with [lapse.CodeStoreUnavailable] as the store's
	// failure, any other as [problem.CodeUntrustedProxy].
	ProxyKey func(ctx context.Context, key string) error
	// Logger receives refused callers and store failures; nil discards.
	Logger *slog.Logger
	// DeviceBinding checks the device binding (DBSC) of the sessions of
	// tiers whose device_binding is not off, and answers the protocol's
	// registration and refresh under Prefix + "/dbsc/" ([Gateway.Device]).
	// lapse serve sets it when a tier binds devices.
	DeviceBinding bool
}

// Validate reports the configuration's problems as a [*lapse.PolicyError]
// whose paths are the keys of the forward_auth section (such as
// "forward_auth.rules[2].tier"). p, when not nil, is the policy a rule's
// tier floor must name a tier of.
func (cfg *Config) Validate(p *lapse.Policy) error {
	var probs []*lapse.FieldError
	bad := func(path, format string, args ...any) {
		probs = append(probs, &lapse.FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if cfg.Cookie != "" && (&http.Cookie{Name: cfg.Cookie, Value: "x"}).Valid() != nil {
		bad("forward_auth.cookie", "%q is not a cookie name", cfg.Cookie)
	}
	for key, u := range map[string]string{"forward_auth.signin_url": cfg.SignInURL, "forward_auth.stepup_url": cfg.StepUpURL} {
		if u != "" {
			if _, err := parseTarget(u); err != nil {
				bad(key, "%v", err)
			}
		}
	}
	for i := range cfg.Rules {
		cfg.Rules[i].validate(ruleKey(i), p, bad)
	}
	if len(probs) > 0 {
		return &lapse.PolicyError{Problems: probs}
	}
	return nil
}

// parseTarget parses a sign-in or step-up URL: a path on the app's
// origin, or an absolute http(s) URL.
func parseTarget(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, errors.New("is not a URL")
	case u.IsAbs() && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Fragment == "":
		return u, nil
	case !u.IsAbs() && u.Host == "" && strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") && u.Fragment == "":
		return u, nil
	}
	return nil, errors.New("must be a path such as /login or an absolute http(s) URL, without a fragment")
}

// Gateway answers a reverse proxy's questions. It is safe for
// concurrent use.
type Gateway struct {
	m       *lapse.Manager
	cookie  string
	signIn  *url.URL
	stepUp  *url.URL
	rules   []Rule
	proxies []netip.Prefix
	key     func(context.Context, string) error
	log     *slog.Logger
	dev     *dbsc.Binder // nil without DeviceBinding
}

// New returns a gateway for cfg. It fails if Manager is missing or
// [Config.Validate] does.
func New(cfg Config) (*Gateway, error) {
	if cfg.Manager == nil {
		return nil, errors.New("forwardauth: Config.Manager is required")
	}
	if err := cfg.Validate(cfg.Manager.Policy()); err != nil {
		return nil, err
	}
	g := &Gateway{m: cfg.Manager, cookie: cfg.Cookie, rules: cfg.Rules, proxies: cfg.TrustedProxies, key: cfg.ProxyKey, log: cfg.Logger}
	if g.cookie == "" {
		g.cookie = DefaultCookie
	}
	g.signIn, _ = parseTarget(first(cfg.SignInURL, DefaultSignInURL))
	g.stepUp, _ = parseTarget(first(cfg.StepUpURL, DefaultStepUpURL))
	if g.proxies == nil {
		g.proxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if cfg.DeviceBinding {
		dev, err := dbsc.New(dbsc.Config{Manager: g.m, Prefix: Prefix + "/dbsc/", CookieName: g.cookie + "-bound", Token: g.token, Logger: g.log})
		if err != nil {
			return nil, err
		}
		g.dev = dev
	}
	return g, nil
}

// Device returns the device binding's protocol handler, to mount at its
// prefix on the app's origin, or nil without DeviceBinding. The OIDC
// relying party offers binding with it at sign-in.
func (g *Gateway) Device() *dbsc.Binder { return g.dev }

// Cookie returns the name of the session cookie.
func (g *Gateway) Cookie() string { return g.cookie }

// Proxies returns the addresses the gateway trusts as proxies: those of
// [Config.TrustedProxies], or loopback. Whatever serves lapse's routes
// on the app's origin (behind the same proxies) must read the browser's
// address through them too.
func (g *Gateway) Proxies() []netip.Prefix { return slices.Clone(g.proxies) }

// Register adds GET /v1/auth-request and GET /v1/forward-auth to mux,
// and /v1/forward-auth/{original path}, with any method, for Envoy's
// ext_authz, which sends the original method and appends the original
// path to the endpoint's.
func (g *Gateway) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/auth-request", g.authRequest)
	mux.HandleFunc("GET /v1/forward-auth", g.forwardAuth)
	mux.HandleFunc("/v1/forward-auth/", g.forwardAuth)
}

// outcome is what the gateway decided.
type outcome int

const (
	allow       outcome = iota
	signIn              // no valid session: 401
	stepUp              // the route needs more assurance: 403
	refuse              // refused, and no page can help: 403
	unavailable         // lapse could not decide: the store failed
)

type decision struct {
	outcome
	s        lapse.Session // with allow, unless public
	public   bool
	err      error  // the cause of a refusal
	redirect string // with signIn and stepUp
	navigate bool
}

// decide judges the request a proxy asks about.
func (g *Gateway) decide(r *http.Request) decision {
	if err := g.trusted(r); err != nil {
		if lapse.ErrorCode(err) == lapse.CodeStoreUnavailable {
			g.log.ErrorContext(r.Context(), "forward-auth: checking the proxy's key failed", "err", err)
			return decision{outcome: unavailable, err: err}
		}
		g.log.WarnContext(r.Context(), "forward-auth: refused a caller that is not a trusted proxy, or sent no valid "+HeaderProxyKey, "remote", r.RemoteAddr, "code", lapse.ErrorCode(err))
		return decision{outcome: refuse, err: err}
	}
	suffix := ""
	if rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/v1/forward-auth/"); ok {
		suffix = "/" + rest
		if r.URL.RawQuery != "" {
			suffix += "?" + r.URL.RawQuery
		}
	}
	o, ok := originalOf(r, suffix)
	if !ok {
		g.log.WarnContext(r.Context(), "forward-auth: the proxy sent no usable X-Forwarded-Uri or X-Original-URI", "remote", r.RemoteAddr)
		return decision{outcome: refuse, err: lapse.Errorf(problem.CodeNoOriginalRequest, "the proxy sent no X-Forwarded-Uri or X-Original-URI naming the original request")}
	}
	rule := g.match(&o)
	if rule.Access == AccessPublic {
		return decision{outcome: allow, public: true}
	}
	d := decision{navigate: o.navigate}
	tok := g.token(r)
	if tok == "" {
		d.outcome, d.err = signIn, lapse.Errorf(lapse.CodeSessionNotFound, "sign in first")
	} else {
		d.s, d.err = g.verify(r, tok, rule, &o)
		d.outcome = outcomeOf(d.err)
	}
	switch d.outcome {
	case signIn:
		d.redirect = redirectURL(g.signIn, &o)
	case stepUp:
		d.redirect = redirectURL(g.stepUp, &o)
	case unavailable:
		g.log.ErrorContext(r.Context(), "forward-auth: verify failed", "code", lapse.ErrorCode(d.err), "err", d.err)
	}
	return d
}

func outcomeOf(err error) outcome {
	switch lapse.ErrorCode(err) {
	case "":
		return allow
	case lapse.CodeSessionNotFound, lapse.CodeSessionExpiredIdle, lapse.CodeSessionExpiredAbsolute, lapse.CodeSessionRevoked,
		lapse.CodeDeviceUnbound, lapse.CodeDeviceProofRequired:
		return signIn
	case lapse.CodeStepUpRequired:
		return stepUp
	case problem.CodeTierRequired:
		return refuse
	}
	return unavailable
}

// defaultRule applies to a request no rule matches: a session is needed
// and the request counts as activity.
var defaultRule = Rule{Path: "/"}

func (g *Gateway) match(o *origin) *Rule {
	for i := range g.rules {
		if g.rules[i].matches(o.host, o.path) {
			return &g.rules[i]
		}
	}
	return &defaultRule
}

// verify verifies tok for r under rule, then its device binding,
// recording activity only if the rule counts the request and the session
// passed both: a stolen cookie without its bound cookie keeps nothing
// alive.
func (g *Gateway) verify(r *http.Request, tok string, rule *Rule, o *origin) (lapse.Session, error) {
	ctx := lapse.WithClient(r.Context(), g.client(r))
	touch := rule.counts(o)
	later := rule.Tier != "" || g.dev != nil // checks that must pass before the touch
	opts := lapse.VerifyOptions{NoTouch: !touch || later, RequireAAL: rule.RequireAAL, MaxAuthAge: rule.MaxAuthAge}
	s, err := g.m.Verify(ctx, tok, opts)
	if err != nil || !later {
		return s, err
	}
	if rule.Tier != "" {
		if err := g.tierFloor(&s, rule.Tier); err != nil {
			return s, err
		}
	}
	if g.dev != nil {
		if err := g.dev.Check(r, &s); err != nil {
			return s, err
		}
	}
	if touch {
		return g.m.Touch(ctx, tok) // only now that the session passed
	}
	return s, nil
}

// tierFloor checks that s's tier is floor or at least as strict as floor
// is for s's tenant.
func (g *Gateway) tierFloor(s *lapse.Session, floor string) error {
	_, f, err := g.m.Policy().Tier(s.Tenant, floor)
	if err != nil {
		return lapse.Errorf(problem.CodeTierRequired, "this needs a session of tier %s", floor)
	}
	have := s.Policy
	ok := have.IdleTimeout <= f.IdleTimeout && have.AbsoluteTimeout <= f.AbsoluteTimeout &&
		have.RequireAAL >= f.RequireAAL && (f.MaxAuthAge == 0 || (have.MaxAuthAge > 0 && have.MaxAuthAge <= f.MaxAuthAge))
	if !ok {
		return lapse.Errorf(problem.CodeTierRequired, "this needs a session of tier %s or a stricter one; this one is of tier %s", floor, s.Tier)
	}
	return nil
}

// client returns the browser behind the proxy that asks: the address
// the proxy names in X-Forwarded-For (none if it names none: the proxy's
// own address is no browser's) and the User-Agent the proxy passed on.
func (g *Gateway) client(r *http.Request) lapse.Client {
	c := lapse.Client{UserAgent: r.UserAgent()}
	if r.Header.Get("X-Forwarded-For") != "" {
		c.IP = throttle.ClientAddr(r, g.proxies)
	}
	return c
}

var errUntrusted = lapse.Errorf(problem.CodeUntrustedProxy, "only a trusted proxy may ask")

// trusted returns nil if r comes from a trusted proxy with the proxy
// key, when one is configured, and otherwise why it is refused.
func (g *Gateway) trusted(r *http.Request) error {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return errUntrusted
	}
	addr := ap.Addr().Unmap()
	in := false
	for _, p := range g.proxies {
		if p.Contains(addr) {
			in = true
			break
		}
	}
	k := r.Header.Get(HeaderProxyKey)
	switch {
	case !in || (g.key != nil && k == ""):
		return errUntrusted
	case g.key == nil:
		return nil
	}
	err = g.key(r.Context(), k)
	switch lapse.ErrorCode(err) {
	case "", problem.CodeInsufficientScope, lapse.CodeStoreUnavailable:
		return err
	}
	return errUntrusted
}

// token returns the original request's session token: from
// "Authorization: Bearer lps_…" (a Bearer token of another kind is the
// app's own business), else from the session cookie.
func (g *Gateway) token(r *http.Request) string {
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		if tok = strings.TrimSpace(tok); strings.HasPrefix(tok, lapse.TokenPrefix) {
			return tok
		}
	}
	if c, err := r.Cookie(g.cookie); err == nil {
		return c.Value
	}
	return ""
}

// redirectURL returns target with rd= the original request: its local
// path for a target on the app's origin, its absolute URL otherwise.
func redirectURL(target *url.URL, o *origin) string {
	rd := o.localURI()
	if target.IsAbs() && validHostHeader(o.authority) {
		rd = o.proto + "://" + o.authority + rd
	}
	u := *target
	q := u.Query()
	q.Set("rd", rd)
	u.RawQuery = q.Encode()
	return u.String()
}

// authRequest answers nginx's auth_request: 200, 401 or 403 and nothing
// else, since nginx turns any other status into a 500.
func (g *Gateway) authRequest(w http.ResponseWriter, r *http.Request) {
	d := g.decide(r)
	switch d.outcome {
	case allow:
		g.allow(w, &d)
	case signIn, stepUp:
		w.Header()[HeaderRedirect] = []string{d.redirect}
		writeProblem(w, d.status(), d.err)
	default:
		writeProblem(w, http.StatusForbidden, d.err)
	}
}

// forwardAuth answers Traefik, Caddy and Envoy, which pass a refusal on
// to the browser as it is: a navigation is sent to sign in or step up.
func (g *Gateway) forwardAuth(w http.ResponseWriter, r *http.Request) {
	d := g.decide(r)
	switch {
	case d.outcome == allow:
		g.allow(w, &d)
	case (d.outcome == signIn || d.outcome == stepUp) && d.navigate:
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, d.redirect, http.StatusFound)
	case d.outcome == signIn || d.outcome == stepUp:
		w.Header()[HeaderRedirect] = []string{d.redirect}
		writeProblem(w, d.status(), d.err)
	default:
		writeProblem(w, d.status(), d.err)
	}
}

func (d *decision) status() int {
	switch d.outcome {
	case signIn:
		return http.StatusUnauthorized
	case unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusForbidden
}

// allow answers 200 with the session's identity for the proxy to pass
// on. Every header is sent, empty when there is nothing to say (no
// tenant; a public route has no session): a proxy that copies a header
// the answer lacks may otherwise pass on something else (Caddy 2.6 passes
// its placeholder's name).
func (g *Gateway) allow(w http.ResponseWriter, d *decision) {
	h := w.Header()
	h["Cache-Control"] = []string{"no-store"}
	var subject, tenant, id, aal, tier, warnAt string
	if !d.public {
		s := &d.s
		subject, tenant, id, aal, tier = s.Subject, s.Tenant, s.ID, strconv.Itoa(s.AAL), s.Tier
		warnAt = s.WarnAt.UTC().Format(time.RFC3339)
	}
	h[HeaderSubject] = []string{subject}
	h[HeaderTenant] = []string{tenant}
	h[HeaderSession] = []string{id}
	h[HeaderAAL] = []string{aal}
	h[HeaderTier] = []string{tier}
	h[HeaderWarnAt] = []string{warnAt}
	w.WriteHeader(http.StatusOK)
}

// writeProblem answers err as problem+json at status, which the
// decision sets (auth_request allows 401 and 403 alone); an internal
// cause is never sent.
func writeProblem(w http.ResponseWriter, status int, err error) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lapse-session"`)
	}
	problem.Write(w, problem.New(status, lapse.ErrorCode(err), lapse.ErrorMessage(err), err))
}
