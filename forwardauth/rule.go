package forwardauth

import (
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
)

// Access says whether a route needs a session.
type Access string

// Access values. The zero value, a session, is what a rule without
// access: asks for.
const (
	AccessSession Access = ""
	// AccessPublic: no session needed, nothing looked up or recorded.
	AccessPublic Access = "public"
)

// Activity says which allowed requests of a route count as the user's
// activity, sliding the session's idle deadline.
type Activity string

// Activity values; "" means [ActivityAll].
const (
	// ActivityAll: every allowed request is activity (the default).
	ActivityAll Activity = "all"
	// ActivityNavigation: only top-level navigations (Sec-Fetch-Mode:
	// navigate with Sec-Fetch-Dest: document, as the proxy forwards them)
	// are; the browser client's own activity reports still count, since
	// they go to lapse directly.
	ActivityNavigation Activity = "navigation"
	// ActivityNone: the route is allowed but never counts, as for a page's
	// background polling.
	ActivityNone Activity = "none"
)

// Rule is the sensitivity of one route of the app: its requests that
// match Host (when set) and Path get the rule's access, activity and
// assurance. Rules are tried in order; the first that matches wins, and
// a request that none matches needs a session and counts as activity.
type Rule struct {
	// Host is the original request's host name, without a port: exact
	// ("app.example.com", case-insensitive) or one level or more of
	// subdomains ("*.example.com", not the apex). "" matches any host.
	// The host is the one the proxy forwards, which the client wrote: a
	// host rule holds only behind a proxy that refuses the hosts it does
	// not serve.
	Host string
	// Path is a prefix of the original request's path, by whole
	// segments: "/api/poll" matches /api/poll and /api/poll/x, not
	// /api/polling; "/billing/" matches /billing/x and /billing itself.
	// The path is matched after percent-decoding, removing dot segments,
	// ";" parameters and repeated slashes, and turning "\" into "/", so
	// that every spelling an app may resolve to a route meets its rule.
	Path string
	// Access is AccessPublic for a route that needs no session.
	Access Access
	// Activity is which allowed requests count as activity; "" means
	// ActivityAll.
	Activity Activity
	// RequireAAL is the assurance level (1-3) the route needs; a session
	// below it is sent to step up. 0 asks for nothing beyond the tier's.
	RequireAAL int
	// MaxAuthAge is how long ago the session's last authentication may
	// be; an older one is sent to step up. 0 means any.
	MaxAuthAge time.Duration
	// Tier is a tier floor: the session's tier must be this one or one
	// at least as strict (idle and absolute timeouts no longer, a required
	// AAL no lower, a max_auth_age no looser), else the request is
	// refused with [problem.CodeTierRequired]. "" means any tier.
	Tier string
}

// counts reports whether an allowed request o is the user's activity
// under the rule. A prefetch or a CORS preflight never is: the browser
// made it, not the person.
func (rl *Rule) counts(o *origin) bool {
	if o.prefetch || o.preflight {
		return false
	}
	switch rl.Activity {
	case ActivityNone:
		return false
	case ActivityNavigation:
		return o.document
	}
	return true
}

// matches reports whether the rule applies to a request for host (lower
// case, without port) and the cleaned path p.
func (rl *Rule) matches(host, p string) bool {
	if rl.Host != "" && !hostMatches(rl.Host, host) {
		return false
	}
	return pathMatches(rl.Path, p)
}

func hostMatches(pattern, host string) bool {
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return len(host) > len(suffix) && strings.HasSuffix(host, suffix)
	}
	return host == pattern
}

// pathMatches reports whether prefix matches p by whole segments.
func pathMatches(prefix, p string) bool {
	if !strings.HasPrefix(p, prefix) {
		// "/billing/" also covers "/billing", which most apps serve alike.
		return strings.HasSuffix(prefix, "/") && p == prefix[:len(prefix)-1]
	}
	return len(p) == len(prefix) || strings.HasSuffix(prefix, "/") || p[len(prefix)] == '/'
}

