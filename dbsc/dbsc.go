// Package dbsc binds lapse sessions to the browser's device key with
// Device Bound Session Credentials (W3C WebAppSec draft "DBSC"): the
// browser keeps a private key and must prove possession of it to refresh
// a short-lived bound cookie, so a cookie copied off the machine stops
// working within that cookie's lifetime and cannot be refreshed anywhere
// else.
//
// A [Binder] is wired where lapse signs a browser in (the Go middleware,
// the forward-auth gateway, the OIDC callback): [Binder.Offer] adds the
// Secure-Session-Registration header to the sign-in response, the
// handler of [Binder.Handler] answers the registration and refresh
// requests under its prefix, and [Binder.Check] judges each request of a
// verified session. The rules (off, preferred, required; what a theft
// does; the cookie's lifetime) are the tier's ([lapse.Tier.Device]).
package dbsc

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/problem"
)

// DefaultCookieName is the bound cookie's name unless [Config] sets one.
const DefaultCookieName = "__Host-lapse-bound"

// Config configures a [Binder]. Manager and Token are required.
type Config struct {
	Manager *lapse.Manager
	// Prefix is the path under which the handler answers "register" and
	// "refresh", same-origin with the pages it protects; "" means
	// "/.lapse/dbsc/". It begins and ends with "/".
	Prefix string
	// CookieName is the bound cookie's name; "" means
	// [DefaultCookieName]. The cookie is always Secure, HttpOnly,
	// SameSite=Lax and for the path "/".
	CookieName string
	// Token returns the request's lapse session token ("" for none): the
	// registration authenticates the session with it, and a refresh whose
	// proof fails while it comes with the session's token is a theft
	// signal.
	Token func(*http.Request) string
	// Logger receives internal errors; nil discards them.
	Logger *slog.Logger
}

// Binder answers the DBSC protocol for a manager's sessions. It is safe
// for concurrent use.
type Binder struct {
	m      *lapse.Manager
	prefix string
	cookie string
	token  func(*http.Request) string
	log    *slog.Logger
}

// New returns a binder for cfg, or an error naming what is missing.
func New(cfg Config) (*Binder, error) {
	b := &Binder{m: cfg.Manager, prefix: cfg.Prefix, cookie: cfg.CookieName, token: cfg.Token, log: cfg.Logger}
	if b.prefix == "" {
		b.prefix = "/.lapse/dbsc/"
	}
	if b.cookie == "" {
		b.cookie = DefaultCookieName
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case b.m == nil || b.token == nil:
		return nil, errors.New("dbsc: Config.Manager and Config.Token are required")
	case !strings.HasPrefix(b.prefix, "/") || !strings.HasSuffix(b.prefix, "/") || !printable(b.prefix):
		return nil, errors.New("dbsc: Config.Prefix must begin and end with / and be printable ASCII")
	case !validCookieName(b.cookie):
		return nil, errors.New("dbsc: Config.CookieName is not a cookie name")
	}
	return b, nil
}

// Prefix returns the path prefix of the handler's routes.
func (b *Binder) Prefix() string { return b.prefix }

// CookieName returns the bound cookie's name.
func (b *Binder) CookieName() string { return b.cookie }

// Offer asks the browser to bind s, a session just signed in, when its
// tier binds sessions: it adds Secure-Session-Registration, with a fresh
// challenge, to w's header. A browser without DBSC ignores it. It fails
// only when the store cannot record the challenge.
func (b *Binder) Offer(w http.ResponseWriter, r *http.Request, s *lapse.Session) error {
	if b.m.DeviceRules(s).Mode == lapse.DeviceBindingOff {
		return nil
	}
	c, err := b.m.DeviceChallenge(r.Context(), s.ID)
	if err != nil {
		return err
	}
	w.Header().Add(HeaderRegistration, registrationHeader(b.prefix+"register", c))
	return nil
}

