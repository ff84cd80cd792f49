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
	// activity never revives a session. When at is at or past the stored
	// WarnAt (the user came back during the warning), or force is set (an
	// explicit "stay signed in"), it records [EventExtended]; routine
	// activity is coalesced into LastActiveAt and records no event. It
	// returns the session as stored after the call.
	Touch(ctx context.Context, id string, at, idleExpiresAt, warnAt time.Time, force bool) (*Session, error)

	// End ends the session with the given id and records one event, as
	// [Session.EndAt] decides: if the session's deadline has already
	// passed at e.Now, it is recorded as expired at that deadline whatever
	// e says, because it was no longer alive to be revoked; an expiry
	// asked of a session whose deadline has not passed changes nothing. A
	// session left unchanged is returned with changed false and no event.
	End(ctx context.Context, id string, e Ending) (s *Session, changed bool, err error)

	// EndMatching ends every session that f matches and that is still
	// recorded active, one event each, and returns them. Sessions already
	// past a deadline at e.Now are recorded as expired, as in End.
	EndMatching(ctx context.Context, f Filter, e Ending) ([]*Session, error)

	// Rotate replaces the token of an active session and records a fresh
	// authentication, all in one step: the session gets r.NewHash, AAL
	// r.AAL and AMR r.AMR; it was authenticated and active at r.Now; both
	// of its deadlines start afresh from r.Now under its recorded policy
	// (reauthentication resets both timers); and the replaced token keeps
	// verifying until r.Now+r.Grace. It records [EventSteppedUp] when the
	// AAL rose, or a reauthentication otherwise, then [EventRotated]. It
	// fails with [CodeConflict] when the session's token is no longer
	// r.OldHash (another rotation won), and with the ended session's code
	// ([CodeSessionRevoked], [CodeSessionExpiredIdle],
	// [CodeSessionExpiredAbsolute]) when it is not active at r.Now.
	Rotate(ctx context.Context, id string, r Rotation) (*Session, error)

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

// Rotation describes a new token and authentication for a session.
type Rotation struct {
	OldHash TokenHash
	NewHash TokenHash
	AAL     int
	AMR     []string
	Actor   string
	Now     time.Time
	// Grace is how long the replaced token keeps verifying.
	Grace time.Duration
}

// Rotate applies r to s as a store records it, and returns the events to
// record. s must be active at r.Now.
func (s *Session) Rotate(r Rotation) []Event {
	raised := r.AAL > s.AAL
	s.PrevTokenHash, s.PrevValidUntil = r.OldHash, r.Now.Add(r.Grace)
	s.TokenHash, s.AAL, s.AMR = r.NewHash, r.AAL, r.AMR
	s.AuthenticatedAt, s.LastActiveAt = r.Now, r.Now
	s.ExpiresAt = r.Now.Add(s.Policy.AbsoluteTimeout)
	s.IdleExpiresAt, s.WarnAt = s.slide(r.Now)
	reason := Reason("reauthenticated")
	if raised {
		reason = "aal_raised"
	}
	return []Event{
		NewEvent(EventSteppedUp, s, reason, r.Actor, r.Now),
		NewEvent(EventRotated, s, "", r.Actor, r.Now),
	}
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
	// LastSeq returns the Seq of the newest event, 0 if there is none.
	LastSeq(ctx context.Context) (int64, error)
}

// ActiveCounter is implemented by stores that can count the sessions
// active at a time, by tier, without loading them.
type ActiveCounter interface {
	CountActive(ctx context.Context, now time.Time) (map[string]int, error)
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
	return NewEvent(EventRevoked, s, e.Reason, e.Actor, e.Now), true
}

// Pinger is implemented by stores that can tell whether their backing
// service answers, for readiness checks.
type Pinger interface {
	Ping(ctx context.Context) error
}

// ExpiryIndex is implemented by stores with a deadline index, so that
// expiry and warnings happen when their time comes rather than when a
// token is next presented. Each session is expired, and warned for a
// given warn_at, by exactly one call however many nodes call at once:
// recording the change is the claim.
type ExpiryIndex interface {
	// ExpireDue records as expired, at their deadlines, up to limit
	// sessions recorded active whose earliest deadline is at or before
	// now, earliest first, with one [EventExpired] each, and returns them.
	// The sessions returned need hold only what their events hold (ID,
	// TokenHash, Subject, Tenant, Tier) and how they ended (Status,
	// EndReason, EndedAt). A store may go past limit to take together
	// the sessions that share one deadline.
	ExpireDue(ctx context.Context, now time.Time, limit int) ([]*Session, error)
	// WarnDue records one [EventExpiringSoon] for each of up to limit
	// active sessions whose WarnAt is at or before now, before their
	// deadline, and that were not yet warned for that WarnAt; it returns
	// them.
	WarnDue(ctx context.Context, now time.Time, limit int) ([]*Session, error)
}

