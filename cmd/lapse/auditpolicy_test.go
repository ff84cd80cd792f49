package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Configurations for the audit, loaded through config.Load.
const (
	// auditPCIConfig has a payments tier at the PCI limit, a tenant that
	// tightens it and one that loosens it past 15 minutes.
	auditPCIConfig = `
default_tier: payments
tiers:
  payments:
    idle_timeout: 15m
    absolute_timeout: 8h
    require_aal: 2
    tenant_bounds:
      idle_timeout: 30m
tenants:
  beta:
    tiers:
      payments: {idle_timeout: 5m}
  acme:
    tiers:
      payments: {idle_timeout: 20m}
`
	// auditCompliantConfig meets PCI DSS and NIST rev 4 AAL3 outright.
	auditCompliantConfig = `
default_tier: payments
tiers:
  payments:
    idle_timeout: 15m
    absolute_timeout: 12h
    require_aal: 3
`
	// auditAAL2WarnConfig breaks only rev 4 AAL2's SHOULD (idle over 1h).
	auditAAL2WarnConfig = `
default_tier: standard
tiers:
  standard:
    idle_timeout: 2h
    absolute_timeout: 24h
    require_aal: 2
`
	// auditAttachedConfig names profiles on its tiers, as lapse serve reads them.
	auditAttachedConfig = `
default_tier: standard
tiers:
  standard:
    idle_timeout: 8h
    absolute_timeout: 720h
  payments:
    idle_timeout: 20m
    absolute_timeout: 8h
    require_aal: 2
    profiles: [pci-dss-4, hipaa]
`
	auditUnknownProfileConfig = `
default_tier: standard
tiers:
  standard:
    idle_timeout: 15m
    absolute_timeout: 8h
    profiles: [pci]
`
	auditBrokenConfig = `
default_tier: standard
tiers:
  standard:
    idle_timeout: 2h
    absolute_timeout: 1h
`
)

