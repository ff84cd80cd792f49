package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/lapsehq/lapse"
)

// ExpireDue implements [lapse.ExpiryIndex]. It reads the partial index
// of active sessions by earliest deadline, so its cost grows with the
// sessions due, not with all sessions.
func (s *Store) ExpireDue(ctx context.Context, now time.Time, limit int) ([]*lapse.Session, error) {
	var due []*lapse.Session
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
			WHERE status = 'active' AND min(idle_expires_at, expires_at) <= ?
			ORDER BY min(idle_expires_at, expires_at) LIMIT ?`, nanos(now), limit)
		if err != nil {
			return err
		}
		if due, err = collect(rows); err != nil {
			return err
		}
		events := make([]lapse.Event, 0, len(due))
		for _, sess := range due {
			if ev, ok := sess.EndAt(lapse.Ending{Status: lapse.StatusExpired, Now: now}); ok {
				events = append(events, ev)
			}
		}
		return saveEnds(ctx, tx, due, events)
	})
	if err != nil {
		return nil, err
	}
	return due, nil
}

// saveEnds writes the ends of many sessions and their events.
func saveEnds(ctx context.Context, tx *sql.Tx, ended []*lapse.Session, events []lapse.Event) error {
	stmt, err := tx.PrepareContext(ctx, `UPDATE sessions SET status = ?, end_reason = ?, ended_at = ? WHERE id = ?`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, s := range ended {
		if _, err := stmt.ExecContext(ctx, s.Status, s.EndReason, nanos(s.EndedAt), s.ID); err != nil {
			return err
		}
	}
	return appendEvents(ctx, tx, events)
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
