package lapse

import (
	"context"
	"slices"
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
// # Reads
//
// A read returns a session as the store has recorded it, with every
// change that returned before the read began, never a torn mix of two
// changes. Recorded means: its Status is what the last change made it,
// except that a session whose expiry was recorded ([ExpiryIndex.ExpireDue]
// returned it) reads as expired, with the EndReason and EndedAt of that
// expiry, everywhere, even where the store has not rewritten its row (a
// store may record a sweep as a watermark and rewrite rows later, see
// [Tidier]). A session still recorded active whose deadline has passed
// but whose expiry nobody recorded yet reads as active with its
// deadlines: reads make no expiry decision, callers compare the
// deadlines with their own clock ([Session.ActiveAt]). A deleted
// ([Purger]) or never created session is [CodeSessionNotFound].
//
// The storetest package checks every rule below, of reads and writes; a
// new store's test file is one call to storetest.Run.
type Store interface {
	// Create inserts s, which is active, and records [EventCreated]. When
	// limit > 0 it first ends the oldest sessions of s's tenant, subject
	// and tier that are active at s.CreatedAt, so that at most limit are
	// active with s; each is revoked with [ReasonLimit] and an
	// [EventRevoked]. It returns the sessions it ended.
	Create(ctx context.Context, s *Session, limit int) (ended []*Session, err error)

	// Session returns the session with the given public id, as recorded
	// (see Reads above), whatever its status: ended sessions are returned
	// until they are purged. It fails with [CodeSessionNotFound] for an
	// id the store does not hold.
	Session(ctx context.Context, id string) (*Session, error)

	// SessionByToken returns the session whose current token hashes to h,
	// or whose token a rotation replaced with h as its PrevTokenHash
	// (whether that token is still within its grace, PrevValidUntil, is
	// the caller's to decide), as recorded and whatever its status, like
	// Session. It fails with [CodeSessionNotFound] when no session has h
	// as either.
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
	//
	// seen is the session as the caller last read it; Touch writes to the
	// session with seen.ID. A store may answer from seen, without reading
	// the session, when the write is routine ([Session.RoutineTouch]) and
	// the stored session is still seen (its token, status and activity
	// unchanged: nothing else of a session changes without them), which
	// makes the usual touch one conditional write. Such an answer is seen
	// with the new activity, and so also holds what seen holds that a
	// store does not keep (policy fields such as the device rules, which a
	// Manager's Create puts in the session it caches).
	Touch(ctx context.Context, seen *Session, at, idleExpiresAt, warnAt time.Time, force bool) (*Session, error)

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
	// r.AAL and AMR r.AMR; it was active at r.Now and authenticated at r.Now
	// (or at r.AuthenticatedAt, when that is earlier); both
	// of its deadlines start afresh from r.Now under its recorded policy
	// (reauthentication resets both timers); and the replaced token keeps
	// verifying until r.Now+r.Grace; when r names a client
	// (IP or UserAgent), the session's IP and UserAgent become r's. It records [EventSteppedUp] when the
	// AAL rose, or a reauthentication otherwise, then [EventRotated]. It
	// fails with [CodeConflict] when the session's token is no longer
	// r.OldHash (another rotation won), and with the ended session's code
	// ([CodeSessionRevoked], [CodeSessionExpiredIdle],
	// [CodeSessionExpiredAbsolute]) when it is not active at r.Now.
	Rotate(ctx context.Context, id string, r Rotation) (*Session, error)

	// Sessions returns the sessions f matches ([Filter.Matches]: the
	// subject, the tenant unless f.AnyTenant, all but f.Except), newest
	// first (CreatedAt descending), at most 1000, as recorded. Unless
	// f.IncludeEnded, only sessions active at f.Now are returned: recorded
	// active with both deadlines after f.Now, so neither a session whose
	// deadline passed nor one whose expiry was recorded, whatever f.Now.
	// With f.IncludeEnded, ended and lapsed sessions come too, each as
	// recorded. No match is an empty result, not an error.
	Sessions(ctx context.Context, f Filter) ([]*Session, error)

	// Close releases the store's resources.
	Close() error
}

// Ending describes how sessions end.
type Ending struct {
	Status Status // StatusRevoked or StatusExpired
	Reason Reason
	Actor  string
	// ActorName is Actor's name ([Event.ActorName]), "" for none.
	ActorName string
	// IP is the client address of the request that revokes, recorded
	// with the revoke's events; "" for none.
	IP string
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
	// ActorName is Actor's name ([Event.ActorName]), "" for none.
	ActorName string
	// CallerIP is the address of who asked for the rotation (an API
	// caller), recorded with the events; "" records IP, the client's.
	CallerIP string
	Now      time.Time
	// AuthenticatedAt is when the subject authenticated, when that was
	// before Now (an identity provider's auth_time); zero means Now.
	AuthenticatedAt time.Time
	// Grace is how long the replaced token keeps verifying.
	Grace time.Duration
	// IP and UserAgent are the client that authenticated again, when
	// known: the session's client from now on (so that it no longer
	// counts as drift). Both empty leave the session's as they are.
	IP        string
	UserAgent string
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
	// ascending Seq order. Seqs start at 1 and have no gaps, and a reader
	// never sees an event before every event with a smaller Seq is
	// readable too, so a reader that keeps the last Seq it read misses
	// nothing.
	Events(ctx context.Context, after int64, limit int) ([]Event, error)
	// LastSeq returns the Seq of the newest event, 0 if there is none.
	LastSeq(ctx context.Context) (int64, error)
}

// ActiveCounter is implemented by stores that can count the sessions
// active at a time, by tier, without loading them.
type ActiveCounter interface {
	// CountActive returns, by tier, how many sessions are active at now,
	// as [Store.Sessions] decides it without IncludeEnded; tiers with none
	// may be left out.
	CountActive(ctx context.Context, now time.Time) (map[string]int, error)
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
	// QueryEvents returns the events q selects (all its non-zero fields
	// must match), in Seq order, at most q.Limit.
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
	Actor     string // such as "key:<id>" or "operator:<id>"
	Types     []EventType
	Since     time.Time // inclusive
	Until     time.Time // exclusive
	After     int64     // Seq
	Limit     int       // 0 means 1000
}

// Matches reports whether q selects e by its fields (all but After and
// Limit), for stores that filter in memory.
func (q EventQuery) Matches(e *Event) bool {
	return (q.Subject == "" || e.Subject == q.Subject) &&
		(q.Tenant == "" || e.Tenant == q.Tenant) &&
		(q.SessionID == "" || e.SessionID == q.SessionID) &&
		(q.Actor == "" || e.Actor == q.Actor) &&
		(len(q.Types) == 0 || slices.Contains(q.Types, e.Type)) &&
		(q.Since.IsZero() || !e.Time.Before(q.Since)) &&
		(q.Until.IsZero() || e.Time.Before(q.Until))
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
// A manager serves a session from its cache only while the feed is fresh:
// it sends a mark every quarter of its [Config.PropagationBound] and
// serves from the cache only while the last mark that came back was sent
// within the bound. A change committed before that mark was sent has
// been delivered ahead of it, so a node whose feed stalls, is starved of
// CPU or is cut off reads the store (or fails closed) once the bound has
// passed, and never serves a stale entry for longer.
type ChangeFeed interface {
	// Changes calls fn with every change made by any node, in the order
	// the store committed them, until ctx is done or the feed is lost,
	// and blocks until then. Once its subscription is live it calls fn
	// with Change{Reset: true}: "drop everything you cached", since
	// changes made before were not delivered. It returns as soon as it
	// can no longer vouch that it hears every change. fn is called from
	// one goroutine and must be quick.
	Changes(ctx context.Context, fn func(Change)) error
	// Mark sends a mark through the feed: the Changes of this same Store
	// value delivers Change{Mark: id} after every change committed before
	// Mark was called. Marks sent by other Store values (other nodes) are
	// not delivered. A mark may be lost with the feed; the caller then
	// sees none come back.
	Mark(ctx context.Context, id uint64) error
}

// Change is one item of a [ChangeFeed].
type Change struct {
	// Token is the token hash of a changed session (touched, rotated or
	// ended); zero for a mark or a reset.
	Token TokenHash
	// Mark is the id given to [ChangeFeed.Mark], for a mark.
	Mark uint64
	// Reset says the feed is live: drop everything cached.
	Reset bool
}

// IdPIndex is implemented by stores that can find sessions by the
// identity provider's session that signed them in ([Session.IdP]), so
// that the provider's back-channel logout ends them on every node
// ([Manager.EndIdP]).
type IdPIndex interface {
	// SessionsByIdP returns the sessions recorded active that q matches
	// ([IdPSession.Matches]: its issuer, and its subject and session id
	// where q gives them), as recorded, in no particular order, at most
	// 1000. A q with no issuer, or with neither a subject nor a session
	// id, matches nothing. No match is an empty result, not an error.
	SessionsByIdP(ctx context.Context, q IdPSession) ([]*Session, error)
}

// ReplayGuard is implemented by stores that remember single-use values
// for every node that shares them: a value (the jti of an identity
// provider's logout token, a challenge) is accepted once, whichever node
// sees it and however many see it at once.
type ReplayGuard interface {
	// FirstUse records key as used until until and reports whether it was
	// unused at now: of any number of calls with one key, on any number of
	// nodes, exactly one returns true while until has not passed (a call
	// whose now is at or past the until of the recorded use finds the key
	// unused again). A store keeps a key at least until until and may
	// forget it after. key is at most [MaxReplayKey] bytes; callers make
	// keys unique to their purpose, such as "oidc-logout:" and a hash.
	FirstUse(ctx context.Context, key string, until, now time.Time) (bool, error)
}

// MaxReplayKey is the longest key [ReplayGuard.FirstUse] takes.
const MaxReplayKey = 128
