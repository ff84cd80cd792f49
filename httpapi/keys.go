package httpapi

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/lapsehq/lapse"
)

// Keys holds the hashes of the API keys allowed to call the API. Only
// hashes are kept; comparison is constant-time. It is safe for
// concurrent use once built.
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

// Require wraps h so that only requests with an allowed key in an
// "Authorization: Bearer" header reach it; others get 401 unauthorized.
func (k *Keys) Require(h http.Handler, s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The scheme is case-insensitive (RFC 9110, section 11.1).
		scheme, key, found := strings.Cut(r.Header.Get("Authorization"), " ")
		found = found && strings.EqualFold(scheme, "Bearer")
		if !found || !k.Allowed(strings.TrimSpace(key)) {
			msg := "send an API key as Authorization: Bearer <key>"
			if found {
				msg = "the API key is not valid"
			}
			s.writeProblem(w, r, CodeUnauthorized, msg, nil)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// RequireKey wraps h so that only callers with an allowed API key reach
// it, answering others like the API does: for routes mounted beside the
// API, such as /metrics.
func (s *Server) RequireKey(h http.Handler) http.Handler { return s.keys.Require(h, s) }

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
