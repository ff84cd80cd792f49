package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/config"
)

const example = `
default_tier: standard
tiers:
  standard:  {idle_timeout: 30m, absolute_timeout: 12h, warn_before: 2m}
  sensitive: {idle_timeout: 5m,  absolute_timeout: 1h,  warn_before: 1m,
              require_aal: 2, max_auth_age: 15m, max_sessions: 3}
tenants:
  acme: {tiers: {standard: {idle_timeout: 10m}}}
`

func TestLoadIssueExample(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lapse.yaml")
	os.WriteFile(path, []byte(example), 0o600)
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	_, tier, err := f.Policy.Tier("acme", "standard")
	if err != nil || tier.IdleTimeout != 10*time.Minute || tier.AbsoluteTimeout != 12*time.Hour {
		t.Errorf("acme standard = %+v, %v; want idle 10m, absolute 12h", tier, err)
	}
	_, s, _ := f.Policy.Tier("", "sensitive")
	if s.RequireAAL != 2 || s.MaxAuthAge != 15*time.Minute || s.MaxSessions != 3 {
		t.Errorf("sensitive = %+v", s)
	}
	if f.Listen != "127.0.0.1:8080" || f.Store != "sqlite" || f.PropagationBound != 100*time.Millisecond {
		t.Errorf("defaults not kept: listen %q store %q propagation bound %v", f.Listen, f.Store, f.PropagationBound)
	}
}