// Check judges the device binding of s, which the caller has just
// verified from r's session token, with [lapse.Manager.VerifyDevice]:
// r's bound cookie and Secure-Session-Skipped header.
func (b *Binder) Check(r *http.Request, s *lapse.Session) error {
	p := lapse.DevicePresence{Skipped: r.Header.Get(HeaderSkipped) != ""}
	if c, err := r.Cookie(b.cookie); err == nil {
		p.Cookie = c.Value
	}
	return b.m.VerifyDevice(r.Context(), s, p)
}

// CheckFunc returns b's Check, or nil when b is nil (nothing binds
// devices), for httpapi.Config.Device.
func (b *Binder) CheckFunc() func(*http.Request, *lapse.Session) error {
	if b == nil {
		return nil
	}
	return b.Check
}

// Clear tells the browser to drop the bound cookie (at sign-out).
func (b *Binder) Clear(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: b.cookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// Handler returns the handler of the two routes under the prefix:
// POST register and POST refresh. Mount it at the prefix.
func (b *Binder) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+b.prefix+"register", b.register)
	mux.HandleFunc("POST "+b.prefix+"refresh", b.refresh)
	mux.HandleFunc(b.prefix, func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, problem.New(0, problem.CodeNotFound, "no such device-binding route", nil))
	})
	return mux
}

// register answers a registration: the session authenticated by its
// token, the proof verified by the key it carries, over a challenge
// lapse issued for that session.
func (b *Binder) register(w http.ResponseWriter, r *http.Request) {
	tok := b.token(r)
	if tok == "" {
		b.fail(w, r, lapse.Errorf(lapse.CodeSessionNotFound, "a registration needs the session's cookie"))
		return
	}
	s, err := b.m.Current(r.Context(), tok)
	if err != nil {
		b.fail(w, r, err)
		return
	}
	proof, err := ParseRegistration(r.Header.Get(HeaderResponse))
	if err != nil {
		b.fail(w, r, err)
		return
	}
	c, err := b.m.BindDevice(r.Context(), &s, proof.Key, proof.Challenge)
	if err != nil {
		b.fail(w, r, err)
		return
	}
	b.instructions(w, s.ID, c)
}

// refresh answers a refresh: first a 403 with a challenge, then, for a
// proof by the registered key over it, a fresh bound cookie. A session
// that ended (or was never bound) is told not to continue.
func (b *Binder) refresh(w http.ResponseWriter, r *http.Request) {
	id, ok := ParseSessionID(r.Header.Get(HeaderSessionID))
	if !ok {
		b.fail(w, r, lapse.Errorf(lapse.CodeInvalid, "%s must name the session", HeaderSessionID))
		return
	}
	s, d, err := b.m.DeviceSession(r.Context(), id)
	if err != nil {
		b.stopOrFail(w, r, id, err)
		return
	}
	jwt := r.Header.Get(HeaderResponse)
	if jwt == "" {
		b.challenge(w, r, id)
		return
	}
	proof, err := ParseRefresh(jwt, d.Key.JWK)
	if err != nil {
		b.badProof(w, r, s, err)
		return
	}
	c, err := b.m.RefreshDevice(r.Context(), s, d, proof.Challenge)
	if lapse.ErrorCode(err) == lapse.CodeChallengeInvalid {
		b.challenge(w, r, id) // stale or replayed: a new one, once more
		return
	} else if err != nil {
		b.fail(w, r, err)
		return
	}
	b.instructions(w, id, c)
}

// challenge answers 403 with a fresh challenge for session id.
func (b *Binder) challenge(w http.ResponseWriter, r *http.Request, id string) {
	c, err := b.m.DeviceChallenge(r.Context(), id)
	if err != nil {
		b.fail(w, r, err)
		return
	}
	w.Header().Set(HeaderChallenge, challengeHeader(c, id))
	problem.Write(w, problem.New(http.StatusForbidden, lapse.CodeChallengeInvalid, "sign the challenge in "+HeaderChallenge+" with the session's key", nil))
}

