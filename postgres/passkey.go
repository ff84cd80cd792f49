package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lapsehq/lapse"
)

const passkeyColumns = `id, subject, credential_id, user_handle, public_key, name, sign_count,
	backup_eligible, backup_state, transports, aaguid, attestation_format, created_at, last_used_at`

func passkeyNotFound() error { return factorNotFound("the subject has no such passkey") }

// Passkeys implements [lapse.PasskeyStore].
func (s *Store) Passkeys(ctx context.Context, subject string) ([]*lapse.Passkey, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ps, err := collect(scanPasskey)(s.pool.Query(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE subject = $1 ORDER BY created_at, id`, subject))
	if err != nil {
		return nil, wrap(err)
	}
	if ps == nil {
		ps = []*lapse.Passkey{} // none is an empty list, as PasskeyStore says
	}
	return ps, nil
}

func scanPasskey(row pgx.Row) (*lapse.Passkey, error) {
	var (
		p             lapse.Passkey
		count         int64
		created, used int64
	)
	if err := row.Scan(&p.ID, &p.Subject, &p.CredentialID, &p.UserHandle, &p.PublicKey, &p.Name, &count,
		&p.BackupEligible, &p.BackupState, &p.Transports, &p.AAGUID, &p.AttestationFormat, &created, &used); err != nil {
		return nil, err
	}
	p.SignCount, p.CreatedAt, p.LastUsedAt = uint32(count), ts(created), ts(used)
	return &p, nil
}

// AddPasskey implements [lapse.PasskeyStore]: one statement, which a
// credential id the subject already has does not pass.
func (s *Store) AddPasskey(ctx context.Context, p *lapse.Passkey) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	transports := p.Transports
	if transports == nil {
		transports = []string{}
	}
	aaguid := p.AAGUID
	if aaguid == nil {
		aaguid = []byte{}
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO passkeys (`+passkeyColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (subject, credential_id) DO NOTHING`,
		p.ID, p.Subject, p.CredentialID, p.UserHandle, p.PublicKey, p.Name, int64(p.SignCount), p.BackupEligible, p.BackupState,
		transports, aaguid, p.AttestationFormat, nanos(p.CreatedAt), nanos(p.LastUsedAt))
	if err != nil {
		return wrap(err)
	}
	if tag.RowsAffected() == 0 {
		return &lapse.Error{Code: lapse.CodeConflict, Message: "this passkey is already registered"}
	}
	return nil
}

// UsePasskey implements [lapse.PasskeyStore]: the row stays locked from
// the read of the counter to its update.
func (s *Store) UsePasskey(ctx context.Context, subject, id string, count uint32, backupState bool, now time.Time) (bool, error) {
	var used bool
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var stored int64
		err := tx.QueryRow(ctx, `SELECT sign_count FROM passkeys WHERE subject = $1 AND id = $2 FOR UPDATE`, subject, id).Scan(&stored)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return passkeyNotFound()
		case err != nil:
			return err
		case int64(count) <= stored && (count != 0 || stored != 0):
			return nil
		}
		used = true
		_, err = tx.Exec(ctx, `UPDATE passkeys SET sign_count = $1, backup_state = $2, last_used_at = $3 WHERE subject = $4 AND id = $5`,
			int64(count), backupState, nanos(now), subject, id)
		return err
	})
	if err != nil {
		return false, err
	}
	return used, nil
}

// RenamePasskey implements [lapse.PasskeyStore].
func (s *Store) RenamePasskey(ctx context.Context, subject, id, name string) error {
	return s.changePasskey(ctx, `UPDATE passkeys SET name = $1 WHERE subject = $2 AND id = $3`, name, subject, id)
}

// RemovePasskey implements [lapse.PasskeyStore].
func (s *Store) RemovePasskey(ctx context.Context, subject, id string) error {
	return s.changePasskey(ctx, `DELETE FROM passkeys WHERE subject = $1 AND id = $2`, subject, id)
}

// changePasskey runs a statement that changes one passkey, and fails
// with factor_not_found if it changed none.
func (s *Store) changePasskey(ctx context.Context, query string, args ...any) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return wrap(err)
	}
	if tag.RowsAffected() == 0 {
		return passkeyNotFound()
	}
	return nil
}

// PutChallenge implements [lapse.PasskeyStore]; it drops the challenges
// that expired an hour before c expires, which no take would return.
func (s *Store) PutChallenge(ctx context.Context, c *lapse.Challenge) error {
	return s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM webauthn_challenges WHERE expires_at <= $1`, nanos(c.ExpiresAt.Add(-time.Hour)))
		b.Queue(`INSERT INTO webauthn_challenges (hash, subject, session_id, ceremony, data, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			c.Hash[:], c.Subject, c.SessionID, string(c.Ceremony), c.Data, nanos(c.ExpiresAt))
		return tx.SendBatch(ctx, b).Close()
	})
}

// TakeChallenge implements [lapse.PasskeyStore]: one DELETE ...
// RETURNING, which only one of several concurrent takes, on any node,
// gets a row from.
func (s *Store) TakeChallenge(ctx context.Context, subject string, h lapse.TokenHash, now time.Time) (*lapse.Challenge, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	c := &lapse.Challenge{Hash: h}
	var (
		ceremony string
		expires  int64
	)
	err := s.pool.QueryRow(ctx, `DELETE FROM webauthn_challenges WHERE hash = $1 AND subject = $2
		RETURNING subject, session_id, ceremony, data, expires_at`, h[:], subject).
		Scan(&c.Subject, &c.SessionID, &ceremony, &c.Data, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, wrap(err)
	}
	c.Ceremony, c.ExpiresAt = lapse.Ceremony(ceremony), ts(expires)
	if !now.Before(c.ExpiresAt) {
		return nil, nil
	}
	return c, nil
}
