package compliance_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/compliance"
)

func mustProfile(t *testing.T, name string) compliance.Profile {
	t.Helper()
	p, ok := compliance.Lookup(name)
	if !ok {
		t.Fatalf("Lookup(%q) found nothing", name)
	}
	return p
}

func dur(d time.Duration) *time.Duration { return &d }

// tenantPolicy has a PCI-grade tier "payments" (idle 10m) whose bounds let
// tenants loosen the idle timeout to 30m, and three tenants: "acme"
// loosens it to 20m, "beta" tightens it to 5m, "gamma" inherits it.
func tenantPolicy() *lapse.Policy {
	return &lapse.Policy{
		DefaultTier: "payments",
		Tiers: map[string]lapse.Tier{
			"payments": {IdleTimeout: 10 * min, AbsoluteTimeout: 8 * hour, RequireAAL: 2},
		},
		Bounds: map[string]lapse.Bounds{"payments": {IdleTimeout: 30 * min}},
		Tenants: map[string]map[string]lapse.TierOverride{
			"acme":  {"payments": {IdleTimeout: dur(20 * min)}},
			"beta":  {"payments": {IdleTimeout: dur(5 * min)}},
			"gamma": {},
		},
	}
}

func TestAudit(t *testing.T) {
	t.Run("tenants_effective_tiers_are_audited", func(t *testing.T) {
		r := compliance.Audit(tenantPolicy(), mustProfile(t, "pci-dss-4"))
		got := map[string]string{}
		for _, f := range r.Findings {
			if f.Rule == "idle-max" {
				got[f.Tenant] = f.Status() + " " + f.Configured
			}
		}
		want := map[string]string{"": "pass 10m", "acme": "fail 20m", "beta": "pass 5m", "gamma": "pass 10m"}
		if len(got) != len(want) {
			t.Fatalf("idle-max findings by tenant: got %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("idle-max for tenant %q: got %q, want %q", k, got[k], v)
			}
		}
		if !r.Failed(false) {
			t.Errorf("Failed(false) = false, want true: tenant acme breaks PCI DSS 8.2.8")
		}
	})

	t.Run("engine_rules_come_first_and_once", func(t *testing.T) {
		r := compliance.Audit(tenantPolicy(), mustProfile(t, "pci-dss-4"))
		if len(r.Findings) == 0 || r.Findings[0].Scope != compliance.ScopeEngine {
			t.Fatalf("first finding: got %+v, want an engine rule", r.Findings[0])
		}
		n := 0
		for _, f := range r.Findings {
			if f.Rule == "timeout-terminates" {
				n++
				if f.Tier != "" || f.Tenant != "" {
					t.Errorf("engine finding names tier %q tenant %q, want neither", f.Tier, f.Tenant)
				}
			}
		}
		if n != 1 {
			t.Errorf("timeout-terminates reported %d times, want once", n)
		}
	})

	t.Run("findings_carry_source_severity_and_values", func(t *testing.T) {
		r := compliance.Audit(tenantPolicy(), mustProfile(t, "pci-dss-4"))
		i := slices.IndexFunc(r.Findings, func(f compliance.Finding) bool { return f.Tenant == "acme" && f.Rule == "idle-max" })
		if i < 0 {
			t.Fatal("no idle-max finding for tenant acme")
		}
		f := r.Findings[i]
		want := compliance.Finding{
			Profile: "pci-dss-4", Rule: "idle-max", Scope: compliance.ScopeTier, Tier: "payments", Tenant: "acme",
			Key: "idle_timeout", Configured: "20m", Required: "at most 15m", Severity: compliance.SeverityError,
			Source: "PCI DSS v4.0.1 Req. 8.2.8 (PCI SSC FAQ 1147)", Text: f.Text, Pass: false,
		}
		if f != want {
			t.Errorf("finding:\n got %+v\nwant %+v", f, want)
		}
	})

	t.Run("warnings_fail_only_when_strict", func(t *testing.T) {
		// Rev 4 AAL2: a 2h idle timeout breaks only a SHOULD.
		r := compliance.Audit(onePolicy(tier(2*hour, 12*hour, 2)), mustProfile(t, "nist-800-63b-4-aal2"))
		if r.Failed(false) {
			t.Errorf("Failed(false) = true, want false: only a SHOULD is broken")
		}
		if !r.Failed(true) {
			t.Errorf("Failed(true) = false, want true: strict mode fails warnings")
		}
		if p, f, w := r.Count(); f != 0 || w != 1 || p == 0 {
			t.Errorf("Count() = %d passed, %d failed, %d warned; want some, 0, 1", p, f, w)
		}
	})

	t.Run("compliant_policy_passes_even_strict", func(t *testing.T) {
		r := compliance.Audit(onePolicy(tier(15*min, 12*hour, 3)), mustProfile(t, "nist-800-63b-4-aal3"))
		if r.Failed(true) {
			t.Errorf("Failed(true) = true for a compliant policy: %+v", r.Findings)
		}
	})

	t.Run("invalid_policy_is_reported_not_audited", func(t *testing.T) {
		p := onePolicy(tier(2*hour, time.Hour, 1)) // idle longer than absolute
		r := compliance.Audit(p, mustProfile(t, "hipaa"))
		var pe *lapse.PolicyError
		if !errors.As(r.Err, &pe) {
			t.Fatalf("Err: got %v, want a *lapse.PolicyError", r.Err)
		}
		if len(r.Findings) != 0 || !r.Failed(false) {
			t.Errorf("got %d findings and Failed %v; want none and true", len(r.Findings), r.Failed(false))
		}
	})

	t.Run("audit_leaves_the_policy_alone", func(t *testing.T) {
		p := tenantPolicy()
		compliance.Audit(p, mustProfile(t, "pci-dss-4"))
		if _, _, err := p.Tier("acme", "payments"); err == nil {
			t.Errorf("p.Tier after Audit on an unvalidated policy: got no error, want one (Audit must validate a copy)")
		}
	})

	t.Run("params_are_reported_with_their_values", func(t *testing.T) {
		p := onePolicy(tier(10*min, 8*hour, 1))
		if got := compliance.Audit(p, mustProfile(t, "hipaa")).Params["hipaa.idle"]; got != "15m" {
			t.Errorf("hipaa.idle by default: got %q, want 15m", got)
		}
		if got := compliance.Audit(p, mustProfile(t, "hipaa"), compliance.WithParam("hipaa.idle", 10*min)).Params["hipaa.idle"]; got != "10m" {
			t.Errorf("hipaa.idle given 10m: got %q, want 10m", got)
		}
		if got := compliance.Audit(p, mustProfile(t, "asvs-5-l2")).Params["asvs-5.idle"]; got != "not declared" {
			t.Errorf("asvs-5.idle by default: got %q, want %q", got, "not declared")
		}
	})
}

