package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/lapsehq/lapse"
)

var _ lapse.OperatorStore = (*Store)(nil)

const operatorColumns = `id, name, role, tenant, password_hash, created_at, disabled_at`

// CreateOperator implements [lapse.OperatorStore].
func (s *Store) CreateOperator(ctx context.Context, o *lapse.Operator) error {
	err := s.inTx(ctx, func(tx wtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO operators (`+operatorColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			o.ID, o.Name, o.Role, o.Tenant, o.PasswordHash, nanos(o.CreatedAt), nanos(o.DisabledAt))
		return err
	})
	if lapse.ErrorCode(err) == lapse.CodeConflict {
		return lapse.Errorf(lapse.CodeConflict, "an operator with this id or name exists")
	}
	return err
}

// Operator implements [lapse.OperatorStore].
func (s *Store) Operator(ctx context.Context, id string) (*lapse.Operator, error) {
	return scanOperator(s.r.QueryRowContext(ctx, `SELECT `+operatorColumns+` FROM operators WHERE id = ?`, id))
}

// OperatorByName implements [lapse.OperatorStore].
func (s *Store) OperatorByName(ctx context.Context, name string) (*lapse.Operator, error) {
	return scanOperator(s.r.QueryRowContext(ctx, `SELECT `+operatorColumns+` FROM operators WHERE name = ?`, name))
}

// Operators implements [lapse.OperatorStore].
func (s *Store) Operators(ctx context.Context) ([]*lapse.Operator, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+operatorColumns+` FROM operators ORDER BY name`)
	if err != nil {
		return nil, wrap(err)
	}
	ops, err := collect(rows, scanOperator)
	return ops, wrap(err)
}

// UpdateOperator implements [lapse.OperatorStore].
func (s *Store) UpdateOperator(ctx context.Context, o *lapse.Operator) error {
	return s.inTx(ctx, func(tx wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE operators SET role = ?, tenant = ?, password_hash = ?, disabled_at = ? WHERE id = ?`,
			o.Role, o.Tenant, o.PasswordHash, nanos(o.DisabledAt), o.ID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err == nil && n == 0 {
			err = errOperatorNotFound
		}
		return err
	})
}

var errOperatorNotFound = &lapse.Error{Code: lapse.CodeOperatorNotFound, Message: "no such operator"}

func scanOperator(row scanner) (*lapse.Operator, error) {
	var (
		o                 lapse.Operator
		created, disabled int64
	)
	err := row.Scan(&o.ID, &o.Name, &o.Role, &o.Tenant, &o.PasswordHash, &created, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errOperatorNotFound
	} else if err != nil {
		return nil, wrap(err)
	}
	o.CreatedAt, o.DisabledAt = ts(created), ts(disabled)
	return &o, nil
}
