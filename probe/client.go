package probe

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// maxBody bounds how much of a response body the probe reads.
const maxBody = 1 << 20

// client speaks HTTP to the target. It holds no cookies itself: every request is made on
// behalf of a [session], so checks can keep many sessions apart. Safe for concurrent use.
type client struct {
	t    *Target
	base *url.URL
	hc   *http.Client
}

func newClient(t *Target, rt http.RoundTripper) (*client, error) {
	base, err := url.Parse(t.BaseURL)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{
		Transport:     rt,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &client{t: t, base: base, hc: hc}, nil
}

// exchange is one response the probe received.
type exchange struct {
	method  string
	url     *url.URL
	status  int
	header  http.Header
	cookies []*http.Cookie // the response's Set-Cookie lines
	body    []byte
	at      time.Time
	hops    []*exchange // the answers to this request, redirects first, ending with this one
	away    bool        // a redirect to another origin, not followed
}

// String describes the exchange without secrets, as "GET /account answered 200".
func (e *exchange) String() string {
	return fmt.Sprintf("%s %s answered %d", e.method, printable(e.url.Path), e.status)
}

// trail describes the redirects that led to e and where they ended, such as
// "GET /account → 303 /remember-me → 303 /account → 200".
func (e *exchange) trail() string {
	hops := e.hops
	if len(hops) == 0 {
		hops = []*exchange{e}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", hops[0].method, printable(hops[0].url.Path))
	for _, h := range hops[1:] {
		fmt.Fprintf(&b, " → %d %s", h.prevStatus(hops), shown(h.url))
	}
	fmt.Fprintf(&b, " → %d", e.status)
	if loc := e.location(); loc != e.url.String() {
		if u, err := url.Parse(loc); err == nil && e.away {
			fmt.Fprintf(&b, " %s%s (another origin: not followed)", printable(origin(u)), shown(u))
		} else if err == nil {
			fmt.Fprintf(&b, " %s (not followed)", shown(u))
		}
	}
	return b.String()
}

// shown writes the path and query of a URL the target redirected to, with long query
// values redacted: they may be tokens.
func shown(u *url.URL) string {
	out := u.Path
	if u.RawQuery == "" {
		return printable(out)
	}
	var q []string
	for part := range strings.SplitSeq(u.RawQuery, "&") {
		k, v, _ := strings.Cut(part, "=")
		if dv, err := url.QueryUnescape(v); err == nil && len(dv) > 16 {
			v = redact(dv)
		}
		q = append(q, k+"="+v)
	}
	return printable(out + "?" + strings.Join(q, "&"))
}

// prevStatus is the status of the redirect that led to h.
func (e *exchange) prevStatus(hops []*exchange) int {
	i := slices.Index(hops, e)
	if i <= 0 {
		return 0
	}
	return hops[i-1].status
}

// location is the URL the exchange ended at: the Location of a redirect, or else the
// URL it answered.
func (e *exchange) location() string {
	if e.status >= 300 && e.status < 400 {
		if loc := e.header.Get("Location"); loc != "" {
			if u, err := e.url.Parse(loc); err == nil {
				return u.String()
			}
		}
	}
	return e.url.String()
}

// session is what one client of the target holds: cookies, a token, a refresh token.
// When record is set every exchange is kept in log.
type session struct {
	cookies     []*http.Cookie // as held: Path is the path they apply to
	token       string
	refresh     string
	password    string      // {{password}}; the configured one when empty
	newPassword string      // {{new_password}}; the configured one when empty
	signedIn    time.Time   // when the sign-in response arrived
	signInHops  []*exchange // the answers to the sign-in request
	lastSent    time.Time   // when the last request was sent
	lastUsed    time.Time   // when the last response arrived
	record      bool
	log         []*exchange
}

// sameOrigin reports whether a and b have the same scheme, host and port.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// origin formats the origin of u, such as https://app.example:8443.
func origin(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + u.Host
}

// do sends req on behalf of s, stores what the response sets, and follows redirects
// within the target's origin when follow is set. It returns the last response. It sends
// nothing to another origin: a redirect there is not followed, and the answer is marked
// away.
func (c *client) do(ctx context.Context, s *session, method string, u *url.URL, body []byte, header http.Header, follow bool) (*exchange, error) {
	var hops []*exchange
	for hop := 0; ; hop++ {
		ex, err := c.exchange(ctx, s, method, u, body, header)
		if err != nil {
			return nil, err
		}
		hops = append(hops, ex)
		ex.hops = slices.Clone(hops)
		loc, err := url.Parse(ex.header.Get("Location"))
		if !follow || ex.status < 300 || ex.status > 399 || ex.header.Get("Location") == "" || err != nil || hop >= 10 {
			return ex, nil
		}
		if loc = u.ResolveReference(loc); !sameOrigin(loc, c.base) {
			ex.away = true
			return ex, nil
		}
		if ex.status != http.StatusTemporaryRedirect && ex.status != http.StatusPermanentRedirect {
			method, body, header = http.MethodGet, nil, nil
		}
		u = loc
	}
}

// exchange sends one request for u on behalf of s, which must be on the target's origin,
// and stores what the answer sets.
func (c *client) exchange(ctx context.Context, s *session, method string, u *url.URL, body []byte, header http.Header) (*exchange, error) {
	if !sameOrigin(u, c.base) {
		return nil, fmt.Errorf("%s %s: not on the origin of base_url (%s): the probe sends nothing there", method, printable(u.Redacted()), origin(c.base))
	}
	req, err := c.request(ctx, s, method, u, body, header)
	if err != nil {
		return nil, err
	}
	s.lastSent = time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		// Name the path only: the full URL may carry a secret from a placeholder.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s://%s%s: %w", method, u.Scheme, u.Host, printable(u.Path), err)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, printable(u.Path), err)
	}
	ex := &exchange{method: method, url: u, status: resp.StatusCode, header: resp.Header,
		cookies: resp.Cookies(), body: b, at: time.Now()}
	for _, ck := range ex.cookies {
		s.setCookie(ck, u, ex.at)
	}
	s.lastUsed = ex.at
	if s.record {
		s.log = append(s.log, ex)
	}
	return ex, nil
}

// request makes a request on behalf of s, with the cookies and token s holds for u.
func (c *client) request(ctx context.Context, s *session, method string, u *url.URL, body []byte, header http.Header) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	copyHeader(req.Header, header)
	for _, ck := range s.cookiesFor(u) {
		req.AddCookie(ck)
	}
	if tok := c.t.Session.Token; tok != nil && s.token != "" {
		if tok.Cookie != "" {
			req.AddCookie(&http.Cookie{Name: tok.Cookie, Value: s.token})
		} else {
			req.Header.Set(tok.Header, strings.TrimSpace(tok.Scheme+" "+s.token))
		}
	}
	return req, nil
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = slices.Clone(vs)
	}
}

