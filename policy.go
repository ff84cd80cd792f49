package lapse

import (
	"fmt"
	"slices"
	"time"
)

// Tier is a sensitivity class of sessions (for example "standard",
// "sensitive", "critical") and the rules every session of it obeys.
// A zero duration or count means the rule does not apply, except for
// IdleTimeout and AbsoluteTimeout, which every tier must set.
type Tier struct {
	// IdleTimeout ends a session this long after its last recorded activity.
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after it was created or last
	// reauthenticated, however active it is.
	AbsoluteTimeout time.Duration
	// WarnBefore is how long before the first deadline a client should warn.
	WarnBefore time.Duration
	// RequireAAL is the authenticator assurance level (1-3) every verify of
	// a session in this tier needs; 0 or 1 asks for nothing beyond a session.
	RequireAAL int
	// MaxAuthAge is how long ago the last authentication may be for a verify
	// to pass; 0 means any age within the timeouts.
	MaxAuthAge time.Duration
	// MaxSessions caps the active sessions one subject holds in this tier of
	// one tenant; creating one more ends the oldest. 0 means no cap.
	MaxSessions int
	// RemindAfter is how long a session may last before the browser client
	// gently suggests signing out (shared devices); 0 means never.
	RemindAfter time.Duration
	// Profiles names compliance profiles the tier must satisfy; lapse serve
	// refuses a policy that breaks one.
	Profiles []string

	// DeviceBinding says whether sessions are bound to the browser's
	// device key (DBSC); empty means off. See [Tier.Device] for the
	// defaults of the three settings below.
	DeviceBinding DeviceBindingMode
	// OnTheft is what a suspected theft of a bound session does.
	OnTheft TheftAction
	// BindGrace is how long a new session of a tier that requires binding
	// works before it has bound.
	BindGrace time.Duration
	// BoundCookieLifetime is how long a bound cookie works before the
	// browser must refresh it with a proof of its key.
	BoundCookieLifetime time.Duration
	// ClientDrift is what a verify of a session from a client that
	// differs from the session's does ([Session.Drift]): "" means
	// [DriftAllow], which records it and lets the verify pass, so that a
	// phone that changes network is never signed out.
	ClientDrift DriftAction
	// DriftPrefixV4 and DriftPrefixV6 are the lengths of the network an
	// address may move within without counting as drift, and of the
	// network a device is recognised by; 0 means
	// [DefaultDriftPrefixV4] (/24) and [DefaultDriftPrefixV6] (/48).
	DriftPrefixV4, DriftPrefixV6 int
	// OnTokenReuse is what presenting a token a step-up replaced, after
	// its grace, does: "" means [ReuseRecord].
	OnTokenReuse ReuseAction
	// NewDeviceWindow is how long a device is remembered for a subject:
	// a session created from a device none of the subject's sessions
	// active within the window came from records [EventNewDevice]. 0
	// means the rule does not apply (no event). A window longer than the
	// store keeps ended sessions (lapse serve's retention) is as long as
	// that.
	NewDeviceWindow time.Duration
}

// DriftAction is what a tier does about client drift.
type DriftAction string

// Drift actions.
const (
	// DriftAllow records [EventClientChanged], once per session and
	// client, and lets the verify pass.
	DriftAllow DriftAction = "allow"
	// DriftStepUp refuses a verify with [CodeStepUpRequired] (the drift's
	// reason in Reason) until the subject authenticates again from the
	// new client, which becomes the session's.
	DriftStepUp DriftAction = "step_up"
	// DriftRevoke revokes the session with [ReasonTheft].
	DriftRevoke DriftAction = "revoke"
)

// ReuseAction is what a tier does when a replaced token comes back.
type ReuseAction string

// Reuse actions.
const (
	// ReuseRecord records [EventTokenReused] (once per session) and
	// answers the token as unknown.
	ReuseRecord ReuseAction = "record"
	// ReuseRevoke revokes the whole session with [ReasonTheft].
	ReuseRevoke ReuseAction = "revoke"
)

// WarnAt returns when a client should warn about a session whose earliest
// deadline is deadline.
func (t Tier) WarnAt(deadline time.Time) time.Time {
	return deadline.Add(-t.WarnBefore)
}

