package probe

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Target describes the web application to probe: where it is, how to sign in and out,
// what a signed-in answer looks like and which session policy it should enforce.
// [ParseTarget] reads one from YAML, validates it and fills in defaults; a Target built
// any other way must not be used with [Run].
type Target struct {
	Name           string      `yaml:"name"`            // shown in reports; defaults to BaseURL
	BaseURL        string      `yaml:"base_url"`        // absolute http or https URL
	TLS            TLS         `yaml:"tls"`             // how to trust the target's certificate
	Credentials    Credentials `yaml:"credentials"`     // account used to sign in
	Login          Request     `yaml:"login"`           // the sign-in request
	Session        Session     `yaml:"session"`         // where the session lives after sign-in
	Authenticated  Canary      `yaml:"authenticated"`   // a URL that answers differently when signed in
	Logout         Logout      `yaml:"logout"`          // the sign-out request, or none
	LogoutAll      *Request    `yaml:"logout_all"`      // optional "sign out everywhere" request
	PasswordChange *Request    `yaml:"password_change"` // optional; uses {{password}} and {{new_password}}
	Refresh        *Request    `yaml:"refresh"`         // optional token refresh or keep-alive request
	Policy         Policy      `yaml:"policy"`          // the expected timeouts
	Checks         CheckConfig `yaml:"checks"`          // which checks to skip and how hard to look
}

// TLS says how to trust a target's certificate. The zero value uses the system roots.
type TLS struct {
	CAFile             string `yaml:"ca_file"`              // PEM file of extra roots
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"` // trust any certificate
}

// Credentials is the account the probe signs in with. NewPassword is needed only for the
// password-change-revokes check, which changes the password and then changes it back.
type Credentials struct {
	Username    string `yaml:"username"`
	Password    string `yaml:"password"`
	NewPassword string `yaml:"new_password"`
}

// Request is one HTTP request in a target file. URL is absolute or relative to the base
// URL, and must stay on the base URL's origin. Values may hold the placeholders
// {{username}}, {{password}}, {{new_password}}, {{csrf}} (when CSRF is set) and
// {{refresh_token}} (when the session has one). Method defaults to POST when Form or
// JSON is set and to GET otherwise.
//
// Redirects within the origin are followed. The request fails, and nothing is judged on
// it, unless its last answer has a status in ExpectStatus (default: any 2xx or 3xx),
// ends at a URL containing ExpectLocation (the Location of a redirect that was not
// followed, else the URL answered) and has a body containing ExpectBody, when those
// are set.
type Request struct {
	Method         string            `yaml:"method"`
	URL            string            `yaml:"url"`
	Headers        map[string]string `yaml:"headers"`
	Form           map[string]string `yaml:"form"`
	JSON           any               `yaml:"json"`
	CSRF           *CSRF             `yaml:"csrf"`
	ExpectStatus   []int             `yaml:"expect_status"`
	ExpectLocation string            `yaml:"expect_location"`
	ExpectBody     string            `yaml:"expect_body"`
}

// explicit reports whether the target file says what success looks like, beyond the
// default of any 2xx or 3xx status.
func (r *Request) explicit() bool {
	return len(r.ExpectStatus) > 0 || r.ExpectLocation != "" || r.ExpectBody != ""
}

// Logout is the sign-out request, or, written "logout: none", the statement that the
// application has no server-side sign-out; logout-invalidates then reports that as a
// finding.
type Logout struct {
	Request `yaml:",inline"`
	None    bool `yaml:"-"`
}

// UnmarshalYAML implements yaml.Unmarshaler: it takes the scalar none, or a request.
func (l *Logout) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
		if n.Value != "none" {
			return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: logout is a request (a mapping with url) or none, not %q", n.Line, n.Value)}}
		}
		*l = Logout{None: true}
		return nil
	}
	return n.Decode(&l.Request)
}

// CSRF tells how to obtain an anti-forgery token just before a request: fetch URL with
// the session's cookies, then take the first group of Pattern in the body, or the value
// of the cookie named Cookie, or of the response header named Header (exactly one).
type CSRF struct {
	URL     string `yaml:"url"`
	Pattern string `yaml:"pattern"`
	Cookie  string `yaml:"cookie"`
	Header  string `yaml:"header"`

	re *regexp.Regexp
}

