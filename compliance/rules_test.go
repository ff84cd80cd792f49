package compliance_test

import (
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/compliance"
)

const (
	sec  = time.Second
	min  = time.Minute
	hour = time.Hour
	day  = 24 * time.Hour
)

// tier returns a tier with the given timeouts and required AAL.
func tier(idle, absolute time.Duration, aal int) lapse.Tier {
	return lapse.Tier{IdleTimeout: idle, AbsoluteTimeout: absolute, RequireAAL: aal}
}

// onePolicy is a policy with a single tier "t".
func onePolicy(t lapse.Tier) *lapse.Policy {
	return &lapse.Policy{DefaultTier: "t", Tiers: map[string]lapse.Tier{"t": t}}
}

// finding audits a one-tier policy against profile and returns the
// platform tier's finding for rule (or the engine's, for engine rules).
func finding(t *testing.T, profile, rule string, tr lapse.Tier, opts ...compliance.Option) compliance.Finding {
	t.Helper()
	p, ok := compliance.Lookup(profile)
	if !ok {
		t.Fatalf("Lookup(%q) found nothing", profile)
	}
	r := compliance.Audit(onePolicy(tr), p, opts...)
	if r.Err != nil {
		t.Fatalf("Audit: policy invalid: %v", r.Err)
	}
	for _, f := range r.Findings {
		if f.Rule == rule && f.Tenant == "" {
			return f
		}
	}
	t.Fatalf("profile %s has no finding for rule %s", profile, rule)
	return compliance.Finding{}
}

