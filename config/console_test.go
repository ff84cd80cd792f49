package config_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lapsehq/lapse/config"
	"github.com/lapsehq/lapse/console"
)

// TestConsoleOIDCDocsConfig reads docs/oidc/console.yaml, the file
// docs/oidc.md shows for console operators at an identity provider.
func TestConsoleOIDCDocsConfig(t *testing.T) {
	f, err := config.Load(filepath.Join("..", "docs", "oidc", "console.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Console == nil || f.Console.OIDC == nil {
		t.Fatal("no console.oidc section")
	}
	o := f.Console.OIDC
	if o.Issuer != "https://idp.example.com/realms/acme" || o.ClientID != "lapse-console" || o.SecretEnv != "LAPSE_CONSOLE_OIDC_SECRET" ||
		o.RedirectURL != "https://lapse.example.com"+console.IdPCallbackPath || o.CallbackPath != console.IdPCallbackPath ||
		o.Name != "Keycloak" || o.RoleClaim != "groups" || o.RequireAAL != 2 ||
		o.Assurance.ACR["http://schemas.openid.net/pape/policies/2007/06/multi-factor"] != 2 {
		t.Errorf("console.oidc = %+v", o)
	}
	want := []console.RoleMap{
		{Value: "lapse-admins", Role: console.RoleAdmin},
		{Value: "acme-support", Role: console.RoleOperator, Tenant: "acme"},
		{Value: "globex-support", Role: console.RoleOperator, Tenant: "globex"},
		{Value: "auditors", Role: console.RoleViewer},
	}
	if !slices.Equal(o.Roles, want) {
		t.Errorf("roles = %+v, want %+v", o.Roles, want)
	}
}

func TestConsoleOIDCConfigErrorsNameFileLineAndKey(t *testing.T) {
	const base = `tenants:
  acme: {}
console:
  oidc:
    issuer: https://idp.example.com
    client_id: lapse-console
    client_secret_env: SECRET
    redirect_url: https://lapse.example.com/console/oidc/callback
    roles:
      - {value: lapse-admins, role: admin}
`
	for _, c := range []struct {
		name, yaml string
		want       []string
	}{
		{"http_issuer", strings.Replace(base, "https://idp.example.com", "http://idp.example.com", 1), []string{"lapse.yaml:5: console.oidc.issuer: ", "must be https"}},
		{"no_client_id", strings.Replace(base, "    client_id: lapse-console\n", "", 1), []string{"lapse.yaml:4: console.oidc.client_id: is required"}},
		{"redirect_path", strings.Replace(base, "/console/oidc/callback", "/.lapse/oidc/callback", 1), []string{"lapse.yaml:8: console.oidc.redirect_url: ", "must have the path /console/oidc/callback"}},
		{"no_secret", strings.Replace(base, "    client_secret_env: SECRET\n", "", 1), []string{"lapse.yaml:4: console.oidc: set exactly one of client_secret_env and client_secret_file"}},
		{"no_roles", strings.Replace(base, "    roles:\n      - {value: lapse-admins, role: admin}\n", "", 1), []string{"lapse.yaml:4: console.oidc.roles: is required"}},
		{"empty_roles", strings.Replace(base, "    roles:\n      - {value: lapse-admins, role: admin}\n", "    roles: []\n", 1), []string{"lapse.yaml:9: console.oidc.roles: must be a list"}},
		{"unknown_role", base + "      - {value: auditors, role: auditor}\n", []string{"lapse.yaml:11: console.oidc.roles[1].role: \"auditor\" is not a role: viewer, operator or admin"}},
		{"no_value", base + "      - {role: viewer}\n", []string{"lapse.yaml:11: console.oidc.roles[1].value: is required"}},
		{"value_twice", base + "      - {value: lapse-admins, role: viewer}\n", []string{"lapse.yaml:11: console.oidc.roles[1].value: \"lapse-admins\" is mapped twice"}},
		{"unknown_tenant", base + "      - {value: initech-support, role: operator, tenant: initech}\n", []string{"lapse.yaml:11: console.oidc.roles[1].tenant: \"initech\" is not a tenant of the policy (acme)"}},
		{"unknown_role_key", base + "      - {value: x, role: viewer, tenants: [acme]}\n", []string{"console.oidc.roles[1].tenants: is not a known key"}},
		{"require_aal", base + "    require_aal: 4\n", []string{"lapse.yaml:11: console.oidc.require_aal: must be an AAL"}},
		{"scopes_without_openid", base + "    scopes: [profile, groups]\n", []string{"lapse.yaml:11: console.oidc.scopes: must include openid"}},
		{"unknown_key", base + "    client_secret: hunter2\n", []string{"lapse.yaml:11: console.oidc.client_secret: is not a known key"}},
		{"unknown_console_key", "console:\n  theme: dark\n", []string{"lapse.yaml:2: console.theme: is not a known key"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantParseErrors(t, c.yaml, c.want)
		})
	}
}

// wantParseErrors checks that yaml is refused with errors that hold each
// of want, and that no error repeats the secret "hunter2".
func wantParseErrors(t *testing.T, yaml string, want []string) {
	t.Helper()
	_, err := config.Parse("lapse.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error repeats a secret: %q", err)
	}
}
