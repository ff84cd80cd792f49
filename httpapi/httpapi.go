// Package httpapi serves lapse's JSON API over HTTP: sessions, verify,
// revoke, subjects, health and the OpenAPI description. Every error is
// application/problem+json with a stable code; see [Status] for the
// mapping of codes to HTTP statuses.
package httpapi

import (
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/problem"
	"github.com/lapsehq/lapse/throttle"
)

// MaxBodyBytes caps a request body.
const MaxBodyBytes = 64 << 10

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 description of the API.
func OpenAPI() []byte { return openAPI }

// Config configures a [Server].
type Config struct {
	// Manager applies the session policy; required.
	Manager *lapse.Manager
	// Keys are static API keys, each with every scope; required, may be
	// empty (NewKeys()).
	Keys *Keys
	// Keyring authenticates the API keys kept in the store, with their
	// scopes and tenant, and serves /v1/keys; nil leaves only Keys, and
	// /v1/keys answering 404.
	Keyring *lapse.Keyring
	// Logger receives internal errors; nil discards them.
	Logger *slog.Logger
	// Events streams a session's events to its own server-sent-events
	// route; nil leaves the route answering 404.
	Events Watcher
	// SessionCookie is the name of the cookie the session routes also
	// accept the token from; "" means "__Host-lapse".
	SessionCookie string
	// Factors is lapse's built-in second factor (package totp); nil
	// leaves the factor routes answering 404.
	Factors lapse.FactorService
	// Throttle counts the invalid API keys of each client address and
	// refuses an address that sent too many (429 too_many_attempts, with
	// Retry-After) before looking at its key; share it with the console's
	// sign-in. nil means a limiter of its own with throttle's defaults.
	Throttle *throttle.Limiter
	// TrustedProxies are the networks of the reverse proxies in front of
	// lapse, whose X-Forwarded-For names the client address the throttle
	// counts (see throttle.ClientAddr). Empty trusts no header.
	TrustedProxies []netip.Prefix
	// StreamsPerSession and StreamsPerNode cap the event streams open
	// at once, for one session and in all; a stream past either is
	// refused with 429 too_many_streams. Zero means 4 and 10,000.
	StreamsPerSession, StreamsPerNode int
	// Passkeys runs the passkey ceremonies (package passkey) for the
	// session routes under /v1/session/passkeys and
	// /v1/session/step-up/passkey; nil leaves them answering 404.
	Passkeys lapse.PasskeyService
	// StepUp raises a cookie-authenticated session after a passkey
	// step-up and replaces its cookie, with the attributes the app sets
	// it with: the middleware's StepUp, or the forward-auth gateway's.
	// nil refuses a passkey step-up by cookie (404); one by bearer token
	// gets its new token in the answer.
	StepUp func(w http.ResponseWriter, r *http.Request, aal int, amr []string) (*lapse.Session, error)
	// Device judges the device binding (DBSC) of the session a request
	// authenticates (by its cookie or as a bearer token: a copied cookie
	// jar holds the token) before a session route acts on it: the
	// gateway's or the middleware's dbsc.Binder.Check, so that a copied
	// cookie jar without the bound cookie reaches no more here than it
	// does the app. nil checks none.
	Device func(r *http.Request, s *lapse.Session) error
}

// defaultSessionCookie is the session cookie's name when
// Config.SessionCookie is empty.
const defaultSessionCookie = "__Host-lapse"

// Watcher hands out the events of one session until the returned stop
// function is called; the channel closes if the watcher gives up.
type Watcher interface {
	Watch(sessionID string) (<-chan lapse.Event, func())
}

