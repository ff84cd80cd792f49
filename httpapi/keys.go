package httpapi

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strings"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/problem"
	"github.com/lapsehq/lapse/throttle"
)

// Keys holds the hashes of static API keys, each with every scope and
// no tenant: for embedding lapse (the demo, tests). lapse serve keeps
// its keys in the store instead (Config.Keyring). Only hashes are kept;
// comparison is constant-time. It is safe for concurrent use once built.
type Keys struct {
	hashes []lapse.TokenHash
}

// NewKeys returns a key set of the given hashes.
func NewKeys(hashes ...lapse.TokenHash) *Keys { return &Keys{hashes: hashes} }

// Allowed reports whether key is one of the set. It compares against
// every hash so the time taken does not depend on which one matched.
func (k *Keys) Allowed(key string) bool {
	h := lapse.HashSecret(key)
	ok := 0
	for _, want := range k.hashes {
		ok |= subtle.ConstantTimeCompare(h[:], want[:])
	}
	return ok == 1
}

// caller is who an API request comes from: a key of the Keyring, or
// (key nil) one of the static Keys, which holds every scope.
type caller struct {
	key *lapse.APIKey
	ip  string
}

type callerKey struct{}

// actor returns the actor of the events r causes: "key:<id>" for a key
// of the keyring, "api" for a static key.
func actor(r *http.Request) string {
	if c, ok := r.Context().Value(callerKey{}).(*caller); ok && c.key != nil {
		return c.key.Actor()
	}
	return lapse.ActorAPI
}

// clientIP returns the client address recorded with the events r causes.
func clientIP(r *http.Request) string {
	if c, ok := r.Context().Value(callerKey{}).(*caller); ok {
		return c.ip
	}
	return ""
}

// requireKey wraps h so that only requests with an API key that holds
// scope, in an "Authorization: Bearer" header, reach it. A request
// without a key gets 401 unauthorized; one from a client address that
// sent too many invalid keys gets 429 too_many_attempts before its key
// is looked at; one with an invalid key gets 401, is counted against its
// address and recorded as an [lapse.EventKeyRejected]; one whose key
// lacks scope gets 403 insufficient_scope naming it. A key bound to a
// tenant reaches h with a context bound to it ([lapse.WithTenant]); a
// key of the keyring with one naming it, so that the events it causes
// carry its id and name ([lapse.WithActor]).
func (s *Server) requireKey(scope lapse.Scope, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The scheme is case-insensitive (RFC 9110, section 11.1).
		scheme, key, found := strings.Cut(r.Header.Get("Authorization"), " ")
		key = strings.TrimSpace(key)
		if !found || !strings.EqualFold(scheme, "Bearer") || key == "" {
			s.writeProblem(w, r, problem.CodeUnauthorized, "send an API key as Authorization: Bearer <key>", nil)
			return
		}
		client := throttle.ClientAddr(r, s.trusted)
		if wait, ok := s.throttle.Allow(client); !ok {
			w.Header().Set("Retry-After", throttle.RetryAfter(wait))
			s.writeProblem(w, r, lapse.CodeTooManyAttempts, "too many invalid API keys came from this address; try again after Retry-After seconds", nil)
			return
		}
		c, err := s.authenticate(r, key)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if c == nil {
			s.throttle.Fail(client)
			s.recordRejected(r, client)
			s.writeProblem(w, r, problem.CodeUnauthorized, "the API key is not valid", nil)
			return
		}
		if client.IsValid() {
			c.ip = client.String()
		}
		if c.key != nil && !c.key.Has(scope) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lapse", error="insufficient_scope", scope="`+string(scope)+`"`)
			p := problem.New(0, problem.CodeInsufficientScope, "this API key lacks the scope "+string(scope), nil)
			p.Scope = scope
			problem.Write(w, p)
			return
		}
		ctx := context.WithValue(r.Context(), callerKey{}, c)
		if c.key != nil {
			ctx = lapse.WithTenant(ctx, c.key.Tenant)
			ctx = lapse.WithActor(ctx, c.key.Actor(), c.key.Name)
		}
		ctx = lapse.WithClientIP(ctx, c.ip)
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// authenticate returns the caller key is, or nil for a key that is not
// valid: one of the static keys, else a usable key of the keyring.
func (s *Server) authenticate(r *http.Request, key string) (*caller, error) {
	if s.keys.Allowed(key) {
		return &caller{}, nil
	}
	if s.keyring == nil {
		return nil, nil
	}
	k, ok, err := s.keyring.Authenticate(r.Context(), key)
	if err != nil || !ok {
		return nil, err
	}
	return &caller{key: k}, nil
}

// recordRejected records an invalid key from client in the audit log
// (and so to webhooks). A failure to record it is logged: the caller is
// refused all the same.
func (s *Server) recordRejected(r *http.Request, client netip.Addr) {
	ev := lapse.Event{Type: lapse.EventKeyRejected, Reason: lapse.ReasonInvalidKey, Actor: lapse.ActorAPI}
	if client.IsValid() {
		ev.IP = client.String()
	}
	if err := s.m.Record(r.Context(), ev); err != nil && lapse.ErrorCode(err) != lapse.CodeInvalid {
		s.log.ErrorContext(r.Context(), "recording a rejected API key", "err", err)
	}
}

// RequireKey wraps h so that only callers with an API key that holds
// scope reach it, answering others like the API does (the throttle
// included): for routes mounted beside the API, such as /metrics.
func (s *Server) RequireKey(scope lapse.Scope, h http.Handler) http.Handler {
	return s.requireKey(scope, h)
}

// platformSubject refuses a subject route for a subject in lapse's own
// namespace ([lapse.ReservedPrefix]): the operators' sessions are not
// the platform's to list or end, nor their factors to manage.
func (s *Server) platformSubject(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lapse.ReservedSubject(r.PathValue("subject")) {
			s.writeProblem(w, r, lapse.CodeInvalid, "subjects beginning with "+lapse.ReservedPrefix+" are reserved for lapse's own sessions", nil)
			return
		}
		h.ServeHTTP(w, r)
	})
}