// Bounds are the loosest values a tenant may set for a tier. A zero field
// means the tier's own value is the bound, so by default a tenant may only
// tighten a tier.
type Bounds struct {
	IdleTimeout     time.Duration // largest idle timeout a tenant may set
	AbsoluteTimeout time.Duration // largest absolute timeout a tenant may set
	MaxAuthAge      time.Duration // largest max_auth_age a tenant may set
	MaxSessions     int           // largest session cap a tenant may set
	RequireAAL      int           // smallest AAL a tenant may require
}

// TierOverride is a tenant's change to a tier; nil fields inherit the
// platform's value.
type TierOverride struct {
	IdleTimeout     *time.Duration
	AbsoluteTimeout *time.Duration
	WarnBefore      *time.Duration
	RequireAAL      *int
	MaxAuthAge      *time.Duration
	MaxSessions     *int
	RemindAfter     *time.Duration
}

// Policy is the whole session policy of a platform: its tiers, the bounds
// tenants must stay within, and the tenants' overrides. Build one, then
// call [Policy.Validate] before use; the [Manager] refuses an invalid one.
type Policy struct {
	// DefaultTier is the tier of a session created without one.
	DefaultTier string
	// Tiers maps a tier name to its rules.
	Tiers map[string]Tier
	// Bounds maps a tier name to the loosest values tenants may set.
	Bounds map[string]Bounds
	// Tenants maps a tenant to its overrides, by tier name.
	Tenants map[string]map[string]TierOverride
	// AllowUndeclaredTenants lets sessions name tenants that Tenants does
	// not list; they get the platform's tiers. When false, such a session
	// is refused with [CodeUnknownTenant].
	AllowUndeclaredTenants bool

	effective map[string]map[string]Tier // tenant -> tier -> resolved
}

// FieldError is one problem with a policy, at a dotted key path such as
// "tiers.sensitive.idle_timeout" (the key names of the YAML config).
type FieldError struct {
	Path    string
	Message string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Message }

// PolicyError lists every problem found in a policy.
type PolicyError struct {
	Problems []*FieldError
}

func (e *PolicyError) Error() string {
	msg := e.Problems[0].Error()
	if n := len(e.Problems) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more)", n)
	}
	return msg
}