// Server is the HTTP API. It is safe for concurrent use.
type Server struct {
	m            *lapse.Manager
	keys         *Keys
	keyring      *lapse.Keyring
	log          *slog.Logger
	events       Watcher
	cookie       string
	factors      lapse.FactorService
	throttle     *throttle.Limiter
	trusted      []netip.Prefix
	streams      *streams
	passkeys     lapse.PasskeyService
	stepUpCookie func(http.ResponseWriter, *http.Request, int, []string) (*lapse.Session, error)
	device       func(*http.Request, *lapse.Session) error
}

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Manager == nil || cfg.Keys == nil {
		return nil, errors.New("httpapi: Config.Manager and Config.Keys are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cookie := cfg.SessionCookie
	if cookie == "" {
		cookie = defaultSessionCookie
	}
	limiter := cfg.Throttle
	if limiter == nil {
		limiter = throttle.New(throttle.Config{Clock: cfg.Manager.Clock()})
	}
	return &Server{m: cfg.Manager, keys: cfg.Keys, keyring: cfg.Keyring, log: log, events: cfg.Events, cookie: cookie, factors: cfg.Factors,
		throttle: limiter, trusted: cfg.TrustedProxies,
		streams:  newStreams(cmp.Or(cfg.StreamsPerSession, 4), cmp.Or(cfg.StreamsPerNode, 10_000)),
		passkeys: cfg.Passkeys, stepUpCookie: cfg.StepUp, device: cfg.Device}, nil
}

// route is one operation of the API. The OpenAPI test checks this table
// against openapi.json in both directions.
type route struct {
	method, path string
	// scope is what an API key needs to call the route; "" for a route
	// served without one: public, or authenticated by the session's own
	// token instead (session).
	scope   lapse.Scope
	session bool
	handle  func(*Server, http.ResponseWriter, *http.Request)
}

// public reports whether rt is served without an API key.
func (rt route) public() bool { return rt.scope == "" }

const (
	verify      = lapse.ScopeSessionsVerify
	write       = lapse.ScopeSessionsWrite
	admin       = lapse.ScopeSessionsAdmin
	factorAdmin = lapse.ScopeFactorsAdmin
	keysAdmin   = lapse.ScopeKeysAdmin
)

var routes = []route{
	{"POST", "/v1/sessions", write, false, (*Server).create},
	{"POST", "/v1/sessions/verify", verify, false, (*Server).verify},
	{"POST", "/v1/sessions/revoke", write, false, (*Server).revoke},
	{"GET", "/v1/sessions/{id}", admin, false, (*Server).get},
	{"DELETE", "/v1/sessions/{id}", admin, false, (*Server).delete},
	{"GET", "/v1/subjects/{subject}/sessions", admin, false, (*Server).listSubject},
	{"DELETE", "/v1/subjects/{subject}/sessions", admin, false, (*Server).endSubject},
	{"GET", "/v1/audit", lapse.ScopeAuditRead, false, (*Server).audit},
	{"POST", "/v1/sessions/step-up", write, false, (*Server).stepUp},
	{"POST", "/v1/sessions/step-up/totp", write, false, (*Server).stepUpTOTP},
	{"GET", "/v1/subjects/{subject}/factors", factorAdmin, false, (*Server).listFactors},
	{"POST", "/v1/subjects/{subject}/factors/totp", factorAdmin, false, (*Server).enrolTOTP},
	{"POST", "/v1/subjects/{subject}/factors/totp/confirm", factorAdmin, false, (*Server).confirmTOTP},
	{"POST", "/v1/subjects/{subject}/factors/totp/remove", factorAdmin, false, (*Server).removeTOTP},
	{"POST", "/v1/subjects/{subject}/credential-changed", write, false, (*Server).credentialChanged},
	{"GET", "/v1/keys", keysAdmin, false, (*Server).listKeys},
	{"POST", "/v1/keys", keysAdmin, false, (*Server).createKey},
	{"GET", "/v1/keys/{id}", keysAdmin, false, (*Server).getKey},
	{"DELETE", "/v1/keys/{id}", keysAdmin, false, (*Server).revokeKey},
	{"GET", "/v1/session", "", true, routeCurrent},
	{"POST", "/v1/session/extend", "", true, routeExtend},
	{"POST", "/v1/session/activity", "", true, routeActivity},
	{"POST", "/v1/session/logout", "", true, (*Server).logout},
	{"GET", "/v1/session/events", "", true, (*Server).stream},
	{"GET", "/v1/session/passkeys", "", true, (*Server).listPasskeys},
	{"POST", "/v1/session/passkeys", "", true, (*Server).registerPasskey},
	{"POST", "/v1/session/passkeys/options", "", true, routePasskeyRegistrationOptions},
	{"POST", "/v1/session/passkeys/{id}/rename", "", true, (*Server).renamePasskey},
	{"POST", "/v1/session/passkeys/{id}/remove", "", true, (*Server).removePasskey},
	{"POST", "/v1/session/step-up/passkey/options", "", true, routePasskeyStepUpOptions},
	{"POST", "/v1/session/step-up/passkey", "", true, (*Server).stepUpPasskey},
	{"GET", "/healthz", "", false, (*Server).healthz},
	{"GET", "/readyz", "", false, (*Server).readyz},
	{"GET", "/openapi.json", "", false, (*Server).openapi},
}

// Register adds the API's routes to mux. Unknown paths under /v1/ and
// methods a route does not serve are answered with problem+json too.
func (s *Server) Register(mux *http.ServeMux) {
	// Routes go straight onto mux, so a request is matched once; api
	// holds them again only for the fallback to tell 404 from 405.
	api := http.NewServeMux()
	for _, rt := range routes {
		h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rt.handle(s, w, r) }))
		if strings.Contains(rt.path, "{subject}") {
			h = s.platformSubject(h)
		}
		if rt.scope != "" {
			h = s.requireKey(rt.scope, h)
		}
		if rt.session {
			h = s.peerClient(h)
		}
		mux.Handle(rt.method+" "+rt.path, h)
		api.Handle(rt.method+" "+rt.path, h)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{"GET", "POST", "DELETE"} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := api.Handler(probe); pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			s.writeProblem(w, r, problem.CodeNotFound, "no such API route", nil)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeProblem(w, r, problem.CodeMethodNotAllowed, r.Method+" is not allowed here; use "+strings.Join(allow, " or "), nil)
	})
	for _, p := range []string{"/v1/", "/healthz", "/readyz", "/openapi.json"} {
		mux.Handle(p, h)
	}
}

