package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
)

const sessionColumns = `id, token_hash, subject, tenant, tier, aal, amr, status, end_reason,
	created_at, last_active_at, authenticated_at, idle_expires_at, expires_at, warn_at, ended_at,
	ip, user_agent, metadata,
	idle_timeout, absolute_timeout, warn_before, require_aal, max_auth_age, max_sessions, remind_after,
	prev_token_hash, prev_valid_until, idp_issuer, idp_subject, idp_sid,
	client_drift, drift_prefix_v4, drift_prefix_v6, on_token_reuse, new_device_window`

// sessionSelect is sessionColumns and the sweep watermark, read in the
// same statement so that scanSession sees a snapshot of both.
const sessionSelect = sessionColumns + `, (SELECT value FROM store_state WHERE name = 'swept_until')`

// unswept is the condition on a session row that its deadline is after
// the watermark: with status = 'active' it selects the sessions that are
// really active.
const unswept = `min(idle_expires_at, expires_at) > (SELECT value FROM store_state WHERE name = 'swept_until')`

// clockBehind is the error of a write whose new deadline falls at or
// before the watermark w: the writer's clock is behind the sweeper's.
func clockBehind(w int64) error {
	return &lapse.Error{Code: lapse.CodeStoreUnavailable,
		Message: "this process's clock is behind the session store's expiry sweep (swept up to " + ts(w).Format(time.RFC3339Nano) + ")"}
}

// sweptUntil reads the sweep watermark inside tx, once per batch.
func sweptUntil(ctx context.Context, tx wtx) (int64, error) {
	b := tx.b
	if !b.sweptKnown {
		if err := tx.QueryRowContext(ctx, `SELECT value FROM store_state WHERE name = 'swept_until'`).Scan(&b.swept); err != nil {
			return 0, err
		}
		b.sweptKnown = true
	}
	return b.swept, nil
}

type scanner interface{ Scan(...any) error }

// scanSession reads a row of sessionSelect. A session recorded active
// whose deadline is at or before the watermark is returned as the
// sweeper recorded it: expired at that deadline (see ExpireDue).
func scanSession(row scanner) (*lapse.Session, error) {
	s, _, err := scanSessionSwept(row)
	return s, err
}

// scanSessionSwept is scanSession that also returns the watermark it read.
func scanSessionSwept(row scanner) (*lapse.Session, int64, error) {
	var (
		s                                   lapse.Session
		prevUntil                           int64
		amr, meta                           string
		created, active, authed, idle, exp  int64
		warn, ended                         int64
		idleT, absT, warnB, maxAge, remindA int64
		swept, deviceW                      int64
	)
	err := row.Scan(&s.ID, hashInto{&s.TokenHash}, &s.Subject, &s.Tenant, &s.Tier, &s.AAL, &amr, &s.Status, &s.EndReason,
		&created, &active, &authed, &idle, &exp, &warn, &ended,
		&s.IP, &s.UserAgent, &meta,
		&idleT, &absT, &warnB, &s.Policy.RequireAAL, &maxAge, &s.Policy.MaxSessions, &remindA,
		hashInto{&s.PrevTokenHash}, &prevUntil, &s.IdP.Issuer, &s.IdP.Subject, &s.IdP.SID,
		&s.Policy.ClientDrift, &s.Policy.DriftPrefixV4, &s.Policy.DriftPrefixV6, &s.Policy.OnTokenReuse, &deviceW, &swept)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, notFound()
	} else if err != nil {
		return nil, 0, err
	}
	s.PrevValidUntil = ts(prevUntil)
	if s.AMR, err = parseAMR(amr); err != nil {
		return nil, 0, err
	}
	if meta != "" {
		s.Metadata = json.RawMessage(meta)
	}
	s.CreatedAt, s.LastActiveAt, s.AuthenticatedAt = ts(created), ts(active), ts(authed)
	s.IdleExpiresAt, s.ExpiresAt, s.WarnAt, s.EndedAt = ts(idle), ts(exp), ts(warn), ts(ended)
	s.Policy.IdleTimeout, s.Policy.AbsoluteTimeout = time.Duration(idleT), time.Duration(absT)
	s.Policy.WarnBefore, s.Policy.MaxAuthAge = time.Duration(warnB), time.Duration(maxAge)
	s.Policy.RemindAfter, s.Policy.NewDeviceWindow = time.Duration(remindA), time.Duration(deviceW)
	if reason, at, lapsed := s.Lapsed(ts(swept)); s.Status == lapse.StatusActive && lapsed {
		s.Status, s.EndReason, s.EndedAt = lapse.StatusExpired, reason, at
	}
	return &s, swept, nil
}

