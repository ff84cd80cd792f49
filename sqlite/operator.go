package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

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

// UpdateOperator implements [lapse.OperatorStore]: one statement, which
// writes only the columns ch sets (a NULL argument keeps the column).
func (s *Store) UpdateOperator(ctx context.Context, id string, ch lapse.OperatorChange) (*lapse.Operator, error) {
	var o *lapse.Operator
	err := s.inTx(ctx, func(tx wtx) error {
		var err error
		o, err = scanOperator(tx.QueryRowContext(ctx, `UPDATE operators SET role = coalesce(?, role), tenant = coalesce(?, tenant),
			password_hash = coalesce(?, password_hash), disabled_at = coalesce(?, disabled_at) WHERE id = ? RETURNING `+operatorColumns,
			ch.Role, ch.Tenant, ch.PasswordHash, nanosOrNil(ch.DisabledAt), id))
		return err
	})
	return o, err
}

// nanosOrNil is nanos(*t), or nil (NULL) for no t.
func nanosOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return nanos(*t)
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
