package postgres

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
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
	ctx, cancel := s.bound(ctx)
	defer cancel()
	query, args := `SELECT `+sessionColumns+` FROM sessions WHERE idp_issuer = $1 AND status = 'active'`, []any{q.Issuer}
	if q.Subject != "" {
		args = append(args, q.Subject)
		query += ` AND idp_issuer <> '' AND idp_subject = $` + strconv.Itoa(len(args))
	}
	if q.SID != "" {
		args = append(args, q.SID)
		query += ` AND idp_sid <> '' AND idp_sid = $` + strconv.Itoa(len(args))
	}
	ss, err := collect(scanSession)(s.pool.Query(ctx, query+` LIMIT 1000`, args...))
	return ss, wrap(err)
}

// FirstUse implements [lapse.ReplayGuard]: the insert, or the take-over
// of a use whose until has passed, is the claim; a few such rows are
// deleted by each call.
func (s *Store) FirstUse(ctx context.Context, key string, until, now time.Time) (bool, error) {
	if len(key) > lapse.MaxReplayKey || key == "" {
		return false, lapse.Errorf(lapse.CodeInvalid, "a single-use key is 1 to %d bytes", lapse.MaxReplayKey)
	}
	first := false
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM used_keys WHERE key IN (
			SELECT key FROM used_keys WHERE until <= $1 AND key <> $2 LIMIT 16 FOR UPDATE SKIP LOCKED)`, nanos(now), key); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO used_keys (key, until) VALUES ($1, $2)
			ON CONFLICT (key) DO UPDATE SET until = excluded.until WHERE used_keys.until <= $3`,
			key, nanos(until), nanos(now))
		first = err == nil && tag.RowsAffected() == 1
		return err
	})
	return first, err
}
