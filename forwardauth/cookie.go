package forwardauth

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
)

// Session returns the session of a browser request to one of lapse's
// pages on the app's origin (under /.lapse/), from its session cookie
// or a Bearer session token. It applies no rule and records no
// activity; false means there is no valid session.
func (g *Gateway) Session(r *http.Request) (lapse.Session, bool) {
	tok := g.token(r)
	if tok == "" {
		return lapse.Session{}, false
	}
	s, err := g.m.Current(r.Context(), tok)
	return s, err == nil
}

// StepUp raises the session of a browser request to assurance level aal
// with methods amr, after a further factor was checked (by lapse's
// step-up page), and replaces its cookie with the new token. The old
// token keeps working for [lapse.RotateGrace]. It fails with
// [lapse.CodeSessionNotFound] without a session cookie, and otherwise
// like [lapse.Manager.StepUp].
//
// The new cookie has the attributes the docs ask the app's sign-in to
// use: Path=/, HttpOnly, SameSite=Lax, and Secure unless the request
// came over plain HTTP to a loopback host (local development) under a
// name without the __Host- or __Secure- prefix.
func (g *Gateway) StepUp(w http.ResponseWriter, r *http.Request, aal int, amr []string) (*lapse.Session, error) {
	c, err := r.Cookie(g.cookie)
	if err != nil || c.Value == "" {
		return nil, lapse.Errorf(lapse.CodeSessionNotFound, "sign in first")
	}
	tok, s, err := g.m.StepUp(lapse.WithClient(r.Context(), g.client(r)), c.Value, aal, amr, lapse.ActorSubject)
	if err != nil {
		return nil, err
	}
	http.SetCookie(w, &http.Cookie{
		Name: g.cookie, Value: tok.Reveal(), Path: "/",
		Secure: g.secure(r), HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	return s, nil
}

// secure reports whether the cookie for r must be Secure: always,
// except for plain HTTP to a loopback host, as the proxy forwarded it.
func (g *Gateway) secure(r *http.Request) bool {
	if strings.HasPrefix(g.cookie, "__Host-") || strings.HasPrefix(g.cookie, "__Secure-") || r.TLS != nil {
		return true
	}
	proto := strings.ToLower(firstItem(r.Header.Get("X-Forwarded-Proto")))
	if proto != "" && proto != "http" {
		return true
	}
	host := firstItem(first(r.Header.Get("X-Forwarded-Host"), r.Host))
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// Requirement returns what the rule for the page at rd asks of a session
// beyond its tier: the rule's require_aal and max_auth_age (zero for
// none), for a step-up page that sends the browser to an identity
// provider. rd is a path of the request's origin (the host the proxy
// forwarded) or an absolute URL.
func (g *Gateway) Requirement(r *http.Request, rd string) (aal int, maxAuthAge time.Duration) {
	o := origin{host: firstItem(first(r.Header.Get("X-Forwarded-Host"), r.Host)), uri: rd}
	if u, err := url.Parse(rd); err == nil && u.IsAbs() {
		o.fromURL(rd)
	}
	if h, _, err := net.SplitHostPort(o.host); err == nil {
		o.host = h
	}
	o.host = strings.ToLower(strings.TrimSuffix(strings.Trim(o.host, "[]"), "."))
	p, ok := cleanPath(o.uri)
	if !ok {
		return 0, 0
	}
	rule := g.match(&origin{host: o.host, path: p})
	return rule.RequireAAL, rule.MaxAuthAge
}
