package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lapsehq/lapse"
)

const sessionColumns = `id, token_hash, subject, tenant, tier, aal, amr, status, end_reason,
	created_at, last_active_at, authenticated_at, idle_expires_at, expires_at, warn_at, ended_at,
	ip, user_agent, metadata,
	idle_timeout, absolute_timeout, warn_before, require_aal, max_auth_age, max_sessions, remind_after,
	prev_token_hash, prev_valid_until, idp_issuer, idp_subject, idp_sid,
	client_drift, drift_prefix_v4, drift_prefix_v6, on_token_reuse, new_device_window`

// activeAt is the condition that a session is active at the time $n.
func activeAt(n int) string {
	p := "$" + strconv.Itoa(n)
	return `status = 'active' AND idle_expires_at > ` + p + ` AND expires_at > ` + p
}

// scanSession reads a row of sessionColumns.
func scanSession(row pgx.Row) (*lapse.Session, error) {
	var (
		s                                   lapse.Session
		hash, prevHash                      []byte
		meta                                string
		created, active, authed, idle, exp  int64
		warn, ended, prevUntil              int64
		idleT, absT, warnB, maxAge, remindA int64
		deviceW                             int64
	)
	err := row.Scan(&s.ID, &hash, &s.Subject, &s.Tenant, &s.Tier, &s.AAL, &s.AMR, &s.Status, &s.EndReason,
		&created, &active, &authed, &idle, &exp, &warn, &ended,
		&s.IP, &s.UserAgent, &meta,
		&idleT, &absT, &warnB, &s.Policy.RequireAAL, &maxAge, &s.Policy.MaxSessions, &remindA,
		&prevHash, &prevUntil, &s.IdP.Issuer, &s.IdP.Subject, &s.IdP.SID,
		&s.Policy.ClientDrift, &s.Policy.DriftPrefixV4, &s.Policy.DriftPrefixV6, &s.Policy.OnTokenReuse, &deviceW)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound()
	} else if err != nil {
		return nil, err
	}
	copy(s.TokenHash[:], hash)
	copy(s.PrevTokenHash[:], prevHash)
	if s.AMR == nil {
		s.AMR = []string{}
	}
	if meta != "" {
		s.Metadata = []byte(meta)
	}
	s.PrevValidUntil = ts(prevUntil)
	s.CreatedAt, s.LastActiveAt, s.AuthenticatedAt = ts(created), ts(active), ts(authed)
	s.IdleExpiresAt, s.ExpiresAt, s.WarnAt, s.EndedAt = ts(idle), ts(exp), ts(warn), ts(ended)
	s.Policy.IdleTimeout, s.Policy.AbsoluteTimeout = time.Duration(idleT), time.Duration(absT)
	s.Policy.WarnBefore, s.Policy.MaxAuthAge = time.Duration(warnB), time.Duration(maxAge)
	s.Policy.RemindAfter, s.Policy.NewDeviceWindow = time.Duration(remindA), time.Duration(deviceW)
	return &s, nil
}

// collect returns a reader of what a query returns, which reads every row
// with scan, in order, and closes the rows; no row is a nil list. A
// query's two results go straight in: collect(scanKey)(pool.Query(...)).
func collect[T any](scan func(pgx.Row) (T, error)) func(pgx.Rows, error) ([]T, error) {
	return func(rows pgx.Rows, err error) ([]T, error) {
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []T
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, rows.Err()
	}
}

// lockSubject takes the transaction's advisory lock on a subject: the
// creates of one subject take turns, so that the session limit counts
// every session committed before.
func lockSubject(ctx context.Context, tx pgx.Tx, subject string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "session:"+subject)
	return err
}

// Create implements [lapse.Store].
func (s *Store) Create(ctx context.Context, sess *lapse.Session, limit int) ([]*lapse.Session, error) {
	var ended []*lapse.Session
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := lockSubject(ctx, tx, sess.Subject); err != nil {
			return err
		}
		var events []lapse.Event
		if limit > 0 {
			var err error
			if ended, events, err = endOldest(ctx, tx, sess, limit); err != nil {
				return err
			}
		}
		if err := insertSession(ctx, tx, sess); err != nil {
			return err
		}
		events = append(events, lapse.NewEvent(lapse.EventCreated, sess, "", lapse.ActorAPI, sess.CreatedAt))
		return record(ctx, tx, events, tokensOf(ended))
	})
	if err != nil {
		return nil, err
	}
	return ended, nil
}

