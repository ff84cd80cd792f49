package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lapsehq/lapse"
)

const totpColumns = `id, subject, secret, created_at, confirmed_at, last_step, last_used_at`

func factorNotFound(msg string) error {
	return &lapse.Error{Code: lapse.CodeFactorNotFound, Message: msg}
}

// totpIn returns the subject's TOTP factor, or nil if there is none;
// with lock, its row stays locked until q's transaction ends.
func totpIn(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, subject string, lock bool) (*lapse.TOTPFactor, error) {
	query := `SELECT ` + totpColumns + ` FROM totp_factors WHERE subject = $1`
	if lock {
		query += ` FOR UPDATE`
	}
	var (
		f                        lapse.TOTPFactor
		created, confirmed, used int64
	)
	err := q.QueryRow(ctx, query, subject).Scan(&f.ID, &f.Subject, &f.Secret, &created, &confirmed, &f.LastStep, &used)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	f.CreatedAt, f.ConfirmedAt, f.LastUsedAt = ts(created), ts(confirmed), ts(used)
	return &f, nil
}

// Factors implements [lapse.FactorStore]: the factor and the count of
// codes are read in one snapshot.
func (s *Store) Factors(ctx context.Context, subject string) (*lapse.FactorState, error) {
	st := &lapse.FactorState{}
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`); err != nil {
			return err
		}
		var err error
		if st.TOTP, err = totpIn(ctx, tx, subject, false); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM recovery_codes WHERE subject = $1 AND used_at = 0`, subject).Scan(&st.RecoveryCodes); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM passkeys WHERE subject = $1`, subject).Scan(&st.Passkeys)
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// PutTOTP implements [lapse.FactorStore]: one statement that replaces
// only an unconfirmed enrolment.
func (s *Store) PutTOTP(ctx context.Context, f *lapse.TOTPFactor) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `INSERT INTO totp_factors (`+totpColumns+`) VALUES ($1, $2, $3, $4, 0, 0, 0)
		ON CONFLICT (subject) DO UPDATE SET id = excluded.id, secret = excluded.secret,
			created_at = excluded.created_at, confirmed_at = 0, last_step = 0, last_used_at = 0
		WHERE totp_factors.confirmed_at = 0`,
		f.ID, f.Subject, f.Secret, nanos(f.CreatedAt))
	if err != nil {
		return wrap(err)
	}
	if tag.RowsAffected() == 0 {
		return &lapse.Error{Code: lapse.CodeConflict, Message: "the subject already has a TOTP factor; remove it first"}
	}
	return nil
}

// ConfirmTOTP implements [lapse.FactorStore].
func (s *Store) ConfirmTOTP(ctx context.Context, subject, id string, step int64, recovery []lapse.TokenHash, now time.Time) error {
	return s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		f, err := totpIn(ctx, tx, subject, true)
		switch {
		case err != nil:
			return err
		case f == nil || f.ID != id:
			return factorNotFound("the enrolment was replaced or removed; enrol again")
		case f.Confirmed():
			return &lapse.Error{Code: lapse.CodeConflict, Message: "the TOTP factor is already confirmed"}
		}
		hashes := make([][]byte, len(recovery))
		for i, h := range recovery {
			hashes[i] = h[:]
		}
		b := &pgx.Batch{}
		b.Queue(`UPDATE totp_factors SET confirmed_at = $1, last_step = $2, last_used_at = $1 WHERE subject = $3`, nanos(now), step, subject)
		b.Queue(`DELETE FROM recovery_codes WHERE subject = $1`, subject)
		b.Queue(`INSERT INTO recovery_codes (subject, hash, created_at) SELECT $1, h, $2 FROM unnest($3::bytea[]) AS h`,
			subject, nanos(now), hashes)
		return tx.SendBatch(ctx, b).Close()
	})
}

// UseTOTPStep implements [lapse.FactorStore].
func (s *Store) UseTOTPStep(ctx context.Context, subject, id string, step int64, now time.Time) (bool, error) {
	var used bool
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		f, err := totpIn(ctx, tx, subject, true)
		switch {
		case err != nil:
			return err
		case f == nil || f.ID != id || !f.Confirmed():
			return factorNotFound("the subject has no confirmed TOTP factor")
		case step <= f.LastStep:
			return nil
		}
		used = true
		_, err = tx.Exec(ctx, `UPDATE totp_factors SET last_step = $1, last_used_at = $2 WHERE subject = $3`, step, nanos(now), subject)
		return err
	})
	if err != nil {
		return false, err
	}
	return used, nil
}

// UseRecoveryCode implements [lapse.FactorStore]: one statement, which
// only an unused code passes.
func (s *Store) UseRecoveryCode(ctx context.Context, subject string, h lapse.TokenHash, now time.Time) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE recovery_codes SET used_at = $1 WHERE subject = $2 AND hash = $3 AND used_at = 0`,
		nanos(now), subject, h[:])
	if err != nil {
		return false, wrap(err)
	}
	return tag.RowsAffected() == 1, nil
}

