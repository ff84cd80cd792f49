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
	return probetest.NewApp(probetest.Sound, 2*time.Second, 4*time.Second).TargetFile("https://app.example", false, "")
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
	api, err := ParseTarget("api.yaml", probetest.NewApp(probetest.Sound, time.Second, time.Hour).TargetFile("http://api.example", true, ""), probetest.Env)
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
