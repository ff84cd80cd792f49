package config_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/lapsehq/lapse/config"
)

func TestSecurityKeys(t *testing.T) {
	f, err := config.Parse("x.yaml", []byte(`
webhook_allow_networks: [10.20.0.0/16, "fd00::/8"]
trusted_proxies: [192.0.2.0/24]
event_streams: {per_session: 2, per_node: 50}
`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("fd00::/8")}; !slices.Equal(f.WebhookAllowNetworks, want) {
		t.Errorf("webhook_allow_networks = %v, want %v", f.WebhookAllowNetworks, want)
	}
	if len(f.TrustedProxies) != 1 || f.TrustedProxies[0] != netip.MustParsePrefix("192.0.2.0/24") {
		t.Errorf("trusted_proxies = %v", f.TrustedProxies)
	}
	if f.EventStreams != (config.StreamLimits{PerSession: 2, PerNode: 50}) {
		t.Errorf("event_streams = %+v", f.EventStreams)
	}
	d, _ := config.Parse("x.yaml", nil)
	if d.EventStreams != config.DefaultStreamLimits || len(d.WebhookAllowNetworks) != 0 || len(d.TrustedProxies) != 0 {
		t.Errorf("defaults: streams %+v, allow %v, proxies %v", d.EventStreams, d.WebhookAllowNetworks, d.TrustedProxies)
	}
	for _, c := range []struct{ yaml, want string }{
		{"webhook_allow_networks: [10.0.0.0]\n", `x.yaml:1: webhook_allow_networks: "10.0.0.0" is not a network in CIDR notation`},
		{"trusted_proxies: [10.0.0.1/8]\n", `did you mean 10.0.0.0/8?`},
		{"event_streams: {per_session: 0}\n", `x.yaml:1: event_streams.per_session: must be at least 1`},
		{"event_streams: {per_session: 5, per_node: 4}\n", `per_session (5) is more than per_node (4)`},
		{"event_streams: {per_tab: 5}\n", `event_streams.per_tab: is not a known key`},
	} {
		if _, err := config.Parse("x.yaml", []byte(c.yaml)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one with %q", c.yaml, err, c.want)
		}
	}
}

// TestSecurityExample reads docs/examples/security.yaml, the file
// docs/security.md shows.
func TestSecurityExample(t *testing.T) {
	f, err := config.Load("../docs/examples/security.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.TrustedProxies) != 1 || len(f.WebhookAllowNetworks) != 1 || f.EventStreams != config.DefaultStreamLimits ||
		len(f.Webhooks) != 1 || !slices.Contains(f.Webhooks[0].Events, "security.key_rejected") {
		t.Errorf("the example reads as %+v", f)
	}
}
