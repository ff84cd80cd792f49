package probe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse/probe/probetest"
)

func webTarget() []byte {
	return probetest.NewApp(probetest.Sound, 2*time.Second, 4*time.Second).TargetFile("https://app.example", probetest.Web, "")
}

func TestParseTargetFillsDefaults(t *testing.T) {
	tg, err := ParseTarget("app.yaml", webTarget(), probetest.Env)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"login.method", tg.Login.Method, "POST"},
		{"authenticated.method", tg.Authenticated.Method, "GET"},
		{"authenticated.status", tg.Authenticated.Status, 200},
		{"credentials.password from ${PROBE_PASSWORD}", tg.Credentials.Password, probetest.Password},
		{"checks.entropy_samples", tg.Checks.EntropySamples, 20},
		{"policy.tolerance", tg.Policy.tolerance(), 500 * time.Millisecond},
		{"logout.csrf through a YAML alias", tg.LogoutAll.CSRF.URL, "/account"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	api, err := ParseTarget("api.yaml", probetest.NewApp(probetest.Sound, time.Second, time.Hour).TargetFile("http://api.example", probetest.API, ""), probetest.Env)
	if err != nil {
		t.Fatal(err)
	}
	if tok := api.Session.Token; tok.Header != "Authorization" || tok.Scheme != "Bearer" {
		t.Errorf("token header and scheme: got %q %q, want Authorization Bearer", tok.Header, tok.Scheme)
	}
}

func TestParseTargetExpandsEnvironment(t *testing.T) {
	env := func(name string) (string, bool) {
		if v, ok := map[string]string{"HOST": "app.example", "PW": "p$ss"}[name]; ok {
			return v, true
		}
		return probetest.Env(name)
	}
	data := strings.Replace(string(webTarget()), "https://app.example", "https://${HOST}", 1)
	data = strings.Replace(data, "${PROBE_PASSWORD}", "${PW}$${LITERAL}", 1)
	tg, err := ParseTarget("app.yaml", []byte(data), env)
	if err != nil {
		t.Fatal(err)
	}
	if tg.BaseURL != "https://app.example" || tg.Credentials.Password != "p$ss${LITERAL}" {
		t.Errorf("got base_url %q and password %q, want https://app.example and p$ss${LITERAL}", tg.BaseURL, tg.Credentials.Password)
	}
}