// TestRuleBoundaries checks each tier rule of each profile on both sides
// of its limit: the limit itself passes, one second more fails (error)
// or warns (warning).
func TestRuleBoundaries(t *testing.T) {
	tests := []struct {
		name    string
		profile string
		rule    string
		tier    lapse.Tier
		opts    []compliance.Option
		want    string // pass, fail or warn
	}{
		// NIST SP 800-63B-4.
		{"nist4_aal1/absolute-set/12h_passes", "nist-800-63b-4-aal1", "absolute-set", tier(30*min, 12*hour, 1), nil, "pass"},
		{"nist4_aal1/absolute-max/30d_passes", "nist-800-63b-4-aal1", "absolute-max", tier(30*min, 30*day, 1), nil, "pass"},
		{"nist4_aal1/absolute-max/30d1s_warns", "nist-800-63b-4-aal1", "absolute-max", tier(30*min, 30*day+sec, 1), nil, "warn"},
		{"nist4_aal2/idle-max/1h_passes", "nist-800-63b-4-aal2", "idle-max", tier(hour, 12*hour, 2), nil, "pass"},
		{"nist4_aal2/idle-max/30m1s_passes_unlike_rev3", "nist-800-63b-4-aal2", "idle-max", tier(30*min+sec, 12*hour, 2), nil, "pass"},
		{"nist4_aal2/idle-max/1h0m1s_only_warns", "nist-800-63b-4-aal2", "idle-max", tier(hour+sec, 12*hour, 2), nil, "warn"},
		{"nist4_aal2/absolute-max/24h_passes", "nist-800-63b-4-aal2", "absolute-max", tier(hour, 24*hour, 2), nil, "pass"},
		{"nist4_aal2/absolute-max/24h0m1s_only_warns", "nist-800-63b-4-aal2", "absolute-max", tier(hour, 24*hour+sec, 2), nil, "warn"},
		{"nist4_aal2/aal-min/aal2_passes", "nist-800-63b-4-aal2", "aal-min", tier(hour, 12*hour, 2), nil, "pass"},
		{"nist4_aal2/aal-min/aal1_fails", "nist-800-63b-4-aal2", "aal-min", tier(hour, 12*hour, 1), nil, "fail"},
		{"nist4_aal2/aal-min/unset_counts_as_aal1_and_fails", "nist-800-63b-4-aal2", "aal-min", tier(hour, 12*hour, 0), nil, "fail"},
		{"nist4_aal3/absolute-max/12h_passes", "nist-800-63b-4-aal3", "absolute-max", tier(15*min, 12*hour, 3), nil, "pass"},
		{"nist4_aal3/absolute-max/12h0m1s_fails", "nist-800-63b-4-aal3", "absolute-max", tier(15*min, 12*hour+sec, 3), nil, "fail"},
		{"nist4_aal3/idle-max/15m_passes", "nist-800-63b-4-aal3", "idle-max", tier(15*min, 12*hour, 3), nil, "pass"},
		{"nist4_aal3/idle-max/15m1s_only_warns", "nist-800-63b-4-aal3", "idle-max", tier(15*min+sec, 12*hour, 3), nil, "warn"},
		{"nist4_aal3/aal-min/aal2_fails", "nist-800-63b-4-aal3", "aal-min", tier(15*min, 12*hour, 2), nil, "fail"},

		// NIST SP 800-63B revision 3.
		{"nist3_aal1/absolute-max/30d_passes", "nist-800-63b-3-aal1", "absolute-max", tier(30*min, 30*day, 1), nil, "pass"},
		{"nist3_aal1/absolute-max/30d1s_warns", "nist-800-63b-3-aal1", "absolute-max", tier(30*min, 30*day+sec, 1), nil, "warn"},
		{"nist3_aal2/idle-max/30m_passes", "nist-800-63b-3-aal2", "idle-max", tier(30*min, 12*hour, 2), nil, "pass"},
		{"nist3_aal2/idle-max/30m1s_fails_as_a_shall", "nist-800-63b-3-aal2", "idle-max", tier(30*min+sec, 12*hour, 2), nil, "fail"},
		{"nist3_aal2/absolute-max/12h_passes", "nist-800-63b-3-aal2", "absolute-max", tier(30*min, 12*hour, 2), nil, "pass"},
		{"nist3_aal2/absolute-max/12h0m1s_fails", "nist-800-63b-3-aal2", "absolute-max", tier(30*min, 12*hour+sec, 2), nil, "fail"},
		{"nist3_aal2/aal-min/aal1_fails", "nist-800-63b-3-aal2", "aal-min", tier(30*min, 12*hour, 1), nil, "fail"},
		{"nist3_aal3/idle-max/15m_passes", "nist-800-63b-3-aal3", "idle-max", tier(15*min, 12*hour, 3), nil, "pass"},
		{"nist3_aal3/idle-max/15m1s_fails", "nist-800-63b-3-aal3", "idle-max", tier(15*min+sec, 12*hour, 3), nil, "fail"},
		{"nist3_aal3/absolute-max/12h0m1s_fails", "nist-800-63b-3-aal3", "absolute-max", tier(15*min, 12*hour+sec, 3), nil, "fail"},
		{"nist3_aal3/aal-min/aal3_passes", "nist-800-63b-3-aal3", "aal-min", tier(15*min, 12*hour, 3), nil, "pass"},

		// PCI DSS v4.0.1.
		{"pci/idle-max/15m_passes", "pci-dss-4", "idle-max", tier(15*min, 8*hour, 2), nil, "pass"},
		{"pci/idle-max/15m1s_fails", "pci-dss-4", "idle-max", tier(15*min+sec, 8*hour, 2), nil, "fail"},
		{"pci/idle-max/30d_absolute_is_not_pcis_business", "pci-dss-4", "idle-max", tier(15*min, 30*day, 2), nil, "pass"},
		{"pci/aal-min/aal2_passes", "pci-dss-4", "aal-min", tier(15*min, 8*hour, 2), nil, "pass"},
		{"pci/aal-min/aal1_fails", "pci-dss-4", "aal-min", tier(15*min, 8*hour, 1), nil, "fail"},

		// HIPAA.
		{"hipaa/idle-max/default_15m_passes", "hipaa", "idle-max", tier(15*min, 8*hour, 1), nil, "pass"},
		{"hipaa/idle-max/default_15m1s_fails", "hipaa", "idle-max", tier(15*min+sec, 8*hour, 1), nil, "fail"},
		{"hipaa/idle-max/param_10m_passes_10m", "hipaa", "idle-max", tier(10*min, 8*hour, 1),
			[]compliance.Option{compliance.WithParam("hipaa.idle", 10*min)}, "pass"},
		{"hipaa/idle-max/param_10m_fails_10m1s", "hipaa", "idle-max", tier(10*min+sec, 8*hour, 1),
			[]compliance.Option{compliance.WithParam("hipaa.idle", 10*min)}, "fail"},
		{"hipaa/idle-max/param_30m_passes_30m", "hipaa", "idle-max", tier(30*min, 8*hour, 1),
			[]compliance.Option{compliance.WithParam("hipaa.idle", 30*min)}, "pass"},

		// OWASP ASVS 4.0.3.
		{"asvs4_l1/absolute-max/30d_passes", "asvs-4-l1", "absolute-max", tier(30*min, 30*day, 1), nil, "pass"},
		{"asvs4_l1/absolute-max/30d1s_fails", "asvs-4-l1", "absolute-max", tier(30*min, 30*day+sec, 1), nil, "fail"},
		{"asvs4_l2/idle-max/30m_passes", "asvs-4-l2", "idle-max", tier(30*min, 12*hour, 1), nil, "pass"},
		{"asvs4_l2/idle-max/30m1s_fails", "asvs-4-l2", "idle-max", tier(30*min+sec, 12*hour, 1), nil, "fail"},
		{"asvs4_l2/absolute-max/12h0m1s_fails", "asvs-4-l2", "absolute-max", tier(30*min, 12*hour+sec, 1), nil, "fail"},
		{"asvs4_l3/idle-max/15m_passes", "asvs-4-l3", "idle-max", tier(15*min, 12*hour, 2), nil, "pass"},
		{"asvs4_l3/idle-max/15m1s_fails", "asvs-4-l3", "idle-max", tier(15*min+sec, 12*hour, 2), nil, "fail"},
		{"asvs4_l3/absolute-max/12h_passes", "asvs-4-l3", "absolute-max", tier(15*min, 12*hour, 2), nil, "pass"},
		{"asvs4_l3/aal-min/with_2fa_passes", "asvs-4-l3", "aal-min", tier(15*min, 12*hour, 2), nil, "pass"},
		{"asvs4_l3/aal-min/aal1_fails", "asvs-4-l3", "aal-min", tier(15*min, 12*hour, 1), nil, "fail"},

		// OWASP ASVS 5.0.0: no numbers of its own.
		{"asvs5_l2/idle-set/idle_below_absolute_passes", "asvs-5-l2", "idle-set", tier(12*hour-sec, 12*hour, 2), nil, "pass"},
		{"asvs5_l2/idle-set/idle_equal_to_absolute_is_no_idle_timeout", "asvs-5-l2", "idle-set", tier(12*hour, 12*hour, 2), nil, "fail"},
		{"asvs5_l2/idle-set/documented_10m_passes_10m", "asvs-5-l2", "idle-set", tier(10*min, 12*hour, 2),
			[]compliance.Option{compliance.WithParam("asvs-5.idle", 10*min)}, "pass"},
		{"asvs5_l2/idle-set/documented_10m_fails_10m1s", "asvs-5-l2", "idle-set", tier(10*min+sec, 12*hour, 2),
			[]compliance.Option{compliance.WithParam("asvs-5.idle", 10*min)}, "fail"},
		{"asvs5_l2/absolute-set/undocumented_30d_passes", "asvs-5-l2", "absolute-set", tier(hour, 30*day, 2), nil, "pass"},
		{"asvs5_l2/absolute-set/documented_8h_passes_8h", "asvs-5-l2", "absolute-set", tier(hour, 8*hour, 2),
			[]compliance.Option{compliance.WithParam("asvs-5.absolute", 8*hour)}, "pass"},
		{"asvs5_l2/absolute-set/documented_8h_fails_8h0m1s", "asvs-5-l2", "absolute-set", tier(hour, 8*hour+sec, 2),
			[]compliance.Option{compliance.WithParam("asvs-5.absolute", 8*hour)}, "fail"},
		{"asvs5_l2/idle-nist/1h_passes", "asvs-5-l2", "idle-nist", tier(hour, 12*hour, 2), nil, "pass"},
		{"asvs5_l2/idle-nist/1h0m1s_warns", "asvs-5-l2", "idle-nist", tier(hour+sec, 12*hour, 2), nil, "warn"},
		{"asvs5_l2/absolute-nist/24h_passes", "asvs-5-l2", "absolute-nist", tier(hour, 24*hour, 2), nil, "pass"},
		{"asvs5_l2/absolute-nist/24h0m1s_warns", "asvs-5-l2", "absolute-nist", tier(hour, 24*hour+sec, 2), nil, "warn"},
		{"asvs5_l2/aal-min/aal1_fails", "asvs-5-l2", "aal-min", tier(hour, 12*hour, 1), nil, "fail"},
		{"asvs5_l3/idle-nist/15m_passes", "asvs-5-l3", "idle-nist", tier(15*min, 12*hour, 3), nil, "pass"},
		{"asvs5_l3/idle-nist/15m1s_warns", "asvs-5-l3", "idle-nist", tier(15*min+sec, 12*hour, 3), nil, "warn"},
		{"asvs5_l3/absolute-nist/12h0m1s_warns", "asvs-5-l3", "absolute-nist", tier(15*min, 12*hour+sec, 3), nil, "warn"},
		{"asvs5_l3/aal-min/aal2_fails", "asvs-5-l3", "aal-min", tier(15*min, 12*hour, 2), nil, "fail"},
		{"asvs5_l3/aal-min/aal3_passes", "asvs-5-l3", "aal-min", tier(15*min, 12*hour, 3), nil, "pass"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := finding(t, tt.profile, tt.rule, tt.tier, tt.opts...)
			if got := f.Status(); got != tt.want {
				t.Errorf("%s %s: got %s (configured %s, required %s), want %s", tt.profile, tt.rule, got, f.Configured, f.Required, tt.want)
			}
		})
	}
}

