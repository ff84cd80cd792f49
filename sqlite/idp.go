package sqlite

import (
	"context"
	"time"

	"github.com/lapsehq/lapse"
)

var (
	_ lapse.IdPIndex    = (*Store)(nil)
	_ lapse.ReplayGuard = (*Store)(nil)
)

// SessionsByIdP implements [lapse.IdPIndex].
func (s *Store) SessionsByIdP(ctx context.Context, q lapse.IdPSession) ([]*lapse.Session, error) {
	if q.Issuer == "" || q.Subject == "" && q.SID == "" {
		return nil, nil
	}
	query, args := `SELECT `+sessionSelect+` FROM sessions WHERE idp_issuer = ? AND status = 'active' AND `+unswept, []any{q.Issuer}
	if q.Subject != "" {
		query, args = query+` AND idp_subject = ? AND idp_issuer != ''`, append(args, q.Subject)
	}
	if q.SID != "" {
		query, args = query+` AND idp_sid = ? AND idp_sid != ''`, append(args, q.SID)
	}
	rows, err := s.r.QueryContext(ctx, query+` LIMIT 1000`, args...)
	if err != nil {
		return nil, wrap(err)
	}
	ss, err := collect(rows, scanSession)
	return ss, wrap(err)
}

// FirstUse implements [lapse.ReplayGuard]. A use whose until has passed
// is taken over; a few such rows are deleted by each call.
func (s *Store) FirstUse(ctx context.Context, key string, until, now time.Time) (bool, error) {
	if len(key) > lapse.MaxReplayKey || key == "" {
		return false, lapse.Errorf(lapse.CodeInvalid, "a single-use key is 1 to %d bytes", lapse.MaxReplayKey)
	}
	first := false
	err := s.inTx(ctx, func(tx wtx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM used_keys WHERE key IN (
			SELECT key FROM used_keys WHERE until <= ? LIMIT 16)`, nanos(now)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO used_keys (key, until) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET until = excluded.until WHERE used_keys.until <= ?`,
			key, nanos(until), nanos(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		first = n == 1
		return err
	})
	return first, err
}
