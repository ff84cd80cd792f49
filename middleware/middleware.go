// Package middleware puts lapse sessions into a net/http app: it reads
// the session cookie, verifies the session (recording the user's
// activity), attaches it to the request's context and enforces a route's
// assurance requirements, answering pages with a redirect and APIs with
// 401 or 403 problem+json. It issues the session cookie (__Host- prefixed,
// Secure, HttpOnly, SameSite=Lax by default), rotates it on login and on
// step-up, and protects state-changing requests of cookie-authenticated
// routes against cross-site request forgery.
//
// A typical wiring:
//
//	mw, err := middleware.New(middleware.Config{Manager: m})
//	mux.Handle("GET /documents", mw.Page(middleware.Requirement{})(documents))
//	mux.Handle("GET /billing", mw.Page(middleware.Requirement{AAL: 2, MaxAuthAge: 15 * time.Minute})(billing))
//	mux.Handle("POST /api/notes", mw.API(middleware.Requirement{})(saveNote))
//	mux.Handle("POST /signin", mw.SameOrigin(signIn)) // calls mw.Login after checking the password
//
// Handlers read the session with [Session] and put [CSRFToken] into their
// forms.
package middleware

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/dbsc"
	"github.com/lapsehq/lapse/problem"
)

// Names of the CSRF token's form field and header.
const (
	// CSRFField is the form field a state-changing form carries the
	// token in: <input type="hidden" name="csrf_token" value="...">.
	CSRFField = "csrf_token"
	// CSRFHeader is the header a script sends the token in instead.
	CSRFHeader = "X-CSRF-Token"
)

// The middleware answers with the session codes of lapse
// ([lapse.CodeSessionNotFound], [lapse.CodeSessionExpiredIdle],
// [lapse.CodeSessionExpiredAbsolute], [lapse.CodeSessionRevoked],
// [lapse.CodeStepUpRequired]) and, for refused state changes,
// [problem.CodeCrossOrigin] and [problem.CodeCSRFToken].

// Config configures a [Middleware]. Manager is required; every other zero
// value is a documented default.
type Config struct {
	// Manager verifies, creates and ends sessions.
	Manager *lapse.Manager

	// CookieName is the session cookie's name; "" means "__Host-lapse",
	// or "lapse" with InsecureDevCookie. A name with the __Host- or
	// __Secure- prefix is refused with InsecureDevCookie, since browsers
	// drop such a cookie when it is not Secure.
	CookieName string
	// SameSite is the cookie's SameSite attribute; 0 means Lax, which
	// keeps the cookie on top-level links from other sites (so a link to
	// the app still finds the user signed in) and off cross-site
	// sub-requests and form posts. None needs a Secure cookie.
	SameSite http.SameSite
	// Persistent makes the cookie outlive the browser's session: it gets
	// the session's absolute deadline as Expires. By default it is a
	// browser-session cookie, gone when the browser closes (the
	// server-side session still ends on its own deadlines).
	Persistent bool
	// InsecureDevCookie issues the cookie without the Secure attribute,
	// and so without the __Host- prefix, for local development over plain
	// HTTP. It works only for requests to a loopback host (localhost,
	// 127.0.0.1, ::1) over plain HTTP: Login and StepUp fail elsewhere.
	// Never set it in production.
	InsecureDevCookie bool

	// SignInURL is where a page route sends a request without a session,
	// with ?next= the requested path; "" means "/signin".
	SignInURL string
	// SignedOutURL is where a page route sends a request whose session
	// has ended, with ?reason= (idle_timeout, absolute_timeout, revoked)
	// and ?next=; "" means SignInURL.
	SignedOutURL string
	// StepUpURL is where a page route sends a session that lacks the
	// route's assurance, with ?next=; "" means "/stepup".
	StepUpURL string

	// CSRFKey signs the CSRF tokens; it must be at least 32 bytes. nil
	// means a random key made by New, which is fine for one process; give
	// every instance behind a load balancer the same key.
	CSRFKey []byte
	// TrustedOrigins are other origins ("https://admin.example.com")
	// allowed to send state-changing requests.
	TrustedOrigins []string

	// ClientIP returns the address recorded with a new session; nil means
	// the host of the request's RemoteAddr. Behind a reverse proxy, read
	// the proxy's header here.
	ClientIP func(*http.Request) string
	// Logger receives internal errors (a store that does not answer);
	// nil discards them.
	Logger *slog.Logger

	// DeviceBinding binds sessions to the browser's device key (DBSC) in
	// the tiers whose device_binding is not off: Login offers it, every
	// route checks the bound cookie, and [Middleware.Device] answers the
	// protocol's requests under DevicePrefix. It needs a Secure cookie
	// over HTTPS: browsers register DBSC sessions only there.
	DeviceBinding bool
	// DevicePrefix is where the device binding's routes live; "" means
	// "/.lapse/dbsc/".
	DevicePrefix string
}

