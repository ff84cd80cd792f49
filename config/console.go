package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/console"
	"github.com/lapsehq/lapse/oidc"
)

// Console is the console section.
type Console struct {
	// OIDC lets operators sign in at an identity provider: the
	// console.oidc section; nil without one.
	OIDC *ConsoleOIDC
}

// ConsoleOIDC is the console.oidc section: operators sign in at an
// OpenID Connect identity provider, with a role mapped from a claim
// (console.IdP).
type ConsoleOIDC struct {
	// LoginConfig is the client's configuration; lapse serve adds its
	// ClientSecret, Clock, HTTPClient and Logger. CallbackPath is
	// console.IdPCallbackPath.
	oidc.LoginConfig
	// SecretEnv names the environment variable, and SecretFile the file,
	// that holds the client secret: exactly one is set.
	SecretEnv, SecretFile string
	// Name names the provider on the sign-in page.
	Name string
	// RoleClaim is the claim mapped to roles; "" means
	// console.DefaultRoleClaim.
	RoleClaim string
	// Roles map the claim's values to roles.
	Roles []console.RoleMap
	// RequireAAL refuses a sign-in below it (0: any).
	RequireAAL int
}

func (p *parser) consoleSection(n *yaml.Node, path string) *Console {
	c := &Console{}
	p.fields(n, path, func(key string, v *yaml.Node) bool {
		switch key {
		case "oidc":
			c.OIDC = p.consoleOIDC(v, join(path, key))
		default:
			return false
		}
		return true
	})
	return c
}

func (p *parser) consoleOIDC(n *yaml.Node, path string) *ConsoleOIDC {
	o := &ConsoleOIDC{LoginConfig: oidc.LoginConfig{CallbackPath: console.IdPCallbackPath}}
	c := client{issuer: &o.Issuer, clientID: &o.ClientID, redirectURL: &o.RedirectURL, scopes: &o.Scopes,
		assurance: &o.Assurance, secretEnv: &o.SecretEnv, secretFile: &o.SecretFile}
	rolesSeen := false
	p.fields(n, path, func(key string, v *yaml.Node) bool {
		kp := join(path, key)
		switch key {
		case "name":
			o.Name = p.str(v, kp)
		case "role_claim":
			o.RoleClaim = p.str(v, kp)
		case "roles":
			o.Roles, rolesSeen = p.roleMaps(v, kp), true
		case "require_aal":
			if o.RequireAAL = p.integer(v, kp); o.RequireAAL > 3 {
				p.errorf(v, kp, "must be an AAL: 1, 2 or 3")
			}
		default:
			return p.clientKey(c, key, kp, v)
		}
		return true
	})
	p.checkSecret(c, path)
	if !rolesSeen {
		p.errs = append(p.errs, &Error{File: p.file, Line: p.lines[path], Key: path + ".roles",
			Msg: "is required: map values of the role claim to roles (viewer, operator, admin), or nobody can sign in"})
	}
	return o
}

// roleMaps reads the roles list: {value, role, tenant} entries.
func (p *parser) roleMaps(n *yaml.Node, path string) []console.RoleMap {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.errorf(n, path, "must be a list of {value, role, tenant} entries")
		return nil
	}
	var out []console.RoleMap
	seen := map[string]bool{}
	for i, item := range n.Content {
		kp := fmt.Sprintf("%s[%d]", path, i)
		p.lines[kp] = item.Line
		var m console.RoleMap
		p.fields(item, kp, func(key string, v *yaml.Node) bool {
			switch key {
			case "value":
				m.Value = p.str(v, join(kp, key))
			case "role":
				m.Role = console.Role(p.str(v, join(kp, key)))
			case "tenant":
				m.Tenant = p.str(v, join(kp, key))
			default:
				return false
			}
			return true
		})
		switch {
		case m.Value == "":
			p.errorf(item, kp+".value", "is required: a value of the role claim, such as a group's name")
		case seen[m.Value]:
			p.errorf(item, kp+".value", "%q is mapped twice", m.Value)
		}
		seen[m.Value] = true
		if !m.Role.Valid() {
			p.errorf(item, kp+".role", "%q is not a role: viewer, operator or admin", m.Role)
		}
		out = append(out, m)
	}
	return out
}

// checkConsole adds the console section's problems: the client's, and
// tenants the policy does not declare.
func (p *parser) checkConsole(f *File) {
	if f.Console == nil || f.Console.OIDC == nil {
		return
	}
	o := f.Console.OIDC
	var pe *lapse.PolicyError
	if err := o.Validate(); errors.As(err, &pe) {
		for _, fe := range pe.Problems {
			key := "console.oidc." + fe.Path
			p.errs = append(p.errs, &Error{File: p.file, Line: p.line(key), Key: key, Msg: fe.Message})
		}
	}
	if f.Policy == nil || f.Policy.AllowUndeclaredTenants {
		return
	}
	for i, m := range o.Roles {
		if _, ok := f.Policy.Tenants[m.Tenant]; m.Tenant != "" && !ok {
			key := fmt.Sprintf("console.oidc.roles[%d].tenant", i)
			names := make([]string, 0, len(f.Policy.Tenants))
			for t := range f.Policy.Tenants {
				names = append(names, t)
			}
			slices.Sort(names)
			p.errs = append(p.errs, &Error{File: p.file, Line: p.line(key), Key: key,
				Msg: fmt.Sprintf("%q is not a tenant of the policy (%s)", m.Tenant, strings.Join(names, ", "))})
		}
	}
}