// cleanPath returns the path of a request URI as the rules match it:
// percent-decoded, with "\" as "/", ";" parameters removed from each
// segment, dot segments resolved and repeated slashes folded, keeping a
// trailing slash. It accepts an origin-form URI ("/a/b?q") or an
// absolute one ("https://host/a/b?q"), and reports false for anything
// else or a bad escape.
func cleanPath(uri string) (string, bool) {
	p, _, _ := strings.Cut(uri, "?")
	p, _, _ = strings.Cut(p, "#")
	if !strings.HasPrefix(p, "/") {
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", false
		}
		p = u.EscapedPath()
		if p == "" {
			p = "/"
		}
	}
	dec, err := url.PathUnescape(p)
	if err != nil {
		return "", false
	}
	dec = strings.ReplaceAll(dec, `\`, "/")
	if strings.Contains(dec, ";") {
		segs := strings.Split(dec, "/")
		for i, s := range segs {
			segs[i], _, _ = strings.Cut(s, ";")
		}
		dec = strings.Join(segs, "/")
	}
	c := path.Clean(dec)
	if strings.HasSuffix(dec, "/") && c != "/" {
		c += "/"
	}
	return c, true
}

// validHost reports whether s is a host name pattern a rule may hold: a
// lower-case name of letters, digits, '-' and '.', optionally behind "*.".
func validHost(s string) bool {
	s = strings.TrimPrefix(s, "*.")
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validate adds the rule's problems, at key path key, to bad. p, when
// not nil, is the policy the tier floor must name a tier of.
func (rl *Rule) validate(key string, p *lapse.Policy, bad func(path, format string, args ...any)) {
	rl.validateRoute(key, bad)
	switch rl.Activity {
	case "", ActivityAll, ActivityNavigation, ActivityNone:
	default:
		bad(key+".activity", "%q is not one of all, navigation, none", rl.Activity)
	}
	if rl.RequireAAL < 0 || rl.RequireAAL > 3 {
		bad(key+".require_aal", "must be 1, 2 or 3")
	}
	if rl.MaxAuthAge < 0 {
		bad(key+".max_auth_age", "must be a positive duration")
	}
	if rl.Tier != "" && p != nil {
		if _, ok := p.Tiers[rl.Tier]; !ok {
			bad(key+".tier", "%q is not a tier of the policy (%s)", rl.Tier, strings.Join(p.TierNames(), ", "))
		}
	}
	switch rl.Access {
	case AccessSession:
	case AccessPublic:
		if rl.Activity != "" || rl.RequireAAL != 0 || rl.MaxAuthAge != 0 || rl.Tier != "" {
			bad(key+".access", "a public route needs no session, so it takes no activity, require_aal, max_auth_age or tier")
		}
	default:
		bad(key+".access", "%q is not public (leave access out for a route that needs a session)", rl.Access)
	}
}

// validateRoute checks the rule's host and path.
func (rl *Rule) validateRoute(key string, bad func(path, format string, args ...any)) {
	switch {
	case rl.Path == "":
		bad(key+".path", "is required: a path prefix such as /billing/")
	case !strings.HasPrefix(rl.Path, "/") || strings.ContainsAny(rl.Path, "?#"):
		bad(key+".path", "%q must start with / and hold no query", rl.Path)
	default:
		if c, _ := cleanPath(rl.Path); c != rl.Path {
			bad(key+".path", "%q is not in its plain form; write %q", rl.Path, c)
		}
	}
	if rl.Host != "" && !validHost(rl.Host) {
		bad(key+".host", "%q is not a lower-case host name (optionally *.example.com), without a port", rl.Host)
	}
}

// ruleKey is the key path of rule i, for errors.
func ruleKey(i int) string { return fmt.Sprintf("forward_auth.rules[%d]", i) }
