package probe

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// validator collects the problems of a decoded target file and fills in defaults.
type validator struct {
	file string
	root *yaml.Node
	base *url.URL // nil when base_url is not valid
	errs []error
	used map[string]string // placeholder -> first key using it
}

func (v *validator) add(key, format string, args ...any) {
	v.errs = append(v.errs, &TargetError{File: v.file, Line: lineOf(v.root, key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

var (
	placeholder = regexp.MustCompile(`\{\{\s*([A-Za-z_]+)\s*\}\}`)
	methodName  = regexp.MustCompile(`^[A-Z]+$`)
	cookieName  = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
)

func (v *validator) target(t *Target) {
	v.used = map[string]string{}
	if t.BaseURL == "" {
		v.add("base_url", "is required")
	} else if u, err := url.Parse(t.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		v.add("base_url", "must be an absolute http or https URL without user info, got %q", t.BaseURL)
	} else {
		v.base = u
	}
	if t.Name == "" {
		t.Name = t.BaseURL
	}

	v.session(&t.Session)
	v.request("login", &t.Login, "POST")
	v.canary(&t.Authenticated)
	if !t.Logout.None {
		v.request("logout", &t.Logout.Request, "POST")
	}
	if t.LogoutAll != nil {
		v.request("logout_all", t.LogoutAll, "POST")
	}
	if t.Refresh != nil {
		v.request("refresh", t.Refresh, "POST")
	}
	if t.PasswordChange != nil {
		v.passwordChange(t)
	}
	v.placeholdersUsed(t)
	v.policy(&t.Policy)
	v.checks(&t.Checks)
}

func (v *validator) passwordChange(t *Target) {
	if !v.request("password_change", t.PasswordChange, "POST")["new_password"] {
		v.add("password_change", "must send the new password with {{new_password}}")
	}
	if t.Credentials.NewPassword == "" {
		v.add("credentials.new_password", "is required when password_change is set")
	} else if t.Credentials.NewPassword == t.Credentials.Password {
		v.add("credentials.new_password", "must differ from credentials.password")
	}
}

// placeholdersUsed checks that what the placeholders in use stand for is set.
func (v *validator) placeholdersUsed(t *Target) {
	for _, name := range sortedKeys(v.used) {
		key := v.used[name]
		switch name {
		case "username":
			if t.Credentials.Username == "" {
				v.add("credentials.username", "is required: %s uses {{username}}", key)
			}
		case "password":
			if t.Credentials.Password == "" {
				v.add("credentials.password", "is required: %s uses {{password}}", key)
			}
		case "refresh_token":
			if t.Session.RefreshToken == "" {
				v.add(key, "uses {{refresh_token}} but session.refresh_token is not set")
			}
		}
	}
}

func (v *validator) session(s *Session) {
	switch {
	case s.Cookie == "" && len(s.Cookies) == 0 && s.Token == nil:
		v.add("session", "set cookie (the session cookie's name), cookies (the names of cookies that are credentials together) or token (where the sign-in response holds it)")
	case s.Cookie != "" && s.Token != nil:
		v.add("session", "set cookie or token, not both")
	case s.Cookie != "" && !cookieName.MatchString(s.Cookie):
		v.add("session.cookie", "%q is not a valid cookie name", s.Cookie)
	}
	for i, name := range s.Cookies {
		key := fmt.Sprintf("session.cookies[%d]", i)
		switch {
		case !cookieName.MatchString(name):
			v.add(key, "%q is not a valid cookie name", name)
		case name == s.Cookie || slices.Index(s.Cookies, name) < i:
			v.add(key, "%q is named twice", name)
		}
	}
	if s.Token != nil {
		v.token(s.Token)
	}
	v.path("session.refresh_token", s.RefreshToken, false)
}

// token checks where a session token is read from and how it is sent, and fills in the
// defaults.
func (v *validator) token(t *Token) {
	n := 0
	for _, set := range []bool{t.JSON != "", t.RawBody, t.ResponseHeader != "", t.Pattern != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		v.add("session.token", "set exactly one of json, raw_body, response_header or pattern: where the sign-in answer carries the token")
	}
	v.path("session.token.json", t.JSON, false)
	if t.ResponseHeader != "" && !cookieName.MatchString(t.ResponseHeader) {
		v.add("session.token.response_header", "%q is not a header name", t.ResponseHeader)
	}
	if t.Pattern != "" {
		t.re = v.pattern("session.token.pattern", t.Pattern, `token = "([^"]+)"`)
	}
	switch {
	case t.Cookie != "":
		if t.Header != "" || t.Scheme != "" {
			v.add("session.token", "set cookie or header and scheme, not both: the token is sent one way")
		}
		if !cookieName.MatchString(t.Cookie) {
			v.add("session.token.cookie", "%q is not a valid cookie name", t.Cookie)
		}
	case t.Header == "":
		t.Header = "Authorization"
		fallthrough
	default:
		if !cookieName.MatchString(t.Header) {
			v.add("session.token.header", "%q is not a header name", t.Header)
		}
		if t.Scheme == "" && strings.EqualFold(t.Header, "Authorization") {
			t.Scheme = "Bearer"
		}
	}
}

// pattern compiles a regular expression found at key, which needs a group.
func (v *validator) pattern(key, p, example string) *regexp.Regexp {
	re, err := regexp.Compile(p)
	switch {
	case err != nil:
		v.add(key, "is not a regular expression: %v", err)
	case re.NumSubexp() < 1:
		v.add(key, "needs a group, such as %s", example)
	default:
		return re
	}
	return nil
}

func (v *validator) path(key, p string, required bool) {
	if p == "" {
		if required {
			v.add(key, "is required")
		}
		return
	}
	if slices.Contains(strings.Split(p, "."), "") {
		v.add(key, "%q is not a dotted JSON path such as data.access_token", p)
	}
}

func (v *validator) canary(c *Canary) {
	v.request("authenticated", &c.Request, "GET")
	if c.Form != nil || c.JSON != nil || c.CSRF != nil {
		v.add("authenticated", "takes no form, json or csrf: it should be a plain request such as GET /account")
	}
	if c.explicit() {
		v.add("authenticated", "takes status, body_contains, json_path and location_contains, not expect_status, expect_location or expect_body")
	}
	if c.Status == 0 {
		c.Status = 200
	} else if c.Status < 100 || c.Status > 599 {
		v.add("authenticated.status", "%d is not an HTTP status", c.Status)
	}
	v.path("authenticated.json_path", c.JSONPath, false)
}

// request checks r, found at key, fills in its method (withBody when it has a body) and
// returns the placeholders it uses.
func (v *validator) request(key string, r *Request, withBody string) map[string]bool {
	if r.URL == "" {
		hint := ""
		if key == "logout" {
			hint = " (or write logout: none when the app has no server-side sign-out)"
		}
		v.add(key+".url", "is required%s", hint)
	} else {
		v.sameOrigin(key+".url", r.URL)
	}
	v.body(key, r)
	v.method(key, r, withBody)
	for i, s := range r.ExpectStatus {
		if s < 100 || s > 599 {
			v.add(fmt.Sprintf("%s.expect_status[%d]", key, i), "%d is not an HTTP status", s)
		}
	}
	if c := r.CSRF; c != nil {
		v.csrf(key+".csrf", c)
	}
	uses := map[string]bool{}
	r.visit(key, func(at, s string) {
		for _, m := range placeholder.FindAllStringSubmatch(s, -1) {
			if key == "authenticated" {
				v.add(at, "placeholders are not filled in here")
				continue
			}
			uses[m[1]] = true
			v.placeholder(key, at, m[1], r)
		}
	})
	return uses
}

// body checks the body of r, found at key: a form or JSON, not both.
func (v *validator) body(key string, r *Request) {
	if r.Form != nil && r.JSON != nil {
		v.add(key, "set form or json, not both")
	}
	if r.JSON != nil {
		if _, err := json.Marshal(r.JSON); err != nil {
			v.add(key+".json", "cannot be sent as JSON (are all keys strings?)")
		}
	}
}

// method checks the method of r, found at key, or fills it in: withBody
// when r has a body, GET otherwise.
func (v *validator) method(key string, r *Request, withBody string) {
	switch {
	case r.Method != "":
		if !methodName.MatchString(r.Method) {
			v.add(key+".method", "%q is not an HTTP method in capitals such as POST", r.Method)
		}
	case r.Form != nil || r.JSON != nil:
		r.Method = withBody
	default:
		r.Method = "GET"
	}
}

// placeholder checks the placeholder {{name}}, found at at in request r
// of key, and notes where it was first used.
func (v *validator) placeholder(key, at, name string, r *Request) {
	switch name {
	case "username", "password", "refresh_token":
	case "new_password":
		if key != "password_change" {
			v.add(at, "{{new_password}} may only be used in password_change")
		}
	case "csrf":
		if r.CSRF == nil {
			v.add(at, "uses {{csrf}} but %s.csrf is not set", key)
		}
	default:
		v.add(at, "unknown placeholder {{%s}}; known: username, password, new_password, csrf, refresh_token", name)
	}
	if _, ok := v.used[name]; !ok {
		v.used[name] = at
	}
}

// sameOrigin checks that the URL at key is on the base URL's origin: the probe sends
// passwords, cookies and tokens nowhere else.
func (v *validator) sameOrigin(key, ref string) {
	u, err := url.Parse(ref)
	if err != nil {
		v.add(key, "is not a URL: %v", err)
		return
	}
	if v.base != nil && !sameOrigin(v.base.ResolveReference(u), v.base) {
		v.add(key, "%q is not on the origin of base_url (%s): the probe sends credentials only there", ref, origin(v.base))
	}
}

func (v *validator) csrf(key string, c *CSRF) {
	if c.URL == "" {
		v.add(key+".url", "is required")
	} else {
		v.sameOrigin(key+".url", c.URL)
	}
	n := 0
	for _, s := range []string{c.Pattern, c.Cookie, c.Header} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		v.add(key, "set exactly one of pattern, cookie or header")
	}
	if c.Pattern != "" {
		c.re = v.pattern(key+".pattern", c.Pattern, `name="csrf" value="([^"]+)"`)
	}
}

// visit calls fn for every string of r that may hold placeholders, with its key.
func (r *Request) visit(key string, fn func(at, s string)) {
	fn(key+".url", r.URL)
	for _, k := range sortedKeys(r.Headers) {
		fn(key+".headers."+k, r.Headers[k])
	}
	for _, k := range sortedKeys(r.Form) {
		fn(key+".form."+k, r.Form[k])
	}
	visitJSON(key+".json", r.JSON, fn)
}

func visitJSON(at string, v any, fn func(at, s string)) {
	switch v := v.(type) {
	case string:
		fn(at, v)
	case map[string]any:
		for _, k := range sortedKeys(v) {
			visitJSON(at+"."+k, v[k], fn)
		}
	case []any:
		for i, e := range v {
			visitJSON(fmt.Sprintf("%s[%d]", at, i), e, fn)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (v *validator) policy(p *Policy) {
	tol := p.tolerance()
	if i := time.Duration(p.IdleTimeout); i > 0 && tol*2 >= i {
		v.add("policy.tolerance", "%v must be less than half of idle_timeout %v", tol, i)
	}
	if a := time.Duration(p.AbsoluteTimeout); a > 0 && tol*2 >= a {
		v.add("policy.tolerance", "%v must be less than half of absolute_timeout %v", tol, a)
	}
}

func (v *validator) checks(c *CheckConfig) {
	for i, id := range c.Skip {
		if specByID(id) == nil {
			v.add(fmt.Sprintf("checks.skip[%d]", i), "unknown check %q; known: %s", id, strings.Join(checkIDs(), ", "))
		}
	}
	switch {
	case c.EntropySamples == 0:
		c.EntropySamples = 20
	case c.EntropySamples < 10 || c.EntropySamples > 1000:
		v.add("checks.entropy_samples", "%d is outside 10..1000", c.EntropySamples)
	}
}
