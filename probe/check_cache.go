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
	secrets := []string{p.c.sessionToken(s)}
	if s.refresh != "" {
		secrets = append(secrets, s.refresh)
	}
	for _, ex := range s.log {
		carries := bytes.Contains(ex.body, []byte(secrets[0])) ||
			slices.ContainsFunc(ex.cookies, func(c *http.Cookie) bool { return c.Name == p.t.Session.Cookie && c.Value != "" })
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