func TestParseTargetNamesFileKeyAndLine(t *testing.T) {
	valid := string(webTarget())
	cases := []struct {
		name string
		data string
		want string // a substring of the error
	}{
		{"empty_file", "", "app.yaml: file is empty"},
		{"not_a_mapping", "- a\n- b\n", "app.yaml:1: must be a mapping"},
		{"syntax_error", "base_url: [\n", "app.yaml:"},
		{"unknown_key", "bse_url: x\n" + valid, `app.yaml:1: bse_url: unknown key "bse_url"`},
		{"missing_base_url", strings.Replace(valid, "base_url: https://app.example", "", 1), "app.yaml: base_url: is required"},
		{"relative_base_url", strings.Replace(valid, "https://app.example", "app.example", 1), "app.yaml:2: base_url: must be an absolute http or https URL"},
		{"unset_environment_variable", valid, "app.yaml:5: credentials.password: environment variable PROBE_PASSWORD is not set"},
		{"pattern_without_group", strings.Replace(valid, `'name="csrf" value="([^"]+)"'`, `'name="csrf"'`, 1), "login.csrf.pattern: needs a group"},
		{"bad_pattern", strings.Replace(valid, `'name="csrf" value="([^"]+)"'`, `'(['`, 1), "login.csrf.pattern: is not a regular expression"},
		{"csrf_without_source", strings.Replace(valid, `    pattern: 'name="csrf" value="([^"]+)"'`+"\n  form:\n    username", "  form:\n    username", 1), "login.csrf: set exactly one of pattern, cookie or header"},
		{"cookie_and_token", strings.Replace(valid, "session:\n", "session:\n  token: {json: t}\n", 1), "session: set cookie or token, not both"},
		{"bad_duration", strings.Replace(valid, "idle_timeout: 2s", "idle_timeout: 2 minutes", 1), `policy.idle_timeout: invalid duration "2 minutes"`},
		{"tolerance_too_large", strings.Replace(valid, "tolerance: 500ms", "tolerance: 1s", 1), "policy.tolerance: 1s must be less than half of idle_timeout 2s"},
		{"unknown_placeholder", strings.Replace(valid, `"{{username}}"`, `"{{user}}"`, 1), "login.form.username: unknown placeholder {{user}}"},
		{"csrf_placeholder_without_csrf", strings.Replace(valid, "  csrf:\n    url: /login\n    pattern: 'name=\"csrf\" value=\"([^\"]+)\"'\n", "", 1), "login.form.csrf: uses {{csrf}} but login.csrf is not set"},
		{"new_password_outside_password_change", strings.Replace(valid, `password: "{{password}}"`, `password: "{{new_password}}"`, 1), "login.form.password: {{new_password}} may only be used in password_change"},
		{"password_change_without_new_password", strings.Replace(valid, `new: "{{new_password}}"`, `new: "{{password}}"`, 1), "password_change: must send the new password"},
		{"unknown_check", valid + "checks:\n  skip: [idle-timeout, idle]\n", `checks.skip[1]: unknown check "idle"`},
		{"entropy_samples_too_few", valid + "checks:\n  entropy_samples: 3\n", "checks.entropy_samples: 3 is outside 10..1000"},
		{"new_password_missing", strings.Replace(valid, "  new_password: ${PROBE_NEW_PASSWORD}\n", "", 1), "credentials.new_password: is required when password_change is set"},
		{"status_not_a_number", strings.Replace(valid, "  body_contains:", "  status: ok\n  body_contains:", 1), "authenticated.status"},
		{"bad_method", strings.Replace(valid, "  url: /login\n  csrf:\n", "  url: /login\n  method: post\n  csrf:\n", 1), `login.method: "post" is not an HTTP method`},
		{"unknown_nested_key", strings.Replace(valid, "    pattern: 'name", "    patern: 'name", 1), `app.yaml:11: login.csrf.patern: unknown key "patern"; known here: cookie, header, pattern, url`},
		{"every_unknown_key", strings.Replace(valid, "  body_contains:", "  bodycontains:", 1) + "polcy: {}\n", `app.yaml:20: authenticated.bodycontains: unknown key "bodycontains"`},
		{"every_unknown_key_too", strings.Replace(valid, "  body_contains:", "  bodycontains:", 1) + "polcy: {}\n", `app.yaml:44: polcy: unknown key "polcy"`},
		{"logout_neither_request_nor_none", "base_url: https://app.example\nlogin: {url: /l}\nsession: {cookie: s}\nauthenticated: {url: /a}\nlogout: never\n", `app.yaml:5: logout: logout is a request (a mapping with url) or none, not "never"`},
		{"logout_without_url", strings.Replace(valid, "logout:\n  url: /logout\n", "logout:\n", 1), "app.yaml:21: logout.url: is required (or write logout: none when the app has no server-side sign-out)"},
		{"session_cookies_bad_name", strings.Replace(valid, "  cookie: __Host-sid\n", "  cookie: __Host-sid\n  cookies: [remember, \"a b\"]\n", 1), `app.yaml:18: session.cookies[1]: "a b" is not a valid cookie name`},
		{"session_cookies_named_twice", strings.Replace(valid, "  cookie: __Host-sid\n", "  cookie: __Host-sid\n  cookies: [__Host-sid]\n", 1), `session.cookies[0]: "__Host-sid" is named twice`},
		{"session_cookies_not_a_list", strings.Replace(valid, "  cookie: __Host-sid\n", "  cookie: __Host-sid\n  cookies: remember\n", 1), "app.yaml:18: session.cookies: cannot unmarshal"},
		{"token_from_two_places", strings.Replace(valid, "  cookie: __Host-sid\n", "  token: {json: t, raw_body: true}\n", 1), "app.yaml:17: session.token: set exactly one of json, raw_body, response_header or pattern"},
		{"token_from_nowhere", strings.Replace(valid, "  cookie: __Host-sid\n", "  token: {header: X-Token}\n", 1), "session.token: set exactly one of json"},
		{"token_pattern_without_group", strings.Replace(valid, "  cookie: __Host-sid\n", "  token:\n    pattern: 'token=[a-z]+'\n", 1), "app.yaml:18: session.token.pattern: needs a group"},
		{"token_sent_two_ways", strings.Replace(valid, "  cookie: __Host-sid\n", "  token: {raw_body: true, cookie: t, header: X-Token}\n", 1), "session.token: set cookie or header and scheme, not both"},
		{"token_response_header_bad", strings.Replace(valid, "  cookie: __Host-sid\n", "  token:\n    response_header: 'X Token'\n", 1), `app.yaml:18: session.token.response_header: "X Token" is not a header name`},
		{"token_cookie_bad_name", strings.Replace(valid, "  cookie: __Host-sid\n", "  token:\n    raw_body: true\n    cookie: 'a;b'\n", 1), `app.yaml:19: session.token.cookie: "a;b" is not a valid cookie name`},
		{"raw_body_not_a_bool", strings.Replace(valid, "  cookie: __Host-sid\n", "  token:\n    raw_body: sure\n", 1), "app.yaml:18: session.token.raw_body: cannot unmarshal"},
		{"follow_redirects_not_a_bool", strings.Replace(valid, "  body_contains: Signed in as alice\n", "  body_contains: Signed in as alice\n  follow_redirects: sometimes\n", 1), "app.yaml:21: authenticated.follow_redirects: cannot unmarshal"},
		{"authenticated_with_expect", strings.Replace(valid, "  body_contains: Signed in as alice\n", "  expect_body: Signed in\n", 1), "app.yaml:18: authenticated: takes status, body_contains, json_path and location_contains, not expect_status"},
		{"request_on_another_host", strings.Replace(valid, "  url: /logout-all\n", "  url: https://other.example/logout-all\n", 1), `app.yaml:28: logout_all.url: "https://other.example/logout-all" is not on the origin of base_url (https://app.example): the probe sends credentials only there`},
		{"request_over_plain_http", strings.Replace(valid, "login:\n  url: /login\n", "login:\n  url: http://app.example/login\n", 1), `app.yaml:8: login.url: "http://app.example/login" is not on the origin of base_url`},
		{"csrf_page_on_another_port", strings.Replace(valid, "  csrf:\n    url: /login\n", "  csrf:\n    url: //app.example:8443/login\n", 1), `app.yaml:10: login.csrf.url: "//app.example:8443/login" is not on the origin`},
		{"base_url_with_user_info", strings.Replace(valid, "https://app.example", "https://u:p@app.example", 1), "app.yaml:2: base_url: must be an absolute http or https URL without user info"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := probetest.Env
			if tc.name == "unset_environment_variable" {
				env = nil
			}
			_, err := ParseTarget("app.yaml", []byte(tc.data), env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseTargetReadsTheNewKeys(t *testing.T) {
	data := `base_url: https://app.example:443
login: {url: /login, json: {u: "{{username}}"}}
credentials: {username: alice}
session:
  cookies: [session, session.sig]
  token:
    pattern: 'token = "([^"]+)"'
    cookie: auth
authenticated: {url: /me, follow_redirects: true, location_contains: /me}
logout: none
logout_all: {url: /out-everywhere, expect_location: done=1, expect_body: Signed out}
`
	tg, err := ParseTarget("t.yaml", []byte(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := tg.Session.Token
	checks := []struct {
		what      string
		got, want any
	}{
		{"logout: none", tg.Logout.None, true},
		{"session.cookies", strings.Join(tg.Session.Cookies, ","), "session,session.sig"},
		{"session.token.cookie", tok.Cookie, "auth"},
		{"session.token.header is not defaulted when sent as a cookie", tok.Header, ""},
		{"session.token.pattern compiled", tok.re != nil, true},
		{"authenticated.follow_redirects", tg.Authenticated.FollowRedirects, true},
		{"authenticated.location_contains", tg.Authenticated.LocationContains, "/me"},
		{"logout_all.expect_location", tg.LogoutAll.ExpectLocation, "done=1"},
		{"logout_all.expect_body", tg.LogoutAll.ExpectBody, "Signed out"},
		{"logout_all counts as explicit", tg.LogoutAll.explicit(), true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	for _, carrier := range []string{"json: data.token", "raw_body: true", "response_header: X-Token", `pattern: 'token=(\w+)'`} {
		data := "base_url: https://app.example\nlogin: {url: /login}\nsession:\n  token:\n    " + carrier + "\nauthenticated: {url: /me}\nlogout: none\n"
		tg, err := ParseTarget("t.yaml", []byte(data), nil)
		if err != nil {
			t.Errorf("%s: %v", carrier, err)
			continue
		}
		if tok := tg.Session.Token; tok.Header != "Authorization" || tok.Scheme != "Bearer" {
			t.Errorf("%s: sent in %q %q, want the default Authorization Bearer", carrier, tok.Header, tok.Scheme)
		}
	}
}

func TestParseTargetReportsEveryProblem(t *testing.T) {
	data := "base_url: ftp://x\nlogin: {}\nlogout: {}\nauthenticated: {}\nsession: {}\n"
	_, err := ParseTarget("t.yaml", []byte(data), nil)
	if err == nil {
		t.Fatal("got no error")
	}
	for _, want := range []string{"t.yaml:1: base_url:", "t.yaml:2: login.url: is required", "t.yaml:3: logout.url: is required", "t.yaml:4: authenticated.url: is required", "t.yaml:5: session: set cookie"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestDocsExamplesParse(t *testing.T) {
	files, err := filepath.Glob("../docs/examples/probe-*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("got %v (%v), want the docs' example target files", files, err)
	}
	anyEnv := func(name string) (string, bool) { return "value of " + name, true }
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseTarget(f, data, anyEnv); err != nil {
			t.Errorf("%v", err)
		}
	}
}
