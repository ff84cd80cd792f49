package demo_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/demo"
	"github.com/lapsehq/lapse/lapsetest"
)

// virtualAuthenticator gives tab tb's browser a platform authenticator
// that Chromium emulates (DevTools' WebAuthn domain): CTAP 2.1 over the
// internal transport, with discoverable credentials and user
// verification that succeeds, and the user's presence given at once. The
// UI stays off: nothing waits for a person. It returns the
// authenticator's id.
func (e *env) virtualAuthenticator(tb *tab) webauthn.AuthenticatorID {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, guard)
	defer cancel()
	off := false
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{EnableUI: &off}); err != nil {
		e.t.Fatalf("tab %s: WebAuthn.enable: %v", tb.name, err)
	}
	res, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true,
		// Sent as false unless set: the presence test would then never end.
		AutomaticPresenceSimulation: true,
	}})
	if err != nil {
		e.t.Fatalf("tab %s: WebAuthn.addVirtualAuthenticator: %v", tb.name, err)
	}
	return res.AuthenticatorID
}

// credentials returns what the virtual authenticator holds.
func (e *env) credentials(tb *tab, id webauthn.AuthenticatorID) []*webauthn.Credential {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, guard)
	defer cancel()
	res, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
	if err != nil {
		e.t.Fatalf("tab %s: WebAuthn.getCredentials: %v", tb.name, err)
	}
	return res.Credentials
}

// TestBrowserPasskey adds a passkey in the demo with Chromium's virtual
// authenticator, then steps up with it to reach Billing, as a person
// would with their laptop's fingerprint reader. It runs on the fake
// clock: the step-up is asked for when the billing page's max_auth_age
// has passed, and not before.
func TestBrowserPasskey(t *testing.T) {
	browser(t)
	t.Parallel()
	// Idle and warning well past the jumps of the clock below.
	times := e2eTimeouts
	times.Idle, times.Warn, times.Absolute = 10*time.Minute, time.Minute, time.Hour
	clock := lapsetest.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	e := newEnvConfig(t, demo.Config{Timeouts: times, Clock: clock})
	e.clock = clock
	e.url = e.localhost // passkeys need a domain name: localhost, a secure context over http
	a := e.profile("a")
	auth := e.virtualAuthenticator(a)
	e.signIn(a, "ada@example.com")
	before := e.session("ada@example.com")

	// Billing sends a user without a factor to the security page, which
	// offers a passkey; the passkeys page adds one.
	e.do(a, chromedp.Navigate(e.url+"/billing"))
	e.waitJS(a, `location.pathname === '/account/two-step' && !!document.getElementById('manage-passkeys')`, "billing sending to the security page, which offers a passkey")
	e.press(a, "#manage-passkeys")
	e.waitJS(a, `location.pathname === '/account/passkeys' && !document.querySelector('form[data-lapse-passkey=register]').hidden`,
		"the passkeys page with its add form shown (the browser has passkeys)")
	e.enter(a, "#lapse-passkey-name", "Laptop")
	e.waitJS(a, `new URLSearchParams(location.search).get('done') === 'added' && document.querySelectorAll('.lapse-passkey').length === 1`,
		"the page listing the new passkey")
	keys, err := e.app.Manager().Store().(lapse.FactorStore).Passkeys(context.Background(), "ada@example.com")
	if err != nil || len(keys) != 1 || keys[0].Name != "Laptop" || keys[0].BackupEligible {
		t.Fatalf("ada's passkeys: %+v (%v); want one, named Laptop, device-bound", keys, err)
	}
	if creds := e.credentials(a, auth); len(creds) != 1 || string(creds[0].CredentialID) != string(keys[0].CredentialID) || !creds[0].IsResidentCredential {
		t.Fatalf("the virtual authenticator holds %d credentials; want the one lapse stored, discoverable", len(creds))
	}
	if s := e.session("ada@example.com"); s.AAL != 1 || s.TokenHash != before.TokenHash {
		t.Errorf("adding a passkey changed the session: AAL%d, token rotated %t; want AAL1, the same token", s.AAL, s.TokenHash != before.TokenHash)
	}

	// Billing asks for the step-up; the page offers the passkey.
	e.goTo(a, "/billing")
	e.waitJS(a, `location.pathname === '/stepup' && !document.getElementById('use-passkey').hidden && !document.getElementById('code')`,
		"the step-up page offering the passkey (and no code form: ada has no authenticator app)")
	e.press(a, "#use-passkey")
	e.waitJS(a, `location.pathname === '/billing' && document.body.innerText.includes('Invoices')`, "reaching billing after the passkey step-up")
	e.waitJS(a, `!!(window.lapse && window.lapse.state.session && window.lapse.state.session.aal === 2)`, "the client seeing the session at AAL2")
	up := e.session("ada@example.com")
	if up.ID != before.ID || up.AAL != 2 || !slices.Equal(up.AMR, []string{"pwd", "hwk", "user"}) || up.TokenHash == before.TokenHash ||
		!up.AuthenticatedAt.Equal(e.clock.Now()) {
		t.Errorf("after the step-up: %s AAL%d %v, token rotated %t, authenticated at %v; want the same session at AAL2 [pwd hwk user], a new token, now (%v)",
			up.ID, up.AAL, up.AMR, up.TokenHash != before.TokenHash, up.AuthenticatedAt, e.clock.Now())
	}
	evs, err := e.app.Manager().Store().(lapse.AuditLog).QueryEvents(context.Background(),
		lapse.EventQuery{SessionID: before.ID, Types: []lapse.EventType{lapse.EventSteppedUp, lapse.EventRotated}})
	if err != nil || len(evs) != 2 || evs[0].Type != lapse.EventSteppedUp || evs[1].Type != lapse.EventRotated {
		t.Errorf("events of the step-up: %d (%v), want session.stepped_up then session.rotated", len(evs), err)
	}
	if keys, _ := e.app.Manager().Store().(lapse.FactorStore).Passkeys(context.Background(), "ada@example.com"); keys[0].SignCount == 0 || !keys[0].LastUsedAt.Equal(e.clock.Now()) {
		t.Errorf("after the step-up the passkey has counter %d, last used %v; want a counter past 0, used now", keys[0].SignCount, keys[0].LastUsedAt)
	}

	// The second factor is good for the billing page's max_auth_age: a
	// millisecond before it, billing opens; at it, billing asks again.
	due := up.AuthenticatedAt.Add(times.AuthAge)
	e.advanceTo(due.Add(-time.Millisecond))
	e.goTo(a, "/billing")
	if loc := e.location(a); loc != e.url+"/billing" {
		t.Errorf("a millisecond before max_auth_age billing sent the tab to %s", loc)
	}
	e.advanceTo(due)
	e.do(a, chromedp.Navigate(e.url+"/billing"))
	e.waitJS(a, `location.pathname === '/stepup' && !document.getElementById('use-passkey').hidden`, "billing asking for the passkey again at max_auth_age")
	e.press(a, "#use-passkey")
	e.waitJS(a, `location.pathname === '/billing' && document.body.innerText.includes('Invoices')`, "reaching billing after the second passkey step-up")
}