// Validate checks the policy and resolves every tenant's effective tiers.
// It returns a [*PolicyError] naming each key that is wrong.
func (p *Policy) Validate() error {
	var probs []*FieldError
	bad := func(path, format string, args ...any) {
		probs = append(probs, &FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if len(p.Tiers) == 0 {
		bad("tiers", "at least one tier is required")
	}
	if p.DefaultTier == "" {
		bad("default_tier", "is required")
	} else if _, ok := p.Tiers[p.DefaultTier]; !ok && len(p.Tiers) > 0 {
		bad("default_tier", "names tier %q, which is not declared under tiers", p.DefaultTier)
	}
	for _, name := range sortedKeys(p.Tiers) {
		if !validName(name) {
			bad("tiers."+name, "a tier name is 1-64 letters, digits, '-', '_' or '.'")
		}
		validateTier("tiers."+name, p.Tiers[name], bad)
	}
	for _, name := range sortedKeys(p.Bounds) {
		t, ok := p.Tiers[name]
		if !ok {
			bad("tiers."+name+".tenant_bounds", "tier %q is not declared", name)
			continue
		}
		validateBounds("tiers."+name+".tenant_bounds", t, p.Bounds[name], bad)
	}
	p.effective = map[string]map[string]Tier{"": p.Tiers}
	for _, tenant := range sortedKeys(p.Tenants) {
		if !validName(tenant) {
			bad("tenants."+tenant, "a tenant name is 1-64 letters, digits, '-', '_' or '.'")
		}
		eff := make(map[string]Tier, len(p.Tiers))
		for name, t := range p.Tiers {
			eff[name] = t
		}
		for _, name := range sortedKeys(p.Tenants[tenant]) {
			path := "tenants." + tenant + ".tiers." + name
			base, ok := p.Tiers[name]
			if !ok {
				bad(path, "tier %q is not declared under tiers", name)
				continue
			}
			t := applyOverride(base, p.Tenants[tenant][name])
			validateTier(path, t, bad)
			checkBounds(path, t, base, p.Bounds[name], bad)
			eff[name] = t
		}
		p.effective[tenant] = eff
	}
	if len(probs) > 0 {
		p.effective = nil
		return &PolicyError{Problems: probs}
	}
	return nil
}

// Tier returns the effective rules of tier for tenant, resolving "" to the
// default tier. It fails with [CodeUnknownTier] or [CodeUnknownTenant].
// The policy must have passed [Policy.Validate].
func (p *Policy) Tier(tenant, tier string) (string, Tier, error) {
	if tier == "" {
		tier = p.DefaultTier
	}
	tiers, ok := p.effective[tenant]
	if !ok {
		if !p.AllowUndeclaredTenants {
			return "", Tier{}, Errorf(CodeUnknownTenant, "tenant %q is not declared in the policy", tenant)
		}
		tiers = p.effective[""]
	}
	t, ok := tiers[tier]
	if !ok {
		return "", Tier{}, Errorf(CodeUnknownTier, "tier %q is not declared in the policy", tier)
	}
	return tier, t, nil
}

// TierNames returns the platform's tiers in order.
func (p *Policy) TierNames() []string { return sortedKeys(p.Tiers) }

// TenantNames returns the declared tenants in order, without the platform
// itself ("").
func (p *Policy) TenantNames() []string { return sortedKeys(p.Tenants) }

func validateTier(path string, t Tier, bad func(string, string, ...any)) {
	if t.IdleTimeout <= 0 {
		bad(path+".idle_timeout", "must be a positive duration")
	}
	if t.AbsoluteTimeout <= 0 {
		bad(path+".absolute_timeout", "must be a positive duration; every session needs an absolute deadline")
	}
	if t.IdleTimeout > t.AbsoluteTimeout && t.AbsoluteTimeout > 0 {
		bad(path+".idle_timeout", "%s is longer than absolute_timeout %s", t.IdleTimeout, t.AbsoluteTimeout)
	}
	if t.WarnBefore < 0 || (t.IdleTimeout > 0 && t.WarnBefore >= t.IdleTimeout) {
		bad(path+".warn_before", "must be at least 0 and shorter than idle_timeout")
	}
	if t.RequireAAL < 0 || t.RequireAAL > 3 {
		bad(path+".require_aal", "must be 1, 2 or 3")
	}
	if t.MaxAuthAge < 0 {
		bad(path+".max_auth_age", "must not be negative")
	}
	if t.MaxSessions < 0 {
		bad(path+".max_sessions", "must not be negative")
	}
	if t.RemindAfter < 0 {
		bad(path+".remind_after", "must not be negative")
	}
	validateDevice(path, t, bad)
	validateSignals(path, t, bad)
}

// validateDevice checks a tier's device binding settings.
func validateDevice(path string, t Tier, bad func(string, string, ...any)) {
	switch t.DeviceBinding {
	case "", DeviceBindingOff, DeviceBindingPreferred, DeviceBindingRequired:
	default:
		bad(path+".device_binding", "must be off, preferred or required")
	}
	switch t.OnTheft {
	case "", TheftRecord, TheftRevoke:
	default:
		bad(path+".on_theft", "must be record or revoke")
	}
	if t.BindGrace < 0 {
		bad(path+".bind_grace", "must not be negative")
	}
	switch l := t.BoundCookieLifetime; {
	case l < 0:
		bad(path+".bound_cookie_lifetime", "must not be negative")
	case l > 0 && l < time.Second:
		bad(path+".bound_cookie_lifetime", "must be at least 1s")
	case t.IdleTimeout > 0 && l > t.IdleTimeout:
		bad(path+".bound_cookie_lifetime", "%s is longer than idle_timeout %s; a bound cookie outliving its session protects nothing", l, t.IdleTimeout)
	}
}

// validateSignals checks the settings of the signals of suspicious
// activity.
func validateSignals(path string, t Tier, bad func(string, string, ...any)) {
	switch t.ClientDrift {
	case "", DriftAllow, DriftStepUp, DriftRevoke:
	default:
		bad(path+".client_drift", "%q is not one of allow, step_up, revoke", t.ClientDrift)
	}
	if t.DriftPrefixV4 < 0 || t.DriftPrefixV4 > 32 {
		bad(path+".drift_prefix_v4", "must be 1-32 (0 means %d)", DefaultDriftPrefixV4)
	}
	if t.DriftPrefixV6 < 0 || t.DriftPrefixV6 > 128 {
		bad(path+".drift_prefix_v6", "must be 1-128 (0 means %d)", DefaultDriftPrefixV6)
	}
	switch t.OnTokenReuse {
	case "", ReuseRecord, ReuseRevoke:
	default:
		bad(path+".on_token_reuse", "%q is not one of record, revoke", t.OnTokenReuse)
	}
	if t.NewDeviceWindow < 0 {
		bad(path+".new_device_window", "must not be negative")
	}
}

// validateBounds refuses bounds tighter than the tier itself: a bound is
// how far tenants may loosen, and the platform's own tier must be inside.
func validateBounds(path string, t Tier, b Bounds, bad func(string, string, ...any)) {
	loose := func(key string, bound, tier time.Duration) {
		if bound > 0 && bound < tier {
			bad(path+"."+key, "%s is tighter than the tier's own %s; a bound may only allow looser values", bound, tier)
		}
	}
	loose("idle_timeout", b.IdleTimeout, t.IdleTimeout)
	loose("absolute_timeout", b.AbsoluteTimeout, t.AbsoluteTimeout)
	loose("max_auth_age", b.MaxAuthAge, t.MaxAuthAge)
	if b.MaxSessions > 0 && b.MaxSessions < t.MaxSessions {
		bad(path+".max_sessions", "%d is tighter than the tier's own %d", b.MaxSessions, t.MaxSessions)
	}
	if b.RequireAAL > t.RequireAAL {
		bad(path+".require_aal", "%d is stricter than the tier's own %d", b.RequireAAL, t.RequireAAL)
	}
}

func applyOverride(t Tier, o TierOverride) Tier {
	set := func(dst *time.Duration, src *time.Duration) {
		if src != nil {
			*dst = *src
		}
	}
	set(&t.IdleTimeout, o.IdleTimeout)
	set(&t.AbsoluteTimeout, o.AbsoluteTimeout)
	set(&t.WarnBefore, o.WarnBefore)
	set(&t.MaxAuthAge, o.MaxAuthAge)
	set(&t.RemindAfter, o.RemindAfter)
	if o.RequireAAL != nil {
		t.RequireAAL = *o.RequireAAL
	}
	if o.MaxSessions != nil {
		t.MaxSessions = *o.MaxSessions
	}
	t.Profiles = slices.Clone(t.Profiles)
	return t
}

// checkBounds refuses a tenant tier looser than its bound, or, where the
// platform set no bound, looser than the platform's tier.
func checkBounds(path string, t, base Tier, b Bounds, bad func(string, string, ...any)) {
	maxDur := func(key string, got, platform, bound time.Duration) {
		if platform == 0 {
			return // the platform sets no limit
		}
		limit := max(bound, platform)
		if got == 0 || got > limit {
			bad(path+"."+key, "%s is looser than the platform allows (at most %s)", fmtDur(got), limit)
		}
	}
	maxDur("idle_timeout", t.IdleTimeout, base.IdleTimeout, b.IdleTimeout)
	maxDur("absolute_timeout", t.AbsoluteTimeout, base.AbsoluteTimeout, b.AbsoluteTimeout)
	maxDur("max_auth_age", t.MaxAuthAge, base.MaxAuthAge, b.MaxAuthAge)
	if base.MaxSessions > 0 {
		limit := max(b.MaxSessions, base.MaxSessions)
		if t.MaxSessions == 0 || t.MaxSessions > limit {
			bad(path+".max_sessions", "%d is looser than the platform allows (at most %d)", t.MaxSessions, limit)
		}
	}
	floor := base.RequireAAL
	if b.RequireAAL > 0 {
		floor = min(b.RequireAAL, base.RequireAAL)
	}
	if t.RequireAAL < floor {
		bad(path+".require_aal", "%d is looser than the platform allows (at least %d)", t.RequireAAL, floor)
	}
}

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "0 (no limit)"
	}
	return d.String()
}

// validName reports whether s is a usable tier or tenant name.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