// hashInto scans a BLOB column (or NULL, as zero) into a token hash, with
// no copy of its own as a []byte destination would make.
type hashInto struct{ h *lapse.TokenHash }

func (d hashInto) Scan(src any) error {
	switch b := src.(type) {
	case []byte:
		*d.h = lapse.TokenHash{}
		copy(d.h[:], b)
	case nil:
		*d.h = lapse.TokenHash{}
	default:
		return fmt.Errorf("sqlite: a token hash stored as %T", src)
	}
	return nil
}

// parseAMR reads the JSON array of strings insertSession stored. Methods
// are plain names (pwd, totp...), read here without the JSON decoder and
// its allocations; a name JSON had to escape goes to the decoder.
func parseAMR(s string) ([]string, error) {
	switch {
	case s == "[]":
		return []string{}, nil
	case strings.HasPrefix(s, `["`) && strings.HasSuffix(s, `"]`) && len(s) >= 4 && !strings.ContainsRune(s, '\\'):
		return strings.Split(s[2:len(s)-2], `","`), nil
	}
	var amr []string
	return amr, json.Unmarshal([]byte(s), &amr)
}

// ts and nanos convert between times and stored Unix nanoseconds; the
// zero time is stored as 0.
func ts(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Create implements [lapse.Store].
func (s *Store) Create(ctx context.Context, sess *lapse.Session, limit int) ([]*lapse.Session, error) {
	var ended []*lapse.Session
	err := s.inTx(ctx, func(tx wtx) error {
		// A session created by a caller whose clock is behind the
		// sweep's, past a deadline the sweep already covered, would read
		// as expired at once: it is refused, and nothing changes.
		if w, err := sweptUntil(ctx, tx); err != nil {
			return err
		} else if nanos(sess.Deadline()) <= w {
			return clockBehind(w)
		}
		if limit > 0 {
			var err error
			if ended, err = endOldest(ctx, tx, sess, limit); err != nil {
				return err
			}
		}
		if err := insertSession(ctx, tx, sess); err != nil {
			return err
		}
		return appendEvent(ctx, tx, lapse.NewEvent(lapse.EventCreated, sess, "", lapse.ActorAPI, sess.CreatedAt))
	})
	if err != nil {
		return nil, err
	}
	return ended, nil
}

// endOldest revokes the oldest active sessions of sess's subject, tenant
// and tier so that, with sess, at most limit remain.
func endOldest(ctx context.Context, tx wtx, sess *lapse.Session, limit int) ([]*lapse.Session, error) {
	now := nanos(sess.CreatedAt)
	rows, err := tx.QueryContext(ctx, `SELECT `+sessionSelect+` FROM sessions
		WHERE subject = ? AND tenant = ? AND tier = ? AND status = 'active'
		  AND idle_expires_at > ? AND expires_at > ? AND `+unswept+`
		ORDER BY created_at, id`, sess.Subject, sess.Tenant, sess.Tier, now, now)
	if err != nil {
		return nil, err
	}
	active, err := collect(rows, scanSession)
	if err != nil || len(active) < limit {
		return nil, err
	}
	victims := active[:len(active)-limit+1]
	for _, v := range victims {
		ev, _ := v.EndAt(lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLimit, Actor: lapse.ActorSystem, Now: sess.CreatedAt})
		if err := saveEnd(ctx, tx, v, ev); err != nil {
			return nil, err
		}
	}
	return victims, nil
}

