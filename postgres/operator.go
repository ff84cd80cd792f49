package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/lapsehq/lapse"
)

var _ lapse.OperatorStore = (*Store)(nil)

const operatorColumns = `id, name, role, tenant, password_hash, created_at, disabled_at`

var errOperatorNotFound = &lapse.Error{Code: lapse.CodeOperatorNotFound, Message: "no such operator"}

// CreateOperator implements [lapse.OperatorStore].
func (s *Store) CreateOperator(ctx context.Context, o *lapse.Operator) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO operators (`+operatorColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		o.ID, o.Name, o.Role, o.Tenant, o.PasswordHash, nanos(o.CreatedAt), nanos(o.DisabledAt))
	if err = wrap(err); lapse.ErrorCode(err) == lapse.CodeConflict {
		return lapse.Errorf(lapse.CodeConflict, "an operator with this id or name exists")
	}
	return err
}

// Operator implements [lapse.OperatorStore].
func (s *Store) Operator(ctx context.Context, id string) (*lapse.Operator, error) {
	return scanOperator(s.pool.QueryRow(ctx, `SELECT `+operatorColumns+` FROM operators WHERE id = $1`, id))
}

// OperatorByName implements [lapse.OperatorStore].
func (s *Store) OperatorByName(ctx context.Context, name string) (*lapse.Operator, error) {
	return scanOperator(s.pool.QueryRow(ctx, `SELECT `+operatorColumns+` FROM operators WHERE name = $1`, name))
}

// Operators implements [lapse.OperatorStore].
func (s *Store) Operators(ctx context.Context) ([]*lapse.Operator, error) {
	ops, err := collect(scanOperator)(s.pool.Query(ctx, `SELECT `+operatorColumns+` FROM operators ORDER BY name`))
	return ops, wrap(err)
}

// UpdateOperator implements [lapse.OperatorStore]: one statement, which
// writes only the columns ch sets (a NULL argument keeps the column).
func (s *Store) UpdateOperator(ctx context.Context, id string, ch lapse.OperatorChange) (*lapse.Operator, error) {
	var disabled *int64
	if ch.DisabledAt != nil {
		n := nanos(*ch.DisabledAt)
		disabled = &n
	}
	return scanOperator(s.pool.QueryRow(ctx, `UPDATE operators SET role = coalesce($1, role), tenant = coalesce($2, tenant),
		password_hash = coalesce($3, password_hash), disabled_at = coalesce($4, disabled_at) WHERE id = $5 RETURNING `+operatorColumns,
		ch.Role, ch.Tenant, ch.PasswordHash, disabled, id))
}

func scanOperator(row pgx.Row) (*lapse.Operator, error) {
	var (
		o                 lapse.Operator
		created, disabled int64
	)
	err := row.Scan(&o.ID, &o.Name, &o.Role, &o.Tenant, &o.PasswordHash, &created, &disabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errOperatorNotFound
	} else if err != nil {
		return nil, wrap(err)
	}
	o.CreatedAt, o.DisabledAt = ts(created), ts(disabled)
	return &o, nil
}
