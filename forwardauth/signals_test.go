package forwardauth

import (
	"context"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
)

// TestClientDriftBehindTheProxy: the gateway judges the browser behind
// the proxy (X-Forwarded-For, the User-Agent the proxy passed on), and
// a proxy that names no client checks nothing.
func TestClientDriftBehindTheProxy(t *testing.T) {
	const ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
	pol := &lapse.Policy{DefaultTier: "t", Tiers: map[string]lapse.Tier{
		"t": {IdleTimeout: time.Hour, AbsoluteTimeout: 12 * time.Hour, ClientDrift: lapse.DriftRevoke}}}
	m, _, _ := lapsetest.NewManager(t, lapse.Config{Policy: pol})
	f := newFixture(t, func(c *Config) { c.Manager, c.Rules = m, nil })
	f.m = m
	tok, s := f.session(lapse.CreateParams{IP: "192.0.2.10", UserAgent: ua})
	for _, c := range []struct {
		name string
		hdr  []string
		want int
	}{
		{"same_network", []string{"X-Forwarded-For", "192.0.2.99", "User-Agent", ua}, 200},
		{"no_client_named", nil, 200},
		{"another_network", []string{"X-Forwarded-For", "203.0.113.9", "User-Agent", ua}, 401},
	} {
		if w := f.ask(authRequest, "/docs/1", tok, c.hdr...); w.Code != c.want {
			t.Errorf("%s: status %d, want %d: %s", c.name, w.Code, c.want, w.Body)
		}
	}
	got, err := m.Session(context.Background(), s.ID)
	if err != nil || got.Status != lapse.StatusRevoked || got.EndReason != lapse.ReasonTheft {
		t.Errorf("session %s %s (%v), want revoked for theft", got.Status, got.EndReason, err)
	}
}
