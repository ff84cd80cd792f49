package compliance

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
)

// Option adjusts an audit.
type Option func(*options)

type options struct {
	engine Engine
	params map[string]time.Duration
}

func newOptions(opts []Option) options {
	o := options{engine: LapseEngine(), params: map[string]time.Duration{}}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithParam sets a profile parameter, such as [ParamHIPAAIdle]. A profile
// ignores parameters it does not declare.
func WithParam(name string, value time.Duration) Option {
	return func(o *options) { o.params[name] = value }
}

// WithEngine audits against other engine facts than [LapseEngine]'s.
func WithEngine(e Engine) Option {
	return func(o *options) { o.engine = e }
}

// Finding is the outcome of one rule for one tier, one tenant's version
// of a tier, or the engine.
type Finding struct {
	// Profile and Rule name the rule checked.
	Profile string `json:"profile"`
	Rule    string `json:"rule"`
	// Scope says whether a tier or the engine was checked.
	Scope Scope `json:"scope"`
	// Tier is the tier's name; empty for engine rules.
	Tier string `json:"tier"`
	// Tenant is the tenant whose effective tier this is; empty for the
	// platform's own tier.
	Tenant string `json:"tenant"`
	// Key is the configuration key the rule reads.
	Key string `json:"key"`
	// Configured is the value found and Required the value the rule
	// asks for, as an auditor reads them.
	Configured string   `json:"configured"`
	Required   string   `json:"required"`
	Severity   Severity `json:"severity"`
	Source     string   `json:"source"`
	Text       string   `json:"text"`
	// Pass reports whether the rule was met.
	Pass bool `json:"pass"`
}

// Status is "pass", "fail" for a failed error and "warn" for a failed
// warning.
func (f Finding) Status() string {
	switch {
	case f.Pass:
		return "pass"
	case f.Severity == SeverityWarning:
		return "warn"
	}
	return "fail"
}

// MarshalJSON adds the status to the finding's fields.
func (f Finding) MarshalJSON() ([]byte, error) {
	type plain Finding
	return json.Marshal(struct {
		plain
		Status string `json:"status"`
	}{plain(f), f.Status()})
}

// where names the finding's subject for people: `tier "standard" of
// tenant "acme"`, or "the engine".
func (f Finding) where() string {
	switch {
	case f.Scope == ScopeEngine:
		return "the engine"
	case f.Tenant != "":
		return fmt.Sprintf("tier %q of tenant %q", f.Tier, f.Tenant)
	}
	return fmt.Sprintf("tier %q", f.Tier)
}

// Report is the result of auditing a policy against one profile.
type Report struct {
	// Profile and Title name the profile audited against.
	Profile string `json:"profile"`
	Title   string `json:"title"`
	// Params holds the value of each parameter the profile declares, as
	// used ("not declared" when unset with no default).
	Params map[string]string `json:"params,omitempty"`
	// Findings lists the engine rules first, then each tier in name
	// order, then each tenant's tiers, in rule order.
	Findings []Finding `json:"findings"`
	// Err is set when the policy is invalid and could not be audited.
	Err error `json:"-"`
}

// Failed reports whether the audit failed: the policy is invalid, or an
// error rule failed, or, when strict, any rule failed.
func (r Report) Failed(strict bool) bool {
	if r.Err != nil {
		return true
	}
	for _, f := range r.Findings {
		if !f.Pass && (strict || f.Severity == SeverityError) {
			return true
		}
	}
	return false
}

// Count returns how many findings passed, failed (errors) and warned.
func (r Report) Count() (passed, failed, warned int) {
	for _, f := range r.Findings {
		switch f.Status() {
		case "pass":
			passed++
		case "warn":
			warned++
		default:
			failed++
		}
	}
	return passed, failed, warned
}

// Audit checks every tier of p, and every declared tenant's effective
// version of it, against profile; engine rules are checked once. p need
// not have been validated, and Audit does not change it: it validates a
// copy, and an invalid policy yields a report with Err set and no
// findings. Audit is safe for concurrent use with readers of p.
func Audit(p *lapse.Policy, profile Profile, opts ...Option) Report {
	return audit(p, profile, newOptions(opts), nil)
}

// audit checks the tiers that pick reports true for, or all of them.
func audit(p *lapse.Policy, profile Profile, o options, pick func(lapse.Tier) bool) Report {
	r := Report{Profile: profile.Name, Title: profile.Title, Findings: []Finding{}}
	params := map[string]time.Duration{}
	for _, pa := range profile.Params {
		v, ok := o.params[pa.Name]
		if !ok {
			v = pa.Default
		}
		params[pa.Name] = v
		if r.Params == nil {
			r.Params = map[string]string{}
		}
		r.Params[pa.Name] = FormatDuration(v)
		if v == 0 {
			r.Params[pa.Name] = "not declared"
		}
	}
	q := *p // a copy, so that validating it leaves p alone
	if err := q.Validate(); err != nil {
		r.Err = err
		return r
	}
	check := func(rule Rule, in Input, tier, tenant string) {
		in.Engine, in.params = o.engine, params
		out := rule.Check(in)
		r.Findings = append(r.Findings, Finding{
			Profile: profile.Name, Rule: rule.ID, Scope: rule.Scope, Tier: tier, Tenant: tenant, Key: rule.Key,
			Configured: out.Configured, Required: out.Required, Severity: rule.Severity,
			Source: rule.Source, Text: rule.Text, Pass: out.Pass,
		})
	}
	for _, rule := range profile.Rules {
		if rule.Scope == ScopeEngine {
			check(rule, Input{}, "", "")
		}
	}
	tiers := sortedKeys(q.Tiers)
	for _, tenant := range append([]string{""}, q.TenantNames()...) {
		for _, name := range tiers {
			if pick != nil && !pick(q.Tiers[name]) {
				continue
			}
			_, t, err := q.Tier(tenant, name)
			if err != nil { // cannot happen after Validate
				r.Err = err
				return r
			}
			for _, rule := range profile.Rules {
				if rule.Scope != ScopeEngine {
					check(rule, Input{Tier: t}, name, tenant)
				}
			}
		}
	}
	return r
}

// AuditAttached audits each tier of p, and every tenant's version of it,
// against the profiles named in the tier's Profiles field. It returns one
// report per profile named anywhere, in the order of [Profiles], each
// covering only the tiers that name it. It fails with a
// [*lapse.PolicyError] naming every tier that names an unknown profile
// (path tiers.NAME.profiles), or with the policy's own validation error.
func AuditAttached(p *lapse.Policy, opts ...Option) ([]Report, error) {
	q := *p
	if err := q.Validate(); err != nil {
		return nil, err
	}
	named := map[string]bool{}
	var probs []*lapse.FieldError
	for _, tier := range sortedKeys(q.Tiers) {
		for _, name := range q.Tiers[tier].Profiles {
			if _, ok := Lookup(name); !ok {
				probs = append(probs, &lapse.FieldError{Path: "tiers." + tier + ".profiles", Message: (&UnknownProfileError{Name: name}).Error()})
				continue
			}
			named[name] = true
		}
	}
	if len(probs) > 0 {
		return nil, &lapse.PolicyError{Problems: probs}
	}
	o := newOptions(opts)
	var reports []Report
	for _, profile := range Profiles() {
		if !named[profile.Name] {
			continue
		}
		reports = append(reports, audit(&q, profile, o, func(t lapse.Tier) bool {
			return slices.Contains(t.Profiles, profile.Name)
		}))
	}
	return reports, nil
}

// EnforceError lists the error rules a policy breaks in the profiles its
// tiers name.
type EnforceError struct {
	Findings []Finding
}

// Error lists the failed rules, one line each, such as:
//
//	tier "payments" of tenant "acme" fails rule idle-max of profile pci-dss-4 (PCI DSS v4.0.1 Req. 8.2.8 ...): idle_timeout is 20m, required at most 15m
func (e *EnforceError) Error() string {
	var b strings.Builder
	for i, f := range e.Findings {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s fails rule %s of profile %s (%s): ", f.where(), f.Rule, f.Profile, f.Source)
		if f.Key != "" {
			fmt.Fprintf(&b, "%s is %s, required %s", f.Key, f.Configured, f.Required)
		} else {
			b.WriteString(f.Text)
		}
	}
	return b.String()
}

// Enforce audits p as [AuditAttached] does and returns an
// [*EnforceError] naming the tier, tenant, rule and profile of every
// failed error rule; warnings never refuse a policy. It returns nil for
// a policy whose tiers name no profile. lapse serve calls it at start-up
// and refuses to run a policy it rejects. It fails as AuditAttached does
// for unknown profile names or an invalid policy.
func Enforce(p *lapse.Policy, opts ...Option) error {
	reports, err := AuditAttached(p, opts...)
	if err != nil {
		return err
	}
	var bad []Finding
	for _, r := range reports {
		if r.Err != nil {
			return r.Err
		}
		for _, f := range r.Findings {
			if !f.Pass && f.Severity == SeverityError {
				bad = append(bad, f)
			}
		}
	}
	if len(bad) > 0 {
		return &EnforceError{Findings: bad}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
