package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lapsehq/lapse"
)

var _ lapse.DeviceBinder = (*Store)(nil)

// Bind implements [lapse.DeviceBinder]: the binding and its event are
// written in one transaction, which locks the session's row.
func (s *Store) Bind(ctx context.Context, b lapse.DeviceBinding, ev lapse.Event) error {
	return s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM sessions WHERE id = $1 FOR SHARE`, b.SessionID).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
			return notFound()
		} else if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO device_bindings (session_id, thumbprint, jwk, bound_at, cookie_hash, cookie_expires_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (session_id) DO NOTHING`,
			b.SessionID, b.Key.Thumbprint, string(b.Key.JWK), nanos(b.BoundAt), b.CookieHash[:], nanos(b.CookieExpiresAt))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return lapse.Errorf(lapse.CodeConflict, "the session is already bound to a device")
		}
		return record(ctx, tx, []lapse.Event{ev}, nil)
	})
}

// DeviceBinding implements [lapse.DeviceBinder].
func (s *Store) DeviceBinding(ctx context.Context, id string) (*lapse.DeviceBinding, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		b                         lapse.DeviceBinding
		jwk                       string
		hash, prev                []byte
		bound, expiring, prevExps int64
	)
	err := s.pool.QueryRow(ctx, `SELECT thumbprint, jwk, bound_at, cookie_hash, cookie_expires_at, prev_cookie_hash, prev_cookie_expires_at
		FROM device_bindings WHERE session_id = $1`, id).Scan(&b.Key.Thumbprint, &jwk, &bound, &hash, &expiring, &prev, &prevExps)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, wrap(err)
	}
	b.SessionID, b.Key.JWK, b.BoundAt, b.CookieExpiresAt = id, []byte(jwk), ts(bound), ts(expiring)
	copy(b.CookieHash[:], hash)
	if len(prev) > 0 {
		copy(b.PrevCookieHash[:], prev)
		b.PrevCookieExpiresAt = ts(prevExps)
	}
	return &b, nil
}

// RenewBoundCookie implements [lapse.DeviceBinder].
func (s *Store) RenewBoundCookie(ctx context.Context, id, thumbprint string, h lapse.TokenHash, until time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE device_bindings SET prev_cookie_hash = cookie_hash, prev_cookie_expires_at = cookie_expires_at,
		cookie_hash = $1, cookie_expires_at = $2 WHERE session_id = $3 AND thumbprint = $4`, h[:], nanos(until), id, thumbprint)
	if err != nil {
		return wrap(err)
	}
	if tag.RowsAffected() == 0 {
		return lapse.Errorf(lapse.CodeConflict, "the session is not bound to that key")
	}
	return nil
}
