package lapse

import (
	"log/slog"
	"net/url"
	"strings"
)

// SecretURL is a URL that may carry a secret, such as a store's or a
// webhook receiver's: a password in its user information, a token in its
// query. Like a [Token], it prints redacted (String, GoString, LogValue),
// so handing one to fmt, slog or an error message cannot leak the secret;
// Reveal returns it whole, for the code that connects.
type SecretURL string

// Reveal returns the URL with its secrets, for connecting.
func (u SecretURL) Reveal() string { return string(u) }

// String returns the URL redacted by [RedactURL].
func (u SecretURL) String() string { return RedactURL(string(u)) }

// GoString redacts the URL in %#v output too.
func (u SecretURL) GoString() string { return `lapse.SecretURL("` + u.String() + `")` }

// LogValue redacts the URL in slog output.
func (u SecretURL) LogValue() slog.Value { return slog.StringValue(u.String()) }

// redacted stands for what RedactURL hides.
const redacted = "[REDACTED]"

// RedactURL returns raw with its user information (user name and
// password) and the value of every query parameter replaced by
// [REDACTED], and without its fragment: what is left (scheme, host,
// path, parameter names) says where the URL points and nothing of what
// it carries. A string that does not parse as a URL is redacted from
// its last "@" back to its scheme, and after its first "?".
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return redactUnparsed(raw)
	}
	if u.Scheme == "" && u.Host == "" && u.User == nil && u.RawQuery == "" {
		return raw // a word such as "sqlite": nothing to hide
	}
	var b strings.Builder
	if u.Scheme != "" {
		b.WriteString(u.Scheme + ":")
	}
	if u.Host != "" || u.User != nil {
		b.WriteString("//")
	}
	if u.User != nil {
		b.WriteString(redacted + "@")
	}
	b.WriteString(u.Host)
	b.WriteString(u.EscapedPath())
	if u.RawQuery != "" {
		b.WriteByte('?')
		for i, kv := range strings.Split(u.RawQuery, "&") {
			if i > 0 {
				b.WriteByte('&')
			}
			k, _, _ := strings.Cut(kv, "=")
			b.WriteString(k + "=" + redacted)
		}
	}
	return b.String()
}

func redactUnparsed(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		scheme, rest = "", raw
	} else {
		scheme += "://"
	}
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		rest = rest[:q] + "?" + redacted
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = redacted + rest[at:]
	}
	return scheme + rest
}
