package demo_test

// End-to-end tests of the browser side in headless Chromium against the
// demo app, with second-scale timeouts. They run in go test ./... and
// skip with a message when Chromium is missing, except with CI=true,
// where they fail. On failure each tab's screenshot and console are
// saved to $LAPSE_E2E_ARTIFACTS (default: a lapse-e2e directory in the
// system's temporary directory) and the path is logged.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/demo"
	"github.com/lapsehq/lapse/totp"
	"github.com/lapsehq/lapse/web/webtest"
)

// e2eTimeouts make every deadline come within seconds: the warning 3 s
// after the last activity, the idle end 6 s after it.
var e2eTimeouts = demo.Timeouts{
	Idle: 6 * time.Second, Warn: 3 * time.Second, Absolute: 2 * time.Minute,
	SensitiveIdle: 6 * time.Second, SensitiveWarn: 3 * time.Second, SensitiveAbsolute: 2 * time.Minute,
	AuthAge: time.Minute,
}

var (
	browserOnce sync.Once
	browserCtx  context.Context
	browserErr  error
)

// browser returns the context of the one Chromium the tests share,
// starting it on first use; every test gets its own browser contexts
// (profiles) in it.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := webtest.Chromium(t)
	browserOnce.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.Flag("no-sandbox", true),
			chromedp.Flag("disable-gpu", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.WindowSize(1100, 720),
		)
		alloc, _ := chromedp.NewExecAllocator(context.Background(), opts...)
		browserCtx, _ = chromedp.NewContext(alloc)
		browserErr = chromedp.Do(browserCtx) // starts the browser
	})
	if browserErr != nil {
		t.Fatalf("starting Chromium (%s): %v", path, browserErr)
	}
	return browserCtx
}

// env is one demo app and the browser tabs of a test.
type env struct {
	t    *testing.T
	app  *demo.App
	url  string
	tabs []*tab

	mu   sync.Mutex
	hits map[string]int // requests served, by "METHOD /path"
}

// served returns how many requests the app has served for "METHOD /path".
func (e *env) served(route string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hits[route]
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvConfig(t, demo.Config{Timeouts: e2eTimeouts})
}

func newEnvConfig(t *testing.T, cfg demo.Config) *env {
	t.Helper()
	cfg.DataDir = t.TempDir()
	app, err := demo.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { app.Run(ctx); close(done) }()
	<-app.Ready()
	e := &env{t: t, app: app, hits: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.hits[r.Method+" "+r.URL.Path]++
		e.mu.Unlock()
		app.Handler().ServeHTTP(w, r)
	}))
	e.url = srv.URL
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
		app.Close()
	})
	return e
}

// tab is one browser tab.
type tab struct {
	name string
	ctx  context.Context
	mu   sync.Mutex
	logs []string
}

// profile opens a tab in a fresh browser profile: a browser of its own,
// as far as cookies and storage go.
func (e *env) profile(name string) *tab {
	return e.open(name, browser(e.t), chromedp.WithNewBrowserContext())
}

// sibling opens another tab in the profile of tb.
func (e *env) sibling(tb *tab, name string) *tab {
	return e.open(name, tb.ctx)
}

func (e *env) open(name string, parent context.Context, opts ...chromedp.ContextOption) *tab {
	e.t.Helper()
	tb := &tab{name: name}
	opts = append(opts, chromedp.WithListener(func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
			}
			tb.log("console.%s: %s", ev.Type, strings.Join(parts, " "))
		case *runtime.EventExceptionThrown:
			tb.log("exception: %s %s", ev.ExceptionDetails.Text, exceptionDescription(ev))
		}
	}))
	ctx, cancel := chromedp.NewContext(parent, opts...)
	tb.ctx = ctx
	e.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		e.t.Fatalf("opening tab %s: %v", name, err)
	}
	e.t.Cleanup(func() {
		if e.t.Failed() {
			e.saveArtifacts(tb)
		}
	})
	e.tabs = append(e.tabs, tb)
	return tb
}