// Middleware authenticates requests by their lapse session cookie. It is
// safe for concurrent use.
type Middleware struct {
	m        *lapse.Manager
	cookie   string
	sameSite http.SameSite
	persist  bool
	insecure bool
	signIn   string
	signOut  string
	stepUp   string
	key      []byte
	origins  *http.CrossOriginProtection
	clientIP func(*http.Request) string
	log      *slog.Logger
	dev      *dbsc.Binder // nil without DeviceBinding
}

// New returns a middleware for cfg. It fails when Manager is missing, the
// CSRF key is short, a trusted origin is malformed, or the cookie settings
// contradict each other.
func New(cfg Config) (*Middleware, error) {
	if cfg.Manager == nil {
		return nil, errors.New("middleware: Config.Manager is required")
	}
	if err := cfg.defaultCookie(); err != nil {
		return nil, err
	}
	switch {
	case cfg.CSRFKey == nil:
		cfg.CSRFKey = make([]byte, 32)
		rand.Read(cfg.CSRFKey)
	case len(cfg.CSRFKey) < 32:
		return nil, errors.New("middleware: Config.CSRFKey must be at least 32 bytes")
	}
	cfg.SignInURL = cmp.Or(cfg.SignInURL, "/signin")
	cfg.SignedOutURL = cmp.Or(cfg.SignedOutURL, cfg.SignInURL)
	cfg.StepUpURL = cmp.Or(cfg.StepUpURL, "/stepup")
	if cfg.ClientIP == nil {
		cfg.ClientIP = remoteHost
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	mw := &Middleware{
		m: cfg.Manager, cookie: cfg.CookieName, sameSite: cfg.SameSite, persist: cfg.Persistent,
		insecure: cfg.InsecureDevCookie, signIn: cfg.SignInURL, signOut: cfg.SignedOutURL, stepUp: cfg.StepUpURL,
		key: cfg.CSRFKey, origins: http.NewCrossOriginProtection(), clientIP: cfg.ClientIP, log: cfg.Logger,
	}
	for _, o := range cfg.TrustedOrigins {
		if err := mw.origins.AddTrustedOrigin(o); err != nil {
			return nil, errors.New("middleware: trusted origin " + o + ": " + err.Error())
		}
	}
	if cfg.DeviceBinding {
		if cfg.InsecureDevCookie {
			return nil, errors.New("middleware: DeviceBinding needs HTTPS; it cannot go with InsecureDevCookie")
		}
		dev, err := dbsc.New(dbsc.Config{Manager: cfg.Manager, Prefix: cfg.DevicePrefix, Token: mw.token, Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		mw.dev = dev
	}
	return mw, nil
}

// Device returns the device binding's protocol handler, to mount at its
// prefix (mux.Handle(d.Prefix(), d.Handler())), or nil without
// DeviceBinding.
func (mw *Middleware) Device() *dbsc.Binder { return mw.dev }

// defaultCookie fills in the cookie's name and SameSite, and refuses
// settings that contradict each other.
func (cfg *Config) defaultCookie() error {
	if cfg.CookieName == "" {
		cfg.CookieName = "__Host-lapse"
		if cfg.InsecureDevCookie {
			cfg.CookieName = "lapse"
		}
	}
	if cfg.InsecureDevCookie && (strings.HasPrefix(cfg.CookieName, "__Host-") || strings.HasPrefix(cfg.CookieName, "__Secure-")) {
		return errors.New("middleware: a __Host- or __Secure- cookie must be Secure; choose another CookieName with InsecureDevCookie")
	}
	if cfg.SameSite == 0 {
		cfg.SameSite = http.SameSiteLaxMode
	}
	if cfg.SameSite == http.SameSiteNoneMode && cfg.InsecureDevCookie {
		return errors.New("middleware: SameSite=None needs a Secure cookie; it cannot go with InsecureDevCookie")
	}
	return nil
}

// CookieName returns the name of the session cookie, for a lapse HTTP
// API that must read the same cookie.
func (mw *Middleware) CookieName() string { return mw.cookie }

// Requirement is what a route needs beyond an active session. The
// session's tier may demand more (its RequireAAL and MaxAuthAge always
// apply); a requirement only tightens them.
type Requirement struct {
	// AAL is the authenticator assurance level the route needs (1-3).
	AAL int
	// MaxAuthAge is how long ago the last authentication may be.
	MaxAuthAge time.Duration
	// NoTouch makes a request not count as the user's activity: for a
	// status poll that must not keep the session alive.
	NoTouch bool
	// StepUp marks the route that raises assurance (the step-up page):
	// it needs an active session but no assurance at all, not even the
	// tier's, and records no activity.
	StepUp bool
}

// mode is how a route answers a request it refuses.
type mode int

const (
	modePage     mode = iota // redirect
	modeAPI                  // problem+json
	modeOptional             // go on without a session
)

// Page returns middleware for routes that serve pages: a request without
// a valid session is redirected to SignInURL (or SignedOutURL with the
// reason, clearing the cookie), one that lacks req's assurance to
// StepUpURL, both with ?next= the requested path. A state-changing
// request must come from this site and carry the session's CSRF token
// (403 otherwise). The session reaches the handler through [Session].
func (mw *Middleware) Page(req Requirement) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return mw.handler(next, req, modePage) }
}

// API returns middleware for routes that answer scripts: a request
// without a valid session gets 401 and one that lacks req's assurance 403
// step_up_required, as application/problem+json with lapse's codes (the
// shapes of lapse's HTTP API). CSRF rules are those of [Middleware.Page].
func (mw *Middleware) API(req Requirement) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return mw.handler(next, req, modeAPI) }
}

