package lapse

import (
	"cmp"
	"encoding/json"
	"net/netip"
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
	// ReasonIdPLogout: the identity provider that signed the session in
	// ended its own session (OpenID Connect back-channel logout).
	ReasonIdPLogout Reason = "idp_logout"
)

// RevokeReasons are the reasons a caller may give when revoking sessions.
var RevokeReasons = []Reason{ReasonLogout, ReasonLogoutAll, ReasonAdmin, ReasonPasswordChange, ReasonTheft, ReasonIdPLogout}

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
	// IdP is the identity provider's account and session that signed the
	// session in (OpenID Connect); zero for a session created otherwise.
	IdP IdPSession `json:"-"`

	Policy Tier `json:"-"`

	// PrevTokenHash is the hash of the token a rotation replaced; that
	// token still verifies until PrevValidUntil, so requests in flight
	// during a step-up do not fail.
	PrevTokenHash  TokenHash `json:"-"`
	PrevValidUntil time.Time `json:"-"`

	// addr is IP parsed, set as the session enters the manager's cache
	// (zero elsewhere: Drift then parses IP).
	addr netip.Addr
}

// authTime is when a subject authenticated, given a claimed time at: at
// when it is before now, now when at is zero or later. A time before 1970
// counts as 1970, older than any age limit: the stores keep times in
// nanoseconds since 1970, where a year such as 1600 would wrap into the
// future and pass an age limit.
func authTime(at, now time.Time) time.Time {
	switch {
	case at.IsZero() || !at.Before(now):
		return now
	case at.Before(unixEpoch):
		return unixEpoch
	}
	return at
}

var unixEpoch = time.Unix(0, 0).UTC()

// IdPSession names an identity provider's session: the provider (its
// issuer URL), the account it authenticated (its "sub") and, when the
// provider names its sessions, the session ("sid"). A lapse session
// signed in through the provider records it, so that the provider's
// back-channel logout can end it ([Manager.EndIdP]).
type IdPSession struct {
	Issuer  string `json:"iss"`
	Subject string `json:"sub"`
	SID     string `json:"sid,omitempty"`
}

// IsZero reports whether i names no provider.
func (i IdPSession) IsZero() bool { return i == IdPSession{} }

// Matches reports whether s is one of the provider sessions i selects:
// of i's issuer, and of i's subject and session id where i gives them.
// An i with neither a subject nor a session id selects nothing.
func (i IdPSession) Matches(s IdPSession) bool {
	return i.Issuer != "" && s.Issuer == i.Issuer && (i.Subject != "" || i.SID != "") &&
		(i.Subject == "" || s.Subject == i.Subject) && (i.SID == "" || s.SID == i.SID)
}

// Deadline returns the earlier of the idle and absolute deadlines.
func (s *Session) Deadline() time.Time {
	if s.IdleExpiresAt.Before(s.ExpiresAt) {
		return s.IdleExpiresAt
	}
	return s.ExpiresAt
}

