package probetest

import (
	"cmp"
	"fmt"
	"strings"
)

// Env resolves the environment variables the target files of [App.TargetFile] use,
// PROBE_PASSWORD and PROBE_NEW_PASSWORD, as a lookupEnv for probe.ParseTarget.
func Env(name string) (string, bool) {
	switch name {
	case "PROBE_PASSWORD":
		return Password, true
	case "PROBE_NEW_PASSWORD":
		return NewPassword, true
	}
	return "", false
}

// TargetFile returns a YAML target file for the App served at baseURL: with form sign-in,
// a CSRF token and a session cookie, or with api set, with JSON sign-in and bearer and
// refresh tokens. Its policy is the App's timeouts with a quarter of the idle timeout
// as tolerance. extra is appended verbatim, such as "tls:\n  ca_file: ca.pem\n".
func (a *App) TargetFile(baseURL string, api bool, extra string) []byte {
	var b strings.Builder
	kind := "web"
	if api {
		kind = "API"
	}
	fmt.Fprintf(&b, "name: probetest %s app (%s)\nbase_url: %s\n", kind, cmp.Or(string(a.flaw), "sound"), baseURL)
	b.WriteString("credentials:\n  username: alice\n  password: ${PROBE_PASSWORD}\n  new_password: ${PROBE_NEW_PASSWORD}\n")
	if api {
		b.WriteString(apiTarget)
	} else {
		fmt.Fprintf(&b, webTarget, a.CookieName())
	}
	fmt.Fprintf(&b, "policy:\n  idle_timeout: %s\n  absolute_timeout: %s\n  tolerance: %s\n", a.idle, a.absolute, a.idle/4)
	b.WriteString(extra)
	return []byte(b.String())
}

const webTarget = `login:
  url: /login
  csrf:
    url: /login
    pattern: 'name="csrf" value="([^"]+)"'
  form:
    username: "{{username}}"
    password: "{{password}}"
    csrf: "{{csrf}}"
session:
  cookie: %s
authenticated:
  url: /account
  body_contains: Signed in as alice
logout:
  url: /logout
  csrf: &account-csrf
    url: /account
    pattern: 'name="csrf" value="([^"]+)"'
  form: {csrf: "{{csrf}}"}
logout_all:
  url: /logout-all
  csrf: *account-csrf
  form: {csrf: "{{csrf}}"}
password_change:
  url: /password
  csrf: *account-csrf
  form:
    csrf: "{{csrf}}"
    current: "{{password}}"
    new: "{{new_password}}"
`

const apiTarget = `login:
  url: /api/login
  json: {username: "{{username}}", password: "{{password}}"}
session:
  token:
    json: access_token
  refresh_token: refresh_token
authenticated:
  url: /api/me
  json_path: user.name
logout:
  method: POST
  url: /api/logout
logout_all:
  method: POST
  url: /api/logout-all
refresh:
  url: /api/refresh
  json: {refresh_token: "{{refresh_token}}"}
password_change:
  url: /api/password
  json: {current: "{{password}}", new: "{{new_password}}"}
`
