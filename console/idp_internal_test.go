package console

import (
	"regexp"
	"testing"

	"github.com/lapsehq/lapse"
)

// TestIdPRoleIsTheHighestMapped: whatever the order of the mappings, the
// highest role any value maps to wins; at that role a platform-wide
// mapping wins over tenant-bound ones; two tenants and no platform-wide
// mapping are refused; no mapped value is refused.
func TestIdPRoleIsTheHighestMapped(t *testing.T) {
	idp := &IdP{Roles: []RoleMap{
		{Value: "auditors", Role: RoleViewer},
		{Value: "acme-support", Role: RoleOperator, Tenant: "acme"},
		{Value: "globex-support", Role: RoleOperator, Tenant: "globex"},
		{Value: "support", Role: RoleOperator},
		{Value: "acme-admins", Role: RoleAdmin, Tenant: "acme"},
	}}
	for _, c := range []struct {
		name   string
		values []string
		role   Role
		tenant string
		why    lapse.Reason
	}{
		{"viewer", []string{"auditors"}, RoleViewer, "", ""},
		{"operator_over_viewer", []string{"auditors", "acme-support"}, RoleOperator, "acme", ""},
		{"platform_over_tenant_at_the_same_role", []string{"acme-support", "support"}, RoleOperator, "", ""},
		{"two_tenants", []string{"globex-support", "acme-support"}, "", "", ReasonSeveralTenants},
		{"a_higher_role_in_one_tenant_over_two", []string{"globex-support", "acme-support", "acme-admins"}, RoleAdmin, "acme", ""},
		{"no_mapped_value", []string{"staff"}, "", "", ReasonNoRole},
		{"no_value", nil, "", "", ReasonNoRole},
	} {
		t.Run(c.name, func(t *testing.T) {
			role, tenant, why := idp.role(c.values)
			if role != c.role || tenant != c.tenant || why != c.why {
				t.Errorf("role(%q) = %q, %q, %q; want %q, %q, %q", c.values, role, tenant, why, c.role, c.tenant, c.why)
			}
		})
	}
}

// TestIdPActorIsStableAndShort: the actor of an IdP account is the same
// at every sign-in, differs by issuer and by sub, and is a short base62
// id after "operator:idp-".
func TestIdPActorIsStableAndShort(t *testing.T) {
	a := IdPActor("https://idp.example.com", "u-1")
	if a != IdPActor("https://idp.example.com", "u-1") {
		t.Error("two sign-ins of one account get two actors")
	}
	if a == IdPActor("https://idp.example.com", "u-2") || a == IdPActor("https://other.example.com", "u-1") {
		t.Error("two accounts get one actor")
	}
	if !regexp.MustCompile(`^operator:idp-[0-9A-Za-z]{1,17}$`).MatchString(a) {
		t.Errorf("actor %q is not operator:idp- and up to 17 base62 characters", a)
	}
}
