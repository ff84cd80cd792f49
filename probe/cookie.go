package probe

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// finding is one observation about a cookie; fail findings fail the check, and the
// others are advice.
type finding struct {
	fail bool
	msg  string
}

// String writes the finding as the report shows it: advice is labelled so.
func (f finding) String() string {
	if f.fail {
		return f.msg
	}
	return "advice: " + f.msg
}

// judgeCookie judges the attributes of a cookie set by the sign-in. credential says
// whether the cookie gets a session accepted, alone or with others; https whether the
// target is served over https; maxLife is the longest a credential may persist (0: no
// policy); now is when the cookie was set.
func judgeCookie(c *http.Cookie, credential, https bool, maxLife time.Duration, now time.Time) []finding {
	var j cookieJudge
	if https && !c.Secure {
		j.add(credential, "no Secure attribute: the browser will also send it over plain http")
	}
	if credential && !c.HttpOnly {
		j.add(true, "no HttpOnly attribute: scripts on the page can read it")
	}
	switch c.SameSite {
	case http.SameSiteLaxMode, http.SameSiteStrictMode:
	case http.SameSiteNoneMode:
		j.add(credential, "SameSite=None: sent with cross-site requests")
	default:
		j.add(credential, "no valid SameSite attribute: browsers differ in what they send cross-site")
	}
	j.prefix(c, credential)
	if c.Domain != "" {
		j.add(false, "Domain=%s also sends it to every subdomain", c.Domain)
	}
	if life, persistent := lifetime(c, now); persistent && credential {
		if maxLife > 0 && life > maxLife {
			j.add(true, "persists for %s, beyond the absolute timeout", roughly(life))
		} else {
			j.add(false, "persists for %s%s; a cookie that ends with the browser is preferred", roughly(life), map[bool]string{true: ", within the absolute timeout"}[maxLife > 0])
		}
	}
	if len(c.Name)+len(c.Value) > 4096 {
		j.add(false, "name and value exceed 4096 bytes")
	}
	return j.out
}

// cookieJudge gathers the findings on one cookie.
type cookieJudge struct{ out []finding }

func (j *cookieJudge) add(fail bool, format string, args ...any) {
	j.out = append(j.out, finding{fail, fmt.Sprintf(format, args...)})
}

// prefix judges the cookie's name prefix: one the browser would reject,
// or a credential without the __Host- prefix that pins it to this host.
func (j *cookieJudge) prefix(c *http.Cookie, credential bool) {
	switch {
	case strings.HasPrefix(c.Name, "__Host-"):
		if !c.Secure || c.Domain != "" || c.Path != "/" {
			j.add(true, "__Host- prefix without Secure, Path=/ and no Domain: browsers reject it")
		}
	case strings.HasPrefix(c.Name, "__Secure-"):
		if !c.Secure {
			j.add(true, "__Secure- prefix without Secure: browsers reject it")
		}
		if credential {
			j.add(false, "prefer __Host- to __Secure- unless the cookie must reach other hosts")
		}
	case credential:
		j.add(false, "no __Host- prefix, which would pin it to this host and path /")
	}
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

// checkCookies judges every cookie the sign-in answers set (not those of pages fetched
// before it, unless the target file names them as credentials), and the cookie a page's
// script keeps the token in (WSTG-SESS-02).
func checkCookies(ctx context.Context, p *prober, r *Result) {
	s := &session{record: true}
	if err := p.c.signIn(ctx, s); err != nil {
		r.set(Error, "%v", err)
		return
	}
	set, when := p.judgedCookies(s)
	var failed []string
	if tok := p.t.Session.Token; tok != nil && tok.Cookie != "" {
		msg := fmt.Sprintf("cookie %s carries the session token and is set by the page's script (session.token.cookie): a cookie set by a script cannot be HttpOnly, so any script on the page can read the token", tok.Cookie)
		r.note("%s", msg)
		failed = append(failed, msg)
	}
	if len(set) == 0 && len(failed) == 0 {
		r.set(Skip, "the sign-in set no cookie: the session travels in a header, so there are no cookie attributes to judge")
		return
	}
	credential := func(name string) bool {
		return slices.ContainsFunc(p.shapes, func(sh shape) bool { return sh.all || slices.Contains(sh.names, name) })
	}
	https := p.c.base.Scheme == "https"
	if !https {
		r.note("advice: the target is served over plain http: any cookie, Secure or not, can be read on the network")
	}
	maxLife := time.Duration(0)
	if a := time.Duration(p.t.Policy.AbsoluteTimeout); a > 0 {
		maxLife = a + p.t.Policy.tolerance()
	}
	for _, c := range set {
		role := "other cookie"
		if credential(c.Name) {
			role = "session credential"
		}
		r.note("%s (%s): %s", c.Name, role, attributes(c, when))
		for _, f := range judgeCookie(c, credential(c.Name), https, maxLife, when) {
			r.note("  %s: %s", c.Name, f)
			if f.fail {
				failed = append(failed, c.Name+": "+f.msg)
			}
		}
	}
	if len(failed) > 0 {
		r.set(Fail, "%s", strings.Join(failed, "; "))
		return
	}
	r.set(Pass, "%d cookie(s) set by the sign-in carry the attributes a session cookie needs", len(set))
}

// judgedCookies returns the cookies the sign-in of s set, and those set before it that
// the target file names as credentials, with when the sign-in set them.
func (p *prober) judgedCookies(s *session) ([]*http.Cookie, time.Time) {
	set, when := s.issuedCookies()
	for _, name := range p.t.Session.names() {
		if !slices.ContainsFunc(set, func(c *http.Cookie) bool { return c.Name == name }) {
			if c := lastSet(s.log, name); c != nil {
				set = append(set, c)
			}
		}
	}
	return set, when
}

// lastSet returns the last cookie named name that an exchange in log set, or nil.
func lastSet(log []*exchange, name string) *http.Cookie {
	var out *http.Cookie
	for _, ex := range log {
		for _, c := range ex.cookies {
			if c.Name == name {
				out = c
			}
		}
	}
	if out != nil && (out.Value == "" || out.MaxAge < 0) {
		return nil
	}
	return out
}
