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
`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("fd00::/8")}; !slices.Equal(f.WebhookAllowNetworks, want) {
		t.Errorf("webhook_allow_networks = %v, want %v", f.WebhookAllowNetworks, want)
	}
	if d, _ := config.Parse("x.yaml", nil); len(d.WebhookAllowNetworks) != 0 {
		t.Errorf("default webhook_allow_networks = %v, want none", d.WebhookAllowNetworks)
	}
	for _, c := range []struct{ yaml, want string }{
		{"webhook_allow_networks: [10.0.0.0]\n", `x.yaml:1: webhook_allow_networks: "10.0.0.0" is not a network in CIDR notation`},
		{"webhook_allow_networks: [10.0.0.1/8]\n", `did you mean 10.0.0.0/8?`},
	} {
		if _, err := config.Parse("x.yaml", []byte(c.yaml)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one with %q", c.yaml, err, c.want)
		}
	}
}
