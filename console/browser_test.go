package console_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/console"
	"github.com/lapsehq/lapse/web/webtest"
)

// browser starts headless Chromium with a window of the given size and
// returns a tab's context. The console is served over TLS with
// httptest's certificate, which the browser is told to accept, so the
// cookie is the production one: __Host-, Secure, SameSite=Strict.
// Without Chromium the test skips, except on CI, where it fails.
func browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	ctx := webtest.NewBrowser(t, chromedp.IgnoreCertErrors, chromedp.WindowSize(width, height))
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// screenshot captures the page at the given width as a PNG: all of it,
// or its top maxHeight pixels when maxHeight > 0.
func screenshot(ctx context.Context, width, maxHeight int64) ([]byte, error) {
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 800)); err != nil {
		return nil, err
	}
	h, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollHeight`))
	if err != nil {
		return nil, err
	}
	height := int64(h)
	if maxHeight > 0 {
		height = min(height, maxHeight)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		return nil, err
	}
	return chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) ([]byte, error) {
		r, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Format: page.CaptureScreenshotFormatPng,
			Clip:   &page.Viewport{Width: float64(width), Height: float64(height), Scale: 1},
		})
		return r.Data, err
	})
}

// signIn signs in on the sign-in page open in the tab, with the admin
// key, and waits for the sessions page.
func signIn() chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.SendKeys(chromedp.CSS(`#key`), adminKey),
		chromedp.Click(chromedp.CSS(`form.signin button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.sessions`)),
	)
}

// saveOnFailure keeps a screenshot of the page when the test failed, in
// a directory that outlives the test, and says where.
func saveOnFailure(t *testing.T, ctx context.Context) {
	t.Helper()
	if !t.Failed() || ctx.Err() != nil {
		return
	}
	dir, err := os.MkdirTemp("", "lapse-console-failure-")
	if err != nil {
		return
	}
	png, err := screenshot(ctx, 1280, 0)
	if err != nil {
		t.Logf("no failure screenshot: %v", err)
		return
	}
	path := filepath.Join(dir, "page.png")
	if os.WriteFile(path, png, 0o644) == nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Logf("screenshot of %s at failure: %s", loc, path)
	}
}

// TestBrowserSignInFindRevoke is the operator's path in a real browser:
// sign in with the admin key, find a subject's session, revoke it, and
// see it gone from the live sessions.
func TestBrowserSignInFindRevoke(t *testing.T) {
	e := newEnv(t)
	ctx := browser(t, 1280, 900)
	bob := e.create("bob@example.com", "acme", "standard")
	keep := e.create("bob@example.com", "acme", "standard")
	other := e.create("alice@example.com", "", "standard")
	start := time.Now()
	defer func() {
		saveOnFailure(t, ctx)
		t.Logf("browser test took %s", time.Since(start).Round(time.Millisecond))
	}()

	// Every page starts at the sign-in form.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.srv.URL+"/console/sessions"),
		chromedp.WaitVisible(chromedp.CSS(`#key`)),
		chromedp.SendKeys(chromedp.CSS(`#key`), adminKey),
		chromedp.Click(chromedp.CSS(`form.signin button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.sessions`)),
	); err != nil {
		t.Fatalf("signing in: %v", err)
	}
	// Find bob's sessions by subject.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#f-subject`), "bob@example.com"),
		chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`)),
		// Only the page filtered by a subject offers to revoke all of it.
		chromedp.WaitVisible(chromedp.CSS(`a[href^="/console/revoke-subject?subject=bob%40example.com"]`)),
	); err != nil {
		t.Fatalf("filtering by subject: %v", err)
	}
	table, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS(`table.sessions tbody`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table, keep.ID) || strings.Contains(table, other.ID) {
		t.Fatalf("the filtered table does not show exactly bob's sessions:\n%s", table)
	}
	// Revoke one of them.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button[aria-label="Revoke session `+bob.ID+` of bob@example.com"]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)),
	); err != nil {
		t.Fatalf("revoking: %v", err)
	}
	notice, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`p.notice`)))
	table, err = chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS(`table.sessions tbody`)))
	if err != nil {
		t.Fatal(err)
	}
	if notice != "Revoked 1 session." || strings.Contains(table, bob.ID) || !strings.Contains(table, keep.ID) {
		t.Fatalf("after revoking, notice %q and table:\n%s\nwant the session gone and the other kept", notice, table)
	}
	if got := e.status(bob.ID); got != lapse.StatusRevoked {
		t.Errorf("the store says the session is %s, want revoked", got)
	}
	// It is listed among the revoked ones.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.srv.URL+"/console/sessions?status=revoked"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/console/sessions/`+bob.ID+`"]`)),
	); err != nil {
		t.Fatalf("the revoked session is not among the revoked: %v", err)
	}
}

