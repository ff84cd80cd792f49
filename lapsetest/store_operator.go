package lapsetest

import (
	"cmp"
	"context"
	"slices"

	"github.com/lapsehq/lapse"
)

var errOperatorNotFound = &lapse.Error{Code: lapse.CodeOperatorNotFound, Message: "no such operator"}

// CreateOperator implements [lapse.OperatorStore].
func (st *Store) CreateOperator(_ context.Context, o *lapse.Operator) error {
	if err := st.lock(); err != nil {
		return err
	}
	defer st.mu.Unlock()
	if _, ok := st.ops[o.ID]; ok {
		return lapse.Errorf(lapse.CodeConflict, "an operator with this id exists")
	}
	for _, other := range st.ops {
		if other.Name == o.Name {
			return lapse.Errorf(lapse.CodeConflict, "an operator with this name exists")
		}
	}
	st.ops[o.ID] = *o
	return nil
}

// Operator implements [lapse.OperatorStore].
func (st *Store) Operator(_ context.Context, id string) (*lapse.Operator, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	o, ok := st.ops[id]
	if !ok {
		return nil, errOperatorNotFound
	}
	return &o, nil
}

// OperatorByName implements [lapse.OperatorStore].
func (st *Store) OperatorByName(_ context.Context, name string) (*lapse.Operator, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	for _, o := range st.ops {
		if o.Name == name {
			return &o, nil
		}
	}
	return nil, errOperatorNotFound
}

// Operators implements [lapse.OperatorStore].
func (st *Store) Operators(context.Context) ([]*lapse.Operator, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	var out []*lapse.Operator
	for _, o := range st.ops {
		out = append(out, &o)
	}
	slices.SortFunc(out, func(a, b *lapse.Operator) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// UpdateOperator implements [lapse.OperatorStore].
func (st *Store) UpdateOperator(_ context.Context, id string, ch lapse.OperatorChange) (*lapse.Operator, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	o, ok := st.ops[id]
	if !ok {
		return nil, errOperatorNotFound
	}
	ch.Apply(&o)
	st.ops[id] = o
	return &o, nil
}
