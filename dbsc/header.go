package dbsc

import "strings"

// Header names of the protocol (W3C WebAppSec DBSC draft).
const (
	// HeaderRegistration, on a sign-in response, asks the browser to
	// create a key and register it.
	HeaderRegistration = "Secure-Session-Registration"
	// HeaderResponse carries the browser's proof (a dbsc+jwt).
	HeaderResponse = "Secure-Session-Response"
	// HeaderChallenge, on a 403 from the refresh endpoint, gives the
	// browser a challenge to sign.
	HeaderChallenge = "Secure-Session-Challenge"
	// HeaderSessionID names the session a refresh is for.
	HeaderSessionID = "Sec-Secure-Session-Id"
	// HeaderSkipped tells that the browser let a request go without a
	// refresh it could not make.
	HeaderSkipped = "Secure-Session-Skipped"
)

// MaxSessionIDLen caps a session identifier read from a header.
const MaxSessionIDLen = 128

// quote returns s, which is printable ASCII (a path [New] checked, a
// challenge, a session id), as a structured-field string (RFC 9651
// §3.3.3).
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// ParseSessionID parses the Sec-Secure-Session-Id header: a
// structured-field string (RFC 9651 §3.3.3), optionally with parameters
// after it (ignored), or the bare identifier, as Chromium sends it. It
// returns false for anything else, and for an identifier longer than
// [MaxSessionIDLen].
func ParseSessionID(v string) (string, bool) {
	v = strings.Trim(v, " ")
	if v != "" && v[0] != '"' {
		return v, len(v) <= MaxSessionIDLen && bare(v)
	}
	return parseSFString(v)
}

// bare reports whether v is made only of the characters of lapse's
// identifiers and base64url, which need no quoting.
func bare(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~:", c) >= 0) {
			return false
		}
	}
	return true
}

func parseSFString(v string) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\':
			i++
			if i == len(v) || v[i] != '"' && v[i] != '\\' {
				return "", false
			}
			b.WriteByte(v[i])
		case c == '"':
			rest := strings.TrimRight(v[i+1:], " ")
			if rest != "" && rest[0] != ';' || b.Len() > MaxSessionIDLen {
				return "", false
			}
			return b.String(), true
		case c < 0x20 || c > 0x7e:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return "", false // unterminated
}

// registrationHeader is the Secure-Session-Registration value that offers
// lapse's algorithms, the registration path and a challenge.
func registrationHeader(path, challenge string) string {
	return "(" + strings.Join(Algorithms, " ") + ");path=" + quote(path) + ";challenge=" + quote(challenge)
}

// challengeHeader is the Secure-Session-Challenge value for session id.
func challengeHeader(challenge, id string) string {
	return quote(challenge) + ";id=" + quote(id)
}
