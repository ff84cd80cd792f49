package console

import (
	"context"
	"net/http"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/password"
	"github.com/lapsehq/lapse/throttle"
)

// Provisioner enrols the one-time-code factor of a new operator, with no
// session to check: totp's Service.Provision.
type Provisioner interface {
	Provision(ctx context.Context, subject string, p lapse.TOTPParams) (*lapse.TOTPEnrolment, []string, error)
}

// NewOperator describes an operator to create.
type NewOperator struct {
	Name   string
	Role   Role
	Tenant string // "": the whole platform
	// Password must be [password.Acceptable]; only its hash is kept.
	Password string
}

// Enrolment is what a new operator needs to sign in besides their
// password, to be shown to them once: their authenticator app's secret
// and key URI, and recovery codes.
type Enrolment struct {
	TOTP          *lapse.TOTPEnrolment
	RecoveryCodes []string
}

// Issuer names the console in operators' authenticator apps.
const Issuer = "lapse console"

// CreateOperator records a new operator in m's store, enrols their TOTP
// factor (under [SubjectOf] their actor) and records an
// [lapse.EventOperatorChanged] on behalf of actor. It fails with
// [lapse.CodeInvalid] for an invalid name, role, tenant or password,
// [lapse.CodeConflict] for a name in use, or a store error.
func CreateOperator(ctx context.Context, m *lapse.Manager, p Provisioner, n NewOperator, actor string) (*lapse.Operator, *Enrolment, error) {
	ops, err := operatorStore(m)
	if err != nil {
		return nil, nil, err
	}
	role := string(n.Role)
	if err := validOperator(&role, &n.Tenant); err != nil {
		return nil, nil, err
	}
	if !lapse.ValidOperatorName(n.Name) {
		return nil, nil, lapse.Errorf(lapse.CodeInvalid, "an operator's name must be 1 to %d printable characters without spaces", lapse.MaxOperatorName)
	}
	if err := password.Acceptable(n.Password); err != nil {
		return nil, nil, lapse.Errorf(lapse.CodeInvalid, "%v", err)
	}
	switch _, err := ops.OperatorByName(ctx, n.Name); lapse.ErrorCode(err) {
	case "":
		return nil, nil, lapse.Errorf(lapse.CodeConflict, "an operator named %q exists", n.Name)
	case lapse.CodeOperatorNotFound:
	default:
		return nil, nil, err
	}
	o := &lapse.Operator{ID: lapse.NewOperatorID(), Name: n.Name, Role: string(n.Role), Tenant: n.Tenant,
		PasswordHash: password.Hash(n.Password), CreatedAt: m.Clock().Now()}
	// The factor first: an operator without one could never sign in,
	// while a factor left by a failed create belongs to no one.
	totp, codes, err := p.Provision(ctx, SubjectOf(o.Actor()), lapse.TOTPParams{Account: o.Name, Issuer: Issuer})
	if err != nil {
		return nil, nil, err
	}
	if err := ops.CreateOperator(ctx, o); err != nil {
		return nil, nil, err
	}
	return o, &Enrolment{TOTP: totp, RecoveryCodes: codes}, recordChange(ctx, m, o, actor, "")
}

// ChangeOperator applies ch to the operator with id in m's store (only
// the fields ch sets, so a change made meanwhile by another process to
// other fields holds), then ends every open console session of the
// operator at once (reason admin, on behalf of actor), so the change
// holds from the next request on, and records an
// [lapse.EventOperatorChanged]. It returns the operator as changed and
// how many sessions it ended. It fails with [lapse.CodeInvalid] for an
// invalid role or tenant, [lapse.CodeOperatorNotFound], or a store
// error.
func ChangeOperator(ctx context.Context, m *lapse.Manager, id string, ch lapse.OperatorChange, actor string) (*lapse.Operator, int, error) {
	own, err := ownManager(m, time.Minute, time.Minute, nil) // only ends sessions: its timeouts do not matter
	if err != nil {
		return nil, 0, err
	}
	return changeOperator(ctx, m, own, id, ch, actor, "")
}

func changeOperator(ctx context.Context, m, own *lapse.Manager, id string, ch lapse.OperatorChange, actor, ip string) (*lapse.Operator, int, error) {
	ops, err := operatorStore(m)
	if err != nil {
		return nil, 0, err
	}
	if err := validOperator(ch.Role, ch.Tenant); err != nil {
		return nil, 0, err
	}
	o, err := ops.UpdateOperator(ctx, id, ch)
	if err != nil {
		return nil, 0, err
	}
	n, err := own.EndMatching(ctx, lapse.Filter{Subject: SubjectOf(o.Actor())}, lapse.ReasonAdmin, actor)
	if err != nil {
		return nil, 0, err
	}
	return o, n, recordChange(ctx, m, o, actor, ip)
}

