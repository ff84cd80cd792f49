package httpapi

import (
	"context"
	"net/http"
	"net/netip"
	"unicode/utf8"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/throttle"
)

// peerClient puts the client that sent r (its address, through the
// trusted proxies, and its User-Agent) into r's context: the session's
// own routes are called by the user's browser itself.
func (s *Server) peerClient(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := lapse.Client{IP: throttle.ClientAddr(r, s.trusted), UserAgent: r.UserAgent()}
		h.ServeHTTP(w, r.WithContext(lapse.WithClient(r.Context(), c)))
	})
}

// bodyClient returns r's context with the end user's client an API-key
// caller names in its body (the app's backend calls for its users, so
// the request's own peer is not the user). Neither field set leaves the
// context as it is. A bad address or User-Agent is answered 400.
func (s *Server) bodyClient(w http.ResponseWriter, r *http.Request, ip, ua string) (context.Context, bool) {
	ctx := r.Context()
	if ip == "" && ua == "" {
		return ctx, true
	}
	var c lapse.Client
	if ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			s.writeProblem(w, r, lapse.CodeInvalid, "ip is not an IP address", nil)
			return nil, false
		}
		c.IP = a.Unmap()
	}
	if len(ua) > lapse.MaxUserAgentLen || !utf8.ValidString(ua) {
		s.writeProblem(w, r, lapse.CodeInvalid, "user_agent must be UTF-8 of at most 1024 bytes", nil)
		return nil, false
	}
	c.UserAgent = ua
	return lapse.WithClient(ctx, c), true
}