func exceptionDescription(ev *runtime.EventExceptionThrown) string {
	if ev.ExceptionDetails.Exception != nil {
		return ev.ExceptionDetails.Exception.Description
	}
	return ""
}

func (tb *tab) log(format string, args ...any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.logs = append(tb.logs, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
}

// saveArtifacts writes a tab's screenshot and console log for a failed
// test, and says where.
func (e *env) saveArtifacts(tb *tab) {
	dir := os.Getenv("LAPSE_E2E_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "lapse-e2e")
	}
	base := filepath.Join(dir, regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(e.t.Name(), "_")+"-"+tb.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Logf("saving artifacts: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
		os.WriteFile(base+".png", png, 0o644)
	}
	tb.mu.Lock()
	logs := strings.Join(tb.logs, "\n")
	tb.mu.Unlock()
	os.WriteFile(base+".log", []byte("location: "+loc+"\n"+logs+"\n"), 0o644)
	e.t.Logf("tab %s was at %s; screenshot and console: %s.png, %s.log", tb.name, loc, base, base)
}

// --- actions and waits ---

func (e *env) do(tb *tab, actions ...chromedp.Action[chromedp.Void]) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		e.t.Fatalf("tab %s: %v", tb.name, err)
	}
}

// eval evaluates a JavaScript expression in the tab.
func eval[T any](tb *tab, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// waitJS polls expr every 50 ms until it is true, and returns when it
// first was. Errors (a page in the middle of navigating) count as false.
func (e *env) waitJS(tb *tab, expr string, within time.Duration, what string) time.Time {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if ok, err := eval[bool](tb, expr); err == nil && ok {
			return time.Now()
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("tab %s: %s did not happen within %s", tb.name, what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) location(tb *tab) string {
	e.t.Helper()
	loc, err := eval[string](tb, "location.href")
	if err != nil {
		e.t.Fatalf("tab %s: location: %v", tb.name, err)
	}
	return loc
}

const (
	dialogOpen  = `!!document.querySelector('dialog.lapse-dialog[open]')`
	streamOpen  = `!!(window.lapse && window.lapse.es && window.lapse.es.readyState === 1)`
	clientReady = `!!(window.lapse && window.lapse.state.session)`
)

func signedOutWith(reason string) string {
	return fmt.Sprintf(`location.pathname === '/signed-out' && new URLSearchParams(location.search).get('reason') === %q`, reason)
}

// signIn signs email in from tab tb and waits for the documents page
// with a running client.
func (e *env) signIn(tb *tab, email string) {
	e.t.Helper()
	e.do(tb,
		chromedp.Navigate(e.url+"/signin"),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), "demo"),
		chromedp.Click(chromedp.CSS(`form[action="/signin"] button[type=submit]`)),
	)
	e.waitJS(tb, `location.pathname === '/documents'`, 5*time.Second, "landing on the documents page after sign-in")
	e.waitJS(tb, clientReady, 5*time.Second, "the client reading the session")
}

func (e *env) goTo(tb *tab, path string) {
	e.t.Helper()
	e.do(tb, chromedp.Navigate(e.url+path))
	e.waitJS(tb, clientReady, 5*time.Second, "the client reading the session")
}

// session returns subject's only active session as the server has it.
func (e *env) session(subject string) *lapse.Session {
	e.t.Helper()
	ss, err := e.app.Manager().Sessions(context.Background(), lapse.Filter{Subject: subject, AnyTenant: true})
	if err != nil || len(ss) != 1 {
		e.t.Fatalf("sessions of %s: %d (%v), want 1", subject, len(ss), err)
	}
	return ss[0]
}

func (e *env) sessionByID(id string) *lapse.Session {
	e.t.Helper()
	s, err := e.app.Manager().Session(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// --- the tests: the list of issue 4 ---

func TestBrowser(t *testing.T) {
	browser(t)
	t.Run("warning_appears_at_warn_at", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		a := e.profile("a")
		e.signIn(a, "ada@example.com")
		warnAt := e.session("ada@example.com").WarnAt
		if time.Now().After(warnAt) {
			t.Fatalf("signing in took past warn_at %v", warnAt)
		}
		e.waitJS(a, dialogOpen, 5*time.Second, "the warning")
		shownAt, err := eval[float64](a, `window.lapseEvents.find(e => e.type === 'warning').at`)
		if err != nil {
			t.Fatal(err)
		}
		shown := time.UnixMilli(int64(shownAt))
		if lead := shown.Sub(warnAt); lead < -100*time.Millisecond || lead > 500*time.Millisecond {
			t.Errorf("warning shown %v after warn_at, want within [-100ms, 500ms]", lead)
		}
		for what, expr := range map[string]string{
			"role alertdialog":           `document.querySelector('dialog.lapse-dialog').getAttribute('role') === 'alertdialog'`,
			"focus on Stay signed in":    `document.activeElement.dataset.lapseAction === 'stay'`,
			"a live countdown":           `/^0:0[0-3]$/.test(document.querySelector('.lapse-dialog__countdown').textContent)`,
			"a Sign out button":          `!!document.querySelector('.lapse-dialog [data-lapse-action=signout]')`,
			"a modal, labelled dialog":   `document.querySelector('dialog.lapse-dialog').getAttribute('aria-labelledby') === 'lapse-dialog-title'`,
			"the rest of the page inert": `document.querySelector('dialog.lapse-dialog').matches(':modal')`,
		} {
			if ok, err := eval[bool](a, expr); err != nil || !ok {
				t.Errorf("the warning lacks %s (%v)", what, err)
			}
		}
		// Keyboard: Escape is "Stay signed in".
		before := e.session("ada@example.com")
		e.do(a, chromedp.KeyEvent(kb.Escape))
		e.waitJS(a, `window.lapseEvents.some(e => e.type === 'extended') && !document.querySelector('dialog.lapse-dialog')`, 2*time.Second, "Escape extending the session and closing the warning")
		if after := e.sessionByID(before.ID); !after.IdleExpiresAt.After(before.IdleExpiresAt) {
			t.Errorf("Escape left the idle deadline at %v, want it extended", after.IdleExpiresAt)
		}
	})

	t.Run("stay_signed_in_extends_the_server_side_session", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		a := e.profile("a")
		e.signIn(a, "ada@example.com")
		before := e.session("ada@example.com")
		e.waitJS(a, dialogOpen, 5*time.Second, "the warning")
		clicked := time.Now()
		e.do(a, chromedp.Click(chromedp.CSS(`.lapse-dialog [data-lapse-action=stay]`)))
		e.waitJS(a, "!"+dialogOpen, 2*time.Second, "the warning closing")
		after := e.sessionByID(before.ID)
		if !after.IdleExpiresAt.After(before.IdleExpiresAt) || after.LastActiveAt.Before(clicked.Add(-time.Second)) {
			t.Errorf("server idle deadline %v -> %v, last active %v; want it moved to the click at %v",
				before.IdleExpiresAt, after.IdleExpiresAt, after.LastActiveAt, clicked)
		}
		evs, err := e.app.Manager().Store().(lapse.AuditLog).QueryEvents(context.Background(),
			lapse.EventQuery{SessionID: before.ID, Types: []lapse.EventType{lapse.EventExtended}})
		if err != nil || len(evs) != 1 {
			t.Errorf("session.extended events: %d (%v), want 1", len(evs), err)
		}
		// Past the first deadline, the tab is still signed in.
		time.Sleep(time.Until(before.IdleExpiresAt.Add(500 * time.Millisecond)))
		if loc := e.location(a); !strings.HasSuffix(loc, "/documents") {
			t.Errorf("tab at %s after the old deadline, want still on /documents", loc)
		}
	})

	t.Run("idle_user_lands_on_the_signed_out_page_with_the_reason", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		a := e.profile("a")
		e.signIn(a, "ada@example.com")
		s := e.session("ada@example.com")
		landed := e.waitJS(a, signedOutWith("idle_timeout"), 9*time.Second, "landing on /signed-out?reason=idle_timeout")
		if landed.Before(s.IdleExpiresAt) {
			t.Errorf("signed out at %v, before the idle deadline %v", landed, s.IdleExpiresAt)
		}
		if late := landed.Sub(s.IdleExpiresAt); late > 1500*time.Millisecond {
			t.Errorf("signed out %v after the idle deadline, want within 1.5s", late)
		}
		e.waitJS(a, `document.readyState !== 'loading' && document.body.innerText.includes('not active for a while')`, 2*time.Second,
			"the signed-out page explaining the reason")
		if got := e.sessionByID(s.ID); got.Status != lapse.StatusExpired || got.EndReason != lapse.ReasonIdleTimeout {
			t.Errorf("server session %s (%s), want expired (idle_timeout)", got.Status, got.EndReason)
		}
	})

	t.Run("activity_in_tab_A_keeps_tab_B_alive", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		a := e.profile("a")
		e.signIn(a, "ada@example.com")
		b := e.sibling(a, "b")
		e.goTo(b, "/documents")
		start := e.session("ada@example.com")
		// The user works in tab A for two idle timeouts; tab B is left
		// alone. Real input events, as the browser delivers them.
		until := time.Now().Add(2 * e2eTimeouts.Idle)
		for i := 0; time.Now().Before(until); i++ {
			e.do(a, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, float64(200+i%2*40), float64(300+i%3*20)))
			if open, _ := eval[bool](b, dialogOpen); open {
				t.Fatalf("tab B warned after %v of activity in tab A", time.Since(until.Add(-2*e2eTimeouts.Idle)))
			}
			time.Sleep(300 * time.Millisecond)
		}
		for _, tb := range []*tab{a, b} {
			if loc := e.location(tb); !strings.HasSuffix(loc, "/documents") {
				t.Errorf("tab %s at %s, want still on /documents", tb.name, loc)
			}
		}
		now := e.sessionByID(start.ID)
		if now.Status != lapse.StatusActive || !now.IdleExpiresAt.After(start.IdleExpiresAt.Add(e2eTimeouts.Idle)) {
			t.Errorf("server session %s, idle deadline %v; want active and well past the first deadline %v", now.Status, now.IdleExpiresAt, start.IdleExpiresAt)
		}
		// One report per half of the quiet time before the warning (1.5 s
		// here), not one per event (40 of them); routine activity, not
		// an extend.
		if n := e.served("POST /lapse/v1/session/activity"); n < 4 || n > 12 {
			t.Errorf("%d activity reports in %v of activity, want 4-12", n, 2*e2eTimeouts.Idle)
		}
		evs, _ := e.app.Manager().Store().(lapse.AuditLog).QueryEvents(context.Background(),
			lapse.EventQuery{SessionID: start.ID, Types: []lapse.EventType{lapse.EventExtended}})
		if n, extends := len(evs), e.served("POST /lapse/v1/session/extend"); n != 0 || extends != 0 {
			t.Errorf("%d session.extended events and %d extends, want none: nobody asked to stay signed in", n, extends)
		}
	})

	t.Run("sign_out_in_tab_A_signs_out_tab_B_within_a_second", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		a := e.profile("a")
		e.signIn(a, "ada@example.com")
		b := e.sibling(a, "b")
		e.goTo(b, "/account/sessions")
		id := e.session("ada@example.com").ID
		clicked := time.Now()
		e.do(a, chromedp.Click(chromedp.CSS(`header form[data-lapse-signout] button`)))
		landed := e.waitJS(b, signedOutWith("logout"), 3*time.Second, "tab B landing on /signed-out?reason=logout")
		if d := landed.Sub(clicked); d > time.Second {
			t.Errorf("tab B signed out %v after the click in tab A, want within 1s", d)
		} else {
			t.Logf("tab B signed out %v after the click in tab A", d.Round(10*time.Millisecond))
		}
		e.waitJS(a, signedOutWith("logout"), 3*time.Second, "tab A landing on /signed-out?reason=logout")
		if s := e.sessionByID(id); s.Status != lapse.StatusRevoked || s.EndReason != lapse.ReasonLogout {
			t.Errorf("server session %s (%s), want revoked (logout)", s.Status, s.EndReason)
		}
	})

	t.Run("admin_revoke_kicks_an_open_tab_out_within_a_second", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		a := e.profile("a")
		e.signIn(a, "ada@example.com")
		e.waitJS(a, streamOpen, 3*time.Second, "the event stream opening")
		id := e.session("ada@example.com").ID
		req, _ := http.NewRequest("DELETE", e.url+"/lapse/v1/sessions/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+e.app.APIKey())
		revoked := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("admin revoke: %v %v, want 204", err, resp)
		}
		resp.Body.Close()
		landed := e.waitJS(a, signedOutWith("admin"), 3*time.Second, "the tab landing on /signed-out?reason=admin")
		if d := landed.Sub(revoked); d > time.Second {
			t.Errorf("tab signed out %v after the revoke, want within 1s", d)
		} else {
			t.Logf("the tab signed out %v after the revoke", d.Round(10*time.Millisecond))
		}
		// The location changes before the page has loaded.
		e.waitJS(a, `document.readyState !== 'loading' && document.body.innerText.includes('An administrator ended your session')`, 2*time.Second,
			"the signed-out page saying an administrator ended the session")
	})

	t.Run("sessions_page_ends_another_session", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		laptop := e.profile("laptop")
		e.signIn(laptop, "ada@example.com")
		phone := e.profile("phone")
		if _, err := chromedp.Call(phone.ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: iPhoneUA}); err != nil {
			t.Fatal(err)
		}
		e.signIn(phone, "ada@example.com")
		e.goTo(laptop, "/account/sessions")
		var phoneID string
		ss, _ := e.app.Manager().Sessions(context.Background(), lapse.Filter{Subject: "ada@example.com"})
		for _, s := range ss {
			if strings.Contains(s.UserAgent, "iPhone") {
				phoneID = s.ID
			}
		}
		if phoneID == "" || len(ss) != 2 {
			t.Fatalf("want two sessions, one from the phone; got %d", len(ss))
		}
		for what, expr := range map[string]string{
			"two sessions":             `document.querySelectorAll('.lapse-session').length === 2`,
			"this device marked":       `document.querySelector('.lapse-session--current').innerText.includes('This device')`,
			"the phone described":      `document.querySelector('.lapse-session[data-session-id="` + phoneID + `"]').innerText.includes('Safari 18 on iOS')`,
			"sign out everywhere else": `!!document.querySelector('.lapse-sessions__others button')`,
		} {
			if ok, err := eval[bool](laptop, expr); err != nil || !ok {
				t.Errorf("sessions page: no %s (%v)", what, err)
			}
		}
		ended := time.Now()
		e.do(laptop, chromedp.Click(chromedp.CSS(`.lapse-session[data-session-id="`+phoneID+`"] button[type=submit]`)))
		e.waitJS(laptop, `location.search.includes('done=ended') && document.querySelectorAll('.lapse-session').length === 1`, 3*time.Second, "the page listing only this device")
		if s := e.sessionByID(phoneID); s.Status != lapse.StatusRevoked || s.EndReason != lapse.ReasonLogout {
			t.Errorf("phone's session %s (%s), want revoked (logout)", s.Status, s.EndReason)
		}
		landed := e.waitJS(phone, signedOutWith("logout"), 3*time.Second, "the phone's tab landing on the signed-out page")
		t.Logf("the phone's tab was signed out %v after the click", landed.Sub(ended).Round(10*time.Millisecond))
		if loc := e.location(laptop); !strings.Contains(loc, "/account/sessions") {
			t.Errorf("laptop at %s, want still signed in on the sessions page", loc)
		}
	})
}