// endOldest revokes the oldest active sessions of sess's subject, tenant
// and tier so that, with sess, at most limit remain, and returns them
// with their events.
func endOldest(ctx context.Context, tx pgx.Tx, sess *lapse.Session, limit int) ([]*lapse.Session, []lapse.Event, error) {
	active, err := collect(scanSession)(tx.Query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE subject = $1 AND tenant = $2 AND tier = $3 AND `+activeAt(4)+`
		ORDER BY created_at, id FOR UPDATE`, sess.Subject, sess.Tenant, sess.Tier, nanos(sess.CreatedAt)))
	if err != nil || len(active) < limit {
		return nil, nil, err
	}
	victims := active[:len(active)-limit+1]
	events := make([]lapse.Event, 0, len(victims)+1)
	for _, v := range victims {
		ev, _ := v.EndAt(lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLimit, Actor: lapse.ActorSystem, Now: sess.CreatedAt})
		events = append(events, ev)
	}
	return victims, events, saveEnds(ctx, tx, victims)
}

func insertSession(ctx context.Context, tx pgx.Tx, s *lapse.Session) error {
	_, err := tx.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9, $10,$11,$12,$13,$14,$15,$16, $17,$18,$19, $20,$21,$22,$23,$24,$25,$26, NULL, 0, $27,$28,$29, $30,$31,$32,$33,$34)`,
		s.ID, s.TokenHash[:], s.Subject, s.Tenant, s.Tier, s.AAL, nonNil(s.AMR), s.Status, s.EndReason,
		nanos(s.CreatedAt), nanos(s.LastActiveAt), nanos(s.AuthenticatedAt), nanos(s.IdleExpiresAt),
		nanos(s.ExpiresAt), nanos(s.WarnAt), nanos(s.EndedAt),
		s.IP, s.UserAgent, string(s.Metadata),
		int64(s.Policy.IdleTimeout), int64(s.Policy.AbsoluteTimeout), int64(s.Policy.WarnBefore),
		s.Policy.RequireAAL, int64(s.Policy.MaxAuthAge), s.Policy.MaxSessions, int64(s.Policy.RemindAfter),
		s.IdP.Issuer, s.IdP.Subject, s.IdP.SID,
		string(s.Policy.ClientDrift), s.Policy.DriftPrefixV4, s.Policy.DriftPrefixV6, string(s.Policy.OnTokenReuse), int64(s.Policy.NewDeviceWindow))
	return err
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

func tokensOf(ss []*lapse.Session) []lapse.TokenHash {
	out := make([]lapse.TokenHash, len(ss))
	for i, s := range ss {
		out[i] = s.TokenHash
	}
	return out
}

// saveEnds writes how the sessions ss ended, in one statement.
func saveEnds(ctx context.Context, tx pgx.Tx, ss []*lapse.Session) error {
	if len(ss) == 0 {
		return nil
	}
	ids, statuses, reasons, at := make([]string, len(ss)), make([]string, len(ss)), make([]string, len(ss)), make([]int64, len(ss))
	for i, s := range ss {
		ids[i], statuses[i], reasons[i], at[i] = s.ID, string(s.Status), string(s.EndReason), nanos(s.EndedAt)
	}
	_, err := tx.Exec(ctx, `UPDATE sessions SET status = e.status, end_reason = e.reason, ended_at = e.at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS e(id, status, reason, at)
		WHERE sessions.id = e.id`, ids, statuses, reasons, at)
	return err
}

// Session implements [lapse.Store].
func (s *Store) Session(ctx context.Context, id string) (*lapse.Session, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	sess, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, id))
	return sess, wrap(err)
}

// SessionByToken implements [lapse.Store].
func (s *Store) SessionByToken(ctx context.Context, h lapse.TokenHash) (*lapse.Session, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	sess, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE token_hash = $1
		UNION ALL SELECT `+sessionColumns+` FROM sessions WHERE prev_token_hash = $1 LIMIT 1`, h[:]))
	return sess, wrap(err)
}

// lockSession reads a session inside tx and locks its row until tx ends.
func lockSession(ctx context.Context, tx pgx.Tx, id string) (*lapse.Session, error) {
	return scanSession(tx.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1 FOR UPDATE`, id))
}

// Touch implements [lapse.Store].
func (s *Store) Touch(ctx context.Context, seen *lapse.Session, at, idleExpiresAt, warnAt time.Time, force bool) (*lapse.Session, error) {
	if !force {
		if sess, err := s.touchSeen(ctx, seen, at, idleExpiresAt, warnAt); sess != nil || err != nil {
			return sess, err
		}
	}
	id := seen.ID
	var sess *lapse.Session
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		if sess, err = lockSession(ctx, tx, id); err != nil {
			return err
		}
		if _, _, lapsed := sess.Lapsed(at); lapsed || sess.Status != lapse.StatusActive || !at.After(sess.LastActiveAt) {
			return nil
		}
		extended := force || !at.Before(sess.WarnAt)
		sess.LastActiveAt, sess.IdleExpiresAt, sess.WarnAt = at, idleExpiresAt, warnAt
		if _, err := tx.Exec(ctx, `UPDATE sessions SET last_active_at = $1, idle_expires_at = $2, warn_at = $3 WHERE id = $4`,
			nanos(at), nanos(idleExpiresAt), nanos(warnAt), id); err != nil {
			return err
		}
		var events []lapse.Event
		if extended {
			events = []lapse.Event{lapse.NewEvent(lapse.EventExtended, sess, "", lapse.ActorSubject, at)}
		}
		return record(ctx, tx, events, []lapse.TokenHash{sess.TokenHash})
	})
	return sess, err
}