func TestReportJSON(t *testing.T) {
	r := compliance.Audit(tenantPolicy(), mustProfile(t, "pci-dss-4"))
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Profile  string
		Title    string
		Findings []map[string]any
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Profile != "pci-dss-4" || got.Title == "" || len(got.Findings) != len(r.Findings) {
		t.Fatalf("report: got profile %q title %q and %d findings, want pci-dss-4, a title and %d", got.Profile, got.Title, len(got.Findings), len(r.Findings))
	}
	for _, key := range []string{"profile", "rule", "scope", "tier", "tenant", "key", "configured", "required", "severity", "source", "text", "pass", "status"} {
		found := false
		for _, f := range got.Findings {
			if _, ok := f[key]; ok {
				found = true
			}
		}
		if !found {
			t.Errorf("no finding has the JSON key %q", key)
		}
	}
	var acme map[string]any
	for _, f := range got.Findings {
		if f["tenant"] == "acme" && f["rule"] == "idle-max" {
			acme = f
		}
	}
	if acme["status"] != "fail" || acme["pass"] != false || acme["configured"] != "20m" {
		t.Errorf("acme's idle-max in JSON: got %v, want status fail, pass false, configured 20m", acme)
	}
}

func TestEnforce(t *testing.T) {
	withProfiles := func(tr lapse.Tier, profiles ...string) lapse.Tier {
		tr.Profiles = profiles
		return tr
	}
	tests := []struct {
		name    string
		policy  *lapse.Policy
		opts    []compliance.Option
		wantErr []string // substrings of the error; nil means accepted
	}{
		{
			name:   "policy_naming_no_profile_is_accepted",
			policy: onePolicy(tier(12*hour, 30*day, 1)),
		},
		{
			name:   "compliant_pci_tier_is_accepted",
			policy: onePolicy(withProfiles(tier(15*min, 8*hour, 2), "pci-dss-4")),
		},
		{
			name:    "pci_tier_idle_15m1s_is_refused",
			policy:  onePolicy(withProfiles(tier(15*min+sec, 8*hour, 2), "pci-dss-4")),
			wantErr: []string{`tier "t"`, "rule idle-max", "profile pci-dss-4", "idle_timeout is 15m1s", "at most 15m", "Req. 8.2.8"},
		},
		{
			name:   "broken_should_is_accepted",
			policy: onePolicy(withProfiles(tier(2*hour, 24*hour, 2), "nist-800-63b-4-aal2")),
		},
		{
			name:    "rev3_aal2_refuses_what_rev4_aal2_accepts",
			policy:  onePolicy(withProfiles(tier(time.Hour, 12*hour, 2), "nist-800-63b-3-aal2")),
			wantErr: []string{"rule idle-max", "profile nist-800-63b-3-aal2", "idle_timeout is 1h"},
		},
		{
			name:    "every_named_profile_is_enforced",
			policy:  onePolicy(withProfiles(tier(15*min, 13*hour, 3), "pci-dss-4", "nist-800-63b-4-aal3")),
			wantErr: []string{"rule absolute-max of profile nist-800-63b-4-aal3", "absolute_timeout is 13h"},
		},
		{
			name: "tenant_loosening_a_pci_tier_is_refused",
			policy: func() *lapse.Policy {
				p := tenantPolicy()
				p.Tiers["payments"] = withProfiles(p.Tiers["payments"], "pci-dss-4")
				return p
			}(),
			wantErr: []string{`tier "payments" of tenant "acme"`, "rule idle-max", "profile pci-dss-4", "idle_timeout is 20m"},
		},
		{
			name: "tiers_without_profiles_are_not_enforced",
			policy: &lapse.Policy{DefaultTier: "standard", Tiers: map[string]lapse.Tier{
				"standard": tier(8*hour, 30*day, 1),
				"payments": withProfiles(tier(15*min, 8*hour, 2), "pci-dss-4"),
			}},
		},
		{
			name:    "unknown_profile_names_the_tier",
			policy:  onePolicy(withProfiles(tier(15*min, 8*hour, 2), "pci-dss-3")),
			wantErr: []string{"tiers.t.profiles", `unknown compliance profile "pci-dss-3"`},
		},
		{
			name:    "engine_without_the_facts_is_refused",
			policy:  onePolicy(withProfiles(tier(15*min, 8*hour, 2), "pci-dss-4")),
			opts:    []compliance.Option{compliance.WithEngine(compliance.Engine{})},
			wantErr: []string{"the engine fails rule timeout-terminates of profile pci-dss-4"},
		},
		{
			name:    "hipaa_param_tightens_enforcement",
			policy:  onePolicy(withProfiles(tier(15*min, 8*hour, 1), "hipaa")),
			opts:    []compliance.Option{compliance.WithParam("hipaa.idle", 10*min)},
			wantErr: []string{"profile hipaa", "idle_timeout is 15m, required at most 10m"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := compliance.Enforce(tt.policy, tt.opts...)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Enforce: got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Enforce: got nil, want an error containing %q", tt.wantErr)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Enforce error %q does not contain %q", err, s)
				}
			}
		})
	}

	t.Run("refusal_is_an_EnforceError_listing_findings", func(t *testing.T) {
		p := tenantPolicy()
		p.Tiers["payments"] = withProfiles(tier(16*min, 8*hour, 1), "pci-dss-4")
		err := compliance.Enforce(p)
		var ee *compliance.EnforceError
		if !errors.As(err, &ee) {
			t.Fatalf("Enforce: got %v, want an *EnforceError", err)
		}
		// idle-max and aal-min fail for the platform tier; acme and gamma
		// inherit AAL1 (beta tightens idle only).
		if len(ee.Findings) < 2 {
			t.Errorf("got %d findings, want at least idle-max and aal-min of the platform tier", len(ee.Findings))
		}
		for _, f := range ee.Findings {
			if f.Pass || f.Severity != compliance.SeverityError {
				t.Errorf("EnforceError lists %s %s (pass %v, severity %s); want only failed errors", f.Tier, f.Rule, f.Pass, f.Severity)
			}
		}
	})
}
