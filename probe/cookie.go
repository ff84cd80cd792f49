package probe

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// finding is one observation about a cookie; fail findings fail the check.
type finding struct {
	fail bool
	msg  string
}

// judgeCookie judges the attributes of a cookie set by the sign-in. credential says
// whether the cookie gets a session accepted; https whether the target is served over
// https; maxLife is the longest a credential may persist (0: no policy); now is when the
// cookie was set.
func judgeCookie(c *http.Cookie, credential, https bool, maxLife time.Duration, now time.Time) []finding {
	var out []finding
	add := func(fail bool, format string, args ...any) {
		out = append(out, finding{fail, fmt.Sprintf(format, args...)})
	}
	if https && !c.Secure {
		add(credential, "no Secure attribute: the browser will also send it over plain http")
	}
	if credential && !c.HttpOnly {
		add(true, "no HttpOnly attribute: scripts on the page can read it")
	}
	switch c.SameSite {
	case http.SameSiteLaxMode, http.SameSiteStrictMode:
	case http.SameSiteNoneMode:
		add(credential, "SameSite=None: sent with cross-site requests")
	default:
		add(credential, "no valid SameSite attribute: browsers differ in what they send cross-site")
	}
	switch {
	case strings.HasPrefix(c.Name, "__Host-"):
		if !c.Secure || c.Domain != "" || c.Path != "/" {
			add(true, "__Host- prefix without Secure, Path=/ and no Domain: browsers reject it")
		}
	case strings.HasPrefix(c.Name, "__Secure-"):
		if !c.Secure {
			add(true, "__Secure- prefix without Secure: browsers reject it")
		}
		if credential {
			add(false, "advice: prefer __Host- to __Secure- unless the cookie must reach other hosts")
		}
	case credential:
		add(false, "advice: no __Host- prefix, which would pin it to this host and path /")
	}
	if c.Domain != "" {
		add(false, "advice: Domain=%s also sends it to every subdomain", c.Domain)
	}
	if life, persistent := lifetime(c, now); persistent && credential {
		if maxLife > 0 && life > maxLife {
			add(true, "persists for %s, beyond the absolute timeout", roughly(life))
		} else {
			add(false, "advice: persists for %s; a session cookie that ends with the browser is preferred", roughly(life))
		}
	}
	if len(c.Name)+len(c.Value) > 4096 {
		add(false, "advice: name and value exceed 4096 bytes")
	}
	return out
}

// lifetime returns how long a cookie persists and whether it does at all.
func lifetime(c *http.Cookie, now time.Time) (time.Duration, bool) {
	switch {
	case c.MaxAge > 0:
		return time.Duration(c.MaxAge) * time.Second, true
	case !c.Expires.IsZero():
		return c.Expires.Sub(now), true
	}
	return 0, false
}

// roughly formats a duration for people: whole days past two days, else to the second.
func roughly(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%.0f days", d.Hours()/24)
	}
	return d.Round(time.Second).String()
}

// attributes summarises a cookie's attributes, without its value.
func attributes(c *http.Cookie, now time.Time) string {
	var a []string
	if c.Secure {
		a = append(a, "Secure")
	}
	if c.HttpOnly {
		a = append(a, "HttpOnly")
	}
	switch c.SameSite {
	case http.SameSiteLaxMode:
		a = append(a, "SameSite=Lax")
	case http.SameSiteStrictMode:
		a = append(a, "SameSite=Strict")
	case http.SameSiteNoneMode:
		a = append(a, "SameSite=None")
	}
	if c.Path != "" {
		a = append(a, "Path="+c.Path)
	}
	if c.Domain != "" {
		a = append(a, "Domain="+c.Domain)
	}
	if life, ok := lifetime(c, now); ok {
		a = append(a, "persists "+roughly(life))
	} else {
		a = append(a, "ends with the browser")
	}
	return strings.Join(a, " ")
}

// checkCookies judges every cookie the sign-in sets (WSTG-SESS-02).
func checkCookies(ctx context.Context, p *prober, r *Result) {
	s := &session{record: true}
	if err := p.c.signIn(ctx, s); err != nil {
		r.set(Error, "%v", err)
		return
	}
	set := map[string]*http.Cookie{}
	var when time.Time
	for _, ex := range s.log {
		for _, c := range ex.cookies {
			if c.Value != "" && c.MaxAge >= 0 && (c.Expires.IsZero() || c.Expires.After(ex.at)) {
				set[c.Name], when = c, ex.at
			}
		}
	}
	if len(set) == 0 {
		r.set(Skip, "the sign-in set no cookie: the session travels in a header, so there are no cookie attributes to judge")
		return
	}
	creds, err := p.c.credentials(ctx, s)
	if err != nil {
		r.set(Error, "%v", err)
		return
	}
	credential := func(name string) bool {
		return name == p.t.Session.Cookie || slices.ContainsFunc(creds, func(cr credential) bool {
			return slices.ContainsFunc(cr.cookies, func(c *http.Cookie) bool { return c.Name == name })
		})
	}
	https := p.c.base.Scheme == "https"
	if !https {
		r.note("the target is served over plain http: any cookie, Secure or not, can be read on the network")
	}
	maxLife := time.Duration(0)
	if a := time.Duration(p.t.Policy.AbsoluteTimeout); a > 0 {
		maxLife = a + p.t.Policy.tolerance()
	}
	var failed []string
	for _, name := range sortedKeys(set) {
		c := set[name]
		role := "other cookie"
		if credential(name) {
			role = "session credential"
		}
		r.note("%s (%s): %s", name, role, attributes(c, when))
		for _, f := range judgeCookie(c, credential(name), https, maxLife, when) {
			r.note("  %s: %s", name, f.msg)
			if f.fail {
				failed = append(failed, name+": "+f.msg)
			}
		}
	}
	if len(failed) > 0 {
		r.set(Fail, "%s", strings.Join(failed, "; "))
		return
	}
	r.set(Pass, "%d cookie(s) set by the sign-in carry the attributes a session cookie needs", len(set))
}
