package probe

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// redact shows a secret as a short prefix, its length and the start of its SHA-256, so
// two reports can be compared without either revealing the secret.
func redact(v string) string {
	sum := sha256.Sum256([]byte(v))
	prefix := v[:min(4, len(v)/4)]
	if !utf8.ValidString(prefix) {
		prefix = ""
	}
	return fmt.Sprintf("%s…[%d chars, sha256 %x]", printable(prefix), len(v), sum[:4])
}

// shape is a kind of credential a sign-in produces: learnt once, from one sign-in, and
// then found in every session the checks sign in.
type shape struct {
	label   string   // such as "cookie sid" or "cookies a+b together"
	names   []string // the cookies it is made of
	token   bool     // it includes the session token
	refresh bool     // it is the refresh token
	all     bool     // every cookie the session holds, and its token
	signsIn bool     // replaying it made the app issue a new session
}

// credential is one thing a signed-in session holds that may get it accepted: a cookie
// alone, cookies together, its token, or its refresh token.
type credential struct {
	shape
	cookies []*http.Cookie
	token   string
	refresh string
}

// String names the credential with its value redacted when it is one value.
func (cr credential) String() string {
	switch {
	case cr.refresh != "":
		return cr.label + " " + redact(cr.refresh)
	case cr.token != "" && len(cr.cookies) == 0:
		return cr.label + " " + redact(cr.token)
	case len(cr.cookies) == 1 && !cr.all:
		return cr.label + " " + redact(cr.cookies[0].Value)
	}
	return cr.label
}

// stateless reports whether the credential is a JSON Web Token alone, which a server
// may accept without keeping any state it could end.
func (cr credential) stateless() bool {
	return cr.token != "" && len(cr.cookies) == 0 && isJWT(cr.token)
}

// holder returns a new session that holds only this credential.
func (cr credential) holder() *session {
	h := &session{token: cr.token, refresh: cr.refresh}
	for _, c := range cr.cookies {
		h.hold(c)
	}
	return h
}

// of finds the credential of this shape in s; ok is false when s lacks part of it.
func (sh shape) of(s *session) (cr credential, ok bool) {
	cr.shape = sh
	switch {
	case sh.refresh:
		cr.refresh = s.refresh
		return cr, s.refresh != ""
	case sh.all:
		cr.cookies, cr.token = slices.Clone(s.cookies), s.token
		return cr, true
	}
	for _, name := range sh.names {
		c := s.cookie(name)
		if c == nil {
			return cr, false
		}
		cr.cookies = append(cr.cookies, c)
	}
	if sh.token {
		cr.token = s.token
		return cr, s.token != ""
	}
	return cr, true
}

// credentials returns the credentials s holds, one for each shape discovery found.
func (p *prober) credentials(s *session) []credential {
	var out []credential
	for _, sh := range p.shapes {
		if cr, ok := sh.of(s); ok {
			out = append(out, cr)
		}
	}
	return out
}

// issuedCookies returns the cookies the sign-in answers of s set and did not delete,
// in the order they were set, with the time they were set.
func (s *session) issuedCookies() ([]*http.Cookie, time.Time) {
	var set []*http.Cookie
	var when time.Time
	for _, ex := range s.signInHops {
		for _, c := range ex.cookies {
			set = slices.DeleteFunc(set, func(old *http.Cookie) bool { return old.Name == c.Name })
			if c.Value != "" && c.MaxAge >= 0 && (c.Expires.IsZero() || c.Expires.After(ex.at)) {
				set, when = append(set, c), ex.at
			}
		}
	}
	return set, when
}

// discover learns, from the freshly signed-in session s, which of what it holds gets a
// session accepted: each cookie the sign-in set (and each the target file names) alone;
// the cookies named in session.cookies together; those that are refused alone, together;
// all of them together; the token. Only shapes the authenticated URL accepts are kept,
// and when none is, everything the session holds is. The refresh token is kept without
// being tried, since trying may rotate it. It notes what it found in p.found.
func (p *prober) discover(ctx context.Context, s *session) error {
	d := &discovery{p: p, s: s}
	d.issued, _ = s.issuedCookies()
	for _, c := range d.issued {
		p.names = append(p.names, c.Name)
	}
	for _, n := range p.t.Session.names() {
		if !slices.Contains(p.names, n) {
			p.names = append(p.names, n)
		}
	}
	if err := d.cookies(ctx); err != nil {
		return err
	}
	if err := d.token(ctx); err != nil {
		return err
	}
	if len(p.shapes) == 0 {
		if err := d.everything(ctx); err != nil {
			return err
		}
	}
	if s.refresh != "" && p.t.Refresh != nil {
		p.shapes = append(p.shapes, shape{label: "refresh token", refresh: true})
	}
	return nil
}

