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
	"net"
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
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/demo"
	"github.com/lapsehq/lapse/lapsetest"
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
	t   *testing.T
	app *demo.App
	url string
	// localhost is the same server by the name localhost, where the demo
	// offers passkeys.
	localhost string
	tabs      []*tab
	// clock is the fake clock of the app and of its pages' clients; nil
	// when they run on the system clock.
	clock *lapsetest.Clock

	mu   sync.Mutex
	hits map[string]int // requests served, by "METHOD /path"
}

// served returns how many requests the app has served for "METHOD /path".
func (e *env) served(route string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hits[route]
}

// newEnv starts the demo on a fake clock, which its pages' clients read
// too (see testClockScript): time passes only when the test says so, so
// the tests check what happens at each deadline, and that nothing happens
// before it, without racing the machine's load.
func newEnv(t *testing.T) *env {
	t.Helper()
	clock := lapsetest.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	e := newEnvConfig(t, demo.Config{Timeouts: e2eTimeouts, Clock: clock})
	e.clock = clock
	return e
}

// testClockPath serves the fake clock to the pages, in Unix milliseconds.
const testClockPath = "/.test/now"

// testClockScript runs in every page of a fake-clock env before the
// demo's own script, which hands window.lapseTestClock to the client as
// its clock. It asks the test's server for the time synchronously, so
// every tab and every page reads the one fake clock.
const testClockScript = `window.lapseTestClock = () => {
  const x = new XMLHttpRequest();
  x.open('GET', '` + testClockPath + `', false);
  x.send();
  return Number(x.responseText);
};`

// advanceTo sets the fake clock to at.
func (e *env) advanceTo(at time.Time) {
	e.t.Helper()
	if e.clock == nil {
		e.t.Fatal("advanceTo in an env on the system clock")
	}
	e.clock.Set(at)
}

// ticked waits until tab tb's client has run its clock at or after at:
// what it shows then is what it decided at that time.
func (e *env) ticked(tb *tab, at time.Time) {
	e.t.Helper()
	e.waitJS(tb, fmt.Sprintf(`!!window.lapse && window.lapse.lastTick >= %d`, at.UnixMilli()), "the client's clock reaching "+at.Format("15:04:05.000"))
}

func newEnvConfig(t *testing.T, cfg demo.Config) *env {
	t.Helper()
	e := &env{t: t, hits: map[string]int{}}
	// The server's address comes first: the demo offers passkeys for the
	// origin it is reached at, on localhost (browsers refuse passkeys on
	// an IP address).
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == testClockPath && cfg.Clock != nil {
			fmt.Fprint(w, cfg.Clock.Now().UnixMilli())
			return
		}
		e.mu.Lock()
		e.hits[r.Method+" "+r.URL.Path]++
		e.mu.Unlock()
		e.app.Handler().ServeHTTP(w, r)
	}))
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	e.localhost = "http://localhost:" + port
	cfg.DataDir, cfg.Origin = t.TempDir(), e.localhost
	app, err := demo.New(cfg)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	e.app = app
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { app.Run(ctx); close(done) }()
	<-app.Ready()
	srv.Start()
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
	if e.clock != nil {
		if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: testClockScript}); err != nil {
			e.t.Fatalf("tab %s: giving its pages the fake clock: %v", name, err)
		}
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

