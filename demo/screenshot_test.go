package demo_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/demo"
	"github.com/lapsehq/lapse/web/webtest"
)

// shiftClock is the system clock moved by an offset, so that the
// screenshot can show sessions signed in hours ago.
type shiftClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *shiftClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(c.off)
}

func (c *shiftClock) set(off time.Duration) {
	c.mu.Lock()
	c.off = off
	c.mu.Unlock()
}

// macChrome is the user agent of the screenshots' browser: Chrome on a
// Mac, rather than headless Chromium's own.
const macChrome = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36"

// TestDocScreenshots takes the screenshots of docs/browser.md. It runs
// only when LAPSE_DOC_SCREENSHOTS names the directory to write them to:
//
//	LAPSE_DOC_SCREENSHOTS=$PWD/docs/img go test ./demo -run TestDocScreenshots
func TestDocScreenshots(t *testing.T) {
	dir := webtest.DocDir()
	if dir == "" {
		t.Skip("set LAPSE_DOC_SCREENSHOTS=<dir> to take the documentation's screenshots")
	}
	browser(t)
	shot := func(e *env, tb *tab, name string) {
		t.Helper()
		png, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", filepath.Join(dir, name))
	}
	setup := func(e *env, name string) *tab {
		tb := e.profile(name)
		if _, err := chromedp.Call(tb.ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: macChrome}); err != nil {
			t.Fatal(err)
		}
		e.do(tb, chromedp.EmulateViewport(1024, 640))
		return tb
	}

	t.Run("warning_dialog", func(t *testing.T) {
		times := demo.DefaultTimeouts()
		times.Idle, times.Warn = 35*time.Second, 30*time.Second
		e := newEnvConfig(t, demo.Config{Timeouts: times})
		tb := setup(e, "warning")
		e.signIn(tb, "ada@example.com")
		e.goTo(tb, "/documents/retro")
		e.waitJS(tb, dialogOpen, "the warning")
		e.waitJS(tb, `document.querySelector('.lapse-dialog__countdown').textContent === '0:27'`, "the countdown at 0:27")
		shot(e, tb, "warning-dialog.png")
	})

	t.Run("sessions_page", func(t *testing.T) {
		clock := &shiftClock{}
		times := demo.DefaultTimeouts()
		times.Idle, times.Absolute = 8*time.Hour, 24*time.Hour
		e := newEnvConfig(t, demo.Config{Timeouts: times, Clock: clock})
		m := e.app.Manager()
		for _, s := range []struct {
			ago     time.Duration
			ua, ip  string
			touched time.Duration
		}{
			{26 * time.Hour / 10, iPhoneUA, "198.51.100.23", 40 * time.Minute},
			{5 * time.Hour, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0", "203.0.113.7", 3 * time.Hour},
		} {
			clock.set(-s.ago)
			tok, _, err := m.Create(context.Background(), lapse.CreateParams{Subject: "ada@example.com", Tier: "standard", AMR: []string{"pwd"}, IP: s.ip, UserAgent: s.ua})
			if err != nil {
				t.Fatal(err)
			}
			clock.set(-s.touched)
			if _, err := m.Extend(context.Background(), tok.Reveal()); err != nil {
				t.Fatal(err)
			}
		}
		clock.set(-12 * time.Minute)
		tb := setup(e, "sessions")
		e.signIn(tb, "ada@example.com")
		clock.set(0)
		e.goTo(tb, "/account/sessions")
		shot(e, tb, "sessions-page.png")
	})
}

