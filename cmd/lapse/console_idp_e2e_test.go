package main

import (
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lapsehq/lapse/console"
	"github.com/lapsehq/lapse/oidc/oidctest"
)

// TestConsoleIdPConfigServes runs lapse serve on docs/oidc/console.yaml
// (with the test OP's issuer and lapse's own address in it): the console's
// sign-in page offers the provider, and its sign-in goes to the OP's
// authorization endpoint as the console's client, with PKCE and the
// console's callback.
func TestConsoleIdPConfigServes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "oidc", "console.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const docLapse = "https://lapse.example.com"
	if !strings.Contains(string(b), docIssuer) || !strings.Contains(string(b), docLapse) {
		t.Fatal("docs/oidc/console.yaml does not name the addresses the test replaces")
	}
	op := oidctest.Start(t, oidctest.Options{})
	dir := t.TempDir()
	// The redirect URL is on lapse's origin; a loopback one may be http.
	yaml := strings.NewReplacer(docIssuer, op.Issuer, docLapse, "http://127.0.0.1:9").Replace(string(b))
	s := start(t, dir, yaml, "LAPSE_API_KEY="+testKey, "LAPSE_CONSOLE_OIDC_SECRET="+oidctest.ClientSecret)

	resp, err := noRedirect.Get(s.url + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "Sign in with Keycloak") || !strings.Contains(string(page), console.IdPStartPath) {
		t.Errorf("the sign-in page offers no sign-in at the provider:\n%s", page)
	}
	resp, err = noRedirect.Get(s.url + console.IdPStartPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	if resp.StatusCode != 302 || !strings.HasPrefix(loc.String(), op.Issuer+"/auth?") || q.Get("client_id") != "lapse-console" ||
		q.Get("redirect_uri") != "http://127.0.0.1:9"+console.IdPCallbackPath || q.Get("code_challenge_method") != "S256" || q.Get("state") == "" {
		t.Errorf("the console's sign-in: %d to %q, want the OP's authorization endpoint for lapse-console with PKCE", resp.StatusCode, loc)
	}
}
