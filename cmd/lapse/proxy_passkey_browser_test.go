package main

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/lapsehq/lapse/forwardauth/proxytest"
)

// passkeyGatewayConfig is lapse behind the proxy, with passkeys for the
// proxy's origin (added by the test, which knows its port) and a billing
// area that needs AAL2.
const passkeyGatewayConfig = `
default_tier: standard
tiers:
  standard: {idle_timeout: 10m, absolute_timeout: 1h}
forward_auth:
  cookie: lapse
  signin_url: /login
  proxy_key_env: LAPSE_PROXY_KEY
  rules:
    - path: /billing/
      require_aal: 2
      max_auth_age: 15m
`

// TestBrowserPasskeyBehindNginx drives headless Chromium, with a virtual
// authenticator, through nginx on docs/proxy/nginx.conf at
// http://localhost: it adds a passkey on lapse's passkeys page under
// /.lapse/, is sent by the proxy to lapse's step-up page for /billing/,
// steps up with the passkey and reaches /billing/ at AAL2. The passkey
// step-up is the piece any step-up page can use: the button, the script
// and the session routes, the gateway replacing its own cookie.
func TestBrowserPasskeyBehindNginx(t *testing.T) {
	proxytest.Need(t, "nginx", "nginx-light")
	ctx := chromium(t)
	addr, err := proxytest.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	origin := "http://localhost:" + port // browsers refuse passkeys on 127.0.0.1
	lapse := start(t, t.TempDir(), passkeyGatewayConfig+"passkeys:\n  rp_id: localhost\n  origins: ["+origin+"]\n",
		"LAPSE_API_KEY="+testKey, "LAPSE_PROXY_KEY="+proxyKey)
	app := httptest.NewServer(proxytest.Echo())
	t.Cleanup(app.Close)
	proxytest.Nginx(t, filepath.Join("..", "..", "docs", "proxy", "nginx.conf"), proxytest.Vars{
		Lapse: strings.TrimPrefix(lapse.url, "http://"), App: strings.TrimPrefix(app.URL, "http://"), ProxyKey: proxyKey, Listen: addr,
	})

	do := func(what string, f func(context.Context) error) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := f(c); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	wait := func(expr, what string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			c, cancel := context.WithTimeout(ctx, 5*time.Second)
			ok, err := chromedp.Run(c, chromedp.Evaluate[bool](expr))
			cancel()
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not happen", what)
			}
		}
	}
	press := func(selector string, keys string) {
		t.Helper()
		wait(fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el || el.hidden) return false; el.focus(); return document.activeElement === el })()`, selector), "focusing "+selector)
		do("typing into "+selector, func(c context.Context) error { return chromedp.Do(c, chromedp.KeyEvent(keys+kb.Enter)) })
	}
	off := false
	do("WebAuthn.enable", func(c context.Context) error {
		_, err := chromedp.Call(c, webauthn.Enable, webauthn.EnableParams{EnableUI: &off})
		return err
	})
	do("WebAuthn.addVirtualAuthenticator", func(c context.Context) error {
		_, err := chromedp.Call(c, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
		}})
		return err
	})
	// Signed in as the app's sign-in would leave the browser: the
	// gateway's cookie on the app's origin.
	tok, _ := lapse.create(t, map[string]any{"subject": "alice", "amr": []string{"pwd"}})
	do("setting the session cookie", func(c context.Context) error {
		httpOnly := true
		_, err := chromedp.Call(c, network.SetCookie, network.SetCookieParams{Name: "lapse", Value: tok, URL: origin + "/", HTTPOnly: &httpOnly, SameSite: network.CookieSameSiteLax})
		return err
	})

	do("opening the passkeys page", func(c context.Context) error { return chromedp.Do(c, chromedp.Navigate(origin+"/.lapse/passkeys")) })
	press("#lapse-passkey-name", "Laptop")
	wait(`new URLSearchParams(location.search).get('done') === 'added' && document.querySelectorAll('.lapse-passkey').length === 1`, "the passkeys page listing the new passkey")

	do("opening billing", func(c context.Context) error { return chromedp.Do(c, chromedp.Navigate(origin+"/billing/")) })
	wait(`location.pathname === '/.lapse/stepup' && !!document.getElementById('lapse-use-passkey') && !document.getElementById('lapse-code')`,
		"lapse's step-up page offering the passkey (and no code: alice has no authenticator app)")
	press("#lapse-use-passkey", "")
	wait(`location.pathname === '/billing/' && !!document.getElementById('echo')`, "billing after the passkey step-up")
	if ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`JSON.parse(document.getElementById('echo').textContent).headers['X-Lapse-Aal'][0] === '2'`)); !ok {
		t.Error("billing's page did not get X-Lapse-AAL: 2")
	}
	r := call(t, "GET", lapse.url+"/v1/subjects/alice/sessions", testKey, nil)
	ss, _ := r.body["sessions"].([]any)
	if len(ss) != 1 {
		t.Fatalf("alice's sessions: %s", r.raw)
	}
	s := ss[0].(map[string]any)
	if amr := fmt.Sprint(s["amr"]); s["aal"] != float64(2) || amr != "[pwd hwk user]" {
		t.Errorf("alice's session after the step-up: aal %v, amr %s; want 2, [pwd hwk user]", s["aal"], amr)
	}
}
