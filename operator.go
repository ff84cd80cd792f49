package lapse

import (
	"context"
	"time"
	"unicode"
	"unicode/utf8"
)

// Operator is a named person who signs in to the console with a password
// and a one-time code, as an [OperatorStore] keeps them: their password
// only as a hash.
type Operator struct {
	// ID is public: it is in the audit log's actor ("operator:<id>").
	ID string `json:"id"`
	// Name is what the operator signs in with: unique, printable, at most
	// [MaxOperatorName] bytes ([ValidOperatorName]).
	Name string `json:"name"`
	// Role is the console role ("viewer", "operator", "admin"); the
	// console validates it.
	Role string `json:"role"`
	// Tenant binds the operator to one tenant's sessions and events; ""
	// is the whole platform.
	Tenant string `json:"tenant,omitempty"`
	// PasswordHash is the password as a PHC string (argon2id), never the
	// password.
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
	DisabledAt   time.Time `json:"disabled_at,omitzero"` // zero: may sign in
}

// Actor returns the actor of the events o causes: "operator:<id>".
func (o *Operator) Actor() string { return "operator:" + o.ID }

// Disabled reports whether o may no longer sign in.
func (o *Operator) Disabled() bool { return !o.DisabledAt.IsZero() }

// MaxOperatorName is the longest name of an operator, in bytes.
const MaxOperatorName = 64

// ValidOperatorName reports whether name may name an operator: 1 to
// [MaxOperatorName] bytes of printable UTF-8 without spaces, so that it
// reads the same in a log line, a terminal and a form.
func ValidOperatorName(name string) bool {
	if name == "" || len(name) > MaxOperatorName || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if !unicode.IsGraphic(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// NewOperatorID returns a fresh operator id: "op_" and 22 random base62
// characters.
func NewOperatorID() string { return NewID("op_") }

// OperatorStore is implemented by stores that keep the console's named
// operators for every node that shares them.
type OperatorStore interface {
	// CreateOperator records o. It fails with [CodeConflict] when its id
	// or its name is taken.
	CreateOperator(ctx context.Context, o *Operator) error
	// Operator returns the operator with id. It fails with
	// [CodeOperatorNotFound] for an unknown id.
	Operator(ctx context.Context, id string) (*Operator, error)
	// OperatorByName returns the operator named name. It fails with
	// [CodeOperatorNotFound] for an unknown name.
	OperatorByName(ctx context.Context, name string) (*Operator, error)
	// Operators returns every operator, disabled ones too, in order of
	// name.
	Operators(ctx context.Context) ([]*Operator, error)
	// UpdateOperator applies ch to the operator with id in one atomic
	// step and returns the operator as it then is. Only the fields ch
	// sets are written, so changes of different fields made at the same
	// time (a new password while another process disables the operator)
	// all hold. It fails with [CodeOperatorNotFound] for an unknown id.
	UpdateOperator(ctx context.Context, id string, ch OperatorChange) (*Operator, error)
}

// OperatorChange is a change to an operator: each field that is not nil
// replaces the stored one, the others are left as the store holds them.
// An operator's name and creation time never change.
type OperatorChange struct {
	Role         *string
	Tenant       *string
	PasswordHash *string
	// DisabledAt disables the operator at that time, or with the zero
	// time enables them.
	DisabledAt *time.Time
}

// Apply makes ch to o.
func (ch OperatorChange) Apply(o *Operator) {
	if ch.Role != nil {
		o.Role = *ch.Role
	}
	if ch.Tenant != nil {
		o.Tenant = *ch.Tenant
	}
	if ch.PasswordHash != nil {
		o.PasswordHash = *ch.PasswordHash
	}
	if ch.DisabledAt != nil {
		o.DisabledAt = *ch.DisabledAt
	}
}

// Event types of console operators. They change no session of the
// platform: SessionID, Subject and Tenant are empty, Actor is the
// operator ("operator:<id>") or key ("key:<id>") who signed in or out,
// or "console" for a failed sign-in under a name that is no operator's;
// IP is the client's address.
const (
	EventOperatorSignedIn  EventType = "operator.signed_in"
	EventOperatorSignedOut EventType = "operator.signed_out"
	// EventOperatorSignInFailed records a sign-in the console refused;
	// its reason is [ReasonInvalidCredentials].
	EventOperatorSignInFailed EventType = "operator.sign_in_failed"
	// EventOperatorChanged records an operator created, disabled,
	// enabled, or given a new role, tenant, password or TOTP factor; its
	// reason is the operator's id.
	EventOperatorChanged EventType = "operator.changed"
)

// ReasonInvalidCredentials is the reason of an
// [EventOperatorSignInFailed]: the name, the password or the code was
// wrong, or the operator is disabled (the log does not say which, as the
// sign-in page does not).
const ReasonInvalidCredentials Reason = "invalid_credentials"
