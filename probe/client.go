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
}

// String describes the exchange without secrets, as "GET /account answered 200".
func (e *exchange) String() string {
	return fmt.Sprintf("%s %s answered %d", e.method, e.url.Path, e.status)
}

// session is what one client of the target holds: cookies, a token, a refresh token.
// When record is set every exchange is kept in log.
type session struct {
	cookies     []*http.Cookie
	token       string
	refresh     string
	password    string    // {{password}}; the configured one when empty
	newPassword string    // {{new_password}}; the configured one when empty
	signedIn    time.Time // when the sign-in response arrived
	lastUsed    time.Time // when the last response arrived
	record      bool
	log         []*exchange
}

func (s *session) cookie(name string) *http.Cookie {
	for _, c := range s.cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// setCookie stores c, or removes the cookie if c deletes it.
func (s *session) setCookie(c *http.Cookie, now time.Time) {
	s.cookies = slices.DeleteFunc(s.cookies, func(old *http.Cookie) bool { return old.Name == c.Name })
	if c.Value == "" || c.MaxAge < 0 || (!c.Expires.IsZero() && !c.Expires.After(now)) {
		return
	}
	s.cookies = append(s.cookies, &http.Cookie{Name: c.Name, Value: c.Value})
}

// do sends req on behalf of s, stores what the response sets, and follows redirects
// within the target when follow is set. It returns the last response.
func (c *client) do(ctx context.Context, s *session, method string, u *url.URL, body []byte, header http.Header, follow bool) (*exchange, error) {
	for hop := 0; ; hop++ {
		req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		copyHeader(req.Header, header)
		if strings.EqualFold(u.Host, c.base.Host) {
			for _, ck := range s.cookies {
				req.AddCookie(ck)
			}
			if tok := c.t.Session.Token; tok != nil && s.token != "" {
				req.Header.Set(tok.Header, strings.TrimSpace(tok.Scheme+" "+s.token))
			}
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			// Name the path only: the full URL may carry a secret from a placeholder.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, fmt.Errorf("%s %s://%s%s: %w", method, u.Scheme, u.Host, u.Path, err)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%s %s: reading the answer: %w", method, u.Path, err)
		}
		ex := &exchange{method: method, url: u, status: resp.StatusCode, header: resp.Header,
			cookies: resp.Cookies(), body: b, at: time.Now()}
		for _, ck := range ex.cookies {
			s.setCookie(ck, ex.at)
		}
		s.lastUsed = ex.at
		if s.record {
			s.log = append(s.log, ex)
		}
		loc, err := resp.Location()
		if !follow || err != nil || resp.StatusCode < 300 || resp.StatusCode > 399 || hop >= 10 {
			return ex, nil
		}
		if !strings.EqualFold(loc.Host, c.base.Host) {
			return ex, nil
		}
		if resp.StatusCode != http.StatusTemporaryRedirect && resp.StatusCode != http.StatusPermanentRedirect {
			method, body, header = http.MethodGet, nil, nil
		}
		u = loc
	}
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
	if !statusOK(r.ExpectStatus, ex.status) {
		return ex, fmt.Errorf("%w: %s, expected %s", errStatus, ex, expected(r.ExpectStatus))
	}
	return ex, nil
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
	ex, err := c.do(ctx, s, a.Method, u, nil, header, false)
	if err != nil {
		return false, nil, err
	}
	ok := ex.status == a.Status
	if ok && a.BodyContains != "" {
		ok = bytes.Contains(ex.body, []byte(a.BodyContains))
	}
	if ok && a.JSONPath != "" {
		v, found := lookupJSON(ex.body, a.JSONPath)
		ok = found && v != nil
	}
	return ok, ex, nil
}

// errStatus marks a request the target answered with a status the target file does not
// expect.
var errStatus = errors.New("unexpected status")

// signIn signs s in and confirms the session is accepted.
func (c *client) signIn(ctx context.Context, s *session) error {
	ex, err := c.send(ctx, s, &c.t.Login)
	if err != nil {
		return fmt.Errorf("sign-in failed: %w", err)
	}
	if tok := c.t.Session.Token; tok != nil {
		if s.token, err = jsonString(ex.body, tok.JSON); err != nil {
			return fmt.Errorf("sign-in failed: %s: session.token.json: %w", ex, err)
		}
	}
	if p := c.t.Session.RefreshToken; p != "" {
		if s.refresh, err = jsonString(ex.body, p); err != nil {
			return fmt.Errorf("sign-in failed: %s: session.refresh_token: %w", ex, err)
		}
	}
	if name := c.t.Session.Cookie; name != "" && s.cookie(name) == nil {
		return fmt.Errorf("sign-in failed: no cookie named %q after %s", name, ex)
	}
	s.signedIn = ex.at
	ok, check, err := c.accepted(ctx, s)
	if err != nil {
		return fmt.Errorf("sign-in failed: %w", err)
	}
	if !ok {
		return fmt.Errorf("sign-in failed: after signing in, %s, which the authenticated section does not accept", check)
	}
	return nil
}

// refresh sends the refresh request on behalf of s and takes up the tokens it returns.
func (c *client) refresh(ctx context.Context, s *session) error {
	ex, err := c.send(ctx, s, c.t.Refresh)
	if err != nil {
		return err
	}
	if tok := c.t.Session.Token; tok != nil {
		if v, err := jsonString(ex.body, tok.JSON); err == nil {
			s.token = v
		}
	}
	if p := c.t.Session.RefreshToken; p != "" {
		if v, err := jsonString(ex.body, p); err == nil {
			s.refresh = v
		}
	}
	return nil
}

// sessionToken is the value that identifies s: its bearer token or session cookie.
func (c *client) sessionToken(s *session) string {
	if c.t.Session.Token != nil {
		return s.token
	}
	if ck := s.cookie(c.t.Session.Cookie); ck != nil {
		return ck.Value
	}
	return ""
}
