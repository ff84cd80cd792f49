package lapse

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// SessionLister is implemented by stores that can list sessions across
// subjects, for operators (the web console's live-sessions table). A
// store without it can still list one subject's sessions through
// [Store.Sessions]; [Manager.ListSessions] falls back to that.
type SessionLister interface {
	// ListSessions returns up to q's page size of the sessions q selects,
	// in listing order (newest first: CreatedAt, then ID, both
	// descending), after q.After. Sessions come back as recorded (see
	// [Store]): one still recorded active past a deadline keeps
	// StatusActive, and one whose expiry was recorded reads as expired
	// even where the store has not rewritten its row. It fails with
	// [CodeInvalid] for an unknown q.Status.
	ListSessions(ctx context.Context, q SessionQuery) ([]*Session, error)
}

// Page sizes of a session listing.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// SessionQuery selects sessions to list. Zero fields match all; in
// particular an empty Tenant matches every tenant, the platform's own
// ("") included.
type SessionQuery struct {
	Subject string
	Tenant  string
	Tier    string
	// Status selects sessions as they stand at Now: [StatusActive] those
	// recorded active with both deadlines after Now; [StatusExpired]
	// those recorded expired, or recorded active with a deadline at or
	// before Now (not swept yet); [StatusRevoked] those revoked. Empty
	// selects every status.
	Status Status
	// Now decides which sessions are active; [Manager.ListSessions] sets it.
	Now time.Time
	// Reserved selects lapse's own sessions (subjects beginning with
	// [ReservedPrefix]) instead of the platform's; [Manager.ListSessions]
	// sets it to the manager's namespace, so that a listing across
	// subjects never mixes the two.
	Reserved bool
	// After continues a listing: only sessions after this position in
	// listing order are returned. The zero cursor starts at the newest.
	After SessionCursor
	// Limit is the page size: 0 means [DefaultListLimit], and more than
	// [MaxListLimit] means MaxListLimit.
	Limit int
}

// SessionCursor is a position in the listing order of sessions: the
// session created at CreatedAt with the given ID. Pass the cursor of the
// last session of a page as [SessionQuery.After] to get the next page.
type SessionCursor struct {
	CreatedAt time.Time
	ID        string
}

// IsZero reports whether c is the start of the listing.
func (c SessionCursor) IsZero() bool { return c.CreatedAt.IsZero() && c.ID == "" }

// Cursor returns the position of s in the listing order.
func (s *Session) Cursor() SessionCursor { return SessionCursor{CreatedAt: s.CreatedAt, ID: s.ID} }

// compareListing orders a before b when a is newer: CreatedAt, then ID,
// both descending.
func compareListing(a, b SessionCursor) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(b.ID, a.ID)
}

// PageSize returns the number of sessions a page of q holds at most.
func (q SessionQuery) PageSize() int {
	switch {
	case q.Limit <= 0:
		return DefaultListLimit
	case q.Limit > MaxListLimit:
		return MaxListLimit
	}
	return q.Limit
}

// Matches reports whether q selects s as stored, cursor included, for
// stores that filter in memory.
func (q SessionQuery) Matches(s *Session) bool {
	switch {
	case ReservedSubject(s.Subject) != q.Reserved,
		q.Subject != "" && s.Subject != q.Subject,
		q.Tenant != "" && s.Tenant != q.Tenant,
		q.Tier != "" && s.Tier != q.Tier,
		!q.After.IsZero() && compareListing(q.After, s.Cursor()) >= 0:
		return false
	}
	active := s.ActiveAt(q.Now)
	switch q.Status {
	case StatusActive:
		return active
	case StatusExpired:
		return s.Status == StatusExpired || s.Status == StatusActive && !active
	case StatusRevoked:
		return s.Status == StatusRevoked
	}
	return true
}

// ValidListStatus reports whether st is a status a [SessionQuery] may
// select: empty (all), active, expired or revoked.
func ValidListStatus(st Status) bool {
	switch st {
	case "", StatusActive, StatusExpired, StatusRevoked:
		return true
	}
	return false
}

// ListSessions returns a page of the sessions q selects as they stand
// now, newest first, in the manager's namespace ([ReservedPrefix]); q.Now
// and q.Reserved are set by the manager. With a store that is a
// [SessionLister] any query works. Otherwise q must name a subject: the
// manager then reads that subject's sessions with [Store.Sessions] (its
// newest 1000) and filters them. It fails with [CodeInvalid] for an
// unknown status or a query without a subject that the store cannot
// answer, or with a store error.
func (m *Manager) ListSessions(ctx context.Context, q SessionQuery) ([]*Session, error) {
	if !ValidListStatus(q.Status) {
		return nil, Errorf(CodeInvalid, "status %q is not one of active, expired, revoked or empty for all", q.Status)
	}
	if q.Subject != "" && ReservedSubject(q.Subject) != m.reserved {
		return nil, nil // no such subject here
	}
	if t := TenantOf(ctx); t != "" {
		if q.Tenant != "" && q.Tenant != t {
			return nil, nil // another tenant's: none here
		}
		q.Tenant = t
	}
	q.Now, q.Reserved = m.clock.Now(), m.reserved
	var (
		ss  []*Session
		err error
	)
	if l, ok := m.store.(SessionLister); ok {
		ss, err = l.ListSessions(ctx, q)
	} else {
		ss, err = m.listSubject(ctx, q)
	}
	if err != nil {
		return nil, err
	}
	for i, s := range ss {
		ss[i] = asOf(s, q.Now)
	}
	return ss, nil
}

// listSubject answers q from one subject's sessions, for stores that are
// not a [SessionLister].
func (m *Manager) listSubject(ctx context.Context, q SessionQuery) ([]*Session, error) {
	if q.Subject == "" {
		return nil, Errorf(CodeInvalid, "this store cannot list sessions across subjects: name a subject")
	}
	all, err := m.store.Sessions(ctx, Filter{
		Subject: q.Subject, Tenant: q.Tenant, AnyTenant: q.Tenant == "",
		IncludeEnded: q.Status != StatusActive, Now: q.Now,
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b *Session) int { return compareListing(a.Cursor(), b.Cursor()) })
	var out []*Session
	for _, s := range all {
		if len(out) == q.PageSize() {
			break
		}
		if q.Matches(s) {
			out = append(out, s)
		}
	}
	return out, nil
}