// TestEngineRules checks the structural rules: every one passes on
// lapse's engine and fails on an engine without the facts, and the
// entropy rules sit at their thresholds.
func TestEngineRules(t *testing.T) {
	lapseEngine := compliance.LapseEngine()
	withBits := func(bits int) compliance.Engine {
		e := compliance.LapseEngine()
		e.TokenBits = bits
		return e
	}
	notCSPRNG := compliance.LapseEngine()
	notCSPRNG.TokenCSPRNG, notCSPRNG.TokenGenerator = false, "math/rand"

	tests := []struct {
		name    string
		profile string
		rule    string
		engine  compliance.Engine
		want    string
	}{
		{"nist4/token-entropy/64_bits_passes", "nist-800-63b-4-aal1", "token-entropy", withBits(64), "pass"},
		{"nist4/token-entropy/63_bits_fails", "nist-800-63b-4-aal1", "token-entropy", withBits(63), "fail"},
		{"nist3/token-entropy/63_bits_fails", "nist-800-63b-3-aal2", "token-entropy", withBits(63), "fail"},
		{"nist4/token-entropy/not_a_csprng_fails", "nist-800-63b-4-aal1", "token-entropy", notCSPRNG, "fail"},
		{"asvs4/token-entropy/64_bits_passes", "asvs-4-l1", "token-entropy", withBits(64), "pass"},
		{"asvs4/token-csprng/not_a_csprng_fails", "asvs-4-l2", "token-csprng", notCSPRNG, "fail"},
		{"asvs5/token-entropy/128_bits_passes", "asvs-5-l1", "token-entropy", withBits(128), "pass"},
		{"asvs5/token-entropy/127_bits_fails", "asvs-5-l1", "token-entropy", withBits(127), "fail"},
		{"asvs5/token-entropy/lapse_208_bits_passes", "asvs-5-l3", "token-entropy", lapseEngine, "pass"},
		{"asvs5/token-hashed-at-rest/plain_tokens_only_warn", "asvs-5-l2", "token-hashed-at-rest", compliance.Engine{}, "warn"},
		{"nist4/absolute-fixed/sliding_absolute_fails", "nist-800-63b-4-aal2", "absolute-fixed", compliance.Engine{}, "fail"},
		{"nist4/reauth-resets-both/fails_without", "nist-800-63b-4-aal3", "reauth-resets-both", compliance.Engine{}, "fail"},
		{"pci/timeout-terminates/client_side_timeout_fails", "pci-dss-4", "timeout-terminates", compliance.Engine{}, "fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := finding(t, tt.profile, tt.rule, tier(10*min, 8*hour, 3), compliance.WithEngine(tt.engine))
			if got := f.Status(); got != tt.want {
				t.Errorf("%s %s: got %s (configured %s, required %s), want %s", tt.profile, tt.rule, got, f.Configured, f.Required, tt.want)
			}
		})
	}

	for _, p := range compliance.Profiles() {
		t.Run(p.Name+"/every_engine_rule_passes_on_lapse_and_fails_without_its_facts", func(t *testing.T) {
			good := compliance.Audit(onePolicy(tier(10*min, 8*hour, 3)), p)
			bad := compliance.Audit(onePolicy(tier(10*min, 8*hour, 3)), p, compliance.WithEngine(compliance.Engine{}))
			for i, f := range good.Findings {
				if f.Scope != compliance.ScopeEngine {
					continue
				}
				if !f.Pass {
					t.Errorf("rule %s on lapse's engine: got %s (%s), want pass", f.Rule, f.Status(), f.Configured)
				}
				if bad.Findings[i].Pass {
					t.Errorf("rule %s on an engine with no facts: got pass, want %s", f.Rule, f.Severity)
				}
			}
		})
	}
}
