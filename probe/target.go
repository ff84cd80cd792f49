package probe

import (
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
	Logout         Request     `yaml:"logout"`          // the sign-out request
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
// URL. Values may hold the placeholders {{username}}, {{password}}, {{new_password}},
// {{csrf}} (when CSRF is set) and {{refresh_token}} (when the session has one). Method
// defaults to POST when Form or JSON is set and to GET otherwise. A response whose
// status is not in ExpectStatus (default: any 2xx or 3xx) makes the request fail.
type Request struct {
	Method       string            `yaml:"method"`
	URL          string            `yaml:"url"`
	Headers      map[string]string `yaml:"headers"`
	Form         map[string]string `yaml:"form"`
	JSON         any               `yaml:"json"`
	CSRF         *CSRF             `yaml:"csrf"`
	ExpectStatus []int             `yaml:"expect_status"`
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
// in a Token taken from the sign-in response (exactly one). RefreshToken is the JSON path
// of a refresh token in the sign-in and refresh responses, if the target issues one.
type Session struct {
	Cookie       string `yaml:"cookie"`
	Token        *Token `yaml:"token"`
	RefreshToken string `yaml:"refresh_token"`
}

// Token is a session token read from a JSON response at the dotted path JSON (such as
// "data.access_token") and sent in Header (default Authorization) after Scheme and a
// space (default Bearer when the header is Authorization, none otherwise).
type Token struct {
	JSON   string `yaml:"json"`
	Header string `yaml:"header"`
	Scheme string `yaml:"scheme"`
}

// Canary is a request whose answer shows whether the session is still signed in: the
// answer must have Status (default 200; redirects are not followed), and contain
// BodyContains and a non-null value at the dotted JSONPath when those are set.
type Canary struct {
	Request      `yaml:",inline"`
	Status       int    `yaml:"status"`
	BodyContains string `yaml:"body_contains"`
	JSONPath     string `yaml:"json_path"`
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