// TestBrowserKeepsTheSecureCookieOnLoopbackHTTP checks that the default
// cookie (__Host-, Secure) works over plain HTTP on 127.0.0.1, where lapse
// serve listens by default: Chromium treats loopback as a secure context.
func TestBrowserKeepsTheSecureCookieOnLoopbackHTTP(t *testing.T) {
	e := newEnv(t, func(_ *console.Config, o *envOptions) { o.plain = true })
	ctx := browser(t, 1280, 900)
	defer saveOnFailure(t, ctx)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.srv.URL+"/console/policy"),
		chromedp.WaitVisible(chromedp.CSS(`#key`)),
		chromedp.SendKeys(chromedp.CSS(`#key`), adminKey),
		chromedp.Click(chromedp.CSS(`form.signin button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.policy`)),
	); err != nil {
		t.Fatalf("signing in over %s: %v", e.srv.URL, err)
	}
}

// TestScreenshots writes the full-length screenshots of docs/console.md
// (TestPagesFit writes those of each page on a phone and a laptop). It
// runs only when LAPSE_DOC_SCREENSHOTS names the directory to write them
// to:
//
//	LAPSE_DOC_SCREENSHOTS=$PWD/docs/img go test ./console -run 'TestScreenshots|TestPagesFit'
func TestScreenshots(t *testing.T) {
	dir := webtest.DocDir()
	if dir == "" {
		t.Skip("set LAPSE_DOC_SCREENSHOTS to a directory to write the console's screenshots")
	}
	e := newEnv(t, withPolicy(demoPolicy()))
	show := seedDemo(t, e)
	ctx := browser(t, 1280, 900)
	defer saveOnFailure(t, ctx)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.srv.URL+"/console/signin"),
		chromedp.WaitVisible(chromedp.CSS(`#key`)),
	); err != nil {
		t.Fatal(err)
	}
	shoot := func(name string, width int64) {
		t.Helper()
		maxHeight := int64(1500)
		if name == "charts" {
			maxHeight = 0
		}
		png, err := screenshot(ctx, width, maxHeight)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "console-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, signIn()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		name, path, wait string
		width            int64
	}{
		{"sessions", "/console/sessions", `table.sessions`, 1280},
		{"session", "/console/sessions/" + show.ID, `#events`, 1280},
		{"policy", "/console/policy?profile=pci-dss-4", `table.policy`, 1280},
		{"charts", "/console/charts?window=24h", `svg.chart`, 1280},
	} {
		if err := chromedp.Do(ctx,
			chromedp.EmulateViewport(p.width, 900),
			chromedp.Navigate(e.srv.URL+p.path),
			chromedp.WaitVisible(chromedp.CSS(p.wait)),
		); err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		shoot(p.name, p.width)
	}
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(e.srv.URL+"/console/audit"),
		chromedp.Click(chromedp.CSS(`form[action="/console/audit/verify"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`.chain .report`)),
	); err != nil {
		t.Fatal(err)
	}
	shoot("audit", 1280)
	// Someone with access to the database file rewrites a record.
	db, err := sql.Open("sqlite", e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE events SET subject = 'someone.else@acme.example' WHERE seq = (SELECT max(seq) - 20 FROM events)`); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form[action="/console/audit/verify"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`.chain .report.broken`)),
		chromedp.Click(chromedp.CSS(`.chain .report.broken a`)),
		chromedp.WaitVisible(chromedp.CSS(`tr.broken`)),
		chromedp.Navigate(e.srv.URL+"/console/audit"),
		chromedp.Click(chromedp.CSS(`form[action="/console/audit/verify"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`.chain .report.broken`)),
	); err != nil {
		t.Fatal(err)
	}
	shoot("audit-broken", 1280)
}

// demoPolicy is a platform with three tiers, two of them tied to
// compliance profiles, and two tenants with overrides.
func demoPolicy() *lapse.Policy {
	dur := func(d time.Duration) *time.Duration { return &d }
	p := &lapse.Policy{
		DefaultTier: "standard",
		Tiers: map[string]lapse.Tier{
			"standard": {IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour, WarnBefore: 2 * time.Minute},
			"sensitive": {IdleTimeout: 15 * time.Minute, AbsoluteTimeout: 8 * time.Hour, WarnBefore: 2 * time.Minute,
				RequireAAL: 2, MaxSessions: 3, Profiles: []string{"pci-dss-4"}},
			"critical": {IdleTimeout: 5 * time.Minute, AbsoluteTimeout: time.Hour, WarnBefore: time.Minute,
				RequireAAL: 2, MaxAuthAge: 15 * time.Minute, MaxSessions: 1, Profiles: []string{"nist-800-63b-4-aal2"}},
		},
		Tenants: map[string]map[string]lapse.TierOverride{
			"acme":   {"standard": {IdleTimeout: dur(20 * time.Minute)}},
			"globex": {"sensitive": {IdleTimeout: dur(10 * time.Minute)}, "standard": {AbsoluteTimeout: dur(8 * time.Hour)}},
		},
	}
	if err := p.Validate(); err != nil {
		panic(err)
	}
	return p
}

// seedDemo plays a day of a small platform on the fake clock, in steps
// of five minutes: people sign in (more in working hours), stay active
// or wander off and idle out, sign out, hit session caps, and now and
// then an admin revokes one. It returns a session worth showing.
func seedDemo(t *testing.T, e *env) *lapse.Session {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	first := []string{"maria", "li", "aisha", "tom", "sofia", "kenji", "olga", "pedro", "fatima", "noah", "emma", "ravi", "chen", "lucas", "zoe", "omar"}
	last := []string{"garcia", "wang", "khan", "becker", "rossi", "sato", "ivanova", "silva", "haddad", "smith", "dubois", "patel"}
	tenants := []string{"", "acme", "acme", "globex"}
	agents := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:143.0) Gecko/20100101 Firefox/143.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
	}
	now := e.clock.Now()
	e.clock.Set(now.Add(-24 * time.Hour))
	tokens := map[string]string{}
	const steps = 24 * 12
	var (
		show      *lapse.Session
		showToken string
	)
	for step := range steps {
		e.clock.Advance(5 * time.Minute)
		// One session to show in detail: signed in an hour ago, stepped
		// up, active for 40 minutes, then "stay signed in".
		switch k := step - (steps - 12); {
		case k == 0:
			tok, s, err := e.m.Create(ctx, lapse.CreateParams{Subject: "maria.garcia@acme.example", Tenant: "acme", Tier: "sensitive",
				AAL: 1, AMR: []string{"pwd"}, IP: "198.51.100.23", UserAgent: agents[1], Metadata: []byte(`{"plan":"enterprise","device":"MacBook Pro"}`)})
			if err != nil {
				t.Fatal(err)
			}
			show, showToken = s, tok.Reveal()
		case k == 1:
			tok, _, err := e.m.StepUp(ctx, showToken, 2, []string{"pwd", "otp"}, lapse.ActorSubject)
			if err != nil {
				t.Fatal(err)
			}
			showToken = tok.Reveal()
		case k > 1 && k <= 8:
			e.m.Verify(ctx, showToken, lapse.VerifyOptions{})
		case k == 10:
			if _, err := e.m.Extend(ctx, showToken); err != nil {
				t.Fatal(err)
			}
		}
		hour := e.clock.Now().Hour()
		rate := 0.6
		if hour >= 7 && hour < 19 {
			rate = 3.5
		}
		for range poisson(rng, rate) {
			tenant := tenants[rng.IntN(len(tenants))]
			domain := "example.com"
			if tenant != "" {
				domain = tenant + ".example"
			}
			tier, aal := "standard", 1
			switch r := rng.Float64(); {
			case r < 0.06:
				tier, aal = "critical", 2
			case r < 0.3:
				tier, aal = "sensitive", 2
			}
			tok, s, err := e.m.Create(ctx, lapse.CreateParams{
				Subject: first[rng.IntN(len(first))] + "." + last[rng.IntN(len(last))] + "@" + domain,
				Tenant:  tenant, Tier: tier, AAL: aal, AMR: []string{"pwd", "otp"}[:aal],
				IP:        fmt.Sprintf("203.0.113.%d", 1+rng.IntN(250)),
				UserAgent: agents[rng.IntN(len(agents))],
			})
			if err != nil {
				t.Fatal(err)
			}
			tokens[s.ID] = tok.Reveal()
		}
		for id, tok := range tokens {
			switch r := rng.Float64(); {
			case r < 0.012:
				e.m.Revoke(ctx, tok)
			case r < 0.014:
				e.m.End(ctx, id, []lapse.Reason{lapse.ReasonAdmin, lapse.ReasonPasswordChange, lapse.ReasonTheft}[rng.IntN(3)], "api")
			case r < 0.75:
				if _, err := e.m.Verify(ctx, tok, lapse.VerifyOptions{}); err != nil {
					delete(tokens, id)
				}
			}
		}
		if step%3 == 0 {
			e.m.Sweep(ctx)
		}
	}
	e.m.Sweep(ctx)
	return show
}

// poisson draws from a Poisson distribution of mean l (Knuth's method).
func poisson(rng *rand.Rand, l float64) int {
	limit, k, p := math.Exp(-l), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= limit {
			return k
		}
		k++
	}
}

// longSubject is an email of about 60 characters, which must wrap in the
// sessions table rather than push its last columns off a laptop's screen.
const longSubject = "maria-fernanda.rodriguez-villanueva@research.globex.example"

// TestPagesFit walks every page of the console on a day of demo traffic
// and checks each on a phone (390x844) and a laptop (1280x800): no wider
// than the screen, every control in reach, nothing on the laptop behind a
// sideways scroll (webtest.CheckPage). With
// LAPSE_DOC_SCREENSHOTS=$PWD/docs/img it writes docs/img/console-*-390.png
// and console-*-1280.png.
func TestPagesFit(t *testing.T) {
	e := newEnv(t, withPolicy(demoPolicy()))
	show := seedDemo(t, e)
	long := e.create(longSubject, "globex", "sensitive")
	ctx := browser(t, 1280, 800)
	defer saveOnFailure(t, ctx)
	visit := func(name, path, wait string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+path), chromedp.WaitVisible(chromedp.CSS(wait))); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		webtest.CheckPage(t, ctx, "console-"+name)
	}
	visit("signin", "/console/signin", `#key`)
	if err := chromedp.Do(ctx, signIn()); err != nil {
		t.Fatal(err)
	}
	visit("sessions", "/console/sessions?tenant=globex", `table.sessions`)
	visit("session", "/console/sessions/"+show.ID, `#events`)
	visit("revoke-subject", "/console/revoke-subject?subject="+url.QueryEscape(longSubject)+"&all_tenants=1", `form[action="/console/revoke-subject"]`)
	visit("policy", "/console/policy?profile=pci-dss-4", `table.policy`)
	visit("audit", "/console/audit", `table.audit`)
	visit("charts", "/console/charts?window=24h", `svg.chart`)
	visit("not-found", "/console/sessions/ses_doesnotexist", `p.error`)

	// The long subject wraps on the laptop: its row's Revoke button is in
	// view without scrolling the table sideways (CheckPage's strict check
	// above saw every control; this names the one the issue was about).
	if err := chromedp.Do(ctx, webtest.Emulate(webtest.Laptop), chromedp.Navigate(e.srv.URL+"/console/sessions?tenant=globex&tier=sensitive"),
		chromedp.WaitVisible(chromedp.CSS(`table.sessions`))); err != nil {
		t.Fatal(err)
	}
	fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		const b = document.querySelector('button[aria-label="Revoke session `+long.ID+` of `+longSubject+`"]');
		const frame = b.closest('.scroll');
		return frame.scrollWidth <= frame.clientWidth && b.getBoundingClientRect().right <= frame.getBoundingClientRect().right;
	})()`))
	if err != nil || !fits {
		t.Errorf("the row of a %d-character subject at 1280 px: its Revoke button needs a sideways scroll (%v)", len(longSubject), err)
	}
}