func auditConfigFile(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lapse.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runAuditArgs(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = runAuditPolicy(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestAuditPolicyExitCodes(t *testing.T) {
	type cfgArgs func(t *testing.T) []string
	with := func(yaml string, args ...string) cfgArgs {
		return func(t *testing.T) []string { return append([]string{"--config", auditConfigFile(t, yaml)}, args...) }
	}
	plain := func(args ...string) cfgArgs { return func(*testing.T) []string { return args } }
	tests := []struct {
		name       string
		args       cfgArgs
		want       int
		wantStderr string
	}{
		{"compliant_policy_exits_0", with(auditCompliantConfig, "--profile", "pci-dss-4,nist-800-63b-4-aal3"), 0, ""},
		{"tenant_breaking_pci_exits_1", with(auditPCIConfig, "--profile", "pci-dss-4"), 1, ""},
		{"warning_only_exits_0", with(auditAAL2WarnConfig, "--profile", "nist-800-63b-4-aal2"), 0, ""},
		{"warning_with_strict_exits_1", with(auditAAL2WarnConfig, "--profile", "nist-800-63b-4-aal2", "--strict"), 1, ""},
		{"rev3_aal2_shall_exits_1_where_rev4_warns", with(auditAAL2WarnConfig, "--profile", "nist-800-63b-3-aal2"), 1, ""},
		{"hipaa_param_tightens_to_failure", with(auditCompliantConfig, "--profile", "hipaa", "--param", "hipaa.idle=10m"), 1, ""},
		{"hipaa_default_15m_passes", with(auditCompliantConfig, "--profile", "hipaa"), 0, ""},
		{"attached_profiles_are_audited_without_profile_flag", with(auditAttachedConfig), 1, ""},
		{"list_exits_0_without_config", plain("--list"), 0, ""},
		{"help_exits_0", plain("--help"), 0, "Usage: lapse audit policy"},
		{"missing_config_exits_2", plain("--profile", "pci-dss-4"), 2, "--config is required"},
		{"unreadable_config_exits_2", plain("--config", "/nonexistent/lapse.yaml", "--profile", "pci-dss-4"), 2, "/nonexistent/lapse.yaml"},
		{"invalid_config_exits_2_naming_file_and_key", with(auditBrokenConfig, "--profile", "pci-dss-4"), 2, "tiers.standard.idle_timeout"},
		{"unknown_profile_exits_2", with(auditCompliantConfig, "--profile", "pci"), 2, `unknown compliance profile "pci"`},
		{"unknown_profile_in_config_exits_2_naming_tier", with(auditUnknownProfileConfig), 2, "tiers.standard.profiles"},
		{"no_profile_anywhere_exits_2", with(auditCompliantConfig), 2, "no --profile given"},
		{"bad_format_exits_2", with(auditCompliantConfig, "--profile", "hipaa", "--format", "xml"), 2, "--format must be table or json"},
		{"unknown_param_exits_2", with(auditCompliantConfig, "--profile", "hipaa", "--param", "hipaa.idel=10m"), 2, `no profile has a parameter "hipaa.idel"`},
		{"bad_param_value_exits_2", with(auditCompliantConfig, "--profile", "hipaa", "--param", "hipaa.idle=soon"), 2, "not a positive duration"},
		{"param_for_another_profile_exits_2", with(auditCompliantConfig, "--profile", "pci-dss-4", "--param", "hipaa.idle=10m"), 2, "not used by the profiles audited"},
		{"stray_argument_exits_2", with(auditCompliantConfig, "--profile", "hipaa", "extra"), 2, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runAuditArgs(tt.args(t)...)
			if code != tt.want {
				t.Errorf("exit status: got %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.want, stdout, stderr)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.wantStderr)
			}
		})
	}
}

func TestAuditPolicyTable(t *testing.T) {
	code, out, _ := runAuditArgs("--config", auditConfigFile(t, auditPCIConfig), "--profile", "pci-dss-4")
	if code != 1 {
		t.Fatalf("exit status %d, want 1", code)
	}
	lines := strings.Split(out, "\n")
	header := -1
	var acme string
	for i, l := range lines {
		if strings.HasPrefix(l, "STATUS") {
			header = i
		}
		if strings.Contains(l, " acme ") && strings.Contains(l, "idle-max") {
			acme = l
		}
	}
	if header < 0 {
		t.Fatalf("no table header in:\n%s", out)
	}
	for _, want := range []string{"FAIL", "payments", "20m", "at most 15m", "Req. 8.2.8"} {
		if !strings.Contains(acme, want) {
			t.Errorf("acme's idle-max row %q lacks %q", acme, want)
		}
	}
	// Columns are aligned: each heading starts where its values do.
	col := strings.Index(lines[header], "CONFIGURED")
	if got := strings.Index(acme, "20m"); got != col {
		t.Errorf("CONFIGURED heading at column %d, acme's value at %d:\n%s\n%s", col, got, lines[header], acme)
	}
	for _, want := range []string{"Result: NOT COMPLIANT: 1 failed", "FAIL idle-max: A session idle for more than 15 minutes", "PASS    (engine)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestAuditPolicyJSON(t *testing.T) {
	code, out, stderr := runAuditArgs("--config", auditConfigFile(t, auditPCIConfig), "--profile", "pci-dss-4", "--profile", "hipaa", "--format", "json")
	if code != 1 {
		t.Fatalf("exit status %d, want 1; stderr: %s", code, stderr)
	}
	var got struct {
		Config    string `json:"config"`
		Strict    bool   `json:"strict"`
		Compliant bool   `json:"compliant"`
		Reports   []struct {
			Profile   string            `json:"profile"`
			Title     string            `json:"title"`
			Params    map[string]string `json:"params"`
			Compliant bool              `json:"compliant"`
			Summary   struct{ Passed, Failed, Warnings int }
			Findings  []struct {
				Profile, Rule, Scope, Tier, Tenant, Key string
				Configured, Required, Severity, Source  string
				Text, Status                            string
				Pass                                    bool
			} `json:"findings"`
		} `json:"reports"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decoding the JSON output: %v\n%s", err, out)
	}
	if got.Compliant || got.Strict || !strings.HasSuffix(got.Config, "lapse.yaml") || len(got.Reports) != 2 {
		t.Fatalf("top level: compliant %v strict %v config %q, %d reports; want false, false, the file, 2", got.Compliant, got.Strict, got.Config, len(got.Reports))
	}
	pci, hipaa := got.Reports[0], got.Reports[1]
	if pci.Profile != "pci-dss-4" || pci.Compliant || pci.Summary.Failed != 1 {
		t.Errorf("pci report: profile %q compliant %v failed %d; want pci-dss-4, false, 1", pci.Profile, pci.Compliant, pci.Summary.Failed)
	}
	if hipaa.Profile != "hipaa" || hipaa.Params["hipaa.idle"] != "15m" || hipaa.Compliant {
		t.Errorf("hipaa report: profile %q params %v compliant %v; want hipaa, hipaa.idle 15m, false (acme idles 20m)", hipaa.Profile, hipaa.Params, hipaa.Compliant)
	}
	found := false
	for _, f := range pci.Findings {
		if f.Tenant == "acme" && f.Rule == "idle-max" {
			found = true
			if f.Status != "fail" || f.Pass || f.Configured != "20m" || f.Required != "at most 15m" || f.Tier != "payments" || f.Severity != "error" || f.Source == "" {
				t.Errorf("acme idle-max finding: %+v", f)
			}
		}
	}
	if !found {
		t.Errorf("no idle-max finding for tenant acme")
	}
}

func TestAuditPolicyList(t *testing.T) {
	code, out, _ := runAuditArgs("--list")
	if code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	for _, name := range []string{"nist-800-63b-4-aal1", "nist-800-63b-3-aal3", "pci-dss-4", "hipaa", "asvs-4-l2", "asvs-5-l3", "--param hipaa.idle=DURATION (default 15m)", "Not shown by a configuration:"} {
		if !strings.Contains(out, name) {
			t.Errorf("--list output lacks %q", name)
		}
	}

	code, out, _ = runAuditArgs("--list", "--profile", "pci-dss-4", "--format", "json")
	var profiles []struct {
		Name  string `json:"name"`
		Rules []struct {
			ID, Severity, Scope, Key, Source, Text string
		} `json:"rules"`
		Params     []struct{ Name, Default, Text string } `json:"params"`
		NotChecked []string                               `json:"not_checked"`
	}
	if err := json.Unmarshal([]byte(out), &profiles); err != nil || code != 0 {
		t.Fatalf("--list --format json: exit %d, %v\n%s", code, err, out)
	}
	if len(profiles) != 1 || profiles[0].Name != "pci-dss-4" || len(profiles[0].Rules) == 0 || len(profiles[0].NotChecked) == 0 {
		t.Errorf("--list --profile pci-dss-4: got %+v", profiles)
	}
}