// TestPagesFit walks every page of the demo, as its users see them, and
// checks each on a phone (390x844) and a laptop (1280x800): the page no
// wider than the screen and every control in reach (webtest.CheckPage).
// With LAPSE_DOC_SCREENSHOTS=$PWD/docs/img it also writes the
// screenshots docs/img/demo-*-390.png and demo-*-1280.png.
func TestPagesFit(t *testing.T) {
	browser(t)
	t.Parallel()
	times := demo.DefaultTimeouts()
	// Nothing should expire or warn while the pages are looked at.
	times.Idle, times.Warn, times.Absolute = time.Hour, 2*time.Minute, 8*time.Hour
	times.SensitiveIdle, times.SensitiveAbsolute = 30*time.Minute, 4*time.Hour
	// The app starts five hours ago and its clock only moves forward from
	// there (the store's sweep refuses writes behind it).
	clock := &shiftClock{}
	clock.set(-5 * time.Hour)
	e := newEnvConfig(t, demo.Config{Timeouts: times, Clock: clock})
	open := func(name string) *tab {
		tb := e.profile(name)
		if _, err := chromedp.Call(tb.ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: macChrome}); err != nil {
			t.Fatal(err)
		}
		return tb
	}
	check := func(tb *tab, name string) {
		t.Helper()
		webtest.CheckPage(t, tb.ctx, "demo-"+name)
	}
	visit := func(tb *tab, path, name string) {
		t.Helper()
		e.goTo(tb, path)
		check(tb, name)
	}

	ada := open("ada")
	e.do(ada, chromedp.Navigate(e.url+"/signin"))
	e.waitJS(ada, `!!document.getElementById('email')`, "the sign-in page")
	check(ada, "signin")

	// Ada's other devices, for the sessions page: a laptop signed in five
	// hours ago and a phone two hours ago, both in use since.
	m := e.app.Manager()
	create := func(ua, ip string) string {
		tok, _, err := m.Create(context.Background(), lapse.CreateParams{Subject: "ada@example.com", Tier: "standard", AAL: 1, AMR: []string{"pwd"}, IP: ip, UserAgent: ua})
		if err != nil {
			t.Fatal(err)
		}
		return tok.Reveal()
	}
	use := func(at time.Duration, tokens ...string) {
		clock.set(at)
		for _, tok := range tokens {
			if _, err := m.Extend(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
		}
	}
	laptop := create("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0", "203.0.113.7")
	for at := -4*time.Hour - 30*time.Minute; at <= -2*time.Hour; at += 30 * time.Minute {
		use(at, laptop)
	}
	phone := create(iPhoneUA, "198.51.100.23")
	for at := -90 * time.Minute; at <= -40*time.Minute; at += 25 * time.Minute {
		use(at, laptop, phone)
	}
	clock.set(-12 * time.Minute)
	e.signIn(ada, "ada@example.com")
	use(-5*time.Minute, phone)
	clock.set(0)
	check(ada, "documents")
	visit(ada, "/documents/retro", "document")
	visit(ada, "/account/sessions", "sessions")

	// Billing, the first time: set up an authenticator app.
	e.do(ada, chromedp.Navigate(e.url+"/billing"))
	e.waitJS(ada, `location.pathname === '/account/two-step' && !!window.lapse`, "billing sending to the setup")
	check(ada, "two-step-offer")
	e.press(ada, `form[action="/account/two-step/enrol"] button[type=submit]`)
	e.waitJS(ada, `!!document.getElementById('totp-secret') && document.querySelector('img.qr').naturalWidth > 0`, "the QR code and the key")
	check(ada, "two-step-qr")
	secret, err := eval[string](ada, `document.getElementById('totp-secret').textContent`)
	if err != nil {
		t.Fatal(err)
	}
	e.enter(ada, "#code", codeAt(t, secret, time.Now()))
	e.waitJS(ada, `document.querySelectorAll('.recovery__code').length === 10`, "the recovery codes")
	check(ada, "two-step-codes")
	e.press(ada, "#two-step-continue")
	e.waitJS(ada, `location.pathname === '/billing' && !!window.lapse`, "billing")
	check(ada, "billing")
	visit(ada, "/stepup?next=/billing", "stepup")
	visit(ada, "/account/two-step", "two-step-on")
	visit(ada, "/account/passkeys", "passkeys")
	visit(ada, "/admin", "admin-forbidden")

	olga := open("olga")
	e.signIn(olga, "olga@example.com")
	visit(olga, "/admin", "admin")

	// Olga revokes Ada's session: Ada's tab says an administrator did.
	id := e.session("ada@example.com").ID
	e.press(olga, `tr[data-session-id="`+id+`"] button[type=submit]`)
	e.waitJS(ada, signedOutWith("admin"), "Ada's tab landing on /signed-out?reason=admin")
	e.waitJS(ada, `document.readyState !== 'loading' && document.body.innerText.includes('An administrator ended your session')`,
		"the signed-out page saying an administrator ended the session")
	check(ada, "signed-out")
}