// discovery is the state of [prober.discover].
type discovery struct {
	p      *prober
	s      *session
	issued []*http.Cookie // the cookies the sign-in set
	tried  [][]string     // the cookie names (and " token") of each shape tried
}

// try replays the shape sh of d.s once, unless a shape of the same parts was tried, and
// keeps it when it is accepted.
func (d *discovery) try(ctx context.Context, sh shape) (bool, error) {
	key := slices.Clone(sh.names)
	slices.Sort(key)
	if sh.token {
		key = append(key, " token")
	}
	if slices.ContainsFunc(d.tried, func(k []string) bool { return slices.Equal(k, key) }) {
		return false, nil
	}
	d.tried = append(d.tried, key)
	cr, ok := sh.of(d.s)
	if !ok {
		return false, nil
	}
	res, err := d.p.replay(ctx, cr)
	if err != nil {
		return false, err
	}
	d.p.found = append(d.p.found, "after sign-in: "+res.String())
	if advice := d.p.followAdvice(res, d.issued); advice != "" {
		d.p.found = append(d.p.found, advice)
	}
	if res.ok {
		sh.signsIn = res.signsIn
		d.p.shapes = append(d.p.shapes, sh)
	}
	return res.ok, nil
}

// cookies tries each cookie alone, then the groups of them that may work together.
func (d *discovery) cookies(ctx context.Context) error {
	var refusedAlone []string
	for _, n := range d.p.names {
		ok, err := d.try(ctx, shape{label: "cookie " + n, names: []string{n}})
		if err != nil {
			return err
		}
		if !ok {
			refusedAlone = append(refusedAlone, n)
		}
	}
	whole := shape{label: fmt.Sprintf("all %d cookies the sign-in set together", len(d.p.names)), names: d.p.names, token: d.s.token != ""}
	if whole.token {
		whole.label = fmt.Sprintf("all %d cookies the sign-in set and the token together", len(d.p.names))
	}
	for _, g := range []shape{
		{label: together(d.p.t.Session.Cookies) + " (session.cookies)", names: d.p.t.Session.Cookies},
		{label: together(refusedAlone) + " together", names: refusedAlone},
		whole,
	} {
		if len(g.names)+btoi(g.token) < 2 {
			continue
		}
		if _, err := d.try(ctx, g); err != nil {
			return err
		}
	}
	return nil
}

// token tries the session token alone.
func (d *discovery) token(ctx context.Context) error {
	if d.s.token == "" {
		return nil
	}
	label := "bearer token"
	if tok := d.p.t.Session.Token; tok.Cookie != "" || !strings.EqualFold(tok.Header, "Authorization") {
		label = tok.carrier()
	}
	if isJWT(d.s.token) {
		label += " (a JSON Web Token)"
	}
	_, err := d.try(ctx, shape{label: label, token: true})
	return err
}

// everything keeps all the session holds as one credential, when nothing less worked.
func (d *discovery) everything(ctx context.Context) error {
	all := shape{label: "everything the session holds, cookies set before sign-in included", all: true}
	cr, _ := all.of(d.s)
	res, err := d.p.replay(ctx, cr)
	if err != nil {
		return err
	}
	if !res.ok {
		return fmt.Errorf("after signing in, the authenticated section accepts none of the cookies and tokens the session holds when replayed on their own (%s)", res.reached.trail())
	}
	d.p.shapes = append(d.p.shapes, all)
	return nil
}

