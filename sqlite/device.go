package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/lapsehq/lapse"
)

var _ lapse.DeviceBinder = (*Store)(nil)

// Bind implements [lapse.DeviceBinder]: the binding and its event are
// written in one transaction.
func (s *Store) Bind(ctx context.Context, b lapse.DeviceBinding, ev lapse.Event) error {
	return s.inTx(ctx, func(tx wtx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM sessions WHERE id = ?`, b.SessionID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return notFound()
		} else if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO device_bindings (session_id, thumbprint, jwk, bound_at, cookie_hash, cookie_expires_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (session_id) DO NOTHING`,
			b.SessionID, b.Key.Thumbprint, string(b.Key.JWK), nanos(b.BoundAt), b.CookieHash[:], nanos(b.CookieExpiresAt))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return lapse.Errorf(lapse.CodeConflict, "the session is already bound to a device")
		}
		return appendEvent(ctx, tx, ev)
	})
}

// DeviceBinding implements [lapse.DeviceBinder].
func (s *Store) DeviceBinding(ctx context.Context, id string) (*lapse.DeviceBinding, error) {
	var (
		b                         lapse.DeviceBinding
		jwk                       string
		hash, prev                []byte
		bound, expiring, prevExps int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT thumbprint, jwk, bound_at, cookie_hash, cookie_expires_at, prev_cookie_hash, prev_cookie_expires_at
		FROM device_bindings WHERE session_id = ?`, id).Scan(&b.Key.Thumbprint, &jwk, &bound, &hash, &expiring, &prev, &prevExps)
	if errors.Is(err, sql.ErrNoRows) {
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
	res, err := s.exec(ctx, `UPDATE device_bindings SET prev_cookie_hash = cookie_hash, prev_cookie_expires_at = cookie_expires_at,
		cookie_hash = ?, cookie_expires_at = ? WHERE session_id = ? AND thumbprint = ?`, h[:], nanos(until), id, thumbprint)
	if err != nil {
		return wrap(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap(err)
	} else if n == 0 {
		return lapse.Errorf(lapse.CodeConflict, "the session is not bound to that key")
	}
	return nil
}
