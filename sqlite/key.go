package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
)

var _ lapse.KeyStore = (*Store)(nil)

const keyColumns = `id, name, scopes, tenant, hash, created_at, expires_at, last_used_at, revoked_at`

// CreateKey implements [lapse.KeyStore].
func (s *Store) CreateKey(ctx context.Context, k *lapse.APIKey, ev *lapse.Event) error {
	err := s.inTx(ctx, func(tx wtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.Name, joinScopes(k.Scopes), k.Tenant, k.Hash[:],
			nanos(k.CreatedAt), nanos(k.ExpiresAt), nanos(k.LastUsedAt), nanos(k.RevokedAt))
		if err == nil && ev != nil {
			err = appendEvent(ctx, tx, *ev)
		}
		return err
	})
	if lapse.ErrorCode(err) == lapse.CodeConflict {
		return lapse.Errorf(lapse.CodeConflict, "an API key with this id exists")
	}
	return err
}

// Key implements [lapse.KeyStore].
func (s *Store) Key(ctx context.Context, id string) (*lapse.APIKey, error) {
	return scanKey(s.r.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id))
}

// Keys implements [lapse.KeyStore].
func (s *Store) Keys(ctx context.Context) ([]*lapse.APIKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY id`)
	if err != nil {
		return nil, wrap(err)
	}
	ks, err := collect(rows, scanKey)
	return ks, wrap(err)
}

// RevokeKey implements [lapse.KeyStore].
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time, ev *lapse.Event) (*lapse.APIKey, bool, error) {
	var (
		k       *lapse.APIKey
		changed bool
	)
	err := s.inTx(ctx, func(tx wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, nanos(at), id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		changed = n == 1
		if err == nil && changed && ev != nil {
			err = appendEvent(ctx, tx, *ev)
		}
		if err == nil {
			k, err = scanKey(tx.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id))
		}
		return err
	})
	return k, changed, err
}

// TouchKey implements [lapse.KeyStore].
func (s *Store) TouchKey(ctx context.Context, id string, at time.Time) error {
	return s.inTx(ctx, func(tx wtx) error {
		_, err := tx.ExecContext(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ? AND last_used_at < ?`, nanos(at), id, nanos(at))
		return err
	})
}

func scanKey(row scanner) (*lapse.APIKey, error) {
	var (
		k                               lapse.APIKey
		scopes                          string
		hash                            []byte
		created, expires, used, revoked int64
	)
	err := row.Scan(&k.ID, &k.Name, &scopes, &k.Tenant, &hash, &created, &expires, &used, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, lapse.Errorf(lapse.CodeKeyNotFound, "no such API key")
	} else if err != nil {
		return nil, wrap(err)
	}
	copy(k.Hash[:], hash)
	k.Scopes = splitScopes(scopes)
	k.CreatedAt, k.ExpiresAt, k.LastUsedAt, k.RevokedAt = ts(created), ts(expires), ts(used), ts(revoked)
	return &k, nil
}

func joinScopes(ss []lapse.Scope) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return strings.Join(out, " ")
}

func splitScopes(s string) []lapse.Scope {
	var out []lapse.Scope
	for f := range strings.FieldsSeq(s) {
		out = append(out, lapse.Scope(f))
	}
	return out
}
