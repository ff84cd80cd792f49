package probe

import (
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The cookies a session holds, kept as RFC 6265 says a browser keeps them, as far as
// that decides where they are sent: a cookie applies to its Path (or the default path
// of the URL that set it), a Secure one goes only over a secure connection, and one
// whose Domain does not cover the host that set it is refused. The probe never talks
// to another origin, so host and Domain matching end there. Unlike a browser it keeps
// a cookie past its Expires or Max-Age: replaying a credential the client would have
// dropped is how the probe tells whether the server still honours it.
//
// net/http/cookiejar does the same matching but cannot list what it holds, and the
// checks must list, judge and replay every cookie on its own.

// cookie returns the first cookie s holds named name, or nil.
func (s *session) cookie(name string) *http.Cookie {
	for _, c := range s.cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// setCookie stores c, which the answer to a request for u set, or removes the cookie
// it deletes.
func (s *session) setCookie(c *http.Cookie, u *url.URL, now time.Time) {
	held := *c
	held.Domain = strings.TrimPrefix(strings.ToLower(c.Domain), ".")
	if held.Domain != "" && !domainMatch(strings.ToLower(u.Hostname()), held.Domain) {
		return // a browser refuses it
	}
	if held.Path == "" || held.Path[0] != '/' {
		held.Path = defaultPath(u.Path)
	}
	if held.Secure && !secureURL(u) {
		return // a browser refuses a Secure cookie set over plain http
	}
	s.cookies = slices.DeleteFunc(s.cookies, func(old *http.Cookie) bool {
		return old.Name == held.Name && old.Domain == held.Domain && old.Path == held.Path
	})
	if held.Value == "" || held.MaxAge < 0 || (!held.Expires.IsZero() && !held.Expires.After(now)) {
		return
	}
	s.cookies = append(s.cookies, &held)
}

// hold adds a cookie the probe makes up or replays, as if set for the whole site.
func (s *session) hold(c *http.Cookie) {
	held := *c
	if held.Path == "" {
		held.Path = "/"
	}
	s.cookies = append(s.cookies, &held)
}

// cookiesFor returns the cookies s sends with a request for u, longest path first.
func (s *session) cookiesFor(u *url.URL) []*http.Cookie {
	var out []*http.Cookie
	for _, c := range s.cookies {
		if (c.Secure && !secureURL(u)) || !pathMatch(u.Path, c.Path) {
			continue
		}
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value, Path: c.Path})
	}
	slices.SortStableFunc(out, func(a, b *http.Cookie) int { return len(b.Path) - len(a.Path) })
	return out
}

// secureURL reports whether a browser counts a connection to u as secure: https, or
// plain http to the loopback interface.
func secureURL(u *url.URL) bool {
	if strings.EqualFold(u.Scheme, "https") {
		return true
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// domainMatch reports whether host is domain or one of its subdomains (RFC 6265 5.1.3).
func domainMatch(host, domain string) bool {
	if host == domain {
		return true
	}
	return net.ParseIP(host) == nil && strings.HasSuffix(host, "."+domain)
}

// defaultPath is the path a cookie without a Path applies to (RFC 6265 5.1.4).
func defaultPath(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// pathMatch reports whether a cookie with path cp goes with a request for p (RFC 6265
// 5.1.4).
func pathMatch(p, cp string) bool {
	if p == "" {
		p = "/"
	}
	if !strings.HasPrefix(p, cp) {
		return false
	}
	return len(p) == len(cp) || strings.HasSuffix(cp, "/") || p[len(cp)] == '/'
}