// Session tells where the session lives after sign-in: in the cookie named Cookie, or
// in a Token taken from the sign-in response (not both). Cookies names further cookies
// that are credentials, alone or together, such as a remember-me pair, or the two
// halves of a signed cookie session (then Cookie may be empty); the probe also treats
// every cookie the sign-in answers set as a possible credential without being told.
// RefreshToken is the JSON path of a refresh token in the sign-in and refresh
// responses, if the target issues one.
type Session struct {
	Cookie       string   `yaml:"cookie"`
	Cookies      []string `yaml:"cookies"`
	Token        *Token   `yaml:"token"`
	RefreshToken string   `yaml:"refresh_token"`
}

// Token is a session token taken from the sign-in answer and sent with every later
// request. It is read from exactly one of: the dotted JSON path JSON (such as
// "data.access_token"), the whole body (RawBody, surrounding space trimmed), the response
// header ResponseHeader, or the first group of the regular expression Pattern matched
// against the body. It is sent as the cookie named Cookie (for an app whose script keeps
// the token in a cookie), or else in Header (default Authorization) after Scheme and a
// space (default Bearer when the header is Authorization, none otherwise).
type Token struct {
	JSON           string `yaml:"json"`
	RawBody        bool   `yaml:"raw_body"`
	ResponseHeader string `yaml:"response_header"`
	Pattern        string `yaml:"pattern"`
	Header         string `yaml:"header"`
	Scheme         string `yaml:"scheme"`
	Cookie         string `yaml:"cookie"`

	re *regexp.Regexp
}

// read takes the token from an answer.
func (t *Token) read(ex *exchange) (string, error) {
	var v string
	switch {
	case t.JSON != "":
		return jsonString(ex.body, t.JSON)
	case t.RawBody:
		v = strings.TrimSpace(string(ex.body))
	case t.ResponseHeader != "":
		v = strings.TrimSpace(ex.header.Get(t.ResponseHeader))
	case t.re != nil:
		if m := t.re.FindSubmatch(ex.body); m != nil {
			v = string(m[1])
		}
	}
	if v == "" {
		return "", errors.New("no token in the answer")
	}
	return v, nil
}

// carrier says where a token is read from and sent, for reports.
func (t *Token) carrier() string {
	if t.Cookie != "" {
		return "token in cookie " + t.Cookie
	}
	return "token in header " + t.Header
}

// Canary is a request whose answer shows whether the session is still signed in: the
// answer must have Status (default 200), and contain BodyContains, a non-null value at
// the dotted JSONPath and, in the URL it ends at (the Location of a redirect, else the
// URL answered), LocationContains, when those are set. Redirects are followed only when
// FollowRedirects is set, and then the final answer is judged: an app that signs a
// browser back in through a redirect counts as signed in.
type Canary struct {
	Request          `yaml:",inline"`
	Status           int    `yaml:"status"`
	BodyContains     string `yaml:"body_contains"`
	JSONPath         string `yaml:"json_path"`
	LocationContains string `yaml:"location_contains"`
	FollowRedirects  bool   `yaml:"follow_redirects"`
}

// Policy is the session policy the target is expected to enforce. A zero timeout skips
// its check. Tolerance is how far from the expected value a measured expiry may fall;
// it defaults to a tenth of the shorter timeout, at least one second.
type Policy struct {
	IdleTimeout     Duration `yaml:"idle_timeout"`
	AbsoluteTimeout Duration `yaml:"absolute_timeout"`
	Tolerance       Duration `yaml:"tolerance"`
}

// CheckConfig selects and tunes checks. EntropySamples is how many sign-ins the
// token-entropy check makes (default 20, between 10 and 1000).
type CheckConfig struct {
	Skip           []string `yaml:"skip"`
	EntropySamples int      `yaml:"entropy_samples"`
}

// Duration is a time.Duration read from YAML as a string such as "90s", "15m", "12h" or
// "30d".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = Duration(v)
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("invalid duration %q: want a number of days such as 30d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want a value such as 90s, 15m, 12h or 30d", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return v, nil
}

// tolerance is the effective tolerance of the policy.
func (p Policy) tolerance() time.Duration {
	if p.Tolerance > 0 {
		return time.Duration(p.Tolerance)
	}
	shortest := time.Duration(p.IdleTimeout)
	if a := time.Duration(p.AbsoluteTimeout); shortest == 0 || (a > 0 && a < shortest) {
		shortest = a
	}
	if t := shortest / 10; t >= time.Second {
		return t
	}
	return min(time.Second, shortest/4)
}