// Tidier is implemented by stores that put off, while expiries come in
// bursts, bookkeeping that no read depends on (rewriting the rows of
// expired sessions, indexing events), so that each expiry costs less
// when it matters. [Manager.Run] calls Tidy between sweeps that found
// little to do.
type Tidier interface {
	// Tidy does up to about limit items of the work put off and returns
	// how many it did; 0 means none is left.
	Tidy(ctx context.Context, limit int) (int, error)
}

// Purger is implemented by stores that can delete sessions ended long
// ago. Their events stay in the audit log.
type Purger interface {
	// Purge deletes up to limit sessions that ended before before and
	// returns how many it deleted.
	Purge(ctx context.Context, before time.Time, limit int) (int, error)
}

// AuditLog is implemented by stores whose event log is hash-chained (see
// [Event.ChainHash]).
type AuditLog interface {
	EventLog
	// QueryEvents returns the events q selects, in Seq order.
	QueryEvents(ctx context.Context, q EventQuery) ([]Event, error)
	// ChainRecords returns up to limit records with Seq greater than
	// after, in Seq order, with their stored hashes.
	ChainRecords(ctx context.Context, after int64, limit int) ([]ChainRecord, error)
}

// EventRecorder is implemented by stores that can record an event that
// changes no session, such as [EventKeyRejected], in the same log as the
// sessions' events: read back by [EventLog] readers (webhook delivery),
// chained into the [AuditLog], and indexed under its (empty) session and
// subject like any other.
type EventRecorder interface {
	// RecordEvent appends ev, in one atomic step; the store assigns its
	// Seq.
	RecordEvent(ctx context.Context, ev Event) error
}

// EventQuery selects events from an audit log. Zero fields match all.
type EventQuery struct {
	Subject   string
	Tenant    string
	SessionID string
	Types     []EventType
	Since     time.Time // inclusive
	Until     time.Time // exclusive
	After     int64     // Seq
	Limit     int       // 0 means 1000
}

// ChainRecord is one stored audit record: an event and its chain hashes.
type ChainRecord struct {
	Event
	PrevHash []byte
	Hash     []byte
}

// Delivery is one event to deliver to one webhook endpoint.
type Delivery struct {
	ID        int64
	Endpoint  string
	Event     Event
	Status    DeliveryStatus
	Attempts  int
	NextAt    time.Time
	LastError string
	UpdatedAt time.Time
}

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

// Delivery statuses.
const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliveryDelivered DeliveryStatus = "delivered"
	DeliveryDead      DeliveryStatus = "dead"
)

// DeliveryQueue keeps webhook deliveries: each endpoint's position in the
// event log, and the deliveries still to make, so that delivery is at
// least once across restarts. It is implemented by stores that keep
// events.
type DeliveryQueue interface {
	// Cursor returns the Seq of the last event enqueued for endpoint, and
	// false if the endpoint has no cursor yet.
	Cursor(ctx context.Context, endpoint string) (int64, bool, error)
	// Enqueue adds deliveries of the events with the given Seqs, due at
	// now, and moves endpoint's cursor to cursor, in one step.
	Enqueue(ctx context.Context, endpoint string, seqs []int64, cursor int64, now time.Time) error
	// Due returns up to limit pending deliveries due at now, oldest first,
	// with their events.
	Due(ctx context.Context, now time.Time, limit int) ([]Delivery, error)
	// Record stores the outcomes of attempts, in one step where the store
	// can: each delivery's Status, Attempts, NextAt and LastError as the
	// caller set them, at now.
	Record(ctx context.Context, ds []Delivery, now time.Time) error
	// Dead returns up to limit dead deliveries, newest first.
	Dead(ctx context.Context, limit int) ([]Delivery, error)
	// Replay makes the given dead deliveries (all of them when ids is
	// empty) pending again, due at now, with no attempts; it returns how
	// many it changed.
	Replay(ctx context.Context, ids []int64, now time.Time) (int, error)
}

// ChangeFeed is implemented by stores that several nodes share, so that
// each node's verify cache hears of the changes the others make.
//
// Changes calls fn with the token hash of every session changed by any
// node until ctx is done or the feed is lost, and blocks until then. Once
// its subscription is live it calls fn with the zero [TokenHash]: "drop
// everything you cached". It returns as soon as it can no longer vouch
// that it hears every change. A manager serves from its cache only
// between that first call and the return: it fails closed, never stale.
type ChangeFeed interface {
	Changes(ctx context.Context, fn func(TokenHash)) error
}
