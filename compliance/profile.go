package compliance

import (
	"fmt"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
)

// Severity says how a failed rule counts: an error fails the audit, a
// warning fails it only in strict mode.
type Severity string

// Severities. A SHALL or MUST of the source is an error, a SHOULD a
// warning.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Scope says what a rule reads.
type Scope string

// Scopes.
const (
	// ScopeTier rules read one effective tier; an audit runs them for
	// every tier and every tenant's version of it.
	ScopeTier Scope = "tier"
	// ScopeEngine rules read the [Engine] facts; an audit runs them once.
	ScopeEngine Scope = "engine"
)

// Input is what a rule's check reads.
type Input struct {
	// Tier is the effective tier under audit; zero for engine rules.
	Tier lapse.Tier
	// Engine is how the session engine behaves.
	Engine Engine

	params map[string]time.Duration
}

// Param returns the value of the named profile parameter: the one given
// with [WithParam], or else the parameter's default. It returns 0 for a
// parameter the profile does not declare.
func (in Input) Param(name string) time.Duration { return in.params[name] }

// Outcome is the result of one check: the value found, the value the
// rule requires, both as an auditor would read them, and whether the
// rule passed.
type Outcome struct {
	Configured string
	Required   string
	Pass       bool
}

// Rule is one requirement of a profile.
type Rule struct {
	// ID names the rule, stable and unique within its profile, such as
	// "idle-max".
	ID string
	// Severity is [SeverityError] for a SHALL or MUST of the source and
	// [SeverityWarning] for a SHOULD.
	Severity Severity
	// Scope says whether the rule reads a tier or the engine.
	Scope Scope
	// Key is the tier's configuration key the rule reads, such as
	// "idle_timeout"; empty for engine rules.
	Key string
	// Text states the requirement in one line.
	Text string
	// Source cites the document and section, such as
	// "PCI DSS v4.0.1 Req. 8.2.8".
	Source string
	// Check evaluates the rule.
	Check func(Input) Outcome
}

// Param is a value a profile leaves to the organisation, such as the
// HIPAA "predetermined time of inactivity".
type Param struct {
	// Name is the parameter's name, such as "hipaa.idle".
	Name string
	// Default is its value when not given; 0 means "not declared", and
	// the rules that read it check less.
	Default time.Duration
	// Text says what it is and why the default was chosen.
	Text string
}

// Profile is a named set of rules taken from one standard.
type Profile struct {
	// Name is the stable name used in configuration and on the command
	// line, such as "nist-800-63b-4-aal2".
	Name string
	// Title names the standard and level for people.
	Title string
	// Rules are the checks, in the order they are reported.
	Rules []Rule
	// Params are the values the organisation may set.
	Params []Param
	// NotChecked lists the parts of the standard that bear on sessions
	// but that neither a configuration nor the engine facts can show.
	NotChecked []string
}

// Rule returns the profile's rule with the given id.
func (p Profile) Rule(id string) (Rule, bool) {
	for _, r := range p.Rules {
		if r.ID == id {
			return r, true
		}
	}
	return Rule{}, false
}

// Param returns the profile's parameter with the given name.
func (p Profile) Param(name string) (Param, bool) {
	for _, pa := range p.Params {
		if pa.Name == name {
			return pa, true
		}
	}
	return Param{}, false
}

// Profiles returns every built-in profile, in a stable order: NIST SP
// 800-63B-4, NIST SP 800-63B rev 3, PCI DSS, HIPAA, ASVS 4.0.3, ASVS
// 5.0.0. Each call returns fresh values the caller may change.
func Profiles() []Profile {
	return []Profile{
		nist4(1), nist4(2), nist4(3),
		nist3(1), nist3(2), nist3(3),
		pciDSS4(), hipaa(),
		asvs4(1), asvs4(2), asvs4(3),
		asvs5(1), asvs5(2), asvs5(3),
	}
}

// Lookup returns the built-in profile with the given name.
func Lookup(name string) (Profile, bool) {
	for _, p := range Profiles() {
		if p.Name == name {
			return p, true
		}
	}
	return Profile{}, false
}

// Names returns the names of the built-in profiles, in the order of
// [Profiles].
func Names() []string {
	var names []string
	for _, p := range Profiles() {
		names = append(names, p.Name)
	}
	return names
}

// UnknownProfileError reports a profile name that no built-in profile has.
type UnknownProfileError struct {
	Name string
}

// Error names the profile and lists the known ones.
func (e *UnknownProfileError) Error() string {
	return fmt.Sprintf("unknown compliance profile %q (known: %s)", e.Name, strings.Join(Names(), ", "))
}

// FormatDuration writes d as findings show it to an auditor: "15m",
// "24h", "30d", "12h0m1s"; whole days from two days up are days; 0 is
// "none".
func FormatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == 0:
		return "none"
	case d%day == 0 && d >= 2*day:
		return fmt.Sprintf("%dd", d/day)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
