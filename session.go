package lapse

import (
	"encoding/json"
	"time"
)

// Status is where a session is in its life.
type Status string

// Session statuses.
const (
	StatusActive  Status = "active"
	StatusExpired Status = "expired"
	StatusRevoked Status = "revoked"
)

// Reason says why a session ended (or, on an event, why it changed).
type Reason string

// Reasons a session ends.
const (
	ReasonIdleTimeout     Reason = "idle_timeout"
	ReasonAbsoluteTimeout Reason = "absolute_timeout"
	ReasonLogout          Reason = "logout"
	ReasonLogoutAll       Reason = "logout_all"
	ReasonAdmin           Reason = "admin"
	ReasonPasswordChange  Reason = "password_change"
	ReasonLimit           Reason = "limit"
	ReasonTheft           Reason = "theft"
)

// RevokeReasons are the reasons a caller may give when revoking sessions.
var RevokeReasons = []Reason{ReasonLogout, ReasonLogoutAll, ReasonAdmin, ReasonPasswordChange, ReasonTheft}

// Session is one authenticated session of a subject. Its Policy is the
// effective tier resolved when the session was created; later changes to
// the configuration do not loosen a session already issued.
//
// A Session value returned by lapse shares its AMR slice and Metadata with
// the engine's cache: treat both as read-only.
type Session struct {
	ID        string    `json:"id"`
	TokenHash TokenHash `json:"-"`
	Subject   string    `json:"subject"`
	Tenant    string    `json:"tenant"`
	Tier      string    `json:"tier"`
	// AAL is the authenticator assurance level (1-3) of the last authentication.
	AAL int `json:"aal"`
	// AMR lists the authentication methods used ("pwd", "otp", "hwk", ...).
	AMR    []string `json:"amr"`
	Status Status   `json:"status"`
	// EndReason says why the session ended; empty while active.
	EndReason Reason `json:"end_reason,omitempty"`

	CreatedAt       time.Time `json:"created_at"`
	LastActiveAt    time.Time `json:"last_active_at"`
	AuthenticatedAt time.Time `json:"authenticated_at"`
	IdleExpiresAt   time.Time `json:"idle_expires_at"`
	ExpiresAt       time.Time `json:"expires_at"`
	WarnAt          time.Time `json:"warn_at"`
	// EndedAt is when the session ended: the deadline that passed for an
	// expiry, the time of the call for a revoke; zero while active.
	EndedAt time.Time `json:"ended_at,omitzero"`

	IP        string          `json:"ip,omitempty"`
	UserAgent string          `json:"user_agent,omitempty"`
	Metadata  json.RawMessage `json:"metadata,omitempty"`

	Policy Tier `json:"-"`

	// PrevTokenHash is the hash of the token a rotation replaced; that
	// token still verifies until PrevValidUntil, so requests in flight
	// during a step-up do not fail.
	PrevTokenHash  TokenHash `json:"-"`
	PrevValidUntil time.Time `json:"-"`
}

// Deadline returns the earlier of the idle and absolute deadlines.
func (s *Session) Deadline() time.Time {
	if s.IdleExpiresAt.Before(s.ExpiresAt) {
		return s.IdleExpiresAt
	}
	return s.ExpiresAt
}

// Lapsed reports whether a deadline of s has passed at now, which one,
// and when it passed: the earlier of the two, or the absolute deadline
// when they fall together, since activity could not have saved it.
// Lapsed ignores Status.
func (s *Session) Lapsed(now time.Time) (Reason, time.Time, bool) {
	switch {
	case now.Before(s.Deadline()):
		return "", time.Time{}, false
	case !s.ExpiresAt.After(s.IdleExpiresAt):
		return ReasonAbsoluteTimeout, s.ExpiresAt, true
	}
	return ReasonIdleTimeout, s.IdleExpiresAt, true
}

// ActiveAt reports whether the session is valid at now: not ended, and
// now before both deadlines.
func (s *Session) ActiveAt(now time.Time) bool {
	_, _, lapsed := s.Lapsed(now)
	return s.Status == StatusActive && !lapsed
}

// slide returns the idle deadline and warning time after activity at now:
// the idle deadline moves to now+IdleTimeout but never past ExpiresAt.
func (s *Session) slide(now time.Time) (idle, warn time.Time) {
	idle = now.Add(s.Policy.IdleTimeout)
	if idle.After(s.ExpiresAt) {
		idle = s.ExpiresAt
	}
	return idle, s.Policy.WarnAt(idle) // idle is already the earlier deadline
}
