package lapse_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

func dur(d time.Duration) *time.Duration { return &d }
func num(i int) *int                     { return &i }

func TestPolicyValidate(t *testing.T) {
	base := func() *lapse.Policy {
		return &lapse.Policy{
			DefaultTier: "standard",
			Tiers: map[string]lapse.Tier{
				"standard":  {IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour, WarnBefore: 2 * time.Minute},
				"sensitive": {IdleTimeout: 5 * time.Minute, AbsoluteTimeout: time.Hour, RequireAAL: 2, MaxAuthAge: 15 * time.Minute, MaxSessions: 3},
			},
		}
	}
	for _, c := range []struct {
		name    string
		edit    func(p *lapse.Policy)
		wantKey string // "" for valid
	}{
		{"base_is_valid", func(*lapse.Policy) {}, ""},
		{"default_tier_must_exist", func(p *lapse.Policy) { p.DefaultTier = "gold" }, "default_tier"},
		{"idle_must_be_positive", func(p *lapse.Policy) { t := p.Tiers["standard"]; t.IdleTimeout = 0; p.Tiers["standard"] = t }, "tiers.standard.idle_timeout"},
		{"absolute_is_required", func(p *lapse.Policy) { t := p.Tiers["standard"]; t.AbsoluteTimeout = 0; p.Tiers["standard"] = t }, "tiers.standard.absolute_timeout"},
		{"idle_longer_than_absolute", func(p *lapse.Policy) {
			t := p.Tiers["standard"]
			t.IdleTimeout = 13 * time.Hour
			p.Tiers["standard"] = t
		}, "tiers.standard.idle_timeout"},
		{"warn_not_shorter_than_idle", func(p *lapse.Policy) {
			t := p.Tiers["standard"]
			t.WarnBefore = 30 * time.Minute
			p.Tiers["standard"] = t
		}, "tiers.standard.warn_before"},
		{"aal_out_of_range", func(p *lapse.Policy) { t := p.Tiers["standard"]; t.RequireAAL = 4; p.Tiers["standard"] = t }, "tiers.standard.require_aal"},
		{"tenant_may_tighten", func(p *lapse.Policy) {
			p.Tenants = map[string]map[string]lapse.TierOverride{"acme": {"standard": {IdleTimeout: dur(10 * time.Minute)}}}
		}, ""},
		{"tenant_may_not_loosen_without_bounds", func(p *lapse.Policy) {
			p.Tenants = map[string]map[string]lapse.TierOverride{"acme": {"standard": {IdleTimeout: dur(31 * time.Minute)}}}
		}, "tenants.acme.tiers.standard.idle_timeout"},
		{"tenant_may_loosen_up_to_bound", func(p *lapse.Policy) {
			p.Bounds = map[string]lapse.Bounds{"standard": {IdleTimeout: time.Hour}}
			p.Tenants = map[string]map[string]lapse.TierOverride{"acme": {"standard": {IdleTimeout: dur(time.Hour)}}}
		}, ""},
		{"tenant_may_not_pass_bound", func(p *lapse.Policy) {
			p.Bounds = map[string]lapse.Bounds{"standard": {IdleTimeout: time.Hour}}
			p.Tenants = map[string]map[string]lapse.TierOverride{"acme": {"standard": {IdleTimeout: dur(time.Hour + time.Second)}}}
		}, "tenants.acme.tiers.standard.idle_timeout"},
		{"tenant_may_not_lower_aal", func(p *lapse.Policy) {
			p.Tenants = map[string]map[string]lapse.TierOverride{"acme": {"sensitive": {RequireAAL: num(1)}}}
		}, "tenants.acme.tiers.sensitive.require_aal"},
		{"tenant_may_not_drop_auth_age", func(p *lapse.Policy) {
			p.Tenants = map[string]map[string]lapse.TierOverride{"acme": {"sensitive": {MaxAuthAge: dur(0)}}}
		}, "tenants.acme.tiers.sensitive.max_auth_age"},
		{"tenant_may_not_lift_session_cap", func(p *lapse.Policy) {
			p.Tenants = map[string]map[string]lapse.TierOverride{"acme": {"sensitive": {MaxSessions: num(0)}}}
		}, "tenants.acme.tiers.sensitive.max_sessions"},
		{"tenant_override_of_unknown_tier", func(p *lapse.Policy) {
			p.Tenants = map[string]map[string]lapse.TierOverride{"acme": {"gold": {}}}
		}, "tenants.acme.tiers.gold"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := base()
			c.edit(p)
			err := p.Validate()
			if c.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want valid", err)
				}
				return
			}
			var pe *lapse.PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("Validate = %v, want a PolicyError at %s", err, c.wantKey)
			}
			for _, fe := range pe.Problems {
				if fe.Path == c.wantKey {
					return
				}
			}
			t.Errorf("Validate = %v; no problem at %s", err, c.wantKey)
		})
	}
}

func TestPolicyTierResolves(t *testing.T) {
	p := &lapse.Policy{
		DefaultTier: "standard",
		Tiers:       map[string]lapse.Tier{"standard": {IdleTimeout: 30 * time.Minute, AbsoluteTimeout: time.Hour}},
		Tenants:     map[string]map[string]lapse.TierOverride{"acme": {"standard": {IdleTimeout: dur(10 * time.Minute)}}},
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	name, tier, err := p.Tier("acme", "")
	if err != nil || name != "standard" || tier.IdleTimeout != 10*time.Minute {
		t.Errorf(`Tier("acme", "") = %q %v %v, want standard with 10m idle`, name, tier.IdleTimeout, err)
	}
	if _, _, err := p.Tier("initech", ""); lapse.ErrorCode(err) != lapse.CodeUnknownTenant {
		t.Errorf("undeclared tenant: %v, want unknown_tenant", err)
	}
	p.AllowUndeclaredTenants = true
	if _, tier, err := p.Tier("initech", ""); err != nil || tier.IdleTimeout != 30*time.Minute {
		t.Errorf("undeclared tenant allowed: %v %v, want the platform tier", tier.IdleTimeout, err)
	}
	if err := (&lapse.Policy{}).Validate(); err == nil || !strings.Contains(err.Error(), "tiers") {
		t.Errorf("empty policy: %v, want an error about tiers", err)
	}
}
