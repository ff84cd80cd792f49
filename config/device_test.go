package config_test

import (
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/config"
)

// TestDeviceBindingExample reads docs/examples/device-binding.yaml, the
// file docs/device-binding.md shows.
func TestDeviceBindingExample(t *testing.T) {
	f, err := config.Load("../docs/examples/device-binding.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for tier, want := range map[string]lapse.DeviceRules{
		"standard":  {Mode: lapse.DeviceBindingPreferred, OnTheft: lapse.TheftRecord, BindGrace: lapse.DefaultBindGrace, BoundCookieLifetime: 10 * time.Minute},
		"sensitive": {Mode: lapse.DeviceBindingRequired, OnTheft: lapse.TheftRevoke, BindGrace: 30 * time.Second, BoundCookieLifetime: 5 * time.Minute},
	} {
		if got := f.Policy.Tiers[tier].Device(); got != want {
			t.Errorf("tier %s: %+v, want %+v", tier, got, want)
		}
	}
}