// touchSeen is the usual touch in one statement and one round trip,
// answered from seen without reading the session: when seen would take
// the routine write ([lapse.Session.RoutineTouch]) and the stored session
// is still seen. Nothing of a session changes without its token (a
// rotation), its status (an end) or its activity (a touch) changing, so
// the row matching seen in those is the row seen was read from. The
// notice to other nodes' caches goes in the same statement, so in the
// same transaction. It returns nil when it wrote nothing: Touch then
// reads the session and decides.
func (s *Store) touchSeen(ctx context.Context, seen *lapse.Session, at, idleExpiresAt, warnAt time.Time) (*lapse.Session, error) {
	if !seen.RoutineTouch(at) {
		return nil, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `WITH touched AS (
			UPDATE sessions SET last_active_at = $1, idle_expires_at = $2, warn_at = $3
			WHERE id = $4 AND token_hash = $5 AND status = 'active' AND last_active_at = $6 AND idle_expires_at = $7 AND warn_at = $8
			RETURNING 1)
		SELECT pg_notify($9, $10) FROM touched`,
		nanos(at), nanos(idleExpiresAt), nanos(warnAt),
		seen.ID, seen.TokenHash[:], nanos(seen.LastActiveAt), nanos(seen.IdleExpiresAt), nanos(seen.WarnAt),
		channel, payloads([]lapse.TokenHash{seen.TokenHash})[0])
	if err != nil {
		return nil, wrap(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if rows.Close(); rows.Err() != nil || n != 1 {
		return nil, wrap(rows.Err())
	}
	next := *seen
	next.LastActiveAt, next.IdleExpiresAt, next.WarnAt = at, idleExpiresAt, warnAt
	return &next, nil
}

// Rotate implements [lapse.Store].
func (s *Store) Rotate(ctx context.Context, id string, r lapse.Rotation) (*lapse.Session, error) {
	var sess *lapse.Session
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		if sess, err = lockSession(ctx, tx, id); err != nil {
			return err
		}
		if _, _, lapsed := sess.Lapsed(r.Now); lapsed || sess.Status != lapse.StatusActive {
			c := *sess
			c.EndAt(lapse.Ending{Status: lapse.StatusExpired, Now: r.Now})
			return lapse.EndedError(&c)
		}
		if sess.TokenHash != r.OldHash {
			return &lapse.Error{Code: lapse.CodeConflict, Message: "the session's token was replaced by another step-up"}
		}
		events := sess.Rotate(r)
		if _, err := tx.Exec(ctx, `UPDATE sessions SET token_hash = $1, prev_token_hash = $2, prev_valid_until = $3,
			aal = $4, amr = $5, authenticated_at = $6, last_active_at = $7, idle_expires_at = $8, expires_at = $9, warn_at = $10,
			ip = $11, user_agent = $12
			WHERE id = $13`,
			sess.TokenHash[:], sess.PrevTokenHash[:], nanos(sess.PrevValidUntil), sess.AAL, nonNil(sess.AMR),
			nanos(sess.AuthenticatedAt), nanos(sess.LastActiveAt), nanos(sess.IdleExpiresAt), nanos(sess.ExpiresAt),
			nanos(sess.WarnAt), sess.IP, sess.UserAgent, id); err != nil {
			return err
		}
		return record(ctx, tx, events, []lapse.TokenHash{r.OldHash, sess.TokenHash})
	})
	if err != nil {
		return nil, err
	}
	return sess, nil
}

// End implements [lapse.Store].
func (s *Store) End(ctx context.Context, id string, e lapse.Ending) (*lapse.Session, bool, error) {
	var (
		sess    *lapse.Session
		changed bool
	)
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		if sess, err = lockSession(ctx, tx, id); err != nil || sess.Status != lapse.StatusActive {
			return err
		}
		ev, ok := sess.EndAt(e)
		if !ok {
			return nil
		}
		changed = true
		if err := saveEnds(ctx, tx, []*lapse.Session{sess}); err != nil {
			return err
		}
		return record(ctx, tx, []lapse.Event{ev}, []lapse.TokenHash{sess.TokenHash})
	})
	if err != nil {
		return nil, false, err
	}
	return sess, changed, nil
}