// RoutineTouch reports whether activity at at on s, a session as a
// caller last saw it, is the routine write of [Store.Touch]: s is active
// and not lapsed at at, and at is after its last activity and before its
// warning (activity from then on records an extend). It compares the
// wall clock only, as a store that keeps the times does: a monotonic
// reading in at or in s does not count.
func (s *Session) RoutineTouch(at time.Time) bool {
	at = at.Round(0)
	return s.Status == StatusActive && at.After(s.LastActiveAt.Round(0)) && at.Before(s.WarnAt.Round(0)) &&
		at.Before(s.IdleExpiresAt.Round(0)) && at.Before(s.ExpiresAt.Round(0))
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

// Check decides whether s, found by the hash h of a token that client c
// presented, may be used at now. It is the one place where lapse decides
// that, for every route that presents a token (verify, the session's own
// routes, middleware, forward-auth, step-up):
//
//   - h must be s's token, or the one a rotation replaced while its grace
//     lasts; otherwise the session is not found, and if h is that
//     replaced token, past its grace, of a session still active, the
//     verdict says Reused (and Revoke on a tier whose OnTokenReuse is
//     revoke);
//   - s must be recorded active; otherwise the [EndedError] of how it
//     ended;
//   - now must be before both deadlines; otherwise the EndedError of the
//     expiry, with Lapsed: s is still recorded active, and the caller
//     must record the expiry in the store (which has the last word:
//     another node may have recorded newer activity);
//   - c is compared with s's client ([Session.Drift]); the verdict
//     carries the drift and what the tier's ClientDrift says to do:
//     StepUp (the caller answers [CodeStepUpRequired] where an assurance
//     rule applies) or Revoke.
//
// A nil error means the session may be used, unless the verdict says
// Revoke or StepUp.
func (s *Session) Check(h TokenHash, now time.Time, c Client) (v Verdict, err error) {
	if !s.Holds(h, now) {
		if h == s.PrevTokenHash && s.ActiveAt(now) {
			v.Reused, v.Revoke = true, s.Policy.OnTokenReuse == ReuseRevoke
		}
		return v, errMalformedToken
	}
	if s.Status != StatusActive {
		return v, EndedError(s)
	}
	if _, _, past := s.Lapsed(now); past {
		c := *s
		c.EndAt(Ending{Status: StatusExpired, Now: now})
		v.Lapsed = true
		return v, EndedError(&c)
	}
	if v.Drift = s.Drift(c); v.Drift.Any() {
		v.StepUp = s.Policy.ClientDrift == DriftStepUp
		v.Revoke = s.Policy.ClientDrift == DriftRevoke
	}
	return v, nil
}

// Verdict is what [Session.Check] found besides its error.
type Verdict struct {
	// Lapsed: recorded active but past a deadline; record the expiry.
	Lapsed bool
	// Reused: the token is one a step-up replaced, presented after its
	// grace, while the session is active.
	Reused bool
	// Drift is how the presenting client differs from the session's.
	Drift Drift
	// StepUp: the tier asks for a step-up because of Drift.
	StepUp bool
	// Revoke: the tier says to revoke the session with [ReasonTheft],
	// because of Drift or Reused.
	Revoke bool
}

// Holds reports whether h is the hash of s's token at now: its current
// token, or the one a rotation replaced, until PrevValidUntil.
func (s *Session) Holds(h TokenHash, now time.Time) bool {
	return s.TokenHash == h || (s.PrevTokenHash == h && now.Before(s.PrevValidUntil))
}

// EndAt applies e to s as a store records it: expired at its deadline if
// that passed before e.Now, otherwise e's status and reason at e.Now. An
// Ending with StatusExpired asks only to record an expiry: on a session
// whose deadline has not passed at e.Now (another node recorded newer
// activity) it changes nothing and returns false. Otherwise it returns
// the event to record and true.
func (s *Session) EndAt(e Ending) (Event, bool) {
	reason, at, lapsed := s.Lapsed(e.Now)
	switch {
	case lapsed:
		s.Status, s.EndReason, s.EndedAt = StatusExpired, reason, at
		return NewEvent(EventExpired, s, reason, ActorSystem, e.Now), true
	case e.Status == StatusExpired:
		return Event{}, false
	}
	s.Status, s.EndReason, s.EndedAt = e.Status, e.Reason, e.Now
	ev := NewEvent(EventRevoked, s, e.Reason, e.Actor, e.Now)
	ev.IP, ev.ActorName = e.IP, e.ActorName
	return ev, true
}

// Rotate applies r to s as a store records it, and returns the events to
// record. s must be active at r.Now.
func (s *Session) Rotate(r Rotation) []Event {
	raised := r.AAL > s.AAL
	s.PrevTokenHash, s.PrevValidUntil = r.OldHash, r.Now.Add(r.Grace)
	s.TokenHash, s.AAL, s.AMR = r.NewHash, r.AAL, r.AMR
	if r.IP != "" || r.UserAgent != "" {
		// the client that authenticated again is the session's from now on
		s.IP, s.UserAgent, s.addr = r.IP, r.UserAgent, netip.Addr{}
	}
	s.AuthenticatedAt, s.LastActiveAt = authTime(r.AuthenticatedAt, r.Now), r.Now
	s.ExpiresAt = r.Now.Add(s.Policy.AbsoluteTimeout)
	s.IdleExpiresAt, s.WarnAt = s.slide(r.Now)
	reason := Reason("reauthenticated")
	if raised {
		reason = "aal_raised"
	}
	evs := []Event{
		NewEvent(EventSteppedUp, s, reason, r.Actor, r.Now),
		NewEvent(EventRotated, s, "", r.Actor, r.Now),
	}
	ip := cmp.Or(r.CallerIP, r.IP)
	evs[0].IP, evs[1].IP = ip, ip
	evs[0].ActorName, evs[1].ActorName = r.ActorName, r.ActorName
	return evs
}

// EndedError returns the error a verify of the ended session s gets,
// with s's EndReason as its Reason.
func EndedError(s *Session) *Error {
	switch {
	case s.Status == StatusRevoked:
		return &Error{Code: CodeSessionRevoked, Message: "the session was revoked (" + string(s.EndReason) + ")", Reason: s.EndReason}
	case s.EndReason == ReasonAbsoluteTimeout:
		return &Error{Code: CodeSessionExpiredAbsolute, Message: "the session reached its absolute timeout", Reason: s.EndReason}
	default:
		return &Error{Code: CodeSessionExpiredIdle, Message: "the session expired after inactivity", Reason: ReasonIdleTimeout}
	}
}