// send makes the request r describes on behalf of s: it scrapes a CSRF token first if r
// asks for one, fills in placeholders, follows redirects and fails on an unexpected status.
func (c *client) send(ctx context.Context, s *session, r *Request) (*exchange, error) {
	vars := map[string]string{
		"username":      c.t.Credentials.Username,
		"password":      cmp.Or(s.password, c.t.Credentials.Password),
		"new_password":  cmp.Or(s.newPassword, c.t.Credentials.NewPassword),
		"refresh_token": s.refresh,
	}
	if r.CSRF != nil {
		tok, err := c.csrf(ctx, s, r.CSRF)
		if err != nil {
			return nil, err
		}
		vars["csrf"] = tok
	}
	fill := func(v string) string {
		return placeholder.ReplaceAllStringFunc(v, func(m string) string {
			return vars[placeholder.FindStringSubmatch(m)[1]]
		})
	}
	u, err := c.base.Parse(fill(r.URL))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.URL, err)
	}
	header := http.Header{}
	for k, v := range r.Headers {
		header.Set(k, fill(v))
	}
	var body []byte
	switch {
	case r.Form != nil:
		form := url.Values{}
		for k, v := range r.Form {
			form.Set(k, fill(v))
		}
		body = []byte(form.Encode())
		header.Set("Content-Type", "application/x-www-form-urlencoded")
	case r.JSON != nil:
		if body, err = json.Marshal(fillJSON(r.JSON, fill)); err != nil {
			return nil, err
		}
		header.Set("Content-Type", "application/json")
	}
	ex, err := c.do(ctx, s, r.Method, u, body, header, true)
	if err != nil {
		return nil, err
	}
	return ex, r.check(ex)
}

// check says how the answer ex falls short of what r expects, or returns nil.
func (r *Request) check(ex *exchange) error {
	var want []string
	if !statusOK(r.ExpectStatus, ex.status) {
		want = append(want, "status "+expected(r.ExpectStatus))
	}
	if r.ExpectLocation != "" && !strings.Contains(ex.location(), r.ExpectLocation) {
		want = append(want, fmt.Sprintf("a URL containing %q", r.ExpectLocation))
	}
	if r.ExpectBody != "" && !bytes.Contains(ex.body, []byte(r.ExpectBody)) {
		want = append(want, fmt.Sprintf("a body containing %q", r.ExpectBody))
	}
	if len(want) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s, expected %s", errStatus, ex.trail(), strings.Join(want, " and "))
}

func fillJSON(v any, fill func(string) string) any {
	switch v := v.(type) {
	case string:
		return fill(v)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = fillJSON(e, fill)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = fillJSON(e, fill)
		}
		return out
	}
	return v
}

func statusOK(want []int, got int) bool {
	if len(want) == 0 {
		return got >= 200 && got < 400
	}
	return slices.Contains(want, got)
}

func expected(want []int) string {
	if len(want) == 0 {
		return "2xx or 3xx"
	}
	return strings.Trim(fmt.Sprint(want), "[]")
}

