package lapsetest

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/lapsehq/lapse"
)

// Store is a [lapse.Store] that keeps everything in memory, for tests of
// code that uses lapse, as scs's memstore is for scs. It needs no
// database and does no I/O, so tests on it can run in a testing/synctest
// bubble.
//
// It passes the storetest suite with every optional interface of the
// SQLite store but two: [lapse.ChangeFeed], since it is never shared
// between nodes, and [lapse.Tidier], since it puts nothing off. Its audit
// log is hash-chained as every store's is ([lapse.Event.ChainHash]).
//
// It is safe for concurrent use: one lock makes each call one atomic
// step. What goes in and comes out is copied, so a caller cannot change
// what the store holds. After [Store.Close] every call fails with
// [lapse.CodeStoreUnavailable], as a store whose service went away does.
type Store struct {
	mu       sync.Mutex
	closed   bool
	sessions []*record // in the order they were created
	events   []lapse.ChainRecord

	deliveries []lapse.Delivery // each at its ID-1
	cursors    map[string]int64

	factors  map[string]lapse.TOTPFactor  // by subject
	recovery map[string][]lapse.TokenHash // unused recovery codes, by subject
	attempts []attempt                    // each at its id-1

	passkeys   map[string][]lapse.Passkey // by subject
	challenges map[lapse.TokenHash]lapse.Challenge
	used       map[string]time.Time // single-use keys, until when (ReplayGuard)

	bindings map[string]lapse.DeviceBinding // by session id
	keys     map[string]lapse.APIKey        // API keys, by id
	ops      map[string]lapse.Operator      // console operators, by id
}

// record is a stored session and the WarnAt it was last warned for.
type record struct {
	s      lapse.Session
	warned time.Time
}

var (
	_ lapse.Store         = (*Store)(nil)
	_ lapse.ExpiryIndex   = (*Store)(nil)
	_ lapse.AuditLog      = (*Store)(nil)
	_ lapse.Purger        = (*Store)(nil)
	_ lapse.ActiveCounter = (*Store)(nil)
	_ lapse.Pinger        = (*Store)(nil)
	_ lapse.SessionLister = (*Store)(nil)
	_ lapse.EventRecorder = (*Store)(nil)
	_ lapse.IdPIndex      = (*Store)(nil)
	_ lapse.ReplayGuard   = (*Store)(nil)
	_ lapse.DeviceBinder  = (*Store)(nil)
	_ lapse.KeyStore      = (*Store)(nil)
	_ lapse.OperatorStore = (*Store)(nil)
)

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{
		cursors:  map[string]int64{},
		factors:  map[string]lapse.TOTPFactor{},
		recovery: map[string][]lapse.TokenHash{},

		passkeys:   map[string][]lapse.Passkey{},
		challenges: map[lapse.TokenHash]lapse.Challenge{},
		used:       map[string]time.Time{},
		bindings:   map[string]lapse.DeviceBinding{},
		keys:       map[string]lapse.APIKey{},
		ops:        map[string]lapse.Operator{},
	}
}

// lock takes the store's lock, or fails with CodeStoreUnavailable, not
// holding it, once the store is closed.
func (st *Store) lock() error {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return &lapse.Error{Code: lapse.CodeStoreUnavailable, Message: "the memory store is closed"}
	}
	return nil
}

// Close implements [lapse.Store]: every later call fails.
func (st *Store) Close() error {
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
	return nil
}

// Ping implements [lapse.Pinger]: it fails once the store is closed.
func (st *Store) Ping(context.Context) error {
	if err := st.lock(); err != nil {
		return err
	}
	st.mu.Unlock()
	return nil
}

// clone returns a copy of s that shares nothing with it.
func clone(s *lapse.Session) *lapse.Session {
	c := *s
	c.AMR = slices.Clone(s.AMR)
	c.Metadata = slices.Clone(s.Metadata)
	c.Policy.Profiles = slices.Clone(s.Policy.Profiles)
	return &c
}

func notFound() error {
	return &lapse.Error{Code: lapse.CodeSessionNotFound, Message: "no such session"}
}

// find returns the first session, in creation order, that match selects.
func (st *Store) find(match func(*lapse.Session) bool) *record {
	for _, r := range st.sessions {
		if match(&r.s) {
			return r
		}
	}
	return nil
}

func (st *Store) byID(id string) *record {
	return st.find(func(s *lapse.Session) bool { return s.ID == id })
}

// newestFirst orders sessions by CreatedAt, then ID, both descending:
// the listing order of [lapse.SessionLister].
func newestFirst(a, b *lapse.Session) int {
	return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
}

