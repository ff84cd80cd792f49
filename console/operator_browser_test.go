package console_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/console"
	"github.com/lapsehq/lapse/web/webtest"
)

// operatorSignIn fills the operator form on the sign-in page open in the
// tab and waits for the sessions page.
func operatorSignIn(name, code string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS(`#name`)),
		chromedp.SendKeys(chromedp.CSS(`#name`), name),
		chromedp.SendKeys(chromedp.CSS(`#password`), opPassword),
		chromedp.SendKeys(chromedp.CSS(`#code`), code),
		chromedp.Click(chromedp.CSS(`form.signin button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.sessions`)),
	)
}

// TestBrowserOperators is the named operators' path in Chromium: an
// operator bound to acme signs in with password and TOTP code and lists
// acme's sessions only; a viewer is offered no revoke, and a revoke form
// forged into their page is refused (403) and ends nothing; a platform
// admin sees the operators page. Each page is checked on a phone and a
// laptop (webtest.CheckPage), which writes docs/img/console-operator-*
// with LAPSE_DOC_SCREENSHOTS=$PWD/docs/img.
func TestBrowserOperators(t *testing.T) {
	e := newEnv(t, withOperators(), withPolicy(demoPolicy()))
	mine := []*lapse.Session{e.create("alice@acme.example", "acme", "standard"), e.create("bob@acme.example", "acme", "sensitive")}
	theirs := []*lapse.Session{e.create("carol@globex.example", "globex", "standard"), e.create("dave@example.com", "", "standard")}
	ada := e.createOperator("ada", console.RoleOperator, "acme")
	vera := e.createOperator("vera", console.RoleViewer, "")
	root := e.createOperator("root", console.RoleAdmin, "")
	ctx := browser(t, 1280, 800)
	defer saveOnFailure(t, ctx)
	signOut := chromedp.Steps(chromedp.Click(chromedp.CSS(`form.signout button`)), chromedp.WaitVisible(chromedp.CSS(`#name`)))

	if err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/console/signin"), chromedp.WaitVisible(chromedp.CSS(`#name`))); err != nil {
		t.Fatal(err)
	}
	webtest.CheckPage(t, ctx, "console-operator-signin")
	if err := chromedp.Do(ctx, webtest.Emulate(webtest.Laptop), operatorSignIn("ada", e.code(ada))); err != nil {
		t.Fatalf("ada's sign-in: %v", err)
	}
	table, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS(`table.sessions tbody`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range mine {
		if !strings.Contains(table, s.ID) {
			t.Errorf("acme's operator does not see acme's session of %s", s.Subject)
		}
	}
	for _, s := range theirs {
		if strings.Contains(table, s.ID) {
			t.Errorf("acme's operator sees the session of %s in tenant %q", s.Subject, s.Tenant)
		}
	}
	webtest.CheckPage(t, ctx, "console-operator-tenant-sessions")

	if err := chromedp.Do(ctx, webtest.Emulate(webtest.Laptop), signOut, operatorSignIn("vera", e.code(vera))); err != nil {
		t.Fatalf("vera's sign-in: %v", err)
	}
	revokes, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('form[action$="/revoke"], a[href^="/console/revoke-subject"]').length`))
	if err != nil || revokes != 0 {
		t.Errorf("a viewer is offered %d revokes (%v); want none", revokes, err)
	}
	// A revoke form forged into the viewer's own page, with their own
	// synchronizer token: only the role can refuse it.
	forge := `(() => {
		const f = document.createElement('form');
		f.method = 'post'; f.action = '/console/sessions/` + theirs[1].ID + `/revoke';
		const c = document.querySelector('form.signout input[name=csrf]').cloneNode();
		f.appendChild(c); document.body.appendChild(f); f.submit(); return true;
	})()`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](forge)); err != nil {
		t.Fatalf("forging a revoke: %v", err)
	}
	// The error page is the only one with p.error after sign-in.
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`main p.error`))); err != nil {
		t.Fatalf("the forged revoke: %v", err)
	}
	title, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main h1`)))
	if title != "Refused: your role does not allow this" || e.status(theirs[1].ID) != lapse.StatusActive {
		t.Errorf("the forged revoke: page %q, session %s; want refused and still active", title, e.status(theirs[1].ID))
	}

	if err := chromedp.Do(ctx, webtest.Emulate(webtest.Laptop), chromedp.Navigate(e.srv.URL+"/console/sessions"), chromedp.WaitVisible(chromedp.CSS(`table.sessions`)),
		signOut, operatorSignIn("root", e.code(root)),
		chromedp.Click(chromedp.CSS(`nav a[href="/console/operators"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button.danger`)),
	); err != nil {
		t.Fatalf("root's operators page: %v", err)
	}
	webtest.CheckPage(t, ctx, "console-operators")
}
