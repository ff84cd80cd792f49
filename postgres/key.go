package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lapsehq/lapse"
)

var _ lapse.KeyStore = (*Store)(nil)

const keyColumns = `id, name, scopes, tenant, hash, created_at, expires_at, last_used_at, revoked_at`

// CreateKey implements [lapse.KeyStore].
func (s *Store) CreateKey(ctx context.Context, k *lapse.APIKey, ev *lapse.Event) error {
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			k.ID, k.Name, joinScopes(k.Scopes), k.Tenant, k.Hash[:],
			nanos(k.CreatedAt), nanos(k.ExpiresAt), nanos(k.LastUsedAt), nanos(k.RevokedAt))
		if err == nil && ev != nil {
			err = record(ctx, tx, []lapse.Event{*ev}, nil)
		}
		return err
	})
	if err = wrap(err); lapse.ErrorCode(err) == lapse.CodeConflict {
		return lapse.Errorf(lapse.CodeConflict, "an API key with this id exists")
	}
	return err
}

// Key implements [lapse.KeyStore].
func (s *Store) Key(ctx context.Context, id string) (*lapse.APIKey, error) {
	return scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = $1`, id))
}

// Keys implements [lapse.KeyStore].
func (s *Store) Keys(ctx context.Context) ([]*lapse.APIKey, error) {
	ks, err := collect(scanKey)(s.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY id`))
	return ks, wrap(err)
}

// RevokeKey implements [lapse.KeyStore]: the conditional update is the
// claim, so of concurrent revokes one reports the change.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time, ev *lapse.Event) (*lapse.APIKey, bool, error) {
	var (
		k       *lapse.APIKey
		changed bool
	)
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0`, nanos(at), id)
		if err != nil {
			return err
		}
		changed = tag.RowsAffected() == 1
		if changed && ev != nil {
			if err := record(ctx, tx, []lapse.Event{*ev}, nil); err != nil {
				return err
			}
		}
		k, err = scanKey(tx.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = $1`, id))
		return err
	})
	return k, changed, wrap(err)
}

// TouchKey implements [lapse.KeyStore].
func (s *Store) TouchKey(ctx context.Context, id string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND last_used_at < $1`, nanos(at), id)
	return wrap(err)
}

func scanKey(row pgx.Row) (*lapse.APIKey, error) {
	var (
		k                               lapse.APIKey
		scopes                          string
		hash                            []byte
		created, expires, used, revoked int64
	)
	err := row.Scan(&k.ID, &k.Name, &scopes, &k.Tenant, &hash, &created, &expires, &used, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, lapse.Errorf(lapse.CodeKeyNotFound, "no such API key")
	} else if err != nil {
		return nil, wrap(err)
	}
	copy(k.Hash[:], hash)
	k.Scopes = nil
	for f := range strings.FieldsSeq(scopes) {
		k.Scopes = append(k.Scopes, lapse.Scope(f))
	}
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
