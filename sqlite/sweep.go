package sqlite

import (
	"context"
	"database/sql"
	"slices"
	"time"

	"github.com/lapsehq/lapse"
)

// ExpireDue implements [lapse.ExpiryIndex]. One statement picks the due
// sessions from the partial index of active sessions by earliest
// deadline (its cost grows with the sessions due, not with all sessions)
// and ends them; their events follow in the same transaction.
func (s *Store) ExpireDue(ctx context.Context, now time.Time, limit int) ([]*lapse.Session, error) {
	var due []*lapse.Session
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// The reason and end time are those of lapse.Session.Lapsed: the
		// earlier deadline, the absolute one on a tie.
		rows, err := tx.QueryContext(ctx, `UPDATE sessions SET status = 'expired',
				end_reason = CASE WHEN expires_at <= idle_expires_at THEN 'absolute_timeout' ELSE 'idle_timeout' END,
				ended_at = min(idle_expires_at, expires_at)
			WHERE id IN (SELECT id FROM sessions WHERE status = 'active' AND min(idle_expires_at, expires_at) <= ?
				ORDER BY min(idle_expires_at, expires_at) LIMIT ?)
			RETURNING `+sessionColumns, nanos(now), limit)
		if err != nil {
			return err
		}
		if due, err = collect(rows); err != nil {
			return err
		}
		slices.SortFunc(due, func(a, b *lapse.Session) int { return a.EndedAt.Compare(b.EndedAt) })
		events := make([]lapse.Event, len(due))
		for i, sess := range due {
			events[i] = lapse.NewEvent(lapse.EventExpired, sess, sess.EndReason, lapse.ActorSystem, now)
		}
		return appendEvents(ctx, tx, events)
	})
	if err != nil {
		return nil, err
	}
	return due, nil
}

// WarnDue implements [lapse.ExpiryIndex].
func (s *Store) WarnDue(ctx context.Context, now time.Time, limit int) ([]*lapse.Session, error) {
	var due []*lapse.Session
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		n := nanos(now)
		rows, err := tx.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
			WHERE status = 'active' AND warn_at <= ? AND warned_for != warn_at
			  AND warn_at < min(idle_expires_at, expires_at) AND min(idle_expires_at, expires_at) > ?
			ORDER BY warn_at LIMIT ?`, n, n, limit)
		if err != nil {
			return err
		}
		if due, err = collect(rows); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `UPDATE sessions SET warned_for = warn_at WHERE id = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		events := make([]lapse.Event, 0, len(due))
		for _, sess := range due {
			if _, err := stmt.ExecContext(ctx, sess.ID); err != nil {
				return err
			}
			events = append(events, lapse.NewEvent(lapse.EventExpiringSoon, sess, "", lapse.ActorSystem, now))
		}
		return appendEvents(ctx, tx, events)
	})
	if err != nil {
		return nil, err
	}
	return due, nil
}

// Purge implements [lapse.Purger].
func (s *Store) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE id IN (
		SELECT id FROM sessions WHERE status != 'active' AND ended_at < ? LIMIT ?)`, nanos(before), limit)
	if err != nil {
		return 0, wrap(err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap(err)
}
