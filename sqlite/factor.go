package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/lapsehq/lapse"
)

var _ lapse.FactorStore = (*Store)(nil)

const totpColumns = `id, subject, secret, created_at, confirmed_at, last_step, last_used_at`

func scanTOTP(row scanner) (*lapse.TOTPFactor, error) {
	var (
		f                        lapse.TOTPFactor
		created, confirmed, used int64
	)
	if err := row.Scan(&f.ID, &f.Subject, &f.Secret, &created, &confirmed, &f.LastStep, &used); err != nil {
		return nil, err
	}
	f.CreatedAt, f.ConfirmedAt, f.LastUsedAt = ts(created), ts(confirmed), ts(used)
	return &f, nil
}

func factorNotFound(msg string) error {
	return &lapse.Error{Code: lapse.CodeFactorNotFound, Message: msg}
}

// totpIn returns the subject's TOTP factor, or nil if there is none.
func totpIn(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, subject string) (*lapse.TOTPFactor, error) {
	f, err := scanTOTP(q.QueryRowContext(ctx, `SELECT `+totpColumns+` FROM totp_factors WHERE subject = ?`, subject))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return f, err
}

// Factors implements [lapse.FactorStore].
func (s *Store) Factors(ctx context.Context, subject string) (*lapse.FactorState, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, wrap(err)
	}
	defer tx.Rollback()
	st := &lapse.FactorState{}
	if st.TOTP, err = totpIn(ctx, tx, subject); err != nil {
		return nil, wrap(err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM recovery_codes WHERE subject = ? AND used_at = 0`, subject).
		Scan(&st.RecoveryCodes); err != nil {
		return nil, wrap(err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM passkeys WHERE subject = ?`, subject).Scan(&st.Passkeys); err != nil {
		return nil, wrap(err)
	}
	return st, nil
}

// PutTOTP implements [lapse.FactorStore].
func (s *Store) PutTOTP(ctx context.Context, f *lapse.TOTPFactor) error {
	return s.inTx(ctx, func(tx wtx) error {
		old, err := totpIn(ctx, tx, f.Subject)
		if err != nil {
			return err
		}
		if old != nil && old.Confirmed() {
			return &lapse.Error{Code: lapse.CodeConflict, Message: "the subject already has a TOTP factor; remove it first"}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO totp_factors (`+totpColumns+`) VALUES (?,?,?,?,0,0,0)
			ON CONFLICT (subject) DO UPDATE SET id = excluded.id, secret = excluded.secret,
				created_at = excluded.created_at, confirmed_at = 0, last_step = 0, last_used_at = 0`,
			f.ID, f.Subject, f.Secret, nanos(f.CreatedAt))
		return err
	})
}

// ConfirmTOTP implements [lapse.FactorStore].
func (s *Store) ConfirmTOTP(ctx context.Context, subject, id string, step int64, recovery []lapse.TokenHash, now time.Time) error {
	return s.inTx(ctx, func(tx wtx) error {
		f, err := totpIn(ctx, tx, subject)
		switch {
		case err != nil:
			return err
		case f == nil || f.ID != id:
			return factorNotFound("the enrolment was replaced or removed; enrol again")
		case f.Confirmed():
			return &lapse.Error{Code: lapse.CodeConflict, Message: "the TOTP factor is already confirmed"}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE totp_factors SET confirmed_at = ?, last_step = ?, last_used_at = ? WHERE subject = ?`,
			nanos(now), step, nanos(now), subject); err != nil {
			return err
		}
		return replaceRecoveryCodes(ctx, tx, subject, recovery, now)
	})
}

func replaceRecoveryCodes(ctx context.Context, tx wtx, subject string, hashes []lapse.TokenHash, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE subject = ?`, subject); err != nil {
		return err
	}
	for _, h := range hashes {
		if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (subject, hash, created_at) VALUES (?,?,?)`,
			subject, h[:], nanos(now)); err != nil {
			return err
		}
	}
	return nil
}

// UseTOTPStep implements [lapse.FactorStore].
func (s *Store) UseTOTPStep(ctx context.Context, subject, id string, step int64, now time.Time) (bool, error) {
	var used bool
	err := s.inTx(ctx, func(tx wtx) error {
		f, err := totpIn(ctx, tx, subject)
		switch {
		case err != nil:
			return err
		case f == nil || f.ID != id || !f.Confirmed():
			return factorNotFound("the subject has no confirmed TOTP factor")
		case step <= f.LastStep:
			return nil
		}
		used = true
		_, err = tx.ExecContext(ctx, `UPDATE totp_factors SET last_step = ?, last_used_at = ? WHERE subject = ?`, step, nanos(now), subject)
		return err
	})
	if err != nil {
		return false, err
	}
	return used, nil
}

// UseRecoveryCode implements [lapse.FactorStore].
func (s *Store) UseRecoveryCode(ctx context.Context, subject string, h lapse.TokenHash, now time.Time) (bool, error) {
	var used bool
	err := s.inTx(ctx, func(tx wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE recovery_codes SET used_at = ? WHERE subject = ? AND hash = ? AND used_at = 0`,
			nanos(now), subject, h[:])
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		used = n == 1
		return err
	})
	if err != nil {
		return false, err
	}
	return used, nil
}

// RemoveTOTP implements [lapse.FactorStore].
func (s *Store) RemoveTOTP(ctx context.Context, subject string) error {
	return s.inTx(ctx, func(tx wtx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM totp_factors WHERE subject = ?`, subject)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return factorNotFound("the subject has no TOTP factor")
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE subject = ?`, subject)
		return err
	})
}

// BeginAttempt implements [lapse.FactorStore].
func (s *Store) BeginAttempt(ctx context.Context, a lapse.Attempt, l lapse.AttemptLimit) (int64, time.Time, error) {
	var (
		id    int64
		retry time.Time
	)
	err := s.inTx(ctx, func(tx wtx) error {
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
		res, err := tx.ExecContext(ctx, `INSERT INTO factor_attempts (subject, session_id, factor, time, outcome) VALUES (?,?,?,?,?)`,
			a.Subject, a.SessionID, a.Factor, nanos(a.Now), lapse.AttemptPending)
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return 0, time.Time{}, err
	}
	return id, retry, nil
}

// freedAt returns, when the failed attempts matching column = value after
// since reach limit, the time of the one whose leaving the window brings
// them under it; the zero time otherwise. column is a constant.
func freedAt(ctx context.Context, tx wtx, column, value string, since int64, limit int) (time.Time, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM factor_attempts
		WHERE `+column+` = ? AND outcome != 'accepted' AND time > ?`, value, since).Scan(&n); err != nil || n < limit {
		return time.Time{}, err
	}
	var at int64
	err := tx.QueryRowContext(ctx, `SELECT time FROM factor_attempts
		WHERE `+column+` = ? AND outcome != 'accepted' AND time > ? ORDER BY time LIMIT 1 OFFSET ?`, value, since, n-limit).Scan(&at)
	return ts(at), err
}

// FinishAttempt implements [lapse.FactorStore].
func (s *Store) FinishAttempt(ctx context.Context, id int64, outcome lapse.AttemptOutcome) error {
	return s.inTx(ctx, func(tx wtx) error {
		_, err := tx.ExecContext(ctx, `UPDATE factor_attempts SET outcome = ? WHERE id = ?`, outcome, id)
		return err
	})
}