// TestBrowserSecondFactor sets up an authenticator app and steps up
// with it, as a person would, with codes the test computes from the key
// on the page. Its idle timeout leaves time to type.
func TestBrowserSecondFactor(t *testing.T) {
	browser(t)
	t.Parallel()
	times := e2eTimeouts
	times.Idle, times.Warn = time.Minute, 20*time.Second
	e := newEnvConfig(t, demo.Config{Timeouts: times})
	a := e.profile("a")
	e.signIn(a, "ada@example.com")
	e.do(a, chromedp.Navigate(e.url+"/billing"))
	e.waitJS(a, `location.pathname === '/account/two-step'`, 5*time.Second, "billing sending to the setup of a second factor")
	e.press(a, `form[action="/account/two-step/enrol"] button[type=submit]`)
	e.waitJS(a, `!!document.getElementById('totp-secret') && document.querySelector('img.qr').naturalWidth > 0`, 5*time.Second, "the QR code and the key")
	secret, err := eval[string](a, `document.getElementById('totp-secret').textContent`)
	if err != nil {
		t.Fatal(err)
	}
	before := e.session("ada@example.com")
	e.enter(a, "#code", codeAt(t, secret, time.Now()))
	e.waitJS(a, `document.querySelectorAll('.recovery__code').length === 10`, 5*time.Second, "the ten recovery codes")
	// The code that turned the factor on was a second factor, given just
	// now: it counts as a step-up, with a new token, and billing opens
	// without asking for another.
	if s := e.session("ada@example.com"); s.AAL != 2 || !slices.Contains(s.AMR, lapse.MethodOTP) || s.TokenHash == before.TokenHash ||
		!s.AuthenticatedAt.After(before.AuthenticatedAt) {
		t.Errorf("after turning the factor on: AAL%d with %v, token rotated %t, authenticated at %v (was %v); want AAL2 with otp, a new token and a new authentication time",
			s.AAL, s.AMR, s.TokenHash != before.TokenHash, s.AuthenticatedAt, before.AuthenticatedAt)
	}
	e.press(a, "#two-step-continue")
	e.waitJS(a, `location.pathname === '/billing' && document.body.innerText.includes('Invoices')`, 5*time.Second, "reaching billing without another code")
	e.waitJS(a, `!!(window.lapse && window.lapse.state.session && window.lapse.state.session.aal === 2)`, 5*time.Second, "the client seeing the session at AAL2")
	// Stepping up again, as billing asks once the code is old: the code
	// of the next time step (the setup used this one's).
	e.goTo(a, "/stepup?next=/billing")
	e.enter(a, "#code", codeAt(t, secret, time.Now().Add(totp.Period)))
	e.waitJS(a, `location.pathname === '/billing' && document.body.innerText.includes('Invoices')`, 5*time.Second, "reaching billing after the step-up")
	evs, err := e.app.Manager().Store().(lapse.AuditLog).QueryEvents(context.Background(),
		lapse.EventQuery{SessionID: before.ID, Types: []lapse.EventType{lapse.EventSteppedUp}})
	if err != nil || len(evs) != 2 {
		t.Errorf("session.stepped_up events: %d (%v), want 2: the setup and the step-up", len(evs), err)
	}
}

// press clicks the element selector names on a page that a form post may
// have just put up. It finds the element by script: the driver's node
// ids of the page before can still be in flight.
func (e *env) press(tb *tab, selector string) {
	e.t.Helper()
	e.focus(tb, selector)
	e.do(tb, chromedp.KeyEvent(kb.Enter))
}

// enter types text into the field selector names and presses Enter, as
// a person would, finding the field like press.
func (e *env) enter(tb *tab, selector, text string) {
	e.t.Helper()
	e.focus(tb, selector)
	e.do(tb, chromedp.KeyEvent(text), chromedp.KeyEvent(kb.Enter))
}

func (e *env) focus(tb *tab, selector string) {
	e.t.Helper()
	expr := fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el) return false; el.focus(); return document.activeElement === el })()`, selector)
	e.waitJS(tb, expr, 5*time.Second, "focusing "+selector)
}

const iPhoneUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
