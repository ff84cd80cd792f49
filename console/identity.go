package console

import (
	"encoding/json"
	"strings"

	"github.com/lapsehq/lapse"
)

// Role is what an operator may do in the console. Each role may do what
// the roles before it may.
type Role string

// The roles of console operators.
const (
	// RoleViewer reads sessions, the policy, the audit log and the charts.
	RoleViewer Role = "viewer"
	// RoleOperator also revokes sessions.
	RoleOperator Role = "operator"
	// RoleAdmin also manages API keys and operators.
	RoleAdmin Role = "admin"
)

// Roles returns every role, least powerful first.
func Roles() []Role { return []Role{RoleViewer, RoleOperator, RoleAdmin} }

func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is one of [Roles].
func (r Role) Valid() bool { return r.rank() > 0 }

// Allows reports whether r may do what need may.
func (r Role) Allows(need Role) bool { return r.Valid() && r.rank() >= need.rank() }

// Identity is who holds a console session. It is written into the
// session's metadata at sign-in, so every node reads it with the session
// and nothing a browser sends can change it; a change to an operator's
// role takes effect at their next sign-in, and revoking their console
// sessions ends the old one at once.
type Identity struct {
	// Actor is the actor of the events the session's actions cause:
	// "operator:<id>" for a named operator, "key:<id>" for an API key
	// with the console scope.
	Actor string `json:"actor"`
	// Name is the operator's or key's name, for people to read.
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Tenant binds the session to one tenant: it sees and acts on that
	// tenant's sessions and events only. "" is the whole platform.
	Tenant string `json:"tenant,omitempty"`
}

// SubjectOf returns the subject of the console sessions of actor, in
// lapse's own namespace ([lapse.ReservedPrefix]): the platform's API
// refuses it, and no platform list or revoke reaches it.
func SubjectOf(actor string) string { return subjectPrefix + actor }

const subjectPrefix = lapse.ReservedPrefix + "console:"

// identityOf reads the identity of a console session, and reports false
// for a session that is not one (another tier, a tenant, a subject
// outside the console's, metadata that does not name a valid role).
func identityOf(s *lapse.Session) (Identity, bool) {
	if s.Tier != Tier || s.Tenant != "" || !strings.HasPrefix(s.Subject, subjectPrefix) {
		return Identity{}, false
	}
	var id Identity
	if json.Unmarshal(s.Metadata, &id) != nil || !id.Role.Valid() || SubjectOf(id.Actor) != s.Subject {
		return Identity{}, false
	}
	return id, true
}
