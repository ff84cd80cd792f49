package web_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/web"
	"github.com/lapsehq/lapse/web/webtest"
)

// TestPagesFit checks the end-user pages in their own default layout
// (no Config.Layout) on a phone and a laptop: no wider than the screen,
// every control in reach (webtest.CheckPage). With
// LAPSE_DOC_SCREENSHOTS=$PWD/docs/img it writes docs/img/web-*.png.
func TestPagesFit(t *testing.T) {
	ctx := webtest.NewBrowser(t)
	f := newFixture(t, nil)
	// Ada's sessions: a laptop signed in four hours ago, a phone two
	// hours ago, both in use since, and this desktop.
	create := func(ua, ip string) string {
		tok, _, err := f.m.Create(t.Context(), lapse.CreateParams{Subject: "ada", UserAgent: ua, IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		return tok.Reveal()
	}
	others := []string{create(firefoxWindows, "203.0.113.7")}
	for i := range 12 {
		if i == 6 {
			others = append(others, create(safariIPhone, "198.51.100.23"))
		}
		f.clock.Advance(20 * time.Minute)
		for _, tok := range others {
			if _, err := f.m.Verify(t.Context(), tok, lapse.VerifyOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.current = f.create(t, "ada", chromeMac, "192.0.2.10").ID
	f.clock.Advance(12 * time.Minute)
	mux := http.NewServeMux()
	mux.Handle("/account/sessions", f.pages.Sessions())
	mux.Handle("/signed-out", f.pages.SignedOut())
	mux.Handle("/lapse/web/", http.StripPrefix("/lapse/web/", web.Assets()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for _, p := range []struct{ name, path, wait string }{
		{"web-sessions", "/account/sessions", ".lapse-session--current"},
		{"web-signed-out", "/signed-out?reason=idle_timeout", ".lapse-signed-out"},
	} {
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.wait))); err != nil {
			t.Fatalf("%s: %v", p.path, err)
		}
		webtest.CheckPage(t, ctx, p.name)
	}
}
