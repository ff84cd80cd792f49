package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/lapsehq/lapse/forwardauth/proxytest"
)

// browserConfig gives the browser test a warning within seconds: warn_at
// is 8 s after the last request through the proxy, the idle end 8 s later.
const browserConfig = `
default_tier: quick
tiers:
  quick: {idle_timeout: 16s, absolute_timeout: 10m, warn_before: 8s}
forward_auth:
  cookie: lapse
  signin_url: /login
  proxy_key_env: LAPSE_PROXY_KEY
  rules:
    - path: /login
      access: public
    - path: /billing/
      require_aal: 2
      max_auth_age: 15m
`

// TestBrowserBehindNginx drives headless Chromium through nginx on
// docs/proxy/nginx.conf: it signs in through the Node example, sees the
// warning on a page the upstream app served (the client added by
// nginx's sub_filter), stays signed in, steps up with a TOTP code on
// lapse's step-up page to reach /billing/, and is signed out by an
// admin's revoke through the event stream.
func TestBrowserBehindNginx(t *testing.T) {
	proxytest.Need(t, "nginx", "nginx-light")
	ctx := chromium(t)
	e := newGateway(t, proxytest.Nginx, filepath.Join("..", "..", "docs", "proxy", "nginx.conf"), browserConfig, true)
	secret := e.enrolTOTP("alice")

	b := tab{t, ctx}
	run, wait, enter := b.run, b.wait, b.enter

	// Signed out: the proxy sends the page to the app's sign-in.
	run("opening the app", chromedp.Navigate(e.proxy.URL+"/app/home"))
	wait(`location.pathname === '/login' && new URLSearchParams(location.search).get('rd') === '/app/home'`, 15*time.Second, "the sign-in page")
	enter("#user", "alice")
	enter("#password", "alice-password")
	run("submitting", chromedp.KeyEvent(kb.Enter))
	wait(`location.pathname === '/app/home' && !!document.getElementById('echo')`, 15*time.Second, "the app's page after sign-in")
	wait(`!!(window.lapse && window.lapse.state.session)`, 15*time.Second, "the client, added by nginx, reading the session")
	if ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`JSON.parse(document.getElementById('echo').textContent).headers['X-Lapse-Subject'][0] === 'alice'`)); !ok {
		t.Error("the app's page did not get X-Lapse-Subject: alice")
	}

	// The warning: it appears, and not before warn_at.
	sess := e.onlySession("alice")
	warnAt, _ := time.Parse(time.RFC3339Nano, sess["warn_at"].(string))
	if time.Now().After(warnAt) {
		t.Fatalf("signing in took past warn_at %v", warnAt)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.shownAt = 0; window.lapse.on('warning', () => { window.shownAt = window.shownAt || Date.now() }); true`)); err != nil {
		t.Fatalf("listening for the warning: %v", err)
	}
	wait(`!!document.querySelector('dialog.lapse-dialog[open]')`, 30*time.Second, "the warning")
	shownMs, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`window.shownAt`))
	if err != nil || shownMs == 0 {
		t.Fatalf("the warning event: %v (at %v)", err, shownMs)
	}
	// The client places warn_at on its own clock by the offset it measured
	// against the server's, which may err by half a round trip: 100 ms.
	if shown := time.UnixMilli(int64(shownMs)); shown.Before(warnAt.Add(-100 * time.Millisecond)) {
		t.Errorf("the warning appeared at %v, before warn_at %v", shown, warnAt)
	}

	// "Stay signed in" extends the server's session.
	before := sess["idle_expires_at"].(string)
	run("clicking Stay signed in", chromedp.Click(chromedp.CSS(`.lapse-dialog [data-lapse-action=stay]`)))
	wait(`!document.querySelector('dialog.lapse-dialog[open]')`, 15*time.Second, "the warning closing")
	after := e.onlySession("alice")["idle_expires_at"].(string)
	if b, a := parseTime(t, before), parseTime(t, after); !a.After(b) {
		t.Errorf("idle deadline %v -> %v after Stay signed in, want it later", b, a)
	}

	// /billing/ sends the user to lapse's step-up page and back.
	run("opening billing", chromedp.Navigate(e.proxy.URL+"/billing/?script=1"))
	wait(`location.pathname === '/.lapse/stepup' && !!document.getElementById('lapse-code')`, 15*time.Second, "the step-up page")
	code, err := pqtotp.GenerateCode(secret, time.Now().Add(30*time.Second)) // the enrolment spent this step's code
	if err != nil {
		t.Fatal(err)
	}
	enter("#lapse-code", code)
	run("confirming", chromedp.KeyEvent(kb.Enter))
	wait(`location.pathname === '/billing/' && location.search === '?script=1' && !!document.getElementById('echo')`, 15*time.Second, "billing after the step-up")
	if ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`JSON.parse(document.getElementById('echo').textContent).headers['X-Lapse-Aal'][0] === '2'`)); !ok {
		t.Error("billing's page did not get X-Lapse-AAL: 2")
	}
	// The page's own <script> line and nginx's sub_filter: one client.
	wait(`!!(window.lapse && window.lapse.state.session && window.lapse.state.session.aal === 2)`, 15*time.Second, "the client seeing AAL2")

	// The event stream through nginx: an admin's revoke reaches the open
	// tab, which leaves for lapse's signed-out page with the reason.
	wait(`!!(window.lapse && window.lapse.es && window.lapse.es.readyState === 1)`, 10*time.Second, "the event stream open through nginx")
	id := e.onlySession("alice")["id"].(string)
	if r := call(t, "DELETE", e.lapse.url+"/v1/sessions/"+id, testKey, nil); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	wait(`location.pathname === '/.lapse/signed-out' && new URLSearchParams(location.search).get('reason') === 'admin'`, 10*time.Second, "the tab on the signed-out page after the revoke")
}

// tab drives a page of the headless Chromium of chromium(t).
type tab struct {
	t   *testing.T
	ctx context.Context
}

// run runs actions, failing the test after 20 s.
func (b tab) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	c, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// wait waits until expr is true in the page, failing the test if it is
// not within a guard against "never".
func (b tab) wait(expr string, within time.Duration, what string) {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(c, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			loc, _ := chromedp.Run(b.ctx, chromedp.Location())
			b.t.Fatalf("%s did not happen within %s (at %s)", what, within, loc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// enter focuses a field and types, as a person would.
func (b tab) enter(selector, text string) {
	b.t.Helper()
	b.wait(fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el) return false; el.focus(); return document.activeElement === el })()`, selector), 15*time.Second, "focusing "+selector)
	b.run("typing into "+selector, chromedp.KeyEvent(text))
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// onlySession returns subject's only active session as lapse's API shows it.
func (e *gatewayEnv) onlySession(subject string) map[string]any {
	e.t.Helper()
	r := call(e.t, "GET", e.lapse.url+"/v1/subjects/"+subject+"/sessions", testKey, nil)
	ss, _ := r.body["sessions"].([]any)
	if r.status != 200 || len(ss) != 1 {
		e.t.Fatalf("sessions of %s: %d %s, want one", subject, r.status, r.raw)
	}
	return ss[0].(map[string]any)
}