// waitJS polls expr every 50 ms until it is true, for up to guard.
// Errors (a page in the middle of navigating) count as false.
func (e *env) waitJS(tb *tab, expr string, what string) {
	e.t.Helper()
	deadline := time.Now().Add(guard)
	for {
		if ok, err := eval[bool](tb, expr); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("tab %s: %s did not happen within %s", tb.name, what, guard)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// guard bounds every wait for something the tests expect to happen: not
// a figure they assert, only a stop for "it never happened", generous
// enough for a busy machine.
const guard = 15 * time.Second

// waitServer polls cond, a question about the server's state, until it is
// true.
func (e *env) waitServer(what string, cond func() bool) {
	e.t.Helper()
	for deadline := time.Now().Add(guard); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s did not happen within %s", what, guard)
		}
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
	e.waitJS(tb, `location.pathname === '/documents'`, "landing on the documents page after sign-in")
	e.waitJS(tb, clientReady, "the client reading the session")
}

func (e *env) goTo(tb *tab, path string) {
	e.t.Helper()
	e.do(tb, chromedp.Navigate(e.url+path))
	e.waitJS(tb, clientReady, "the client reading the session")
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
		s := e.session("ada@example.com")

		// A millisecond before warn_at the client has ticked and shows
		// nothing; at warn_at it warns.
		e.advanceTo(s.WarnAt.Add(-time.Millisecond))
		e.ticked(a, s.WarnAt.Add(-time.Millisecond))
		if open, err := eval[bool](a, dialogOpen+` || window.lapseEvents.some(e => e.type === 'warning')`); err != nil || open {
			t.Fatalf("the warning is up a millisecond before warn_at (%v)", err)
		}
		e.advanceTo(s.WarnAt)
		e.waitJS(a, dialogOpen, "the warning at warn_at")
		shownAt, err := eval[float64](a, `window.lapseEvents.find(e => e.type === 'warning').at`)
		if err != nil {
			t.Fatal(err)
		}
		if shown := time.UnixMilli(int64(shownAt)); !shown.Equal(s.WarnAt) {
			t.Errorf("warning shown at %v on the client's clock, want at warn_at %v", shown, s.WarnAt)
		}
		for what, expr := range map[string]string{
			"role alertdialog":           `document.querySelector('dialog.lapse-dialog').getAttribute('role') === 'alertdialog'`,
			"focus on Stay signed in":    `document.activeElement.dataset.lapseAction === 'stay'`,
			"a countdown of the 3s left": `document.querySelector('.lapse-dialog__countdown').textContent === '0:03'`,
			"a Sign out button":          `!!document.querySelector('.lapse-dialog [data-lapse-action=signout]')`,
			"a modal, labelled dialog":   `document.querySelector('dialog.lapse-dialog').getAttribute('aria-labelledby') === 'lapse-dialog-title'`,
			"the rest of the page inert": `document.querySelector('dialog.lapse-dialog').matches(':modal')`,
		} {
			if ok, err := eval[bool](a, expr); err != nil || !ok {
				t.Errorf("the warning lacks %s (%v)", what, err)
			}
		}
		// The countdown follows the clock.
		e.advanceTo(s.WarnAt.Add(2 * time.Second))
		e.waitJS(a, `document.querySelector('.lapse-dialog__countdown').textContent === '0:01'`, "the countdown showing 0:01 a second before the deadline")
		// Keyboard: Escape is "Stay signed in".
		e.do(a, chromedp.KeyEvent(kb.Escape))
		e.waitJS(a, `window.lapseEvents.some(e => e.type === 'extended') && !document.querySelector('dialog.lapse-dialog')`, "Escape extending the session and closing the warning")
		after := e.sessionByID(s.ID)
		if want := e.clock.Now().Add(e2eTimeouts.Idle); !after.IdleExpiresAt.Equal(want) {
			t.Errorf("Escape left the idle deadline at %v, want it extended to %v", after.IdleExpiresAt, want)
		}
	})

	t.Run("stay_signed_in_extends_the_server_side_session", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		a := e.profile("a")
		e.signIn(a, "ada@example.com")
		before := e.session("ada@example.com")
		e.advanceTo(before.WarnAt.Add(time.Second))
		e.waitJS(a, dialogOpen, "the warning")
		clicked := e.clock.Now()
		e.do(a, chromedp.Click(chromedp.CSS(`.lapse-dialog [data-lapse-action=stay]`)))
		e.waitJS(a, "!"+dialogOpen, "the warning closing")
		after := e.sessionByID(before.ID)
		if !after.LastActiveAt.Equal(clicked) || !after.IdleExpiresAt.Equal(clicked.Add(e2eTimeouts.Idle)) {
			t.Errorf("server idle deadline %v -> %v, last active %v; want activity recorded at the click at %v",
				before.IdleExpiresAt, after.IdleExpiresAt, after.LastActiveAt, clicked)
		}
		evs, err := e.app.Manager().Store().(lapse.AuditLog).QueryEvents(context.Background(),
			lapse.EventQuery{SessionID: before.ID, Types: []lapse.EventType{lapse.EventExtended}})
		if err != nil || len(evs) != 1 {
			t.Errorf("session.extended events: %d (%v), want 1", len(evs), err)
		}
		// Past the first deadline, the tab is still signed in.
		past := before.IdleExpiresAt.Add(500 * time.Millisecond)
		e.advanceTo(past)
		e.ticked(a, past)
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
		// Nothing ends a millisecond before the deadline, whatever the
		// client and the sweeper do meanwhile.
		e.advanceTo(s.IdleExpiresAt.Add(-time.Millisecond))
		e.ticked(a, s.IdleExpiresAt.Add(-time.Millisecond))
		if loc := e.location(a); !strings.HasSuffix(loc, "/documents") {
			t.Fatalf("tab at %s a millisecond before the idle deadline, want still on /documents", loc)
		}
		if got := e.sessionByID(s.ID); got.Status != lapse.StatusActive {
			t.Fatalf("server session %s a millisecond before the idle deadline, want active", got.Status)
		}
		e.advanceTo(s.IdleExpiresAt)
		e.waitJS(a, signedOutWith("idle_timeout"), "landing on /signed-out?reason=idle_timeout")
		e.waitJS(a, `document.readyState !== 'loading' && document.body.innerText.includes('not active for a while')`,
			"the signed-out page explaining the reason")
		if got := e.sessionByID(s.ID); got.Status != lapse.StatusExpired || got.EndReason != lapse.ReasonIdleTimeout || !got.EndedAt.Equal(s.IdleExpiresAt) {
			t.Errorf("server session %s (%s) ended at %v, want expired (idle_timeout) at %v", got.Status, got.EndReason, got.EndedAt, s.IdleExpiresAt)
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
		// The user works in tab A for two idle timeouts, moving the mouse
		// every second (real input events, as the browser delivers them;
		// the client takes at most one a second); tab B is left alone. The
		// client reports activity once it is past the extend point (halfway
		// from the server's last activity to the warning): one report every
		// other second here, not one per event. Its clock runs on between
		// its readings of the server's, so on a busy machine it may find a
		// step past the extend point a moment early and report then: each
		// report must still record activity (none wasted).
		step := time.Second
		steps := int(2 * e2eTimeouts.Idle / step)
		recorded := map[int64]bool{} // the last activities the server recorded
		note := func() *lapse.Session {
			s := e.sessionByID(start.ID)
			if s.LastActiveAt.After(start.LastActiveAt) {
				recorded[s.LastActiveAt.UnixNano()] = true
			}
			return s
		}
		for i := 1; i <= steps; i++ {
			now := start.CreatedAt.Add(time.Duration(i) * step)
			// Read before the clock moves, when no report of this step can
			// have landed.
			s := note()
			e.advanceTo(now)
			e.ticked(a, now)
			e.do(a, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, float64(200+i%2*40), float64(300+i%3*20)))
			if extendPoint := s.LastActiveAt.Add(s.WarnAt.Sub(s.LastActiveAt) / 2); !now.Before(extendPoint) {
				e.waitServer(fmt.Sprintf("tab A's report of activity at %v past the extend point %v", now, extendPoint), func() bool {
					return e.sessionByID(start.ID).LastActiveAt.Equal(now)
				})
			}
			e.ticked(b, now)
			if open, _ := eval[bool](b, dialogOpen); open {
				t.Fatalf("tab B warned after %v of activity in tab A", now.Sub(start.CreatedAt))
			}
		}
		for _, tb := range []*tab{a, b} {
			if loc := e.location(tb); !strings.HasSuffix(loc, "/documents") {
				t.Errorf("tab %s at %s, want still on /documents", tb.name, loc)
			}
		}
		now := note()
		if now.Status != lapse.StatusActive || !now.IdleExpiresAt.After(start.IdleExpiresAt.Add(e2eTimeouts.Idle)) {
			t.Errorf("server session %s, idle deadline %v; want active and well past the first deadline %v", now.Status, now.IdleExpiresAt, start.IdleExpiresAt)
		}
		// A report of the last step may still be landing.
		for deadline := time.Now().Add(guard); e.served("POST /lapse/v1/session/activity") > len(recorded) && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			note()
		}
		if n := e.served("POST /lapse/v1/session/activity"); n != len(recorded) || n < 4 || n > steps/2+1 {
			t.Errorf("%d activity reports recorded %d activities in %d events of activity; want each report to record one, "+
				"at least 4 and at most one every other event (%d)", n, len(recorded), steps, steps/2+1)
		}
		evs, _ := e.app.Manager().Store().(lapse.AuditLog).QueryEvents(context.Background(),
			lapse.EventQuery{SessionID: start.ID, Types: []lapse.EventType{lapse.EventExtended}})
		if n, extends := len(evs), e.served("POST /lapse/v1/session/extend"); n != 0 || extends != 0 {
			t.Errorf("%d session.extended events and %d extends, want none: nobody asked to stay signed in", n, extends)
		}
	})

	t.Run("sign_out_in_tab_A_signs_out_tab_B", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		a := e.profile("a")
		e.signIn(a, "ada@example.com")
		b := e.sibling(a, "b")
		e.goTo(b, "/account/sessions")
		id := e.session("ada@example.com").ID
		// The clock stands still: tab B can only learn of the sign-out
		// from tab A or the server, never from a deadline of its own.
		e.do(a, chromedp.Click(chromedp.CSS(`header form[data-lapse-signout] button`)))
		e.waitJS(b, signedOutWith("logout"), "tab B landing on /signed-out?reason=logout")
		e.waitJS(a, signedOutWith("logout"), "tab A landing on /signed-out?reason=logout")
		if s := e.sessionByID(id); s.Status != lapse.StatusRevoked || s.EndReason != lapse.ReasonLogout {
			t.Errorf("server session %s (%s), want revoked (logout)", s.Status, s.EndReason)
		}
	})

	t.Run("admin_revoke_kicks_an_open_tab_out", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		a := e.profile("a")
		e.signIn(a, "ada@example.com")
		e.waitJS(a, streamOpen, "the event stream opening")
		id := e.session("ada@example.com").ID
		req, _ := http.NewRequest("DELETE", e.url+"/lapse/v1/sessions/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+e.app.APIKey())
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("admin revoke: %v %v, want 204", err, resp)
		}
		resp.Body.Close()
		// The clock stands still and the tab makes no request of its own
		// meanwhile: only the event stream can bring it the news.
		e.waitJS(a, signedOutWith("admin"), "the tab landing on /signed-out?reason=admin")
		// The location changes before the page has loaded.
		e.waitJS(a, `document.readyState !== 'loading' && document.body.innerText.includes('An administrator ended your session')`,
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
		e.do(laptop, chromedp.Click(chromedp.CSS(`.lapse-session[data-session-id="`+phoneID+`"] button[type=submit]`)))
		e.waitJS(laptop, `location.search.includes('done=ended') && document.querySelectorAll('.lapse-session').length === 1`, "the page listing only this device")
		if s := e.sessionByID(phoneID); s.Status != lapse.StatusRevoked || s.EndReason != lapse.ReasonLogout {
			t.Errorf("phone's session %s (%s), want revoked (logout)", s.Status, s.EndReason)
		}
		e.waitJS(phone, signedOutWith("logout"), "the phone's tab landing on the signed-out page")
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
	e.waitJS(a, `location.pathname === '/account/two-step'`, "billing sending to the setup of a second factor")
	e.press(a, `form[action="/account/two-step/enrol"] button[type=submit]`)
	e.waitJS(a, `!!document.getElementById('totp-secret') && document.querySelector('img.qr').naturalWidth > 0`, "the QR code and the key")
	secret, err := eval[string](a, `document.getElementById('totp-secret').textContent`)
	if err != nil {
		t.Fatal(err)
	}
	before := e.session("ada@example.com")
	e.enter(a, "#code", codeAt(t, secret, time.Now()))
	e.waitJS(a, `document.querySelectorAll('.recovery__code').length === 10`, "the ten recovery codes")
	// The code that turned the factor on was a second factor, given just
	// now: it counts as a step-up, with a new token, and billing opens
	// without asking for another.
	if s := e.session("ada@example.com"); s.AAL != 2 || !slices.Contains(s.AMR, lapse.MethodOTP) || s.TokenHash == before.TokenHash ||
		!s.AuthenticatedAt.After(before.AuthenticatedAt) {
		t.Errorf("after turning the factor on: AAL%d with %v, token rotated %t, authenticated at %v (was %v); want AAL2 with otp, a new token and a new authentication time",
			s.AAL, s.AMR, s.TokenHash != before.TokenHash, s.AuthenticatedAt, before.AuthenticatedAt)
	}
	e.press(a, "#two-step-continue")
	e.waitJS(a, `location.pathname === '/billing' && document.body.innerText.includes('Invoices')`, "reaching billing without another code")
	e.waitJS(a, `!!(window.lapse && window.lapse.state.session && window.lapse.state.session.aal === 2)`, "the client seeing the session at AAL2")
	// Stepping up again, as billing asks once the code is old: the code
	// of the next time step (the setup used this one's).
	e.goTo(a, "/stepup?next=/billing")
	e.enter(a, "#code", codeAt(t, secret, time.Now().Add(totp.Period)))
	e.waitJS(a, `location.pathname === '/billing' && document.body.innerText.includes('Invoices')`, "reaching billing after the step-up")
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
	e.waitJS(tb, expr, "focusing "+selector)
}

const iPhoneUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
