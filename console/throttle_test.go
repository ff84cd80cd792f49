package console_test

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/console"
)

func withTrustedProxies(p ...netip.Prefix) option {
	return func(c *console.Config, _ *envOptions) { c.TrustedProxies = p }
}

// signInFrom posts key at the sign-in form with a fresh client whose
// requests say, through the trusted proxy, that they come from addr.
func (e *env) signInFrom(addr, key string) response {
	e.t.Helper()
	c := e.newClient()
	from := http.Header{"X-Forwarded-For": {addr}}
	req, _ := http.NewRequest("GET", e.srv.URL+"/console/signin", nil)
	req.Header = from.Clone()
	page := e.do(c, req)
	h := http.Header{"Origin": {e.srv.URL}, "Sec-Fetch-Site": {"same-origin"}, "X-Forwarded-For": {addr}}
	return e.postWith(c, "/console/signin", url.Values{"csrf": {csrfOf(e.t, page.body)}, "key": {key}}, h)
}

// TestSignInIsThrottledPerAddress: ten wrong keys from one address are
// refused and recorded; the eleventh attempt, even with the right key, is
// refused with 429 and Retry-After before the key is looked at; the right
// key from another address signs in; six seconds later the address has
// one attempt back.
func TestSignInIsThrottledPerAddress(t *testing.T) {
	e := newEnv(t, withTrustedProxies(netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")))
	const attacker, operator = "198.51.100.7", "203.0.113.20"
	for i := range 10 {
		if res := e.signInFrom(attacker, "lpk_guess"); res.status != http.StatusUnauthorized {
			t.Fatalf("wrong key %d: status %d, want 401", i+1, res.status)
		}
	}
	res := e.signInFrom(attacker, adminKey)
	if res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") != "6" || !strings.Contains(res.body, "Too many failed sign-ins") {
		t.Fatalf("the right key after ten wrong ones: %d, Retry-After %q; want 429 with Retry-After 6\n%s", res.status, res.header.Get("Retry-After"), res.body)
	}
	if res := e.signInFrom(operator, adminKey); res.status != http.StatusSeeOther {
		t.Fatalf("the right key from another address: %d, want 303 (signed in)", res.status)
	}
	e.clock.Advance(6 * time.Second)
	if res := e.signInFrom(attacker, adminKey); res.status != http.StatusSeeOther {
		t.Fatalf("the right key once the wait was over: %d, want 303", res.status)
	}
	evs, err := e.store.QueryEvents(context.Background(), lapse.EventQuery{Types: []lapse.EventType{lapse.EventKeyRejected}})
	if err != nil || len(evs) != 10 {
		t.Fatalf("key_rejected events = %d, %v; want 10 (the refused attempts are not looked at)", len(evs), err)
	}
	if ev := evs[0]; ev.Actor != console.Actor || ev.IP != attacker || ev.Reason != lapse.ReasonInvalidKey || ev.SessionID != "" {
		t.Errorf("event = %+v, want actor console, the attacker's address, invalid_key, no session", ev)
	}
	ss, _ := e.store.ListSessions(context.Background(), lapse.SessionQuery{Reserved: true, Now: e.clock.Now()})
	if len(ss) != 2 || ss[1].IP != operator {
		t.Errorf("console sessions = %d, the first from %q; want 2, the first from the operator's forwarded address", len(ss), ss[len(ss)-1].IP)
	}
}
