package probe

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// cacheable says why h lets a cache keep the response, or returns "" when it does not:
// Cache-Control no-store, or no-cache together with private, keep it out.
func cacheable(h http.Header) string {
	var d []string
	for _, v := range h.Values("Cache-Control") {
		for f := range strings.SplitSeq(v, ",") {
			d = append(d, strings.ToLower(strings.TrimSpace(f)))
		}
	}
	switch {
	case slices.Contains(d, "no-store"):
		return ""
	case slices.Contains(d, "no-cache") && slices.Contains(d, "private"):
		return ""
	case len(d) == 0:
		return "no Cache-Control header"
	}
	return "Cache-Control: " + strings.Join(h.Values("Cache-Control"), ", ")
}

var (
	linkAttr = regexp.MustCompile(`(?i)(?:href|src|action)\s*=\s*["']([^"']+)["']`)
	anyURL   = regexp.MustCompile(`https?://[^\s"'<>\\]+`)
)

// urlsIn returns the URLs an exchange shows: the one requested, its Location and the
// links in its body.
func urlsIn(ex *exchange) []string {
	out := []string{ex.url.String()}
	if loc := ex.header.Get("Location"); loc != "" {
		out = append(out, loc)
	}
	for _, m := range linkAttr.FindAllSubmatch(ex.body, -1) {
		out = append(out, string(m[1]))
	}
	for _, m := range anyURL.FindAll(ex.body, -1) {
		out = append(out, string(m))
	}
	return out
}

// secrets returns the values of every credential s holds.
func (p *prober) secrets(s *session) []string {
	var out []string
	for _, cr := range p.credentials(s) {
		for _, c := range cr.cookies {
			out = append(out, c.Value)
		}
		out = append(out, cr.token, cr.refresh)
	}
	out = slices.DeleteFunc(out, func(v string) bool { return v == "" })
	slices.Sort(out)
	return slices.Compact(out)
}

// checkCache checks that authenticated answers may not be cached and that no URL the
// sign-in shows carries the session token (WSTG-SESS-04).
func checkCache(ctx context.Context, p *prober, r *Result) {
	s := &session{record: true}
	if err := p.c.signIn(ctx, s); err != nil {
		r.set(Error, "%v", err)
		return
	}
	_, canary, err := p.c.accepted(ctx, s)
	if err != nil {
		r.set(Error, "%v", err)
		return
	}
	var failed []string
	if why := cacheable(canary.header); why != "" {
		failed = append(failed, "the authenticated answer may be cached ("+why+")")
	}
	secrets := p.secrets(s)
	for _, ex := range s.log {
		carries := slices.ContainsFunc(secrets, func(v string) bool { return bytes.Contains(ex.body, []byte(v)) }) ||
			slices.ContainsFunc(ex.cookies, func(c *http.Cookie) bool { return slices.Contains(p.names, c.Name) && c.Value != "" })
		if carries && ex != canary {
			if why := cacheable(ex.header); why != "" {
				r.note("advice: %s hands out the session token and may be cached (%s)", ex, why)
			}
		}
		for _, u := range urlsIn(ex) {
			for _, sec := range secrets {
				if strings.Contains(u, sec) || strings.Contains(u, url.QueryEscape(sec)) {
					failed = append(failed, "a URL carries the session token: seen in "+ex.String())
				}
			}
		}
	}
	failed = slices.Compact(failed)
	r.note("%d answers read during sign-in and the authenticated request", len(s.log))
	if len(failed) > 0 {
		r.set(Fail, "%s", strings.Join(failed, "; "))
		return
	}
	r.set(Pass, "the authenticated answer carries %s and no URL carries the session token", "Cache-Control: "+strings.Join(canary.header.Values("Cache-Control"), ", "))
}