// decode reads one JSON object of at most MaxBodyBytes into v, refusing
// unknown fields and trailing data. A body labelled with a media type
// other than JSON (text/plain, a form) is refused with 415
// unsupported_media_type; an unlabelled one is read as JSON.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if !jsonLabelled(r) {
		s.writeProblem(w, r, problem.CodeUnsupportedMediaType, "send the body as application/json", nil)
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// Reading on to EOF also finds a body that is oversized only in
		// what follows the object.
		var tooLarge *http.MaxBytesError
		if err2 := dec.Decode(&struct{}{}); errors.As(err2, &tooLarge) {
			err = err2
		} else if err2 != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err == nil {
		return true
	}
	var (
		tooLarge *http.MaxBytesError
		typeErr  *json.UnmarshalTypeError
		durErr   *durationError
	)
	switch {
	case errors.As(err, &durErr):
		s.writeProblem(w, r, problem.CodeInvalidDuration, durErr.msg, nil)
	case errors.As(err, &tooLarge):
		s.writeProblem(w, r, problem.CodeBodyTooLarge, "the body is larger than 64 KiB", nil)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		s.writeProblem(w, r, problem.CodeUnknownField, "unknown field "+strings.TrimPrefix(err.Error(), "json: unknown field "), nil)
	case errors.As(err, &typeErr) && (typeErr.Field == "" || typeErr.Type == nil):
		s.writeProblem(w, r, problem.CodeMalformedJSON, "the body must be a JSON object", nil)
	case errors.As(err, &typeErr):
		s.writeProblem(w, r, problem.CodeMalformedJSON, "field "+typeErr.Field+" must be "+jsonKind(typeErr.Type.Kind()), nil)
	case errors.Is(err, io.EOF):
		s.writeProblem(w, r, problem.CodeMalformedJSON, "the body is empty; send a JSON object", nil)
	default:
		s.writeProblem(w, r, problem.CodeMalformedJSON, "the body is not valid JSON: "+strings.TrimPrefix(err.Error(), "json: "), nil)
	}
	return false
}

// jsonLabelled reports whether r's body is unlabelled or labelled as JSON
// (application/json or a +json type).
func jsonLabelled(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "of another type"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Duration is a JSON duration in Go syntax, such as "5m" or "90s".
type Duration time.Duration

// UnmarshalJSON reads a Go duration string; null, like an absent
// member, leaves d unchanged. Its error does not repeat the value, which
// may be a secret sent in the wrong member.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &durationError{"a duration must be a string such as \"5m\" or \"90s\""}
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return &durationError{"a duration must be a non-negative Go duration such as \"5m\" or \"90s\""}
	}
	*d = Duration(v)
	return nil
}

type durationError struct{ msg string }

func (e *durationError) Error() string { return e.msg }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 while the store answers, 503 otherwise.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if p, ok := s.m.Store().(lapse.Pinger); ok {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := p.Ping(ctx); err != nil {
			s.writeProblem(w, r, lapse.CodeStoreUnavailable, "the session store does not answer", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(openAPI)
}