func TestParseErrorsNameFileLineAndKey(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"bad_duration", "default_tier: a\ntiers:\n  a: {idle_timeout: 5x, absolute_timeout: 1h}\n",
			[]string{"lapse.yaml:3", "tiers.a.idle_timeout", `"5x" is not a duration`}},
		{"unknown_key", "default_tier: a\ntiers:\n  a: {idle_timeout: 5m, absolute_timeout: 1h, idle: 3m}\n",
			[]string{"lapse.yaml:3", "tiers.a.idle", "not a known key"}},
		{"unknown_top_level_key", "listn: x\n", []string{"lapse.yaml:1", "listn", "not a known key"}},
		{"policy_rule_line", "default_tier: a\ntiers:\n  a:\n    idle_timeout: 2h\n    absolute_timeout: 1h\n",
			[]string{"lapse.yaml:4", "tiers.a.idle_timeout", "longer than absolute_timeout"}},
		{"tenant_loosens", "default_tier: a\ntiers:\n  a: {idle_timeout: 5m, absolute_timeout: 1h}\ntenants:\n  acme:\n    tiers:\n      a: {idle_timeout: 6m}\n",
			[]string{"lapse.yaml:7", "tenants.acme.tiers.a.idle_timeout", "looser than the platform allows"}},
		{"missing_default_tier", "listen: 127.0.0.1:8080\ntiers:\n  a: {idle_timeout: 5m, absolute_timeout: 1h}\n  b: {idle_timeout: 5m, absolute_timeout: 1h}\n",
			[]string{"lapse.yaml:2", "default_tier", `none named "standard"`, `"default_tier: a"`, "one of a, b"}},
		{"not_yaml", "tiers: [unclosed\n", []string{"lapse.yaml", "not valid YAML"}},
		{"propagation_bound_too_short", "propagation_bound: 1ms\n", []string{"lapse.yaml:1", "propagation_bound", "between 10ms and 1m"}},
		{"wrong_type", "default_tier: a\ntiers:\n  a: {idle_timeout: [1], absolute_timeout: 1h}\n", []string{"tiers.a.idle_timeout", "must be a duration"}},
		{"negative_count", "default_tier: a\ntiers:\n  a: {idle_timeout: 5m, absolute_timeout: 1h, max_sessions: -1}\n", []string{"tiers.a.max_sessions", "whole number"}},
		{"duplicate_key", "default_tier: a\ndefault_tier: b\n", []string{"default_tier", "set twice"}},
		{"device_binding_unknown", "default_tier: a\ntiers:\n  a:\n    idle_timeout: 5m\n    absolute_timeout: 1h\n    device_binding: always\n",
			[]string{"lapse.yaml:6", "tiers.a.device_binding", "off, preferred or required"}},
		{"on_theft_unknown", "default_tier: a\ntiers:\n  a: {idle_timeout: 5m, absolute_timeout: 1h, on_theft: ignore}\n",
			[]string{"lapse.yaml:3", "tiers.a.on_theft", "record or revoke"}},
		{"bound_cookie_outlives_idle", "default_tier: a\ntiers:\n  a:\n    idle_timeout: 5m\n    absolute_timeout: 1h\n    bound_cookie_lifetime: 10m\n",
			[]string{"lapse.yaml:6", "tiers.a.bound_cookie_lifetime", "longer than idle_timeout"}},
		{"bind_grace_not_a_duration", "default_tier: a\ntiers:\n  a: {idle_timeout: 5m, absolute_timeout: 1h, bind_grace: soon}\n",
			[]string{"lapse.yaml:3", "tiers.a.bind_grace", "not a duration"}},
		{"client_drift_unknown", "default_tier: a\ntiers:\n  a:\n    idle_timeout: 5m\n    absolute_timeout: 1h\n    client_drift: block\n",
			[]string{"lapse.yaml:6", "tiers.a.client_drift", `"block" is not one of allow, step_up, revoke`}},
		{"on_token_reuse_unknown", "default_tier: a\ntiers:\n  a:\n    idle_timeout: 5m\n    absolute_timeout: 1h\n    on_token_reuse: ignore\n",
			[]string{"lapse.yaml:6", "tiers.a.on_token_reuse", "not one of record, revoke"}},
		{"drift_prefix_too_long", "default_tier: a\ntiers:\n  a:\n    idle_timeout: 5m\n    absolute_timeout: 1h\n    drift_prefix_v4: 33\n",
			[]string{"lapse.yaml:6", "tiers.a.drift_prefix_v4", "1-32"}},
		{"new_device_window_not_a_duration", "default_tier: a\ntiers:\n  a: {idle_timeout: 5m, absolute_timeout: 1h, new_device_window: soon}\n",
			[]string{"lapse.yaml:3", "tiers.a.new_device_window", "not a duration"}},
		{"token_guessing_unknown_key", "token_guessing:\n  per_minute: 3\n", []string{"lapse.yaml:2", "token_guessing.per_minute", "not a known key"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Parse("lapse.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatal("Parse accepted a bad config")
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Errorf("error %v is not a *config.Error", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestDeviceBindingKeys(t *testing.T) {
	f, err := config.Parse("lapse.yaml", []byte("default_tier: a\ntiers:\n  a:\n    idle_timeout: 30m\n    absolute_timeout: 8h\n"+
		"    device_binding: required\n    on_theft: record\n    bind_grace: 45s\n    bound_cookie_lifetime: 5m\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := f.Policy.Tiers["a"].Device()
	want := lapse.DeviceRules{Mode: lapse.DeviceBindingRequired, OnTheft: lapse.TheftRecord, BindGrace: 45 * time.Second, BoundCookieLifetime: 5 * time.Minute}
	if got != want {
		t.Errorf("device rules %+v, want %+v", got, want)
	}
}

func TestDefaultTierDefaultsToTheOnlyTierOrStandard(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"only_tier", "tiers:\n  web: {idle_timeout: 15m, absolute_timeout: 8h}\n", "web"},
		{"standard_among_several", "tiers:\n  sensitive: {idle_timeout: 5m, absolute_timeout: 1h}\n  standard: {idle_timeout: 30m, absolute_timeout: 12h}\n", "standard"},
		{"given_wins", "default_tier: sensitive\ntiers:\n  sensitive: {idle_timeout: 5m, absolute_timeout: 1h}\n  standard: {idle_timeout: 30m, absolute_timeout: 12h}\n", "sensitive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := config.Parse("lapse.yaml", []byte(c.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if f.Policy.DefaultTier != c.want {
				t.Errorf("default tier %q, want %q", f.Policy.DefaultTier, c.want)
			}
		})
	}
}

func TestServerOnlyFileKeepsDefaultPolicy(t *testing.T) {
	f, err := config.Parse("x.yaml", []byte("listen: 127.0.0.1:9999\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Listen != "127.0.0.1:9999" || f.Policy.DefaultTier != "standard" {
		t.Errorf("listen %q, default tier %q", f.Listen, f.Policy.DefaultTier)
	}
	if _, err := config.Parse("empty.yaml", nil); err != nil {
		t.Errorf("an empty file: %v, want the defaults", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte("tiers: {a: {idle_timeout: 1s}}\n"))
	f.Add([]byte("tenants: {x: null}\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte(issueExample))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if c.Policy == nil {
			t.Fatal("no error and no policy")
		}
		if _, _, err := c.Policy.Tier("", ""); err != nil {
			t.Fatalf("an accepted policy has no usable default tier: %v", err)
		}
	})
}

func TestRetentionAndTenantsWithoutTiers(t *testing.T) {
	f, err := config.Parse("x.yaml", []byte("retention: -1s\nallow_undeclared_tenants: true\ntenants: {acme: null}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Retention >= 0 {
		t.Errorf("retention -1s = %v, want negative (kept forever)", f.Retention)
	}
	if !f.Policy.AllowUndeclaredTenants || len(f.Policy.Tenants) != 1 || f.Policy.DefaultTier != "standard" {
		t.Errorf("a file without tiers lost its tenant settings: %+v", f.Policy)
	}
	if _, err := config.Parse("x.yaml", []byte("retention: 0s\n")); err == nil || !strings.Contains(err.Error(), "retention") {
		t.Errorf("retention 0s: %v, want an error", err)
	}
}

func TestCacheMemory(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{{"256MB", 256e6}, {"1GiB", 1 << 30}, {"512 MiB", 512 << 20}, {"2000000", 2e6}, {"1TiB", 1 << 40}} {
		f, err := config.Parse("x.yaml", []byte("cache_memory: "+tc.in+"\n"))
		if err != nil {
			t.Errorf("cache_memory: %s: %v", tc.in, err)
		} else if f.CacheMemory != tc.want {
			t.Errorf("cache_memory: %s is %d bytes, want %d", tc.in, f.CacheMemory, tc.want)
		}
	}
	if f, _ := config.Parse("x.yaml", nil); f.CacheMemory != config.DefaultCacheMemory {
		t.Errorf("without cache_memory, CacheMemory = %d, want the default %d", f.CacheMemory, config.DefaultCacheMemory)
	}
	for _, bad := range []string{"lots", "-1MB", "12XB", "1KB", "2TiB", "MB", "1.5GB", "[1]"} {
		_, err := config.Parse("x.yaml", []byte("listen: 127.0.0.1:1\ncache_memory: "+bad+"\n"))
		if err == nil || !strings.HasPrefix(err.Error(), "x.yaml:2: cache_memory: ") {
			t.Errorf("cache_memory: %s: error %v, want one naming x.yaml:2: cache_memory", bad, err)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"256MB", "1GiB", "12", " 3 KB", "-1", "9223372036854775807TB", "B"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := config.ParseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d, a negative size", s, n)
		}
	})
}
func TestSignalSettings(t *testing.T) {
	f, err := config.Parse("lapse.yaml", []byte(`default_tier: standard
tiers:
  standard: {idle_timeout: 30m, absolute_timeout: 12h}
  critical:
    idle_timeout: 15m
    absolute_timeout: 12h
    client_drift: revoke
    drift_prefix_v4: 16
    drift_prefix_v6: 40
    on_token_reuse: revoke
    new_device_window: 720h
token_guessing: {per_source_per_minute: 20, overall_per_minute: 500, block_for: 15m}
`))
	if err != nil {
		t.Fatal(err)
	}
	c := f.Policy.Tiers["critical"]
	if c.ClientDrift != lapse.DriftRevoke || c.DriftPrefixV4 != 16 || c.DriftPrefixV6 != 40 || c.OnTokenReuse != lapse.ReuseRevoke || c.NewDeviceWindow != 720*time.Hour {
		t.Errorf("critical tier %+v; want revoke, /16, /40, revoke, 720h", c)
	}
	if s := f.Policy.Tiers["standard"]; s.ClientDrift != "" || s.OnTokenReuse != "" {
		t.Errorf("standard tier drift %q reuse %q; want the defaults (empty: allow, record)", s.ClientDrift, s.OnTokenReuse)
	}
	if g := f.TokenGuessing; g.PerSource != 20 || g.Overall != 500 || g.BlockFor != 15*time.Minute {
		t.Errorf("token_guessing %+v; want 20, 500, 15m", g)
	}
}