// followAdvice suggests authenticated.follow_redirects when a credential with a
// persistent cookie was refused with a redirect the probe did not follow, to somewhere
// other than the sign-in page: it may be one that signs the browser back in.
func (p *prober) followAdvice(res replayed, issued []*http.Cookie) string {
	ex := res.reached
	if p.t.Authenticated.FollowRedirects || res.ok || ex == nil || ex.status < 300 || ex.status > 399 || ex.away {
		return ""
	}
	u, err := url.Parse(ex.location())
	if err != nil || p.signInPage(u.Path) || !persistent(res.cookies, issued) {
		return ""
	}
	return fmt.Sprintf("advice: %s was refused with a redirect to %s, which the probe did not follow; if that signs the browser back in, set authenticated.follow_redirects: true", res.label, shown(u))
}

// signInPage reports whether path is that of the sign-in request or of its CSRF page.
func (p *prober) signInPage(path string) bool {
	pages := []string{p.t.Login.URL}
	if c := p.t.Login.CSRF; c != nil {
		pages = append(pages, c.URL)
	}
	return slices.ContainsFunc(pages, func(page string) bool {
		u, err := url.Parse(page)
		return err == nil && u.Path == path
	})
}

// persistent reports whether one of cookies was set by the sign-in with Max-Age or
// Expires.
func persistent(cookies, issued []*http.Cookie) bool {
	return slices.ContainsFunc(issued, func(c *http.Cookie) bool {
		return (c.MaxAge > 0 || !c.Expires.IsZero()) && slices.ContainsFunc(cookies, func(h *http.Cookie) bool { return h.Name == c.Name })
	})
}

func together(names []string) string {
	if len(names) == 1 {
		return "cookie " + names[0]
	}
	return "cookies " + strings.Join(names, "+")
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// replayed is what replaying one credential found.
type replayed struct {
	credential
	ok      bool      // the authenticated URL accepted it
	signsIn bool      // the app issued a new session while answering
	issued  string    // the cookie that new session came in
	reached *exchange // the last answer
	holder  *session  // the session that replayed it, holding any rotated token
}

// String says what the credential reached, such as "cookie sid X…[43 chars, sha256 …]:
// accepted (GET /account → 200)".
func (r replayed) String() string {
	how := "refused"
	switch {
	case r.ok && r.signsIn:
		how = fmt.Sprintf("signed the browser back in, with a new cookie %s", r.issued)
	case r.ok:
		how = "accepted"
	}
	if r.reached == nil {
		return fmt.Sprintf("%s: %s", r.credential, how)
	}
	return fmt.Sprintf("%s: %s (%s)", r.credential, how, r.reached.trail())
}

// replay reports what cr alone reaches: directly for cookies and tokens; through the
// refresh request and then the authenticated URL for a refresh token.
func (p *prober) replay(ctx context.Context, cr credential) (replayed, error) {
	h := cr.holder()
	res := replayed{credential: cr, holder: h}
	sent := map[string]string{}
	for _, c := range h.cookies {
		sent[c.Name] = c.Value
	}
	if cr.refresh != "" {
		ex, err := p.c.refresh(ctx, h)
		if err != nil {
			if errors.Is(err, errStatus) {
				res.reached = ex
				return res, nil
			}
			return res, err
		}
	}
	ok, ex, err := p.c.accepted(ctx, h)
	if err != nil {
		return res, err
	}
	res.ok, res.reached = ok, ex
	if ok {
		res.issued = p.newCredential(sent, ex)
		res.signsIn = res.issued != ""
	}
	return res, nil
}

// newCredential returns the name of a credential cookie that the answers of ex set to a
// value other than the one sent, or "".
func (p *prober) newCredential(sent map[string]string, ex *exchange) string {
	for _, h := range ex.hops {
		for _, c := range h.cookies {
			if slices.Contains(p.names, c.Name) && c.Value != "" && c.MaxAge >= 0 && c.Value != sent[c.Name] {
				return c.Name
			}
		}
	}
	return ""
}

// replayAll replays each credential in turn.
func (p *prober) replayAll(ctx context.Context, creds []credential) ([]replayed, error) {
	out := make([]replayed, 0, len(creds))
	for _, cr := range creds {
		res, err := p.replay(ctx, cr)
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	return out, nil
}

// isJWT reports whether v looks like a signed or unsigned JSON Web Token.
func isJWT(v string) bool {
	_, ok := jwtClaims([]string{v})
	return ok
}
