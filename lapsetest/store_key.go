package lapsetest

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/lapsehq/lapse"
)

func cloneKey(k lapse.APIKey) *lapse.APIKey {
	k.Scopes = slices.Clone(k.Scopes)
	return &k
}

// CreateKey implements [lapse.KeyStore].
func (st *Store) CreateKey(_ context.Context, k *lapse.APIKey, ev *lapse.Event) error {
	if err := st.lock(); err != nil {
		return err
	}
	defer st.mu.Unlock()
	if _, ok := st.keys[k.ID]; ok {
		return lapse.Errorf(lapse.CodeConflict, "an API key with this id exists")
	}
	st.keys[k.ID] = *cloneKey(*k)
	if ev != nil {
		st.appendEvents(*ev)
	}
	return nil
}

// Key implements [lapse.KeyStore].
func (st *Store) Key(_ context.Context, id string) (*lapse.APIKey, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	k, ok := st.keys[id]
	if !ok {
		return nil, lapse.Errorf(lapse.CodeKeyNotFound, "no such API key")
	}
	return cloneKey(k), nil
}

// Keys implements [lapse.KeyStore].
func (st *Store) Keys(context.Context) ([]*lapse.APIKey, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	var out []*lapse.APIKey
	for _, id := range slices.Sorted(maps.Keys(st.keys)) {
		out = append(out, cloneKey(st.keys[id]))
	}
	return out, nil
}

// RevokeKey implements [lapse.KeyStore].
func (st *Store) RevokeKey(_ context.Context, id string, at time.Time, ev *lapse.Event) (*lapse.APIKey, bool, error) {
	if err := st.lock(); err != nil {
		return nil, false, err
	}
	defer st.mu.Unlock()
	k, ok := st.keys[id]
	if !ok {
		return nil, false, lapse.Errorf(lapse.CodeKeyNotFound, "no such API key")
	}
	changed := k.RevokedAt.IsZero()
	if changed {
		k.RevokedAt = at
		st.keys[id] = k
		if ev != nil {
			st.appendEvents(*ev)
		}
	}
	return cloneKey(k), changed, nil
}

// TouchKey implements [lapse.KeyStore].
func (st *Store) TouchKey(_ context.Context, id string, at time.Time) error {
	if err := st.lock(); err != nil {
		return err
	}
	defer st.mu.Unlock()
	if k, ok := st.keys[id]; ok && at.After(k.LastUsedAt) {
		k.LastUsedAt = at
		st.keys[id] = k
	}
	return nil
}
