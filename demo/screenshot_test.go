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

// TestDocScreenshots takes the screenshots of docs/browser.md. It runs
// only when LAPSE_DOC_SCREENSHOTS names the directory to write them to:
//
//	LAPSE_DOC_SCREENSHOTS=$PWD/docs/img go test ./demo -run TestDocScreenshots
func TestDocScreenshots(t *testing.T) {
	dir := os.Getenv("LAPSE_DOC_SCREENSHOTS")
	if dir == "" {
		t.Skip("set LAPSE_DOC_SCREENSHOTS=<dir> to take the documentation's screenshots")
	}
	browser(t)
	const macChrome = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36"
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
