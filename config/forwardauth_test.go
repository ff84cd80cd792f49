package config_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse/config"
	"github.com/lapsehq/lapse/forwardauth"
)

// issueExample is the forward_auth section of issue 12, as written there.
const issueExample = `
forward_auth:
  cookie: lapse                 # the session cookie on the app's domain
  signin_url: /login            # where a signed-out navigation goes; ?rd=<original URL> is added
  stepup_url: /.lapse/stepup    # where a navigation that needs a step-up goes
  rules:                        # first match wins; host (optional) and path prefix of the original request
    - path: /healthz
      access: public            # no session needed, nothing recorded
    - path: /api/poll
      activity: none            # allowed, but does not count as activity
    - path: /billing/
      require_aal: 2
      max_auth_age: 15m
`

func TestForwardAuthIssueExample(t *testing.T) {
	f, err := config.Parse("lapse.yaml", []byte(issueExample))
	if err != nil {
		t.Fatal(err)
	}
	fa := f.ForwardAuth
	if fa == nil || fa.Cookie != "lapse" || fa.SignInURL != "/login" || fa.StepUpURL != "/.lapse/stepup" {
		t.Fatalf("forward_auth = %+v", fa)
	}
	want := []forwardauth.Rule{
		{Path: "/healthz", Access: forwardauth.AccessPublic},
		{Path: "/api/poll", Activity: forwardauth.ActivityNone},
		{Path: "/billing/", RequireAAL: 2, MaxAuthAge: 15 * time.Minute},
	}
	if len(fa.Rules) != len(want) {
		t.Fatalf("rules = %+v", fa.Rules)
	}
	for i := range want {
		if fa.Rules[i] != want[i] {
			t.Errorf("rule %d = %+v, want %+v", i, fa.Rules[i], want[i])
		}
	}
	if fa.TrustedProxies != nil || fa.ProxyKeyEnv != "" {
		t.Errorf("trusted_proxies %v, proxy_key_env %q: want the defaults", fa.TrustedProxies, fa.ProxyKeyEnv)
	}
}

func TestForwardAuthProxies(t *testing.T) {
	f, err := config.Parse("lapse.yaml", []byte("forward_auth:\n  trusted_proxies: [10.1.2.3, 10.0.0.0/8, '::1', 192.168.1.7/24]\n  proxy_key_env: LAPSE_PROXY_KEY\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.1.2.3/32", "10.0.0.0/8", "::1/128", "192.168.1.0/24"}
	got := f.ForwardAuth.TrustedProxies
	if len(got) != len(want) {
		t.Fatalf("trusted_proxies = %v, want %v", got, want)
	}
	for i, w := range want {
		if got[i] != netip.MustParsePrefix(w) {
			t.Errorf("trusted_proxies[%d] = %v, want %s", i, got[i], w)
		}
	}
	if f.ForwardAuth.ProxyKeyEnv != "LAPSE_PROXY_KEY" {
		t.Errorf("proxy_key_env = %q", f.ForwardAuth.ProxyKeyEnv)
	}
}

func TestForwardAuthErrorsNameFileLineAndKey(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		want       []string
	}{
		{"activity", "forward_auth:\n  rules:\n    - path: /a\n      activity: sometimes\n",
			[]string{"lapse.yaml:4", "forward_auth.rules[0].activity", `"sometimes" is not one of all, navigation, none`}},
		{"unknown_rule_key", "forward_auth:\n  rules:\n    - path: /a\n    - path: /b\n      require_aal2: 2\n",
			[]string{"lapse.yaml:5", "forward_auth.rules[1].require_aal2", "not a known key"}},
		{"tier_floor_names_no_tier", "forward_auth:\n  rules:\n    - path: /admin/\n      tier: gold\n",
			[]string{"lapse.yaml:4", "forward_auth.rules[0].tier", `"gold" is not a tier`}},
		{"public_with_aal", "forward_auth:\n  rules:\n    - path: /a\n      access: public\n      require_aal: 2\n",
			[]string{"lapse.yaml:4", "forward_auth.rules[0].access", "a public route"}},
		{"path_missing", "forward_auth:\n  rules:\n    - host: app.example.com\n",
			[]string{"lapse.yaml:3", "forward_auth.rules[0].path", "is required"}},
		{"bad_duration", "forward_auth:\n  rules:\n    - path: /a\n      max_auth_age: soon\n",
			[]string{"lapse.yaml:4", "forward_auth.rules[0].max_auth_age", "not a duration"}},
		{"signin_url", "forward_auth:\n  cookie: lapse\n  signin_url: //evil.example/login\n",
			[]string{"lapse.yaml:3", "forward_auth.signin_url", "must be a path"}},
		{"proxies", "forward_auth:\n  trusted_proxies: [10.0.0.0/33]\n",
			[]string{"lapse.yaml:2", "forward_auth.trusted_proxies", "not an IP address"}},
		{"proxy_key_env", "forward_auth:\n  proxy_key_env: 'LAPSE KEY'\n",
			[]string{"lapse.yaml:2", "forward_auth.proxy_key_env", "not an environment variable name"}},
		{"rules_not_a_list", "forward_auth:\n  rules: {path: /a}\n",
			[]string{"lapse.yaml:2", "forward_auth.rules", "must be a list"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Parse("lapse.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