// ResetTOTP replaces o's TOTP factor and recovery codes with new ones,
// enrolled through p as [CreateOperator] enrols them, for when an
// operator has lost their authenticator: the old secret and codes stop
// working. It ends o's open console sessions at once and records an
// [lapse.EventOperatorChanged] on behalf of actor, as [ChangeOperator]
// does, and returns the enrolment, to be shown once, and how many
// sessions it ended. It fails with [lapse.CodeOperatorNotFound] or a
// store error.
func ResetTOTP(ctx context.Context, m *lapse.Manager, p Provisioner, o *lapse.Operator, actor string) (*Enrolment, int, error) {
	factors, ok := m.Store().(lapse.FactorStore)
	if !ok {
		return nil, 0, lapse.Errorf(lapse.CodeInvalid, "the store %T keeps no factors", m.Store())
	}
	subject := SubjectOf(o.Actor())
	if err := factors.RemoveTOTP(ctx, subject); err != nil && lapse.ErrorCode(err) != lapse.CodeFactorNotFound {
		return nil, 0, err
	}
	// The sessions end before the new factor is enrolled: should that
	// fail, the operator is left with no way in rather than a stale one,
	// and resetting again enrols it.
	_, n, err := ChangeOperator(ctx, m, o.ID, lapse.OperatorChange{}, actor)
	if err != nil {
		return nil, 0, err
	}
	totp, codes, err := p.Provision(ctx, subject, lapse.TOTPParams{Account: o.Name, Issuer: Issuer})
	if err != nil {
		return nil, n, err
	}
	return &Enrolment{TOTP: totp, RecoveryCodes: codes}, n, nil
}

// SetPassword makes ch set the password hash to that of pw, after
// checking it is [password.Acceptable] ([lapse.CodeInvalid] otherwise).
func SetPassword(ch *lapse.OperatorChange, pw string) error {
	if err := password.Acceptable(pw); err != nil {
		return lapse.Errorf(lapse.CodeInvalid, "%v", err)
	}
	h := password.Hash(pw)
	ch.PasswordHash = &h
	return nil
}

func operatorStore(m *lapse.Manager) (lapse.OperatorStore, error) {
	ops, ok := m.Store().(lapse.OperatorStore)
	if !ok {
		return nil, lapse.Errorf(lapse.CodeInvalid, "the store %T keeps no operators", m.Store())
	}
	return ops, nil
}

// validOperator checks the role and the tenant given (not nil).
func validOperator(role, tenant *string) error {
	if role != nil && !Role(*role).Valid() {
		return lapse.Errorf(lapse.CodeInvalid, "an operator's role must be viewer, operator or admin, not %q", *role)
	}
	if tenant != nil && *tenant != "" && !lapse.ValidOperatorName(*tenant) {
		return lapse.Errorf(lapse.CodeInvalid, "an operator's tenant must be printable, without spaces, at most %d bytes", lapse.MaxOperatorName)
	}
	return nil
}

// recordChange records that o was created or changed, by actor from ip.
func recordChange(ctx context.Context, m *lapse.Manager, o *lapse.Operator, actor, ip string) error {
	return m.Record(ctx, lapse.Event{Type: lapse.EventOperatorChanged, Reason: lapse.Reason(o.ID), Actor: actor, IP: ip})
}

// errPlatformOnly refuses a page of the whole platform to an operator
// bound to a tenant.
var errPlatformOnly = &pageError{http.StatusForbidden, "Refused: this page is the platform's",
	"Operators are managed for the whole platform; an operator bound to a tenant cannot manage them."}

type operatorsView struct {
	base
	Operators []*lapse.Operator
}

// operatorsPage lists the named operators, for an admin of the whole
// platform.
func (c *Console) operatorsPage(w http.ResponseWriter, r *http.Request, a *access) error {
	if err := c.operatorsAllowed(a); err != nil {
		return err
	}
	ops, err := c.ops.Operators(r.Context())
	if err != nil {
		return err
	}
	v := &operatorsView{base: c.base(r, a, "Operators", "operators"), Operators: ops}
	v.Notice = notice(r.URL.Query())
	c.render(w, http.StatusOK, "operators", v)
	return nil
}

// disableOperator disables an operator and ends their console sessions.
// An admin cannot disable themselves from here (the CLI can), so that a
// slip does not lock the last admin out.
func (c *Console) disableOperator(w http.ResponseWriter, r *http.Request, a *access) error {
	if err := c.operatorsAllowed(a); err != nil {
		return err
	}
	o, err := c.ops.Operator(r.Context(), r.PathValue("id"))
	if lapse.ErrorCode(err) == lapse.CodeOperatorNotFound {
		return errNotFound
	} else if err != nil {
		return err
	}
	if o.Actor() == a.who.Actor {
		return &pageError{http.StatusBadRequest, "Refused: you cannot disable yourself", "Ask another admin, or use lapse operators disable on the server."}
	}
	n := 0
	if !o.Disabled() {
		now := c.m.Clock().Now()
		ip := ""
		if client := throttle.ClientAddr(r, c.trusted); client.IsValid() {
			ip = client.String()
		}
		if _, n, err = changeOperator(r.Context(), c.m, c.own, o.ID, lapse.OperatorChange{DisabledAt: &now}, a.who.Actor, ip); err != nil {
			return err
		}
	}
	http.Redirect(w, r, withNotice(Prefix+"operators", "disabled", n), http.StatusSeeOther)
	return nil
}

// operatorsAllowed refuses the operators pages where there are no
// operators (404) and to an operator bound to a tenant (403).
func (c *Console) operatorsAllowed(a *access) error {
	switch {
	case c.ops == nil:
		return errNotFound
	case a.who.Tenant != "":
		return errPlatformOnly
	}
	return nil
}
