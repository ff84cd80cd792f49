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

// Kind is a way of signing in to an App and carrying the session, and so the target
// file [App.TargetFile] writes for it.
type Kind string

// The kinds of target file.
const (
	Web                   Kind = "web"                     // form sign-in with a CSRF token; a session cookie
	API                   Kind = "api"                     // JSON sign-in; bearer and refresh tokens
	RememberMe            Kind = "remember-me"             // Web, ticking "remember me": a persistent cookie pair signs the browser back in through a redirect
	RawBody               Kind = "raw-body"                // the sign-in answers the bare token as text; sent as a bearer token
	HeaderToken           Kind = "header-token"            // the sign-in answers the token in a header, sent back in that header
	ScriptCookie          Kind = "script-cookie"           // the sign-in page's script keeps the token in a cookie
	JWT                   Kind = "jwt"                     // JSON sign-in; stateless JSON Web Tokens and server-side refresh tokens
	NoLogout              Kind = "no-logout"               // API, for an app without sign-out: "logout: none"
	RefusedPasswordChange Kind = "refused-password-change" // Web, with a password change the app refuses, answering 302 as on success
)

// TargetFile returns a YAML target file of the given kind for the App served at
// baseURL. Its policy is the App's timeouts with a quarter of the idle timeout as
// tolerance. extra is appended verbatim, such as "tls:\n  ca_file: ca.pem\n".
func (a *App) TargetFile(baseURL string, kind Kind, extra string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "name: probetest %s app (%s)\nbase_url: %s\n", kind, cmp.Or(string(a.flaw), "sound"), baseURL)
	b.WriteString("credentials:\n  username: alice\n  password: ${PROBE_PASSWORD}\n  new_password: ${PROBE_NEW_PASSWORD}\n")
	switch kind {
	case Web, RememberMe, RefusedPasswordChange:
		b.WriteString(webTarget(a.CookieName(), kind))
	case JWT:
		b.WriteString(jwtTarget)
	default:
		b.WriteString(apiTarget(kind))
	}
	fmt.Fprintf(&b, "policy:\n  idle_timeout: %s\n  absolute_timeout: %s\n  tolerance: %s\n", a.idle, a.absolute, a.idle/4)
	b.WriteString(extra)
	return []byte(b.String())
}

func webTarget(cookie string, kind Kind) string {
	remember, follow, cookies := "", "", ""
	if kind == RememberMe {
		remember = "    remember: \"1\"\n"
		follow = "  follow_redirects: true\n"
		cookies = fmt.Sprintf("  cookies: [%s, %s]\n", seriesCookie, tokenCookie)
	}
	password := `password_change:
  url: /password
  csrf: *account-csrf
  form:
    csrf: "{{csrf}}"
    current: "{{password}}"
    new: "{{new_password}}"
  expect_location: password=changed
`
	if kind == RefusedPasswordChange {
		// The app reads the current password from "current", and answers 302 whether
		// it changed the password or not.
		password = `password_change:
  url: /password
  csrf: *account-csrf
  form:
    csrf: "{{csrf}}"
    current_password: "{{password}}"
    new: "{{new_password}}"
`
	}
	return `login:
  url: /login
  csrf:
    url: /login
    pattern: 'name="csrf" value="([^"]+)"'
  form:
    username: "{{username}}"
    password: "{{password}}"
` + remember + `    csrf: "{{csrf}}"
session:
  cookie: ` + cookie + "\n" + cookies + `authenticated:
  url: /account
  body_contains: Signed in as alice
` + follow + `logout:
  url: /logout
  csrf: &account-csrf
    url: /account
    pattern: 'name="csrf" value="([^"]+)"'
  form: {csrf: "{{csrf}}"}
logout_all:
  url: /logout-all
  csrf: *account-csrf
  form: {csrf: "{{csrf}}"}
  expect_location: signed-out=others
` + password
}

// apiTarget is the target file of the kinds that sign in to the JSON API.
func apiTarget(kind Kind) string {
	login := "login:\n  url: /api/login\n  json: {username: \"{{username}}\", password: \"{{password}}\"}\n"
	session := "session:\n  token:\n    json: access_token\n  refresh_token: refresh_token\n"
	refresh := "refresh:\n  url: /api/refresh\n  json: {refresh_token: \"{{refresh_token}}\"}\n"
	logout := "logout:\n  method: POST\n  url: /api/logout\n"
	switch kind {
	case RawBody:
		login = strings.Replace(login, "/api/login", "/api/login/text", 1)
		session, refresh = "session:\n  token:\n    raw_body: true\n", ""
	case HeaderToken:
		login = strings.Replace(login, "/api/login", "/api/login/header", 1)
		session, refresh = "session:\n  token:\n    response_header: X-Session-Token\n    header: X-Session-Token\n", ""
	case ScriptCookie:
		login = "login:\n  url: /app/login\n  form: {username: \"{{username}}\", password: \"{{password}}\"}\n"
		session = "session:\n  token:\n    pattern: 'document.cookie = \"token=([^;\"]+)'\n    cookie: token\n"
		refresh = ""
	case NoLogout:
		logout = "logout: none\n"
	}
	return login + session + `authenticated:
  url: /api/me
  json_path: user.name
` + logout + `logout_all:
  method: POST
  url: /api/logout-all
  expect_status: [204]
` + refresh + `password_change:
  url: /api/password
  json: {current: "{{password}}", new: "{{new_password}}"}
`
}

const jwtTarget = `login:
  url: /jwt/login
  json: {username: "{{username}}", password: "{{password}}"}
session:
  token:
    json: access_token
  refresh_token: refresh_token
authenticated:
  url: /jwt/me
  json_path: user.name
logout:
  method: POST
  url: /jwt/logout
logout_all:
  method: POST
  url: /jwt/logout-all
  expect_status: [204]
refresh:
  url: /jwt/refresh
  json: {refresh_token: "{{refresh_token}}"}
password_change:
  url: /jwt/password
  json: {current: "{{password}}", new: "{{new_password}}"}
`
