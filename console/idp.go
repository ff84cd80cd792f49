package console

import (
	"crypto/sha256"
	"fmt"
	"html/template"
	"math/big"
	"net/http"
	"net/netip"
	"strings"
	"unicode"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/oidc"
	"github.com/lapsehq/lapse/throttle"
)

// Paths of the sign-in at an identity provider. Register IdPCallbackPath
// (on the console's origin) as the client's redirect URI at the
// provider, and IdPLogoutPath as its back-channel logout URI.
const (
	IdPStartPath    = Prefix + "oidc/start"
	IdPCallbackPath = Prefix + "oidc/callback"
	IdPLogoutPath   = Prefix + "oidc/backchannel-logout"
)

// DefaultRoleClaim is the claim [IdP] maps to roles when it names none.
const DefaultRoleClaim = "groups"

// IdP lets operators sign in to the console at an OpenID Connect
// identity provider, with a role (and a tenant) mapped from a claim of
// theirs. The zero value of every field but Login and Roles is a
// documented default.
//
// A user's role is the highest role any value of their claim maps to;
// among the mappings to that role, one for the whole platform (no
// tenant) wins, since it covers every tenant; mappings to two different
// tenants and none for the platform are ambiguous, and the sign-in is
// refused. A user whose values map to no role is refused. Refusals are
// recorded in the audit log.
type IdP struct {
	// Login runs the OpenID Connect flow; its RedirectURL's path must be
	// IdPCallbackPath.
	Login *oidc.Login
	// Name names the provider on the sign-in page ("Sign in with Okta");
	// "" says "your identity provider".
	Name string
	// RoleClaim is the claim whose values map to roles: a string or an
	// array of strings, in the ID token or else in the userinfo answer;
	// "" means DefaultRoleClaim.
	RoleClaim string
	// Roles map the claim's values to roles.
	Roles []RoleMap
	// RequireAAL, when above 1, asks the provider for it (the acr values
	// the Login's Assurance maps to it, if any) and refuses a sign-in the
	// provider did not make at that level (its acr and amr, read as the
	// Assurance says).
	RequireAAL int
}

// RoleMap maps one value of the role claim to a role, bound to Tenant
// when it is not "".
type RoleMap struct {
	Value  string
	Role   Role
	Tenant string
}

// validate reports the first problem of idp.
func (idp *IdP) validate() error {
	switch {
	case idp.Login == nil:
		return fmt.Errorf("Config.IdP.Login is required")
	case len(idp.Roles) == 0:
		return fmt.Errorf("Config.IdP.Roles maps no value to a role: nobody could sign in")
	case idp.RequireAAL < 0 || idp.RequireAAL > 3:
		return fmt.Errorf("Config.IdP.RequireAAL %d is not an AAL (1-3)", idp.RequireAAL)
	}
	for i, m := range idp.Roles {
		if m.Value == "" || !m.Role.Valid() {
			return fmt.Errorf("Config.IdP.Roles[%d] needs a value and a role (viewer, operator or admin)", i)
		}
	}
	return nil
}

// roleClaim returns the claim mapped to roles.
func (idp *IdP) roleClaim() string {
	if idp.RoleClaim == "" {
		return DefaultRoleClaim
	}
	return idp.RoleClaim
}

// The reasons of refused sign-ins at the identity provider.
const (
	// ReasonNoRole: no value of the user's role claim maps to a role.
	ReasonNoRole lapse.Reason = "no_role"
	// ReasonSeveralTenants: the user's values map to the same role in
	// several tenants.
	ReasonSeveralTenants lapse.Reason = "several_tenants"
	// ReasonAAL: the provider authenticated the user below RequireAAL.
	ReasonAAL lapse.Reason = "aal_too_low"
)

// refusals are what a refused operator reads, by reason.
var refusals = map[lapse.Reason]string{
	ReasonNoRole:         "Your account at the identity provider has no role in this console. Ask an administrator to add you to one of its groups.",
	ReasonSeveralTenants: "Your account at the identity provider gives you this role in several tenants; a console session is bound to one. Ask an administrator to leave you one.",
	ReasonAAL:            "The identity provider did not sign you in with a second factor, which this console needs. Sign in there again with it.",
}

// role returns the role and tenant the values map to, or the reason
// they map to none.
func (idp *IdP) role(values []string) (Role, string, lapse.Reason) {
	var best Role
	tenants := map[string]bool{}
	for _, m := range idp.Roles {
		if !containsString(values, m.Value) {
			continue
		}
		switch {
		case m.Role.rank() > best.rank():
			best, tenants = m.Role, map[string]bool{m.Tenant: true}
		case m.Role == best:
			tenants[m.Tenant] = true
		}
	}
	switch {
	case best == "":
		return "", "", ReasonNoRole
	case tenants[""]:
		return best, "", ""
	case len(tenants) > 1:
		return "", "", ReasonSeveralTenants
	}
	for t := range tenants {
		return best, t, ""
	}
	return "", "", ReasonNoRole
}