// enrolTOTP gives subject a confirmed TOTP factor through lapse's API,
// with a session of its own that it then ends, and returns the secret.
func (e *gatewayEnv) enrolTOTP(subject string) string {
	e.t.Helper()
	tok, _ := e.session(map[string]any{"subject": subject})
	r := call(e.t, "POST", e.lapse.url+"/v1/subjects/"+subject+"/factors/totp", testKey, map[string]any{"token": tok})
	secret, _ := r.body["secret"].(string)
	if r.status != 201 || secret == "" {
		e.t.Fatalf("enrol: %d %s", r.status, r.raw)
	}
	code, _ := pqtotp.GenerateCode(secret, time.Now())
	if r := call(e.t, "POST", e.lapse.url+"/v1/subjects/"+subject+"/factors/totp/confirm", testKey, map[string]any{"token": tok, "code": code}); r.status != 200 {
		e.t.Fatalf("confirm: %d %s", r.status, r.raw)
	}
	if r := call(e.t, "POST", e.lapse.url+"/v1/sessions/revoke", testKey, map[string]any{"token": tok}); r.status != 204 {
		e.t.Fatalf("revoke: %d", r.status)
	}
	return secret
}

// chromium starts a headless Chromium for the test, skipping without
// one (failing with CI=true).
func chromium(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("LAPSE_CHROMIUM")
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path != "" {
			break
		}
		path, _ = exec.LookPath(name)
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("Chromium is not installed; the browser test needs it (Debian: apt-get install chromium)")
		}
		t.Skip("Chromium is not installed: skipping (Debian: apt-get install chromium; or set LAPSE_CHROMIUM)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path),
		chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1100, 720))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium (%s): %v", path, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
			t.Logf("the tab was at %s showing:\n%s", loc, strings.TrimSpace(text))
		}
	})
	return ctx
}