// Optional attaches the session, when the request has a valid one, and
// serves the request either way: for public pages that show a signed-in
// user more. It records activity like [Middleware.Page] and applies the
// same CSRF rules to a request that has a session.
func (mw *Middleware) Optional(next http.Handler) http.Handler {
	return mw.handler(next, Requirement{}, modeOptional)
}

// SameOrigin refuses state-changing requests that a browser marked as
// cross-site (by Sec-Fetch-Site, or an Origin that is not the request's
// host nor a trusted origin) with 403. Wrap the routes that change state
// without a session, such as the sign-in form (login CSRF) and sign-out.
func (mw *Middleware) SameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := mw.origins.Check(r); err != nil {
			mw.refuseCSRF(w, r, modePage, problem.CodeCrossOrigin)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type ctxKey struct{}

type attached struct {
	s    lapse.Session
	csrf string
}

// Session returns the session [Middleware.Page], [Middleware.API] or
// [Middleware.Optional] attached to ctx, and false when there is none.
func Session(ctx context.Context) (lapse.Session, bool) {
	a, ok := ctx.Value(ctxKey{}).(*attached)
	if !ok {
		return lapse.Session{}, false
	}
	return a.s, true
}

// CSRFToken returns the CSRF token of the session attached to ctx, for a
// form's hidden [CSRFField] or a script's [CSRFHeader]; "" when there is
// no session. It is the same for the whole life of the session, across
// step-ups, so that forms in other tabs keep working.
func CSRFToken(ctx context.Context) string {
	if a, ok := ctx.Value(ctxKey{}).(*attached); ok {
		return a.csrf
	}
	return ""
}

func (mw *Middleware) handler(next http.Handler, req Requirement, md mode) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(lapse.WithClient(r.Context(), mw.client(r)))
		tok := mw.token(r)
		if tok == "" {
			if md == modeOptional {
				next.ServeHTTP(w, r)
				return
			}
			mw.refuse(w, r, md, lapse.Errorf(lapse.CodeSessionNotFound, "sign in first"), false)
			return
		}
		unsafe := !safeMethod(r.Method)
		if unsafe {
			if err := mw.origins.Check(r); err != nil {
				mw.refuseCSRF(w, r, md, problem.CodeCrossOrigin)
				return
			}
			// Check the token before the session is touched, so that a
			// forged request cannot even keep the session alive.
			s, err := mw.m.Current(r.Context(), tok)
			if err != nil && md != modeOptional {
				mw.refuse(w, r, md, err, true)
				return
			}
			if err != nil {
				// A public page: the token could not be checked, so the
				// request goes on signed out rather than unchecked.
				next.ServeHTTP(w, r)
				return
			}
			if !mw.validCSRF(r, s.ID) {
				mw.refuseCSRF(w, r, md, problem.CodeCSRFToken)
				return
			}
		}
		s, err := mw.verify(r, tok, req)
		if err != nil {
			if md == modeOptional {
				// A public page: go on as if signed out.
				if code := lapse.ErrorCode(err); endedCode(code) || deviceCode(code) {
					mw.clearCookie(w)
				} else if code != lapse.CodeStepUpRequired {
					mw.log.ErrorContext(r.Context(), "session check failed", "path", r.URL.Path, "code", code, "err", err)
				}
				w.Header().Set("Cache-Control", "no-store")
				next.ServeHTTP(w, r)
				return
			}
			mw.refuse(w, r, md, err, true)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Add("Vary", "Cookie")
		ctx := context.WithValue(r.Context(), ctxKey{}, &attached{s: s, csrf: mw.csrfToken(s.ID)})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// verify verifies the session of tok for a route that needs req, then
// its device binding.
func (mw *Middleware) verify(r *http.Request, tok string, req Requirement) (lapse.Session, error) {
	var (
		s   lapse.Session
		err error
	)
	if req.StepUp {
		s, err = mw.m.Current(r.Context(), tok)
	} else {
		// With device binding, activity is recorded only once the bound
		// cookie passed: a stolen cookie without it keeps nothing alive.
		noTouch := req.NoTouch || mw.dev != nil
		s, err = mw.m.Verify(r.Context(), tok, lapse.VerifyOptions{NoTouch: noTouch, RequireAAL: req.AAL, MaxAuthAge: req.MaxAuthAge})
	}
	if err != nil || mw.dev == nil {
		return s, err
	}
	if err := mw.dev.Check(r, &s); err != nil {
		return s, err
	}
	if !req.StepUp && !req.NoTouch {
		return mw.m.Touch(r.Context(), tok)
	}
	return s, nil
}

// token returns the session cookie's value, or "".
func (mw *Middleware) token(r *http.Request) string {
	c, err := r.Cookie(mw.cookie)
	if err != nil {
		return ""
	}
	return c.Value
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// refuse answers a request whose session is missing, ended or lacking.
// hadCookie says the request presented a token that did not verify.
func (mw *Middleware) refuse(w http.ResponseWriter, r *http.Request, md mode, err error, hadCookie bool) {
	code := lapse.ErrorCode(err)
	ended := endedCode(code)
	if (ended || deviceCode(code)) && hadCookie {
		mw.clearCookie(w)
	}
	switch {
	case code == lapse.CodeStepUpRequired && md == modePage:
		redirect(w, r, mw.stepUp, "")
	case deviceCode(code) && md == modePage:
		redirect(w, r, mw.signOut, string(code))
	case ended && md == modePage:
		if reason := ReasonOf(err); reason != "" && hadCookie {
			redirect(w, r, mw.signOut, reason)
		} else {
			redirect(w, r, mw.signIn, "")
		}
	default:
		if !ended && !deviceCode(code) && code != lapse.CodeStepUpRequired {
			mw.log.ErrorContext(r.Context(), "session check failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
		}
		problem.Write(w, problem.New(0, code, lapse.ErrorMessage(err), err))
	}
}

// deviceCode reports whether code refuses a session for its device
// binding: unbound where the tier requires it, or without its bound
// cookie. The session cookie alone is then worth nothing, so it is
// cleared like an ended session's.
func deviceCode(code lapse.Code) bool {
	return code == lapse.CodeDeviceUnbound || code == lapse.CodeDeviceProofRequired
}

func endedCode(code lapse.Code) bool {
	return code == lapse.CodeSessionNotFound || code == lapse.CodeSessionExpiredIdle ||
		code == lapse.CodeSessionExpiredAbsolute || code == lapse.CodeSessionRevoked
}

// ReasonOf returns the sign-out reason of a session error, as the
// signed-out page and the browser client name it: why the session ended
// (its end reason, such as "idle_timeout", "absolute_timeout", "logout"
// or "admin"), "revoked" for a revoke that does not say why, or "" for
// any other error.
func ReasonOf(err error) string {
	code := lapse.ErrorCode(err)
	if !endedCode(code) || code == lapse.CodeSessionNotFound {
		return ""
	}
	var le *lapse.Error
	if errors.As(err, &le) && le.Reason != "" {
		return string(le.Reason)
	}
	switch code {
	case lapse.CodeSessionExpiredIdle:
		return string(lapse.ReasonIdleTimeout)
	case lapse.CodeSessionExpiredAbsolute:
		return string(lapse.ReasonAbsoluteTimeout)
	}
	return "revoked"
}

func redirect(w http.ResponseWriter, r *http.Request, to, reason string) {
	q := url.Values{}
	if reason != "" {
		q.Set("reason", reason)
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		q.Set("next", r.URL.RequestURI())
	} else if ref := localReferer(r); ref != "" {
		q.Set("next", ref)
	}
	sep := "?"
	if strings.Contains(to, "?") {
		sep = "&"
	}
	if len(q) > 0 {
		to += sep + q.Encode()
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// localReferer returns the path of a same-host Referer, or "".
func localReferer(r *http.Request) string {
	u, err := url.Parse(r.Referer())
	if err != nil || u.Host != r.Host {
		return ""
	}
	return LocalPath(u.RequestURI())
}

// LocalPath returns p if it is a path on this site, and "/" otherwise:
// use it on a ?next= parameter before redirecting to it, so that the
// sign-in form is no open redirect. "/x" passes; "//evil.example",
// "/\evil.example", "https://evil.example", "" and any path with a
// control character ("/\v/evil.example") do not: browsers drop some
// control characters from a URL (so "/\t/evil.example" reads as
// "//evil.example"), user agents differ on the others, and none belongs
// in a path.
func LocalPath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsFunc(p, unicode.IsControl) {
		return "/"
	}
	return p
}

func (mw *Middleware) refuseCSRF(w http.ResponseWriter, r *http.Request, md mode, code lapse.Code) {
	msg := "this request came from another site"
	if code == problem.CodeCSRFToken {
		msg = "this form has expired or did not come from this site: reload the page and try again"
	}
	if md == modeAPI {
		problem.Write(w, problem.New(0, code, msg, nil))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusForbidden)
	w.Write([]byte("Forbidden: " + msg + ".\n"))
}

// csrfToken derives the CSRF token of session id: an HMAC under the
// middleware's key, so it needs no storage and cannot be computed from
// the (public) session id alone.
func (mw *Middleware) csrfToken(id string) string {
	mac := hmac.New(sha256.New, mw.key)
	mac.Write([]byte("lapse-csrf\x00"))
	mac.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (mw *Middleware) validCSRF(r *http.Request, id string) bool {
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		got = r.PostFormValue(CSRFField)
	}
	want := mw.csrfToken(id)
	return len(got) == len(want) && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// client returns the client that sent r, for the manager's signals:
// the address ClientIP reads and the User-Agent.
func (mw *Middleware) client(r *http.Request) lapse.Client {
	c := lapse.Client{UserAgent: r.UserAgent()}
	if a, err := netip.ParseAddr(mw.clientIP(r)); err == nil {
		c.IP = a.Unmap()
	}
	return c
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return host
}