func insertSession(ctx context.Context, tx wtx, s *lapse.Session) error {
	amr, err := json.Marshal(nonNil(s.AMR))
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO sessions (`+sessionColumns+`)
		VALUES (?,?,?,?,?,?,?,?,?, ?,?,?,?,?,?,?, ?,?,?, ?,?,?,?,?,?,?, NULL,0, ?,?,?, ?,?,?,?,?)`,
		s.ID, s.TokenHash[:], s.Subject, s.Tenant, s.Tier, s.AAL, string(amr), s.Status, s.EndReason,
		nanos(s.CreatedAt), nanos(s.LastActiveAt), nanos(s.AuthenticatedAt), nanos(s.IdleExpiresAt),
		nanos(s.ExpiresAt), nanos(s.WarnAt), nanos(s.EndedAt),
		s.IP, s.UserAgent, string(s.Metadata),
		int64(s.Policy.IdleTimeout), int64(s.Policy.AbsoluteTimeout), int64(s.Policy.WarnBefore),
		s.Policy.RequireAAL, int64(s.Policy.MaxAuthAge), s.Policy.MaxSessions, int64(s.Policy.RemindAfter),
		s.IdP.Issuer, s.IdP.Subject, s.IdP.SID,
		s.Policy.ClientDrift, s.Policy.DriftPrefixV4, s.Policy.DriftPrefixV6, s.Policy.OnTokenReuse, int64(s.Policy.NewDeviceWindow))
	return err
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// saveEnd writes the end of s and its event.
func saveEnd(ctx context.Context, tx wtx, s *lapse.Session, ev lapse.Event) error {
	if _, err := tx.ExecContext(ctx, `UPDATE sessions SET status = ?, end_reason = ?, ended_at = ? WHERE id = ?`,
		s.Status, s.EndReason, nanos(s.EndedAt), s.ID); err != nil {
		return err
	}
	return appendEvent(ctx, tx, ev)
}

// The reads of a verify that misses the cache, prepared once on the
// readers (readStmts): parsing them again at every call was about a
// third of a miss's CPU.
const (
	sessionByIDQuery    = `SELECT ` + sessionSelect + ` FROM sessions WHERE id = ?`
	sessionByTokenQuery = `SELECT ` + sessionSelect + ` FROM sessions WHERE token_hash = ?1
		UNION ALL SELECT ` + sessionSelect + ` FROM sessions WHERE prev_token_hash = ?1 LIMIT 1`
)

// Session implements [lapse.Store].
func (s *Store) Session(ctx context.Context, id string) (*lapse.Session, error) {
	sess, err := scanSession(s.byID.QueryRowContext(ctx, id))
	return sess, wrap(err)
}

// SessionByToken implements [lapse.Store].
func (s *Store) SessionByToken(ctx context.Context, h lapse.TokenHash) (*lapse.Session, error) {
	sess, err := scanSession(s.byToken.QueryRowContext(ctx, h[:]))
	return sess, wrap(err)
}

// Touch implements [lapse.Store].
func (s *Store) Touch(ctx context.Context, seen *lapse.Session, at, idleExpiresAt, warnAt time.Time, force bool) (*lapse.Session, error) {
	id := seen.ID
	var sess *lapse.Session
	err := s.inTx(ctx, func(tx wtx) error {
		if !force {
			var err error
			if sess, err = touchSeen(ctx, tx, seen, at, idleExpiresAt, warnAt); sess != nil || err != nil {
				return err
			}
		}
		var (
			err error
			w   int64
		)
		if sess, w, err = sessionByID(ctx, tx, id); err != nil {
			return err
		}
		if _, _, lapsed := sess.Lapsed(at); lapsed || sess.Status != lapse.StatusActive || !at.After(sess.LastActiveAt) {
			return nil
		}
		// Deadlines only move later, so a slide cannot fall behind the
		// watermark; a caller with a stray clock is refused all the same.
		next := *sess
		next.IdleExpiresAt = idleExpiresAt
		if nanos(next.Deadline()) <= w {
			return nil
		}
		extended := force || !at.Before(sess.WarnAt)
		sess.LastActiveAt, sess.IdleExpiresAt, sess.WarnAt = at, idleExpiresAt, warnAt
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET last_active_at = ?, idle_expires_at = ?, warn_at = ? WHERE id = ?`,
			nanos(at), nanos(idleExpiresAt), nanos(warnAt), id); err != nil {
			return err
		}
		if extended {
			return appendEvent(ctx, tx, lapse.NewEvent(lapse.EventExtended, sess, "", lapse.ActorSubject, at))
		}
		return nil
	})
	return sess, err
}

// touchSeen is the usual touch in one statement, answered from seen
// without reading the session: when seen would take the routine write
// ([lapse.Session.RoutineTouch], and both deadlines after the watermark)
// and the stored session is still seen. Nothing of a session changes
// without its token (a rotation), its status (an end) or its activity (a
// touch) changing, so the row matching seen in those is the row seen was
// read from. It returns nil when it wrote nothing: Touch then reads the
// session and decides.
func touchSeen(ctx context.Context, tx wtx, seen *lapse.Session, at, idleExpiresAt, warnAt time.Time) (*lapse.Session, error) {
	w, err := sweptUntil(ctx, tx)
	if err != nil {
		return nil, err
	}
	exp := nanos(seen.ExpiresAt)
	if !seen.RoutineTouch(at) || min(nanos(seen.IdleExpiresAt), exp) <= w || min(nanos(idleExpiresAt), exp) <= w {
		return nil, nil
	}
	res, err := tx.ExecContext(ctx, touchSeenQuery, nanos(at), nanos(idleExpiresAt), nanos(warnAt),
		seen.ID, seen.TokenHash[:], nanos(seen.LastActiveAt), nanos(seen.IdleExpiresAt), nanos(seen.WarnAt))
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return nil, err
	}
	next := *seen
	next.LastActiveAt, next.IdleExpiresAt, next.WarnAt = at, idleExpiresAt, warnAt
	return &next, nil
}