// Create implements [lapse.Store].
func (st *Store) Create(_ context.Context, s *lapse.Session, limit int) ([]*lapse.Session, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	if st.find(func(x *lapse.Session) bool { return x.ID == s.ID || x.TokenHash == s.TokenHash }) != nil {
		return nil, &lapse.Error{Code: lapse.CodeConflict, Message: "a session with this id or token hash exists"}
	}
	var ended []*lapse.Session
	if limit > 0 {
		ended = st.endOldest(s, limit)
	}
	st.sessions = append(st.sessions, &record{s: *clone(s)})
	st.appendEvents(lapse.NewEvent(lapse.EventCreated, s, "", lapse.ActorAPI, s.CreatedAt))
	return ended, nil
}

// endOldest revokes the oldest sessions of s's subject, tenant and tier
// active at s.CreatedAt, so that with s at most limit are.
func (st *Store) endOldest(s *lapse.Session, limit int) []*lapse.Session {
	var active []*record
	for _, r := range st.sessions {
		if r.s.Subject == s.Subject && r.s.Tenant == s.Tenant && r.s.Tier == s.Tier && r.s.ActiveAt(s.CreatedAt) {
			active = append(active, r)
		}
	}
	if len(active) < limit {
		return nil
	}
	slices.SortFunc(active, func(a, b *record) int { return newestFirst(&b.s, &a.s) })
	var ended []*lapse.Session
	for _, r := range active[:len(active)-limit+1] {
		s, _ := st.end(r, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLimit, Actor: lapse.ActorSystem, Now: s.CreatedAt})
		ended = append(ended, s)
	}
	return ended
}

// end applies e to r's session if it is recorded active, as
// [lapse.Session.EndAt] decides, records its event, and returns a copy
// of the session and whether it changed.
func (st *Store) end(r *record, e lapse.Ending) (*lapse.Session, bool) {
	if r.s.Status != lapse.StatusActive {
		return clone(&r.s), false
	}
	ev, changed := r.s.EndAt(e)
	if changed {
		st.appendEvents(ev)
	}
	return clone(&r.s), changed
}

// Session implements [lapse.Store].
func (st *Store) Session(_ context.Context, id string) (*lapse.Session, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	if r := st.byID(id); r != nil {
		return clone(&r.s), nil
	}
	return nil, notFound()
}

// SessionByToken implements [lapse.Store].
func (st *Store) SessionByToken(_ context.Context, h lapse.TokenHash) (*lapse.Session, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	r := st.find(func(s *lapse.Session) bool { return s.TokenHash == h })
	if r == nil {
		r = st.find(func(s *lapse.Session) bool { return s.PrevTokenHash == h })
	}
	if r == nil {
		return nil, notFound()
	}
	return clone(&r.s), nil
}

// Touch implements [lapse.Store].
func (st *Store) Touch(_ context.Context, seen *lapse.Session, at, idleExpiresAt, warnAt time.Time, force bool) (*lapse.Session, error) {
	id := seen.ID // a map lookup: nothing to save by answering from seen
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	r := st.byID(id)
	if r == nil {
		return nil, notFound()
	}
	s := &r.s
	if s.ActiveAt(at) && at.After(s.LastActiveAt) {
		extended := force || !at.Before(s.WarnAt)
		s.LastActiveAt, s.IdleExpiresAt, s.WarnAt = at, idleExpiresAt, warnAt
		if extended {
			st.appendEvents(lapse.NewEvent(lapse.EventExtended, s, "", lapse.ActorSubject, at))
		}
	}
	return clone(s), nil
}

// End implements [lapse.Store].
func (st *Store) End(_ context.Context, id string, e lapse.Ending) (*lapse.Session, bool, error) {
	if err := st.lock(); err != nil {
		return nil, false, err
	}
	defer st.mu.Unlock()
	r := st.byID(id)
	if r == nil {
		return nil, false, notFound()
	}
	s, changed := st.end(r, e)
	return s, changed, nil
}

// EndMatching implements [lapse.Store].
func (st *Store) EndMatching(_ context.Context, f lapse.Filter, e lapse.Ending) ([]*lapse.Session, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	var ended []*lapse.Session
	for _, r := range st.sessions {
		if !f.Matches(&r.s) {
			continue
		}
		if s, changed := st.end(r, e); changed {
			ended = append(ended, s)
		}
	}
	return ended, nil
}

// Rotate implements [lapse.Store].
func (st *Store) Rotate(_ context.Context, id string, rot lapse.Rotation) (*lapse.Session, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	r := st.byID(id)
	if r == nil {
		return nil, notFound()
	}
	// Checked with its own token, the session is refused only for having
	// ended or lapsed, with the error of how.
	if _, err := r.s.Check(r.s.TokenHash, rot.Now, lapse.Client{}); err != nil {
		return nil, err
	}
	if r.s.TokenHash != rot.OldHash {
		return nil, &lapse.Error{Code: lapse.CodeConflict, Message: "the session's token was replaced by another step-up"}
	}
	rot.AMR = slices.Clone(rot.AMR)
	st.appendEvents(r.s.Rotate(rot)...)
	return clone(&r.s), nil
}

