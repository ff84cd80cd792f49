package lapse

import (
	"context"
	"time"
)

// Store keeps sessions and the events of their changes. Every method is
// one atomic step: a change and its events are committed together or not
// at all, and two concurrent calls never interleave inside one. Stores
// make no expiry decision from their own clock: every time they compare
// against comes in the arguments.
//
// Methods fail with an [*Error]: [CodeSessionNotFound] for an unknown
// session, [CodeConflict] for a duplicate id or token hash, and
// [CodeStoreUnavailable] when the backing service cannot be reached.
// Returned sessions are the caller's to keep.
//
// The storetest package checks every rule below; a new store's test file
// is one call to storetest.Run.
type Store interface {
	// Create inserts s, which is active, and records [EventCreated]. When
	// limit > 0 it first ends the oldest sessions of s's tenant, subject
	// and tier that are active at s.CreatedAt, so that at most limit are
	// active with s; each is revoked with [ReasonLimit] and an
	// [EventRevoked]. It returns the sessions it ended.
	Create(ctx context.Context, s *Session, limit int) (ended []*Session, err error)

	// Session returns the session with the given public id.
	Session(ctx context.Context, id string) (*Session, error)

	// SessionByToken returns the session whose token hashes to h.
	SessionByToken(ctx context.Context, h TokenHash) (*Session, error)

	// Touch records activity on an active session: it sets LastActiveAt to
	// at and IdleExpiresAt and WarnAt to the given values, but only if at
	// is after the stored LastActiveAt, so deadlines never move backward
	// and a late writer cannot undo a newer one. A session that is no
	// longer active, or whose deadline has passed at at, is left as it is:
	// activity never revives a session. It returns the session as stored
	// after the call.
	Touch(ctx context.Context, id string, at, idleExpiresAt, warnAt time.Time) (*Session, error)

	// End ends the session with the given id and records one event. If
	// the session's deadline has already passed at e.Now, it is recorded
	// as expired at that deadline whatever e says, because it was no
	// longer alive to be revoked. A session already ended is returned
	// unchanged with changed false and no event.
	End(ctx context.Context, id string, e Ending) (s *Session, changed bool, err error)

	// EndMatching ends every session that f matches and that is still
	// recorded active, one event each, and returns them. Sessions already
	// past a deadline at e.Now are recorded as expired, as in End.
	EndMatching(ctx context.Context, f Filter, e Ending) ([]*Session, error)

	// Sessions returns the sessions f matches, newest first. Unless
	// f.IncludeEnded, only sessions active at f.Now are returned.
	Sessions(ctx context.Context, f Filter) ([]*Session, error)

	// Close releases the store's resources.
	Close() error
}

// Ending describes how sessions end.
type Ending struct {
	Status Status // StatusRevoked or StatusExpired
	Reason Reason
	Actor  string
	// Now is the time of the call: the end time of a revoke and the time of
	// its event.
	Now time.Time
}

// Filter selects a subject's sessions.
type Filter struct {
	Subject string
	// Tenant limits the match to one tenant, unless AnyTenant is set.
	Tenant    string
	AnyTenant bool
	// Except leaves the session with this id out.
	Except string
	// IncludeEnded also returns ended and lapsed sessions (Sessions only).
	IncludeEnded bool
	// Now decides which sessions are active.
	Now time.Time
}

// Matches reports whether f selects s, ignoring status.
func (f Filter) Matches(s *Session) bool {
	return s.Subject == f.Subject && (f.AnyTenant || s.Tenant == f.Tenant) && s.ID != f.Except
}

// EventLog is implemented by stores that can read back the events they
// recorded, in order. Readers such as webhook delivery and the audit log
// use it.
type EventLog interface {
	// Events returns up to limit events with Seq greater than after, in
	// ascending Seq order.
	Events(ctx context.Context, after int64, limit int) ([]Event, error)
}

// ActiveCounter is implemented by stores that can count the sessions
// active at a time, by tier, without loading them.
type ActiveCounter interface {
	CountActive(ctx context.Context, now time.Time) (map[string]int, error)
}

// EndAt applies e to s as a store records it: expired at its deadline if
// that passed before e.Now, otherwise e's status and reason at e.Now. It
// returns the event to record.
func (s *Session) EndAt(e Ending) Event {
	s.Status, s.EndReason, s.EndedAt = e.Status, e.Reason, e.Now
	actor := e.Actor
	if reason, at, ok := s.Lapsed(e.Now); ok {
		s.Status, s.EndReason, s.EndedAt = StatusExpired, reason, at
		actor = ActorSystem
	}
	typ := EventRevoked
	if s.Status == StatusExpired {
		typ = EventExpired
	}
	return NewEvent(typ, s, s.EndReason, actor, e.Now)
}

// Pinger is implemented by stores that can tell whether their backing
// service answers, for readiness checks.
type Pinger interface {
	Ping(ctx context.Context) error
}