// badProof refuses a refresh proof that does not verify under the
// registered key. When the request also carries the session's own token,
// someone who holds the cookies but not the key is refreshing: theft. A
// bare session id with a bad proof is not (anyone can send one).
func (b *Binder) badProof(w http.ResponseWriter, r *http.Request, s *lapse.Session, err error) {
	if tok := b.token(r); tok != "" {
		if h, ok := lapse.HashToken(tok); ok && s.Holds(h, b.m.Clock().Now()) {
			ended, terr := b.m.SuspectTheft(r.Context(), s, lapse.ReasonOtherKey)
			if terr != nil {
				b.fail(w, r, terr)
				return
			}
			if ended != nil {
				b.stop(w, s.ID)
				return
			}
		}
	}
	b.fail(w, r, err)
}

// stopOrFail answers an ended, unknown or unbound session with continue:
// false, and any other error as a problem.
func (b *Binder) stopOrFail(w http.ResponseWriter, r *http.Request, id string, err error) {
	switch lapse.ErrorCode(err) {
	case lapse.CodeSessionNotFound, lapse.CodeSessionRevoked, lapse.CodeSessionExpiredIdle, lapse.CodeSessionExpiredAbsolute:
		b.stop(w, id)
	default:
		b.fail(w, r, err)
	}
}

// Instructions is the session instructions JSON of the draft: what the
// browser keeps refreshing, where, and for which requests.
type Instructions struct {
	SessionIdentifier string       `json:"session_identifier"`
	RefreshURL        string       `json:"refresh_url,omitempty"`
	Scope             *Scope       `json:"scope,omitempty"`
	Credentials       []Credential `json:"credentials,omitempty"`
	// Continue false ends the browser's DBSC session.
	Continue *bool `json:"continue,omitempty"`
}

// Scope says which requests the session covers: the whole origin.
type Scope struct {
	IncludeSite        bool  `json:"include_site"`
	ScopeSpecification []any `json:"scope_specification"`
}

// Credential is a cookie the browser keeps fresh.
type Credential struct {
	Type       string `json:"type"`
	Name       string `json:"name"`
	Attributes string `json:"attributes"`
}

// cookieAttributes are the bound cookie's attributes, as set and as
// declared in the instructions.
const cookieAttributes = "Path=/; Secure; HttpOnly; SameSite=Lax"

// instructions answers with a fresh bound cookie and the instructions.
func (b *Binder) instructions(w http.ResponseWriter, id string, c lapse.BoundCookie) {
	maxAge := max(int(c.ExpiresAt.Sub(b.m.Clock().Now()).Seconds()), 1)
	w.Header().Add("Set-Cookie", b.cookie+"="+c.Value+"; Max-Age="+strconv.Itoa(maxAge)+"; "+cookieAttributes)
	yes := true
	writeJSON(w, Instructions{
		SessionIdentifier: id,
		RefreshURL:        b.prefix + "refresh",
		Scope:             &Scope{ScopeSpecification: []any{}},
		Credentials:       []Credential{{Type: "cookie", Name: b.cookie, Attributes: cookieAttributes}},
		Continue:          &yes,
	})
}

// stop tells the browser to end its DBSC session id.
func (b *Binder) stop(w http.ResponseWriter, id string) {
	no := false
	b.Clear(w)
	writeJSON(w, Instructions{SessionIdentifier: id, Continue: &no})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

// fail answers err as problem+json, logging internal causes.
func (b *Binder) fail(w http.ResponseWriter, r *http.Request, err error) {
	if c := lapse.ErrorCode(err); c == lapse.CodeInternal || c == lapse.CodeStoreUnavailable {
		b.log.ErrorContext(r.Context(), "device binding", "err", err)
	}
	problem.Write(w, problem.FromError(err))
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\' {
			return false
		}
	}
	return true
}

func validCookieName(s string) bool {
	return s != "" && printable(s) && !strings.ContainsAny(s, "()<>@,;:/[]?={}")
}