// csrf fetches the page cs names on behalf of s and returns the token found there.
func (c *client) csrf(ctx context.Context, s *session, cs *CSRF) (string, error) {
	u, err := c.base.Parse(cs.URL)
	if err != nil {
		return "", err
	}
	ex, err := c.do(ctx, s, http.MethodGet, u, nil, nil, true)
	if err != nil {
		return "", err
	}
	var tok string
	switch {
	case cs.re != nil:
		if m := cs.re.FindSubmatch(ex.body); m != nil {
			tok = html.UnescapeString(string(m[1]))
		}
	case cs.Cookie != "":
		if ck := s.cookie(cs.Cookie); ck != nil {
			tok = ck.Value
		}
	default:
		tok = ex.header.Get(cs.Header)
	}
	if tok == "" {
		return "", fmt.Errorf("csrf: no token found: %s", ex)
	}
	return tok, nil
}

// accepted asks the authenticated URL, on behalf of s, whether s is signed in.
func (c *client) accepted(ctx context.Context, s *session) (bool, *exchange, error) {
	a := &c.t.Authenticated
	u, err := c.base.Parse(a.URL)
	if err != nil {
		return false, nil, err
	}
	header := http.Header{}
	for k, v := range a.Headers {
		header.Set(k, v)
	}
	ex, err := c.do(ctx, s, a.Method, u, nil, header, a.FollowRedirects)
	if err != nil {
		return false, nil, err
	}
	return a.judge(ex), ex, nil
}

// judge reports whether the answer ex shows a signed-in session.
func (a *Canary) judge(ex *exchange) bool {
	ok := ex.status == a.Status
	if ok && a.BodyContains != "" {
		ok = bytes.Contains(ex.body, []byte(a.BodyContains))
	}
	if ok && a.JSONPath != "" {
		v, found := lookupJSON(ex.body, a.JSONPath)
		ok = found && v != nil
	}
	if ok && a.LocationContains != "" {
		ok = strings.Contains(ex.location(), a.LocationContains)
	}
	return ok
}

// errStatus marks a request the target answered otherwise than the target file expects.
var errStatus = errors.New("unexpected answer")

// signIn signs s in and confirms the session is accepted.
func (c *client) signIn(ctx context.Context, s *session) error {
	ex, err := c.send(ctx, s, &c.t.Login)
	if err != nil {
		return fmt.Errorf("sign-in failed: %w", err)
	}
	s.signInHops = ex.hops
	if tok := c.t.Session.Token; tok != nil {
		if s.token, err = readToken(tok, ex); err != nil {
			return fmt.Errorf("sign-in failed: %s: session.token: %w", ex.trail(), err)
		}
	}
	if p := c.t.Session.RefreshToken; p != "" {
		if s.refresh, err = jsonString(ex.body, p); err != nil {
			return fmt.Errorf("sign-in failed: %s: session.refresh_token: %w", ex, err)
		}
	}
	for _, name := range c.t.Session.names() {
		if s.cookie(name) == nil {
			return fmt.Errorf("sign-in failed: no cookie named %q after %s", name, ex.trail())
		}
	}
	s.signedIn = ex.at
	ok, check, err := c.accepted(ctx, s)
	if err != nil {
		return fmt.Errorf("sign-in failed: %w", err)
	}
	if !ok {
		return fmt.Errorf("sign-in failed: after signing in (%s), %s, which the authenticated section does not accept", ex.trail(), check.trail())
	}
	return nil
}

// names returns the cookies the target file names as credentials.
func (s *Session) names() []string {
	var out []string
	if s.Cookie != "" {
		out = append(out, s.Cookie)
	}
	return append(out, s.Cookies...)
}

// readToken takes the token from the last answer of a request that carries one.
func readToken(tok *Token, ex *exchange) (string, error) {
	err := errors.New("no answer")
	for i := len(ex.hops) - 1; i >= 0; i-- {
		var v string
		if v, err = tok.read(ex.hops[i]); err == nil {
			return v, nil
		}
	}
	return "", err
}

// refresh sends the refresh request on behalf of s and takes up the tokens it returns.
// It returns the answer, when there was one.
func (c *client) refresh(ctx context.Context, s *session) (*exchange, error) {
	ex, err := c.send(ctx, s, c.t.Refresh)
	if err != nil {
		return ex, err
	}
	if tok := c.t.Session.Token; tok != nil {
		if v, err := readToken(tok, ex); err == nil {
			s.token = v
		}
	}
	if p := c.t.Session.RefreshToken; p != "" {
		if v, err := jsonString(ex.body, p); err == nil {
			s.refresh = v
		}
	}
	return ex, nil
}

// sessionToken is the value that identifies s: its token, or its session cookie (the
// first of session.cookies when session.cookie is not set).
func (c *client) sessionToken(s *session) string {
	if c.t.Session.Token != nil {
		return s.token
	}
	if ck := s.cookie(c.t.Session.names()[0]); ck != nil {
		return ck.Value
	}
	return ""
}