func containsString(values []string, v string) bool {
	for _, s := range values {
		if s == v {
			return true
		}
	}
	return false
}

// claimValues reads a claim that is a string or an array of strings;
// other values in an array are skipped.
func claimValues(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// IdPActor returns the actor of the operator whose account at the
// provider issuer is sub: "operator:idp-" and the base62 form of the
// first 12 bytes of the SHA-256 of issuer and sub, stable across
// sign-ins and short enough to read in the audit log.
func IdPActor(issuer, sub string) string {
	h := sha256.Sum256([]byte(issuer + "\x00" + sub))
	return "operator:idp-" + new(big.Int).SetBytes(h[:12]).Text(62)
}

// maxName bounds an operator's name from the provider.
const maxName = 64

// identity returns who the claims sign in as, or why they do not (with
// the actor still set, for the record of the refusal).
func (idp *IdP) identity(cl *oidc.Claims) (Identity, lapse.Reason) {
	who := Identity{Actor: IdPActor(cl.IdP.Issuer, cl.IdP.Subject), Name: cl.IdP.Subject}
	for _, k := range []string{"preferred_username", "email", "name"} {
		if s, ok := cl.All[k].(string); ok && printable(s) != "" {
			who.Name = printable(s)
			break
		}
	}
	if idp.RequireAAL > 1 && cl.AAL < idp.RequireAAL {
		return who, ReasonAAL
	}
	role, tenant, why := idp.role(claimValues(cl.All[idp.roleClaim()]))
	if why != "" {
		return who, why
	}
	who.Role, who.Tenant = role, tenant
	return who, ""
}

// printable keeps a name from the provider readable and short.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > maxName {
		s = string(r[:maxName])
	}
	return s
}

// idpStart sends the browser to the provider, to come back to next.
func (c *Console) idpStart(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"), Prefix+"sessions")
	if err := c.idp.Login.Start(w, r, next, c.idp.RequireAAL, c.secure(r)); err != nil {
		c.refuseIdP(w, r, err)
	}
}

// idpCallback completes a sign-in at the provider: the verified claims
// map to an identity, whose console session it opens.
func (c *Console) idpCallback(w http.ResponseWriter, r *http.Request) {
	cl, next, err := c.idp.Login.Finish(w, r, []string{c.idp.roleClaim(), "preferred_username"}, c.secure(r))
	if err != nil {
		c.refuseIdP(w, r, err)
		return
	}
	client := throttle.ClientAddr(r, c.trusted)
	who, why := c.idp.identity(cl)
	if why != "" {
		c.recordFailedSignIn(r, client, who, why)
		c.fail(w, r, nil, &pageError{http.StatusForbidden, "Sign-in refused", refusals[why]})
		return
	}
	p := lapse.CreateParams{AAL: cl.AAL, AMR: cl.AMR, AuthenticatedAt: cl.AuthTime, IdP: cl.IdP}
	if err := c.open(w, r, who, p, client); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	c.continueTo(w, localPath(next, Prefix+"sessions"))
}

// refuseIdP shows why a sign-in at the provider could not go on.
func (c *Console) refuseIdP(w http.ResponseWriter, r *http.Request, err error) {
	status, msg, cause := oidc.Refusal(err)
	if status >= 500 {
		c.log.Error("console: sign-in at the identity provider", "err", cause)
	} else {
		c.log.Warn("console: refused a sign-in at the identity provider", "why", msg, "err", cause)
	}
	c.fail(w, r, nil, &pageError{status, "Sign-in refused", msg})
}

// idpLogout is the provider's back-channel logout: it ends the sessions
// of the provider's session (sid) or account (sub) it names.
func (c *Console) idpLogout(w http.ResponseWriter, r *http.Request) {
	c.idp.Login.BackChannelLogout(w, r, c.own.Store().(lapse.ReplayGuard), c.own.EndIdP)
}

var continuePage = template.Must(template.New("continue").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={{.}}">
<title>Signed in</title><link rel="stylesheet" href="/console/static/console.css"></head>
<body><main><p>Signed in. <a href="{{.}}">Continue to the console</a>.</p></main></body></html>
`))

// continueTo answers the provider's callback with a page that goes on to
// next by itself: a redirect would carry on the provider's cross-site
// navigation, on which the browser withholds the SameSite=Strict
// session cookie just set; the page's own navigation is same-site.
func (c *Console) continueTo(w http.ResponseWriter, next string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	continuePage.Execute(w, next)
}

// recordFailedSignIn records a refused sign-in at the identity provider
// as an operator.sign_in_failed event, with the actor and name the
// sign-in would have had and why it was refused.
func (c *Console) recordFailedSignIn(r *http.Request, client netip.Addr, who Identity, why lapse.Reason) {
	c.record(r, lapse.Event{Type: lapse.EventOperatorSignInFailed, Reason: why, Actor: who.Actor, ActorName: who.Name}, client)
	c.log.Warn("console: refused a sign-in at the identity provider", "actor", who.Actor, "why", why)
}