// Sessions implements [lapse.Store].
func (st *Store) Sessions(_ context.Context, f lapse.Filter) ([]*lapse.Session, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	return st.newest(1000, func(s *lapse.Session) bool {
		return f.Matches(s) && (f.IncludeEnded || s.ActiveAt(f.Now))
	}), nil
}

// ListSessions implements [lapse.SessionLister].
func (st *Store) ListSessions(_ context.Context, q lapse.SessionQuery) ([]*lapse.Session, error) {
	if !lapse.ValidListStatus(q.Status) {
		return nil, lapse.Errorf(lapse.CodeInvalid, "status %q is not one of active, expired, revoked or empty for all", q.Status)
	}
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	return st.newest(q.PageSize(), q.Matches), nil
}

// newest returns copies of up to n of the sessions match selects, newest
// first.
func (st *Store) newest(n int, match func(*lapse.Session) bool) []*lapse.Session {
	var out []*lapse.Session
	for _, r := range st.sessions {
		if match(&r.s) {
			out = append(out, clone(&r.s))
		}
	}
	slices.SortFunc(out, newestFirst)
	return out[:min(n, len(out))]
}

// CountActive implements [lapse.ActiveCounter].
func (st *Store) CountActive(_ context.Context, now time.Time) (map[string]int, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	out := map[string]int{}
	for _, r := range st.sessions {
		if r.s.ActiveAt(now) {
			out[r.s.Tier]++
		}
	}
	return out, nil
}

// ExpireDue implements [lapse.ExpiryIndex]. It rewrites each session it
// expires, so it never needs to go past limit.
func (st *Store) ExpireDue(_ context.Context, now time.Time, limit int) ([]*lapse.Session, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	due := st.due(limit, func(r *record) (time.Time, bool) {
		_, _, lapsed := r.s.Lapsed(now)
		return r.s.Deadline(), r.s.Status == lapse.StatusActive && lapsed
	})
	var out []*lapse.Session
	for _, r := range due {
		s, _ := st.end(r, lapse.Ending{Status: lapse.StatusExpired, Now: now})
		out = append(out, s)
	}
	return out, nil
}

// WarnDue implements [lapse.ExpiryIndex].
func (st *Store) WarnDue(_ context.Context, now time.Time, limit int) ([]*lapse.Session, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	due := st.due(limit, func(r *record) (time.Time, bool) {
		s := &r.s
		return s.WarnAt, s.ActiveAt(now) && !s.WarnAt.After(now) && s.WarnAt.Before(s.Deadline()) && !r.warned.Equal(s.WarnAt)
	})
	var out []*lapse.Session
	for _, r := range due {
		r.warned = r.s.WarnAt
		st.appendEvents(lapse.NewEvent(lapse.EventExpiringSoon, &r.s, "", lapse.ActorSystem, now))
		out = append(out, clone(&r.s))
	}
	return out, nil
}

// due returns up to limit of the sessions that at selects, earliest
// first by the time at returns for them.
func (st *Store) due(limit int, at func(*record) (time.Time, bool)) []*record {
	var due []*record
	for _, r := range st.sessions {
		if _, ok := at(r); ok {
			due = append(due, r)
		}
	}
	slices.SortStableFunc(due, func(a, b *record) int {
		ta, _ := at(a)
		tb, _ := at(b)
		return ta.Compare(tb)
	})
	return due[:min(limit, len(due))]
}

// Purge implements [lapse.Purger].
func (st *Store) Purge(_ context.Context, before time.Time, limit int) (int, error) {
	if err := st.lock(); err != nil {
		return 0, err
	}
	defer st.mu.Unlock()
	n := 0
	st.sessions = slices.DeleteFunc(st.sessions, func(r *record) bool {
		old := n < limit && r.s.Status != lapse.StatusActive && r.s.EndedAt.Before(before)
		if old {
			n++
			delete(st.bindings, r.s.ID)
		}
		return old
	})
	return n, nil
}

// SessionsByIdP implements [lapse.IdPIndex].
func (st *Store) SessionsByIdP(_ context.Context, q lapse.IdPSession) ([]*lapse.Session, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	return st.newest(1000, func(s *lapse.Session) bool {
		return s.Status == lapse.StatusActive && q.Matches(s.IdP)
	}), nil
}

// FirstUse implements [lapse.ReplayGuard].
func (st *Store) FirstUse(_ context.Context, key string, until, now time.Time) (bool, error) {
	if key == "" || len(key) > lapse.MaxReplayKey {
		return false, lapse.Errorf(lapse.CodeInvalid, "a single-use key is 1 to %d bytes", lapse.MaxReplayKey)
	}
	if err := st.lock(); err != nil {
		return false, err
	}
	defer st.mu.Unlock()
	if used, ok := st.used[key]; ok && now.Before(used) {
		return false, nil
	}
	st.used[key] = until
	return true, nil
}
