package sqlite

import (
	"context"
	"time"

	"github.com/lapsehq/lapse"
)

var _ lapse.Tidier = (*Store)(nil)

// ExpireDue implements [lapse.ExpiryIndex] with a watermark.
//
// The sweep's claim is the watermark swept_until, not a write to each
// session: one transaction reads the active sessions whose earliest
// deadline falls after the watermark and at or before now (a range of the
// partial deadline index), appends their session.expired events and
// moves the watermark to now. From then on every read of this store shows
// those sessions expired at their deadlines (scanSession), and no write
// of this store touches them (each checks the watermark in its own
// transaction), so nothing can revive a session whose expiry is recorded,
// whatever the clock of the process that writes. SQLite runs one writer
// at a time, so any number of sweepers record each expiry once: the
// second finds the range behind the watermark. Tidy later rewrites the
// rows themselves.
//
// A burst of expiries so costs, per session, an index read and an
// appended event (its keys indexed later by Tidy), instead of a rewritten
// row, four index changes and an event with five index entries: about a
// fifth of the work, which is what lets 100,000 sessions that share one
// deadline second all be recorded within a second of their deadlines
// (BENCHMARKS.md).
func (s *Store) ExpireDue(ctx context.Context, now time.Time, limit int) ([]*lapse.Session, error) {
	var due []*lapse.Session
	err := s.inTx(ctx, func(tx wtx) error {
		w, err := sweptUntil(ctx, tx)
		if err != nil || nanos(now) <= w {
			return err
		}
		until := nanos(now)
		if due, err = dueSessions(ctx, tx, dueRange, w, until, limit+1); err != nil {
			return err
		}
		if len(due) > limit {
			// More are due than one call takes: stop before the deadline
			// of the first one left out, so that the sessions sharing a
			// deadline are swept together.
			cut := due[limit].Deadline()
			n := limit
			for n > 0 && due[n-1].Deadline().Equal(cut) {
				n--
			}
			if n == 0 {
				if due, err = dueSessions(ctx, tx, dueAt, nanos(cut)); err != nil {
					return err
				}
				n = len(due)
			}
			due, until = due[:n], nanos(due[n-1].Deadline())
		}
		events := make([]lapse.Event, len(due))
		for i, sess := range due {
			events[i] = lapse.NewEvent(lapse.EventExpired, sess, sess.EndReason, lapse.ActorSystem, now)
		}
		if err := appendEvents(ctx, tx, events, true); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE store_state SET value = max(value, ?) WHERE name = 'swept_until'`, until)
		tx.b.sweptKnown = false
		return err
	})
	if err != nil {
		return nil, err
	}
	return due, nil
}

// The queries of dueSessions: the sessions after the watermark ?1 and at
// or before ?2, at most ?3 of them, earliest first; and those whose
// deadline is ?1.
const (
	dueQuery = `SELECT id, token_hash, subject, tenant, tier, idle_expires_at, expires_at
		FROM sessions WHERE status = 'active' AND `
	dueRange = dueQuery + `min(idle_expires_at, expires_at) > ?1 AND min(idle_expires_at, expires_at) <= ?2
		ORDER BY min(idle_expires_at, expires_at) LIMIT ?3`
	dueAt = dueQuery + `min(idle_expires_at, expires_at) = ?1`
)

// dueSessions returns the active sessions that query selects, as
// ExpireDue records them: their identity and how they ended.
func dueSessions(ctx context.Context, tx wtx, query string, args ...any) ([]*lapse.Session, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanDue)
}

// scanDue reads a row of dueQuery.
func scanDue(row scanner) (*lapse.Session, error) {
	var (
		sess      lapse.Session
		hash      []byte
		idle, abs int64
	)
	if err := row.Scan(&sess.ID, &hash, &sess.Subject, &sess.Tenant, &sess.Tier, &idle, &abs); err != nil {
		return nil, err
	}
	copy(sess.TokenHash[:], hash)
	sess.IdleExpiresAt, sess.ExpiresAt = ts(idle), ts(abs)
	reason, at, _ := sess.Lapsed(sess.Deadline())
	sess.Status, sess.EndReason, sess.EndedAt = lapse.StatusExpired, reason, at
	return &sess, nil
}

// warnQuery selects up to ?2 sessions to warn at ?1, from the partial
// index of the sessions still to warn.
const warnQuery = `SELECT ` + sessionSelect + ` FROM sessions
	WHERE status = 'active' AND warn_at <= ?1 AND warned_for != warn_at
	  AND warn_at < min(idle_expires_at, expires_at) AND min(idle_expires_at, expires_at) > ?1 AND ` + unswept + `
	ORDER BY warn_at LIMIT ?2`

// WarnDue implements [lapse.ExpiryIndex].
func (s *Store) WarnDue(ctx context.Context, now time.Time, limit int) ([]*lapse.Session, error) {
	var due []*lapse.Session
	err := s.inTx(ctx, func(tx wtx) error {
		n := nanos(now)
		rows, err := tx.QueryContext(ctx, warnQuery, n, limit)
		if err != nil {
			return err
		}
		if due, err = collect(rows, scanSession); err != nil {
			return err
		}
		stmt, err := tx.stmt(`UPDATE sessions SET warned_for = warn_at WHERE id = ?`)
		if err != nil {
			return err
		}
		events := make([]lapse.Event, 0, len(due))
		for _, sess := range due {
			if _, err := stmt.ExecContext(tx.ctx, sess.ID); err != nil {
				return err
			}
			events = append(events, lapse.NewEvent(lapse.EventExpiringSoon, sess, "", lapse.ActorSystem, now))
		}
		return appendEvents(ctx, tx, events, true)
	})
	if err != nil {
		return nil, err
	}
	return due, nil
}

// settleQuery rewrites up to ?2 rows of sessions behind the watermark ?1
// as expired. The reason and end time are those of lapse.Session.Lapsed:
// the earlier deadline, the absolute one on a tie. (The watermark is a
// parameter, not a subquery, so that SQLite seeks the index to it.)
const settleQuery = `UPDATE sessions SET status = 'expired',
		end_reason = CASE WHEN expires_at <= idle_expires_at THEN 'absolute_timeout' ELSE 'idle_timeout' END,
		ended_at = min(idle_expires_at, expires_at)
	WHERE rowid IN (SELECT rowid FROM sessions WHERE status = 'active' AND min(idle_expires_at, expires_at) <= ?1
		ORDER BY min(idle_expires_at, expires_at) LIMIT ?2)`

// Tidy implements [lapse.Tidier]: it records as expired, in their rows,
// up to limit sessions behind the sweep watermark (which every read
// already shows expired), then indexes the keys of up to limit events
// that sweeps appended without them. Neither step changes what any read
// of the store returns.
func (s *Store) Tidy(ctx context.Context, limit int) (int, error) {
	var done int
	err := s.inTx(ctx, func(tx wtx) error {
		w, err := sweptUntil(ctx, tx)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, settleQuery, w, limit)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		var from, last int64
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT value FROM store_state WHERE name = 'indexed_until'),
			coalesce((SELECT seq FROM events ORDER BY seq DESC LIMIT 1), 0)`).Scan(&from, &last); err != nil {
			return err
		}
		indexed, err := indexEvents(ctx, tx, from, min(last, from+int64(limit)))
		done = int(n) + indexed
		return err
	})
	return done, err
}

// Purge implements [lapse.Purger]. Sessions behind the sweep watermark
// that Tidy has not rewritten yet are purged once it has.
func (s *Store) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM sessions WHERE id IN (
		SELECT id FROM sessions WHERE status != 'active' AND ended_at < ? LIMIT ?)`, nanos(before), limit)
	if err != nil {
		return 0, wrap(err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap(err)
}
