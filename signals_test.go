package lapse_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/throttle"
)

const (
	firefoxWin = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
	firefoxNew = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:134.0) Gecko/20100101 Firefox/134.0"
	chromeWin  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	chromeAnd  = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
	safariIOS  = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
	edgeWin    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
)

// signalPolicy has a tier for each action: "standard" keeps the
// defaults (allow, record), "stepup" asks for a step-up on drift,
// "strict" revokes on drift and on reuse, with a /16 for IPv4.
func signalPolicy(t testing.TB) *lapse.Policy {
	t.Helper()
	base := lapse.Tier{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour, NewDeviceWindow: 24 * time.Hour}
	stepup, strict := base, base
	stepup.ClientDrift = lapse.DriftStepUp
	strict.ClientDrift, strict.OnTokenReuse, strict.DriftPrefixV4 = lapse.DriftRevoke, lapse.ReuseRevoke, 16
	p := &lapse.Policy{DefaultTier: "standard", Tiers: map[string]lapse.Tier{"standard": base, "stepup": stepup, "strict": strict}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

type signalFixture struct {
	m     *lapse.Manager
	clock *lapsetest.Clock
	store *lapsetest.Store
	guess *throttle.Guessing
}

func newSignalFixture(t testing.TB) *signalFixture {
	t.Helper()
	clock := lapsetest.NewClock(time.Time{})
	g := throttle.NewGuessing(throttle.GuessConfig{PerSource: 3, Overall: 5, BlockFor: 10 * time.Minute, Clock: clock})
	m, _, st := lapsetest.NewManager(t, lapse.Config{Clock: clock, Policy: signalPolicy(t), Guessing: g})
	return &signalFixture{m: m, clock: clock, store: st, guess: g}
}

func from(ip, ua string) lapse.Client {
	return lapse.Client{IP: netip.MustParseAddr(ip), UserAgent: ua}
}

// events returns the events of the given type recorded so far.
func (f *signalFixture) events(t *testing.T, typ lapse.EventType) []lapse.Event {
	t.Helper()
	evs, err := f.store.QueryEvents(ctx, lapse.EventQuery{Types: []lapse.EventType{typ}})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func (f *signalFixture) create(t *testing.T, tier, subject string, c lapse.Client) lapse.Token {
	t.Helper()
	tok, _, err := f.m.Create(ctx, lapse.CreateParams{Subject: subject, Tier: tier, IP: c.IP.String(), UserAgent: c.UserAgent})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestSessionDrift(t *testing.T) {
	tier := lapse.Tier{IdleTimeout: time.Minute, AbsoluteTimeout: time.Hour}
	wide := tier
	wide.DriftPrefixV4, wide.DriftPrefixV6 = 16, 32
	for _, c := range []struct {
		name       string
		tier       lapse.Tier
		ip, ua     string // the session's
		client     lapse.Client
		want       lapse.Drift
		wantReason lapse.Reason
	}{
		{"same_client", tier, "192.0.2.10", firefoxWin, from("192.0.2.10", firefoxWin), lapse.Drift{}, ""},
		{"same_ipv4_24_is_no_drift", tier, "192.0.2.10", firefoxWin, from("192.0.2.250", firefoxWin), lapse.Drift{}, ""},
		{"next_ipv4_24_is_network_drift", tier, "192.0.2.10", firefoxWin, from("192.0.3.10", firefoxWin), lapse.Drift{Network: true}, lapse.ReasonNetworkChanged},
		{"ipv4_16_setting_keeps_it", wide, "192.0.2.10", firefoxWin, from("192.0.3.10", firefoxWin), lapse.Drift{}, ""},
		{"same_ipv6_48_is_no_drift", tier, "2001:db8:1::1", firefoxWin, from("2001:db8:1:ffff::2", firefoxWin), lapse.Drift{}, ""},
		{"next_ipv6_48_is_network_drift", tier, "2001:db8:1::1", firefoxWin, from("2001:db8:2::1", firefoxWin), lapse.Drift{Network: true}, lapse.ReasonNetworkChanged},
		{"ipv6_32_setting_keeps_it", wide, "2001:db8:1::1", firefoxWin, from("2001:db8:2::1", firefoxWin), lapse.Drift{}, ""},
		{"ipv4_to_ipv6_is_network_drift", tier, "192.0.2.10", firefoxWin, from("2001:db8::1", firefoxWin), lapse.Drift{Network: true}, lapse.ReasonNetworkChanged},
		{"browser_major_version", tier, "192.0.2.10", firefoxWin, from("192.0.2.10", firefoxNew), lapse.Drift{Browser: true}, lapse.ReasonBrowserChanged},
		{"browser_family", tier, "192.0.2.10", chromeWin, from("192.0.2.10", edgeWin), lapse.Drift{Browser: true}, lapse.ReasonBrowserChanged},
		{"platform", tier, "192.0.2.10", chromeWin, from("192.0.2.10", chromeAnd), lapse.Drift{Platform: true}, lapse.ReasonPlatformChanged},
		{"platform_outweighs_network", tier, "192.0.2.10", chromeWin, from("203.0.113.1", chromeAnd), lapse.Drift{Network: true, Platform: true}, lapse.ReasonPlatformChanged},
		{"unknown_client_is_no_drift", tier, "192.0.2.10", firefoxWin, lapse.Client{}, lapse.Drift{}, ""},
		{"session_without_client_is_no_drift", tier, "", "", from("203.0.113.1", chromeAnd), lapse.Drift{}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &lapse.Session{IP: c.ip, UserAgent: c.ua, Policy: c.tier}
			got := s.Drift(c.client)
			if got != c.want || got.Reason() != c.wantReason {
				t.Errorf("Drift = %+v (%q), want %+v (%q)", got, got.Reason(), c.want, c.wantReason)
			}
		})
	}
}

func TestParseUserAgent(t *testing.T) {
	for ua, want := range map[string]lapse.Device{
		firefoxWin: {Browser: "Firefox", Major: "133", Platform: "Windows"},
		chromeAnd:  {Browser: "Chrome", Major: "131", Platform: "Android"},
		safariIOS:  {Browser: "Safari", Major: "18", Platform: "iOS"},
		edgeWin:    {Browser: "Edge", Major: "131", Platform: "Windows"},
		"curl/8.5": {},
		"":         {},
	} {
		if got := lapse.ParseUserAgent(ua); got != want {
			t.Errorf("ParseUserAgent(%q) = %+v, want %+v", ua, got, want)
		}
	}
	if got := lapse.ParseUserAgent(safariIOS).String(); got != "Safari 18 on iOS" {
		t.Errorf("String = %q, want %q", got, "Safari 18 on iOS")
	}
}

func TestDriftAllowRecordsOnceAndNeverSignsOut(t *testing.T) {
	f := newSignalFixture(t)
	home := from("192.0.2.10", chromeAnd)
	tok := f.create(t, "standard", "alice", home)
	// The phone moves to a mobile network, then to another, then back.
	for _, c := range []lapse.Client{from("192.0.2.77", chromeAnd), from("198.51.100.4", chromeAnd), from("198.51.100.4", chromeAnd), from("203.0.113.9", chromeAnd), home} {
		f.clock.Advance(time.Minute)
		if _, err := f.m.Verify(lapse.WithClient(ctx, c), tok.Reveal(), lapse.VerifyOptions{}); err != nil {
			t.Fatalf("Verify from %v on the default tier: %v; want it to pass", c.IP, err)
		}
	}
	evs := f.events(t, lapse.EventClientChanged)
	if len(evs) != 2 || evs[0].IP != "198.51.100.4" || evs[1].IP != "203.0.113.9" || evs[0].Reason != lapse.ReasonNetworkChanged {
		t.Errorf("client_changed events %+v; want one for each new network (198.51.100.4, 203.0.113.9), reason network_changed", evs)
	}
}

func TestDriftStepUpAsksThenAcceptsTheNewClient(t *testing.T) {
	f := newSignalFixture(t)
	laptop, phone := from("192.0.2.10", firefoxWin), from("198.51.100.4", chromeAnd)
	tok := f.create(t, "stepup", "alice", laptop)
	if _, err := f.m.Verify(lapse.WithClient(ctx, laptop), tok.Reveal(), lapse.VerifyOptions{}); err != nil {
		t.Fatalf("Verify from the session's own client: %v", err)
	}
	_, err := f.m.Verify(lapse.WithClient(ctx, phone), tok.Reveal(), lapse.VerifyOptions{})
	var le *lapse.Error
	if lapse.ErrorCode(err) != lapse.CodeStepUpRequired || !asError(err, &le) || le.Reason != lapse.ReasonPlatformChanged {
		t.Fatalf("Verify from another platform on a step_up tier: %v; want step_up_required with reason platform_changed", err)
	}
	if _, err := f.m.Current(lapse.WithClient(ctx, phone), tok.Reveal()); err != nil {
		t.Errorf("Current from the new client: %v; the step-up page must still see the session", err)
	}
	newTok, _, err := f.m.StepUp(lapse.WithClient(ctx, phone), tok.Reveal(), 1, []string{"pwd"}, lapse.ActorSubject)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Verify(lapse.WithClient(ctx, phone), newTok.Reveal(), lapse.VerifyOptions{}); err != nil {
		t.Errorf("Verify from the client that stepped up: %v; want it to pass", err)
	}
	_, err = f.m.Verify(lapse.WithClient(ctx, laptop), newTok.Reveal(), lapse.VerifyOptions{})
	wantCode(t, "Verify from the old client after the step-up", err, lapse.CodeStepUpRequired)
}

func TestDriftRevokeEndsTheSessionForTheft(t *testing.T) {
	f := newSignalFixture(t)
	tok := f.create(t, "strict", "alice", from("192.0.2.10", firefoxWin))
	if _, err := f.m.Verify(lapse.WithClient(ctx, from("192.0.200.1", firefoxWin)), tok.Reveal(), lapse.VerifyOptions{}); err != nil {
		t.Fatalf("Verify from the same /16 on a tier with drift_prefix_v4 16: %v", err)
	}
	_, err := f.m.Verify(lapse.WithClient(ctx, from("203.0.113.9", firefoxWin)), tok.Reveal(), lapse.VerifyOptions{})
	wantTheft(t, "Verify from another network on a revoke tier", err)
	_, err = f.m.Verify(lapse.WithClient(ctx, from("192.0.2.10", firefoxWin)), tok.Reveal(), lapse.VerifyOptions{})
	wantTheft(t, "Verify from the owner afterwards", err)
	if evs := f.events(t, lapse.EventRevoked); len(evs) != 1 || evs[0].Reason != lapse.ReasonTheft {
		t.Errorf("revoked events %+v; want one with reason theft", evs)
	}
}

func TestTokenReuseAfterGrace(t *testing.T) {
	for _, c := range []struct {
		tier      string
		wantAfter lapse.Code // of the new token once the old one came back
	}{
		{"standard", ""},
		{"strict", lapse.CodeSessionRevoked},
	} {
		t.Run(c.tier, func(t *testing.T) {
			f := newSignalFixture(t)
			client := from("192.0.2.10", firefoxWin)
			cctx := lapse.WithClient(ctx, client)
			old := f.create(t, c.tier, "alice", client)
			tok, _, err := f.m.StepUp(cctx, old.Reveal(), 1, []string{"pwd"}, lapse.ActorSubject)
			if err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(lapse.RotateGrace - time.Nanosecond)
			if _, err := f.m.Verify(cctx, old.Reveal(), lapse.VerifyOptions{}); err != nil {
				t.Fatalf("the replaced token within its grace: %v", err)
			}
			if n := len(f.events(t, lapse.EventTokenReused)); n != 0 {
				t.Errorf("%d token_reused events within the grace, want 0", n)
			}
			f.clock.Advance(time.Nanosecond)
			for range 2 {
				_, err = f.m.Verify(lapse.WithClient(ctx, from("203.0.113.9", chromeAnd)), old.Reveal(), lapse.VerifyOptions{})
				if c.wantAfter == "" {
					wantCode(t, "the replaced token after its grace", err, lapse.CodeSessionNotFound)
				}
			}
			_, err = f.m.Verify(cctx, tok.Reveal(), lapse.VerifyOptions{})
			if c.wantAfter == "" {
				wantCode(t, "the current token", err, "")
				if evs := f.events(t, lapse.EventTokenReused); len(evs) != 1 || evs[0].IP != "203.0.113.9" {
					t.Errorf("token_reused events %+v; want one, from 203.0.113.9", evs)
				}
				return
			}
			wantTheft(t, "the current token once the replaced one came back", err)
		})
	}
}

func TestNewDeviceWithinTheWindow(t *testing.T) {
	f := newSignalFixture(t)
	laptop := from("192.0.2.10", firefoxWin)
	f.create(t, "standard", "alice", laptop)
	if n := len(f.events(t, lapse.EventNewDevice)); n != 1 {
		t.Fatalf("%d new_device events for alice's first session, want 1", n)
	}
	f.clock.Advance(time.Hour)
	f.create(t, "standard", "alice", from("192.0.2.99", firefoxWin)) // same /24, same browser
	f.create(t, "standard", "bob", from("192.0.2.99", firefoxWin))   // bob's first
	f.create(t, "standard", "alice", from("192.0.2.10", chromeWin))  // another browser
	evs := f.events(t, lapse.EventNewDevice)
	if len(evs) != 3 || evs[1].Subject != "bob" || evs[2].Subject != "alice" || evs[2].IP != "192.0.2.10" {
		t.Fatalf("new_device events %+v; want alice's first, bob's first, alice's Chrome", evs)
	}
	// A day after alice's sessions were last active, her laptop is new again.
	f.clock.Advance(24*time.Hour + time.Nanosecond)
	f.create(t, "standard", "alice", laptop)
	if n := len(f.events(t, lapse.EventNewDevice)); n != 4 {
		t.Errorf("%d new_device events after the window passed, want 4", n)
	}
	sig, err := f.m.Signals(ctx, "alice", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range sig {
		if s.NewDevice {
			n++
		}
	}
	if n != 3 {
		t.Errorf("Signals marks %d of alice's sessions as new devices, want 3", n)
	}
}

func TestTokenGuessingRefusesTheSourceOnly(t *testing.T) {
	f := newSignalFixture(t)
	victim := from("198.51.100.4", firefoxWin)
	tok := f.create(t, "standard", "alice", victim)
	guesser := lapse.WithClient(ctx, from("203.0.113.9", chromeWin))
	for i := range 3 {
		_, err := f.m.Verify(guesser, "lps_not-a-token", lapse.VerifyOptions{})
		wantCode(t, "a guess within the limit", err, lapse.CodeSessionNotFound)
		if i == 1 {
			_, err = f.m.Verify(guesser, lapse.NewToken().Reveal(), lapse.VerifyOptions{}) // well-formed, unknown
			wantCode(t, "an unknown token", err, lapse.CodeSessionNotFound)
		}
	}
	if n := len(f.events(t, lapse.EventTokenGuessing)); n != 1 {
		t.Fatalf("%d token_guessing events after 4 misses with a limit of 3, want 1", n)
	}
	_, err := f.m.Verify(guesser, tok.Reveal(), lapse.VerifyOptions{})
	var le *lapse.Error
	if lapse.ErrorCode(err) != lapse.CodeTooManyAttempts || !asError(err, &le) || le.RetryAfter <= 0 || le.RetryAfter > 10*time.Minute {
		t.Fatalf("a valid token from the refused source: %v; want too_many_attempts with a Retry-After up to 10m", err)
	}
	if _, err := f.m.Verify(lapse.WithClient(ctx, victim), tok.Reveal(), lapse.VerifyOptions{}); err != nil {
		t.Errorf("a valid token from another source: %v; want it to pass", err)
	}
	f.clock.Advance(10 * time.Minute)
	if _, err := f.m.Verify(guesser, tok.Reveal(), lapse.VerifyOptions{}); lapse.ErrorCode(err) == lapse.CodeTooManyAttempts {
		t.Errorf("the source after block_for: %v; want it heard again", err)
	}
	if evs := f.events(t, lapse.EventTokenGuessing); len(evs) != 1 || evs[0].IP != "203.0.113.9" || evs[0].Reason != lapse.ReasonGuessingSource {
		t.Errorf("token_guessing events %+v; want one per_source from 203.0.113.9", evs)
	}
	misses, refused, episodes := f.guess.Counts()
	if misses != 4 || refused != 1 || episodes != 1 {
		t.Errorf("Counts = %d misses, %d refused, %d episodes; want 4, 1, 1", misses, refused, episodes)
	}
}

func TestTokenGuessingOverallIsRecordedNotRefused(t *testing.T) {
	f := newSignalFixture(t)
	for i := range 6 { // Overall is 5; each source stays within its 3
		c := lapse.WithClient(ctx, lapse.Client{IP: netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})})
		_, err := f.m.Verify(c, "lps_guess", lapse.VerifyOptions{})
		wantCode(t, "a guess", err, lapse.CodeSessionNotFound)
	}
	evs := f.events(t, lapse.EventTokenGuessing)
	if len(evs) != 1 || evs[0].Reason != lapse.ReasonGuessingOverall || evs[0].IP != "" {
		t.Errorf("token_guessing events %+v; want one overall, naming no address", evs)
	}
}

func TestSignalSettingsValidate(t *testing.T) {
	bad := lapse.Tier{IdleTimeout: time.Minute, AbsoluteTimeout: time.Hour,
		ClientDrift: "block", OnTokenReuse: "ignore", DriftPrefixV4: 33, DriftPrefixV6: 129, NewDeviceWindow: -1}
	p := &lapse.Policy{DefaultTier: "a", Tiers: map[string]lapse.Tier{"a": bad}}
	err := p.Validate()
	var pe *lapse.PolicyError
	if !asError(err, &pe) {
		t.Fatalf("Validate = %v, want a PolicyError", err)
	}
	got := map[string]bool{}
	for _, fe := range pe.Problems {
		got[fe.Path] = true
	}
	for _, k := range []string{"client_drift", "on_token_reuse", "drift_prefix_v4", "drift_prefix_v6", "new_device_window"} {
		if !got["tiers.a."+k] {
			t.Errorf("no problem at tiers.a.%s in %v", k, err)
		}
	}
}

func wantTheft(t *testing.T, what string, err error) {
	t.Helper()
	var le *lapse.Error
	if lapse.ErrorCode(err) != lapse.CodeSessionRevoked || !asError(err, &le) || le.Reason != lapse.ReasonTheft {
		t.Errorf("%s: %v; want session_revoked with reason theft", what, err)
	}
}

func asError[T any](err error, target *T) bool { return errors.As(err, target) }

// FuzzParseUserAgent: any header parses without a panic into known
// browser and platform names, a major version of at most 6 digits, and
// a session compared with itself never drifts.
func FuzzParseUserAgent(f *testing.F) {
	for _, ua := range []string{firefoxWin, chromeAnd, safariIOS, edgeWin, "", "Version/", "Chrome/99999999999", "Edg/\xff"} {
		f.Add(ua)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		d := lapse.ParseUserAgent(ua)
		if len(d.Major) > 6 || d.Browser == "" && d.Major != "" {
			t.Fatalf("ParseUserAgent(%q) = %+v", ua, d)
		}
		s := &lapse.Session{IP: "192.0.2.1", UserAgent: ua}
		if got := s.Drift(lapse.Client{IP: netip.MustParseAddr("192.0.2.1"), UserAgent: ua}); got.Any() {
			t.Fatalf("a session drifts from its own client: %+v", got)
		}
	})
}
