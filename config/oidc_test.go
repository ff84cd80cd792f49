package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse/config"
	"github.com/lapsehq/lapse/oidc"
)

// TestOIDCDocsConfig reads docs/oidc/lapse.yaml, the file docs/oidc.md
// shows and the end-to-end tests run.
func TestOIDCDocsConfig(t *testing.T) {
	f, err := config.Load(filepath.Join("..", "docs", "oidc", "lapse.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	o, fa := f.OIDC, f.ForwardAuth
	if o == nil || o.Issuer != "https://idp.example.com/realms/acme" || o.ClientID != "lapse" || o.SecretEnv != "LAPSE_OIDC_CLIENT_SECRET" ||
		o.RedirectURL != "https://app.example.com"+oidc.CallbackPath || !o.EndSession || o.Assurance.ACR["http://schemas.openid.net/pape/policies/2007/06/multi-factor"] != 2 {
		t.Fatalf("oidc = %+v", o)
	}
	if o.Cookie != "lapse" || fa.SignInURL != "/.lapse/oidc/login" || fa.StepUpURL != "/.lapse/oidc/stepup" {
		t.Errorf("cookie %q, signin_url %q, stepup_url %q; want lapse and the provider's pages", o.Cookie, fa.SignInURL, fa.StepUpURL)
	}
	if r := fa.Rules[1]; r.RequireAAL != 2 || r.MaxAuthAge != 15*time.Minute {
		t.Errorf("the billing rule = %+v", r)
	}
}

func TestOIDCConfigErrorsNameFileLineAndKey(t *testing.T) {
	const base = `
oidc:
  issuer: https://idp.example.com
  client_id: lapse
  client_secret_env: SECRET
  redirect_url: https://app.example.com/.lapse/oidc/callback
`
	for _, c := range []struct {
		name, yaml string
		want       []string
	}{
		{"http_issuer", strings.Replace(base, "https://idp.example.com", "http://idp.example.com", 1), []string{"lapse.yaml:3: oidc.issuer: ", "must be https"}},
		{"redirect_path", strings.Replace(base, "/.lapse/oidc/callback", "/callback", 1), []string{"lapse.yaml:6: oidc.redirect_url: ", "must have the path /.lapse/oidc/callback"}},
		{"no_secret", strings.Replace(base, "  client_secret_env: SECRET\n", "", 1), []string{"lapse.yaml:2: oidc: set exactly one of client_secret_env and client_secret_file"}},
		{"two_secrets", base + "  client_secret_file: /run/secret\n", []string{"lapse.yaml:2: oidc: set exactly one"}},
		{"scopes_without_openid", base + "  scopes: [profile]\n", []string{"lapse.yaml:7: oidc.scopes: must include openid"}},
		{"acr_level", base + "  acr: {gold: 4}\n", []string{"lapse.yaml:7: oidc.acr.gold: must be an AAL"}},
		{"origin", base + "  app_origins: [https://app.example.com/x]\n", []string{"lapse.yaml:7: oidc.app_origins[0]: ", "is not an origin"}},
		{"unknown_key", base + "  client_secret: hunter2\n", []string{"lapse.yaml:7: oidc.client_secret: is not a known key"}},
		{"tier", base + "  tier: gold\n", []string{"lapse.yaml:7: oidc.tier: \"gold\" is not a tier"}},
		{"two_cookies", base + "  cookie: a\nforward_auth:\n  cookie: b\n", []string{"lapse.yaml:7: oidc.cookie: \"a\" differs from forward_auth.cookie \"b\""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantParseErrors(t, c.yaml, c.want)
		})
	}
}

func TestOIDCDocsConfigIsWhatDocsShow(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "oidc.md"))
	if err != nil {
		t.Skip("docs/oidc.md not written yet")
	}
	if !strings.Contains(string(doc), "(oidc/lapse.yaml)") {
		t.Error("docs/oidc.md does not link the tested config docs/oidc/lapse.yaml")
	}
}