// touchSeenQuery writes activity to a session if it is still as seen.
const touchSeenQuery = `UPDATE sessions SET last_active_at = ?, idle_expires_at = ?, warn_at = ?
	WHERE id = ? AND token_hash = ? AND status = 'active' AND last_active_at = ? AND idle_expires_at = ? AND warn_at = ?`

// sessionByID reads a session inside tx, with the watermark it was read at.
func sessionByID(ctx context.Context, tx wtx, id string) (*lapse.Session, int64, error) {
	return scanSessionSwept(tx.QueryRowContext(ctx, `SELECT `+sessionSelect+` FROM sessions WHERE id = ?`, id))
}

// Rotate implements [lapse.Store].
func (s *Store) Rotate(ctx context.Context, id string, r lapse.Rotation) (*lapse.Session, error) {
	var sess *lapse.Session
	err := s.inTx(ctx, func(tx wtx) error {
		var (
			err error
			w   int64
		)
		if sess, w, err = sessionByID(ctx, tx, id); err != nil {
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
		if nanos(sess.Deadline()) <= w {
			return clockBehind(w)
		}
		amr, err := json.Marshal(nonNil(sess.AMR))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET token_hash = ?, prev_token_hash = ?, prev_valid_until = ?,
			aal = ?, amr = ?, authenticated_at = ?, last_active_at = ?, idle_expires_at = ?, expires_at = ?, warn_at = ?,
			ip = ?, user_agent = ?
			WHERE id = ?`,
			sess.TokenHash[:], sess.PrevTokenHash[:], nanos(sess.PrevValidUntil), sess.AAL, string(amr),
			nanos(sess.AuthenticatedAt), nanos(sess.LastActiveAt), nanos(sess.IdleExpiresAt), nanos(sess.ExpiresAt),
			nanos(sess.WarnAt), sess.IP, sess.UserAgent, id); err != nil {
			return err
		}
		for _, ev := range events {
			if err := appendEvent(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
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
	err := s.inTx(ctx, func(tx wtx) error {
		var err error
		if sess, _, err = sessionByID(ctx, tx, id); err != nil || sess.Status != lapse.StatusActive {
			return err
		}
		ev, ok := sess.EndAt(e)
		if !ok {
			return nil
		}
		changed = true
		return saveEnd(ctx, tx, sess, ev)
	})
	if err != nil {
		return nil, false, err
	}
	return sess, changed, nil
}

// EndMatching implements [lapse.Store].
func (s *Store) EndMatching(ctx context.Context, f lapse.Filter, e lapse.Ending) ([]*lapse.Session, error) {
	var ended []*lapse.Session
	err := s.inTx(ctx, func(tx wtx) error {
		query, args := filterQuery(f, `status = 'active' AND `+unswept)
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if ended, err = collect(rows, scanSession); err != nil {
			return err
		}
		kept := ended[:0]
		for _, sess := range ended {
			if ev, ok := sess.EndAt(e); ok {
				if err := saveEnd(ctx, tx, sess, ev); err != nil {
					return err
				}
				kept = append(kept, sess)
			}
		}
		ended = kept
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ended, nil
}

// Sessions implements [lapse.Store].
func (s *Store) Sessions(ctx context.Context, f lapse.Filter) ([]*lapse.Session, error) {
	cond, condArgs := `status = 'active' AND idle_expires_at > ? AND expires_at > ? AND `+unswept, []any{nanos(f.Now), nanos(f.Now)}
	if f.IncludeEnded {
		cond, condArgs = `1`, nil
	}
	query, args := filterQuery(f, cond, condArgs...)
	rows, err := s.r.QueryContext(ctx, query+` ORDER BY created_at DESC, id LIMIT 1000`, args...)
	if err != nil {
		return nil, wrap(err)
	}
	ss, err := collect(rows, scanSession)
	return ss, wrap(err)
}

// filterQuery selects the sessions f matches that also meet cond.
func filterQuery(f lapse.Filter, cond string, condArgs ...any) (string, []any) {
	q := `SELECT ` + sessionSelect + ` FROM sessions WHERE subject = ? AND id != ? AND ` + cond
	args := append([]any{f.Subject, f.Except}, condArgs...)
	if !f.AnyTenant {
		q += ` AND tenant = ?`
		args = append(args, f.Tenant)
	}
	return q, args
}

// collect reads every row with scan, in order, and closes rows; no row is
// a nil list.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
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

// CountActive implements [lapse.ActiveCounter].
func (s *Store) CountActive(ctx context.Context, now time.Time) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT tier, count(*) FROM sessions
		WHERE status = 'active' AND idle_expires_at > ? AND expires_at > ? AND `+unswept+` GROUP BY tier`, nanos(now), nanos(now))
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
