package console

import (
	"cmp"
	"net/http"
	"slices"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/compliance"
)

type policyView struct {
	base
	Profiles []compliance.Profile
	// Selected is the profile chosen to audit every tier against; ""
	// audits each tier against the profiles attached to it.
	Selected compliance.Profile
	Params   map[string]string
	Engine   []compliance.Finding
	Tenants  []tenantView
	// Console is the tier of console sessions.
	Console    lapse.Tier
	Undeclared bool
	AuditError string
}

type tenantView struct {
	Name string // "" for the platform
	Rows []tierRow
}

// tierRow is one effective tier of one tenant, with the findings of the
// audit beside it.
type tierRow struct {
	Name     string
	T        lapse.Tier
	Over     map[string]bool // keys the tenant overrides
	Default  bool
	Audited  bool
	Findings []compliance.Finding // failures first
	Pass     int
	Fail     int
	Warn     int
}

func (c *Console) policyPage(w http.ResponseWriter, r *http.Request, a *access) error {
	p := c.m.Policy()
	v := &policyView{base: c.base(r, a, "Policy", "policy"), Profiles: compliance.Profiles(),
		Console: c.own.Policy().Tiers[Tier], Undeclared: p.AllowUndeclaredTenants}
	var reports []compliance.Report
	if name := r.URL.Query().Get("profile"); name != "" {
		prof, ok := compliance.Lookup(name)
		if !ok {
			return &pageError{http.StatusBadRequest, "Unknown profile", (&compliance.UnknownProfileError{Name: name}).Error()}
		}
		v.Selected = prof
		reports = []compliance.Report{compliance.Audit(p, prof)}
		v.Params = reports[0].Params
	} else {
		var err error
		if reports, err = compliance.AuditAttached(p); err != nil {
			v.AuditError = err.Error()
		}
	}
	found := map[at][]compliance.Finding{}
	seen := map[string]bool{}
	for _, rep := range reports {
		if rep.Err != nil {
			v.AuditError = rep.Err.Error()
		}
		for _, f := range rep.Findings {
			if f.Scope == compliance.ScopeEngine {
				if !seen[f.Profile+" "+f.Rule] {
					seen[f.Profile+" "+f.Rule] = true
					v.Engine = append(v.Engine, f)
				}
				continue
			}
			found[at{f.Tenant, f.Tier}] = append(found[at{f.Tenant, f.Tier}], f)
		}
	}
	slices.SortStableFunc(v.Engine, byStatus)
	tenants := append([]string{""}, p.TenantNames()...)
	if a.who.Tenant != "" {
		tenants = []string{a.who.Tenant} // its effective tiers; no other tenant's
	}
	var err error
	if v.Tenants, err = tenantViews(p, tenants, found); err != nil {
		return err
	}
	c.render(w, http.StatusOK, "policy", v)
	return nil
}

// at is a tier of a tenant.
type at struct{ tenant, tier string }

// tenantViews returns the effective tiers of tenants in p, each with the
// findings about it.
func tenantViews(p *lapse.Policy, tenants []string, found map[at][]compliance.Finding) ([]tenantView, error) {
	var out []tenantView
	for _, tenant := range tenants {
		tv := tenantView{Name: tenant}
		for _, name := range p.TierNames() {
			_, t, err := p.Tier(tenant, name)
			if err != nil {
				return nil, err
			}
			row := tierRow{Name: name, T: t, Over: overridden(p.Tiers[name], t), Default: name == p.DefaultTier}
			fs := found[at{tenant, name}]
			row.Audited = len(fs) > 0
			slices.SortStableFunc(fs, byStatus)
			row.Findings = fs
			for _, f := range fs {
				switch f.Status() {
				case "pass":
					row.Pass++
				case "warn":
					row.Warn++
				default:
					row.Fail++
				}
			}
			tv.Rows = append(tv.Rows, row)
		}
		out = append(out, tv)
	}
	return out, nil
}

// byStatus puts failures first, then warnings, then passes.
func byStatus(a, b compliance.Finding) int {
	rank := map[string]int{"fail": 0, "warn": 1, "pass": 2}
	return cmp.Compare(rank[a.Status()], rank[b.Status()])
}

// overridden returns the keys in which a tenant's tier t differs from the
// platform's tier base.
func overridden(base, t lapse.Tier) map[string]bool {
	return map[string]bool{
		"idle_timeout":     t.IdleTimeout != base.IdleTimeout,
		"absolute_timeout": t.AbsoluteTimeout != base.AbsoluteTimeout,
		"warn_before":      t.WarnBefore != base.WarnBefore,
		"require_aal":      t.RequireAAL != base.RequireAAL,
		"max_auth_age":     t.MaxAuthAge != base.MaxAuthAge,
		"max_sessions":     t.MaxSessions != base.MaxSessions,
		"remind_after":     t.RemindAfter != base.RemindAfter,
	}
}