// RemoveTOTP implements [lapse.FactorStore].
func (s *Store) RemoveTOTP(ctx context.Context, subject string) error {
	return s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM totp_factors WHERE subject = $1`, subject)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return factorNotFound("the subject has no TOTP factor")
		}
		_, err = tx.Exec(ctx, `DELETE FROM recovery_codes WHERE subject = $1`, subject)
		return err
	})
}

// BeginAttempt implements [lapse.FactorStore]. The attempts of a subject
// take turns on an advisory lock, so that concurrent attempts on several
// nodes cannot all pass a limit that only one of them fits under (a
// session belongs to one subject, so the per-session limit is covered
// too).
func (s *Store) BeginAttempt(ctx context.Context, a lapse.Attempt, l lapse.AttemptLimit) (int64, time.Time, error) {
	var (
		id    int64
		retry time.Time
	)
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "attempt:"+a.Subject); err != nil {
			return err
		}
		since := nanos(a.Now.Add(-l.Window))
		for _, c := range []struct {
			column, value string
			limit         int
		}{{"subject", a.Subject, l.PerSubject}, {"session_id", a.SessionID, l.PerSession}} {
			if c.limit <= 0 {
				continue
			}
			at, err := freedAt(ctx, tx, c.column, c.value, since, c.limit)
			if err != nil {
				return err
			}
			if free := at.Add(l.Window); !at.IsZero() && free.After(retry) {
				retry = free
			}
		}
		if !retry.IsZero() {
			return nil
		}
		return tx.QueryRow(ctx, `INSERT INTO factor_attempts (subject, session_id, factor, time, outcome)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			a.Subject, a.SessionID, a.Factor, nanos(a.Now), string(lapse.AttemptPending)).Scan(&id)
	})
	if err != nil {
		return 0, time.Time{}, err
	}
	return id, retry, nil
}

// freedAt returns, when the failed attempts matching column = value after
// since reach limit, the time of the one whose leaving the window brings
// them under it; the zero time otherwise. column is a constant.
func freedAt(ctx context.Context, tx pgx.Tx, column, value string, since int64, limit int) (time.Time, error) {
	var at int64
	err := tx.QueryRow(ctx, `SELECT time FROM factor_attempts
		WHERE `+column+` = $1 AND outcome <> 'accepted' AND time > $2
		ORDER BY time DESC LIMIT 1 OFFSET $3`, value, since, limit-1).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	return ts(at), err
}

// FinishAttempt implements [lapse.FactorStore].
func (s *Store) FinishAttempt(ctx context.Context, id int64, outcome lapse.AttemptOutcome) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `UPDATE factor_attempts SET outcome = $1 WHERE id = $2`, string(outcome), id)
	return wrap(err)
}
