package web_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/web"
	"github.com/lapsehq/lapse/web/webtest"
)

// TestSessionsPageMarksANewDeviceInChromium: in headless Chromium, the
// sessions page shows the badge "New device" on the session signed in
// from a device new to the user, and not on the one from a device seen
// before, and still fits a phone and a laptop.
func TestSessionsPageMarksANewDeviceInChromium(t *testing.T) {
	ctx := webtest.NewBrowser(t)
	pol := &lapse.Policy{DefaultTier: "standard", Tiers: map[string]lapse.Tier{
		"standard": {IdleTimeout: time.Hour, AbsoluteTimeout: 12 * time.Hour, NewDeviceWindow: 30 * 24 * time.Hour}}}
	m, clock, _ := lapsetest.NewManager(t, lapse.Config{Policy: pol})
	create := func(ua, ip string) *lapse.Session {
		_, s, err := m.Create(t.Context(), lapse.CreateParams{Subject: "ada", UserAgent: ua, IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	create(chromeMac, "192.0.2.10")
	clock.Advance(10 * time.Minute)
	current := create(chromeMac, "192.0.2.11") // the same Mac: known
	clock.Advance(10 * time.Minute)
	phone := create(safariIPhone, "198.51.100.23") // new
	pages, err := web.NewPages(web.Config{Manager: m, Session: func(r *http.Request) (lapse.Session, bool) {
		s, err := m.Session(r.Context(), current.ID)
		return *s, err == nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/account/sessions", pages.Sessions())
	mux.Handle("/lapse/web/", http.StripPrefix("/lapse/web/", web.Assets()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	sel := func(id string) string { return `[data-session-id="` + id + `"]` }
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/account/sessions"),
		chromedp.WaitVisible(chromedp.CSS(sel(phone.ID)+` [data-lapse-mark="new-device"]`))); err != nil {
		t.Fatal(err)
	}
	phoneMark, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel(phone.ID)+` [data-lapse-mark="new-device"]`)))
	if err != nil {
		t.Fatal(err)
	}
	currentMarks, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('`+sel(current.ID)+` [data-lapse-mark]').length`))
	if err != nil {
		t.Fatal(err)
	}
	newCount, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-lapse-mark="new-device"]').length`))
	if err != nil {
		t.Fatal(err)
	}
	if phoneMark != "New device" || currentMarks != 0 || newCount != 2 {
		t.Errorf("phone's mark %q, marks on this Mac %d, new-device marks %d; want \"New device\", 0, 2 (the phone and the Mac's first session)",
			phoneMark, currentMarks, newCount)
	}
	webtest.CheckPage(t, ctx, "web-sessions-new-device")
}