// EndMatching implements [lapse.Store]. It locks the matching rows in id
// order, so that two calls on one subject cannot deadlock.
func (s *Store) EndMatching(ctx context.Context, f lapse.Filter, e lapse.Ending) ([]*lapse.Session, error) {
	var ended []*lapse.Session
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		query, args := filterQuery(f, `status = 'active'`)
		active, err := collect(scanSession)(tx.Query(ctx, query+` ORDER BY id FOR UPDATE`, args...))
		if err != nil {
			return err
		}
		var events []lapse.Event
		for _, sess := range active {
			if ev, ok := sess.EndAt(e); ok {
				ended = append(ended, sess)
				events = append(events, ev)
			}
		}
		if err := saveEnds(ctx, tx, ended); err != nil {
			return err
		}
		return record(ctx, tx, events, tokensOf(ended))
	})
	if err != nil {
		return nil, err
	}
	return ended, nil
}

// Sessions implements [lapse.Store].
func (s *Store) Sessions(ctx context.Context, f lapse.Filter) ([]*lapse.Session, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	query, args := filterQuery(f, activeAt(3), nanos(f.Now))
	if f.IncludeEnded {
		query, args = filterQuery(f, `true`)
	}
	ss, err := collect(scanSession)(s.pool.Query(ctx, query+` ORDER BY created_at DESC, id LIMIT 1000`, args...))
	return ss, wrap(err)
}

// filterQuery selects the sessions f matches that also meet cond, whose
// parameters start at $3.
func filterQuery(f lapse.Filter, cond string, condArgs ...any) (string, []any) {
	q := `SELECT ` + sessionColumns + ` FROM sessions WHERE subject = $1 AND id <> $2 AND ` + cond
	args := append([]any{f.Subject, f.Except}, condArgs...)
	if !f.AnyTenant {
		args = append(args, f.Tenant)
		q += ` AND tenant = $` + strconv.Itoa(len(args))
	}
	return q, args
}

// CountActive implements [lapse.ActiveCounter].
func (s *Store) CountActive(ctx context.Context, now time.Time) (map[string]int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT tier, count(*) FROM sessions WHERE `+activeAt(1)+` GROUP BY tier`, nanos(now))
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var tier string
		var n int
		if err := rows.Scan(&tier, &n); err != nil {
			return nil, wrap(err)
		}
		out[tier] = n
	}
	return out, wrap(rows.Err())
}

// ListSessions implements [lapse.SessionLister].
func (s *Store) ListSessions(ctx context.Context, q lapse.SessionQuery) ([]*lapse.Session, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		conds []string
		args  []any
	)
	// add appends a condition whose parameters are written $? in order.
	add := func(cond string, vs ...any) {
		for _, v := range vs {
			args = append(args, v)
			cond = strings.Replace(cond, "$?", "$"+strconv.Itoa(len(args)), 1)
		}
		conds = append(conds, cond)
	}
	// lapse's own sessions, or the platform's: never both (lapse.ReservedPrefix).
	add(`starts_with(subject, $?) = $?`, lapse.ReservedPrefix, q.Reserved)
	if q.Subject != "" {
		add(`subject = $?`, q.Subject)
	}
	if q.Tenant != "" {
		add(`tenant = $?`, q.Tenant)
	}
	if q.Tier != "" {
		add(`tier = $?`, q.Tier)
	}
	now := nanos(q.Now)
	switch q.Status {
	case "":
	case lapse.StatusActive:
		add(`status = 'active' AND idle_expires_at > $? AND expires_at > $?`, now, now)
	case lapse.StatusExpired:
		add(`(status = 'expired' OR status = 'active' AND (idle_expires_at <= $? OR expires_at <= $?))`, now, now)
	case lapse.StatusRevoked:
		add(`status = 'revoked'`)
	default:
		return nil, lapse.Errorf(lapse.CodeInvalid, "status %q is not one of active, expired, revoked or empty for all", q.Status)
	}
	if !q.After.IsZero() {
		add(`(created_at, id) < ($?, $?)`, nanos(q.After.CreatedAt), q.After.ID)
	}
	query := `SELECT ` + sessionColumns + ` FROM sessions`
	if len(conds) > 0 {
		query += ` WHERE ` + strings.Join(conds, ` AND `)
	}
	args = append(args, q.PageSize())
	ss, err := collect(scanSession)(s.pool.Query(ctx, query+` ORDER BY created_at DESC, id DESC LIMIT $`+strconv.Itoa(len(args)), args...))
	return ss, wrap(err)
}
