package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
)

const passkeyColumns = `id, subject, credential_id, user_handle, public_key, name, sign_count,
	backup_eligible, backup_state, transports, aaguid, attestation_format, created_at, last_used_at`

func scanPasskey(row scanner) (*lapse.Passkey, error) {
	var (
		p             lapse.Passkey
		transports    string
		created, used int64
	)
	if err := row.Scan(&p.ID, &p.Subject, &p.CredentialID, &p.UserHandle, &p.PublicKey, &p.Name, &p.SignCount,
		&p.BackupEligible, &p.BackupState, &transports, &p.AAGUID, &p.AttestationFormat, &created, &used); err != nil {
		return nil, err
	}
	p.Transports = splitList(transports)
	p.CreatedAt, p.LastUsedAt = ts(created), ts(used)
	return &p, nil
}

// splitList reads a comma-separated list; "" is none.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func passkeyNotFound() error { return factorNotFound("the subject has no such passkey") }

// Passkeys implements [lapse.PasskeyStore].
func (s *Store) Passkeys(ctx context.Context, subject string) ([]*lapse.Passkey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE subject = ? ORDER BY created_at, id`, subject)
	if err != nil {
		return nil, wrap(err)
	}
	ps, err := collect(rows, scanPasskey)
	if err != nil {
		return nil, wrap(err)
	}
	if ps == nil {
		ps = []*lapse.Passkey{} // none is an empty list, as PasskeyStore says
	}
	return ps, nil
}

// AddPasskey implements [lapse.PasskeyStore].
func (s *Store) AddPasskey(ctx context.Context, p *lapse.Passkey) error {
	return s.inTx(ctx, func(tx wtx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM passkeys WHERE subject = ? AND credential_id = ?`,
			p.Subject, p.CredentialID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return &lapse.Error{Code: lapse.CodeConflict, Message: "this passkey is already registered"}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO passkeys (`+passkeyColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			p.ID, p.Subject, p.CredentialID, p.UserHandle, p.PublicKey, p.Name, p.SignCount, p.BackupEligible, p.BackupState,
			strings.Join(p.Transports, ","), noNull(p.AAGUID), p.AttestationFormat, nanos(p.CreatedAt), nanos(p.LastUsedAt))
		return err
	})
}

// noNull stores a missing byte string as an empty one (the column is NOT
// NULL).
func noNull(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// UsePasskey implements [lapse.PasskeyStore].
func (s *Store) UsePasskey(ctx context.Context, subject, id string, count uint32, backupState bool, now time.Time) (bool, error) {
	var used bool
	err := s.inTx(ctx, func(tx wtx) error {
		var stored uint32
		err := tx.QueryRowContext(ctx, `SELECT sign_count FROM passkeys WHERE subject = ? AND id = ?`, subject, id).Scan(&stored)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return passkeyNotFound()
		case err != nil:
			return err
		case count <= stored && (count != 0 || stored != 0):
			return nil
		}
		used = true
		_, err = tx.ExecContext(ctx, `UPDATE passkeys SET sign_count = ?, backup_state = ?, last_used_at = ? WHERE subject = ? AND id = ?`,
			count, backupState, nanos(now), subject, id)
		return err
	})
	if err != nil {
		return false, err
	}
	return used, nil
}

// RenamePasskey implements [lapse.PasskeyStore].
func (s *Store) RenamePasskey(ctx context.Context, subject, id, name string) error {
	return s.changePasskey(ctx, `UPDATE passkeys SET name = ? WHERE subject = ? AND id = ?`, name, subject, id)
}

// RemovePasskey implements [lapse.PasskeyStore].
func (s *Store) RemovePasskey(ctx context.Context, subject, id string) error {
	return s.changePasskey(ctx, `DELETE FROM passkeys WHERE subject = ? AND id = ?`, subject, id)
}

// changePasskey runs a statement that changes one passkey, and fails
// with factor_not_found if it changed none.
func (s *Store) changePasskey(ctx context.Context, query string, args ...any) error {
	return s.inTx(ctx, func(tx wtx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return passkeyNotFound()
		}
		return nil
	})
}

// PutChallenge implements [lapse.PasskeyStore]; it drops the challenges
// that expired an hour before c expires, which no take would return.
func (s *Store) PutChallenge(ctx context.Context, c *lapse.Challenge) error {
	return s.inTx(ctx, func(tx wtx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM webauthn_challenges WHERE expires_at <= ?`, nanos(c.ExpiresAt.Add(-time.Hour))); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO webauthn_challenges (hash, subject, session_id, ceremony, data, expires_at) VALUES (?,?,?,?,?,?)`,
			c.Hash[:], c.Subject, c.SessionID, string(c.Ceremony), c.Data, nanos(c.ExpiresAt))
		return err
	})
}

// TakeChallenge implements [lapse.PasskeyStore]: one write transaction
// reads and deletes the row, so two takes cannot both find it.
func (s *Store) TakeChallenge(ctx context.Context, subject string, h lapse.TokenHash, now time.Time) (*lapse.Challenge, error) {
	var out *lapse.Challenge
	err := s.inTx(ctx, func(tx wtx) error {
		c := &lapse.Challenge{Hash: h}
		var (
			ceremony string
			expires  int64
		)
		err := tx.QueryRowContext(ctx, `DELETE FROM webauthn_challenges WHERE hash = ? AND subject = ?
			RETURNING subject, session_id, ceremony, data, expires_at`, h[:], subject).
			Scan(&c.Subject, &c.SessionID, &ceremony, &c.Data, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		c.Ceremony, c.ExpiresAt = lapse.Ceremony(ceremony), ts(expires)
		if now.Before(c.ExpiresAt) {
			out = c
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
