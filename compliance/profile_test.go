package compliance_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/compliance"
)

func TestProfiles(t *testing.T) {
	t.Run("names_are_stable", func(t *testing.T) {
		want := []string{
			"nist-800-63b-4-aal1", "nist-800-63b-4-aal2", "nist-800-63b-4-aal3",
			"nist-800-63b-3-aal1", "nist-800-63b-3-aal2", "nist-800-63b-3-aal3",
			"pci-dss-4", "hipaa",
			"asvs-4-l1", "asvs-4-l2", "asvs-4-l3",
			"asvs-5-l1", "asvs-5-l2", "asvs-5-l3",
		}
		if got := compliance.Names(); !slices.Equal(got, want) {
			t.Errorf("Names():\n got %v\nwant %v", got, want)
		}
	})

	t.Run("unknown_name_is_not_found", func(t *testing.T) {
		if _, ok := compliance.Lookup("nist"); ok {
			t.Errorf("Lookup(%q) found a profile, want none", "nist")
		}
	})

	for _, p := range compliance.Profiles() {
		t.Run(p.Name+"/rules_are_complete", func(t *testing.T) {
			if p.Title == "" || len(p.Rules) == 0 || len(p.NotChecked) == 0 {
				t.Errorf("title %q, %d rules, %d not-checked notes; want all set", p.Title, len(p.Rules), len(p.NotChecked))
			}
			seen := map[string]bool{}
			for _, r := range p.Rules {
				if seen[r.ID] {
					t.Errorf("rule id %q repeated", r.ID)
				}
				seen[r.ID] = true
				if r.ID == "" || r.Text == "" || r.Source == "" || r.Check == nil {
					t.Errorf("rule %q: id, text, source and check must all be set", r.ID)
				}
				if r.Severity != compliance.SeverityError && r.Severity != compliance.SeverityWarning {
					t.Errorf("rule %q: severity %q", r.ID, r.Severity)
				}
				if (r.Scope == compliance.ScopeTier) != (r.Key != "") || (r.Scope != compliance.ScopeTier && r.Scope != compliance.ScopeEngine) {
					t.Errorf("rule %q: scope %q with key %q; tier rules name a key, engine rules none", r.ID, r.Scope, r.Key)
				}
			}
		})
	}

	t.Run("every_profile_checks_an_absolute_or_idle_limit_or_says_why_not", func(t *testing.T) {
		for _, p := range compliance.Profiles() {
			tierRules := 0
			for _, r := range p.Rules {
				if r.Scope == compliance.ScopeTier {
					tierRules++
				}
			}
			if tierRules == 0 && p.Name != "asvs-5-l1" { // ASVS 5 L1 has no timeout requirement
				t.Errorf("profile %s checks nothing in the configuration", p.Name)
			}
		}
	})
}

func TestFormatDuration(t *testing.T) {
	// Checked through the values an auditor reads in a finding.
	tests := []struct {
		name    string
		profile string
		rule    string
		tier    lapse.Tier
		want    string
	}{
		{"minutes_drop_zero_seconds", "pci-dss-4", "idle-max", tier(15*min, 8*hour, 2), "15m"},
		{"hours_drop_zero_minutes", "nist-800-63b-4-aal3", "absolute-max", tier(15*min, 12*hour, 3), "12h"},
		{"seconds_are_kept", "nist-800-63b-4-aal3", "absolute-max", tier(15*min, 12*hour+sec, 3), "12h0m1s"},
		{"whole_days_are_days", "asvs-4-l1", "absolute-max", tier(15*min, 30*day, 1), "30d"},
		{"one_day_is_24h", "nist-800-63b-4-aal2", "absolute-max", tier(15*min, 24*hour, 2), "24h"},
		{"hours_and_minutes", "asvs-4-l1", "absolute-max", tier(15*min, 90*min, 1), "1h30m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := finding(t, tt.profile, tt.rule, tt.tier).Configured; got != tt.want {
				t.Errorf("configured: got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDocs keeps docs/compliance.md in step with the profiles: each has
// a section that lists every one of its rules with its source.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile("../docs/compliance.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, p := range compliance.Profiles() {
		head := "### `" + p.Name + "`"
		i := strings.Index(doc, head)
		if i < 0 {
			t.Errorf("docs/compliance.md has no section %q", head)
			continue
		}
		section := doc[i+len(head):]
		if j := strings.Index(section, "\n### "); j >= 0 {
			section = section[:j]
		}
		for _, r := range p.Rules {
			row := "| `" + r.ID + "` | " + string(r.Severity) + " |"
			if !strings.Contains(section, row) || !strings.Contains(section, r.Source) {
				t.Errorf("docs section %s does not list rule %s as %s with source %q", p.Name, r.ID, r.Severity, r.Source)
			}
		}
	}
}
