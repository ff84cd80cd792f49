package redis

import (
	"context"
	"maps"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/lapsehq/lapse"
)

var _ lapse.OperatorStore = (*Store)(nil)

// Operators are few, so they share one slot, {prefix:ops}, in cluster
// mode too: an operator's hash and the name index change in one script.
//
//	{lapse:ops}:o:<id>    hash: one operator (the password as its PHC string)
//	{lapse:ops}:names     hash: name -> id, for every operator
func (s *Store) operatorKey(id string) string { return "{" + s.prefix + ":ops}:o:" + id }
func (s *Store) operatorNames() string        { return "{" + s.prefix + ":ops}:names" }

// createOperatorScript: KEYS the operator's hash, the name index. ARGV
// id, name, then the hash's field-value pairs. It answers 0 for an id or
// a name in use.
var createOperatorScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 1
`)

// updateOperatorScript: KEYS the operator's hash. ARGV the field-value
// pairs to change, perhaps none. It answers the hash as it then is, as
// HGETALL does: empty for an unknown operator.
var updateOperatorScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
if #ARGV > 0 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
return redis.call('HGETALL', KEYS[1])
`)

var errOperatorNotFound = &lapse.Error{Code: lapse.CodeOperatorNotFound, Message: "no such operator"}

// CreateOperator implements [lapse.OperatorStore].
func (s *Store) CreateOperator(ctx context.Context, o *lapse.Operator) error {
	n, err := createOperatorScript.Run(ctx, s.c, []string{s.operatorKey(o.ID), s.operatorNames()}, o.ID, o.Name,
		"id", o.ID, "name", o.Name, "role", o.Role, "tenant", o.Tenant, "password_hash", o.PasswordHash,
		"created_at", enc(o.CreatedAt), "disabled_at", enc(o.DisabledAt)).Int()
	switch {
	case err != nil:
		return wrap(err)
	case n == 0:
		return lapse.Errorf(lapse.CodeConflict, "an operator with this id or name exists")
	}
	return nil
}

// Operator implements [lapse.OperatorStore].
func (s *Store) Operator(ctx context.Context, id string) (*lapse.Operator, error) {
	m, err := s.c.HGetAll(ctx, s.operatorKey(id)).Result()
	if err != nil {
		return nil, wrap(err)
	}
	return parseOperator(m)
}

// OperatorByName implements [lapse.OperatorStore].
func (s *Store) OperatorByName(ctx context.Context, name string) (*lapse.Operator, error) {
	id, err := s.c.HGet(ctx, s.operatorNames(), name).Result()
	if err == goredis.Nil {
		return nil, errOperatorNotFound
	} else if err != nil {
		return nil, wrap(err)
	}
	return s.Operator(ctx, id)
}

// Operators implements [lapse.OperatorStore].
func (s *Store) Operators(ctx context.Context) ([]*lapse.Operator, error) {
	byName, err := s.c.HGetAll(ctx, s.operatorNames()).Result()
	if err != nil {
		return nil, wrap(err)
	}
	var out []*lapse.Operator
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		o, err := s.Operator(ctx, byName[name])
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// UpdateOperator implements [lapse.OperatorStore]: one script, which
// writes only the fields ch sets.
func (s *Store) UpdateOperator(ctx context.Context, id string, ch lapse.OperatorChange) (*lapse.Operator, error) {
	var pairs []any
	for _, f := range []struct {
		name string
		v    *string
	}{{"role", ch.Role}, {"tenant", ch.Tenant}, {"password_hash", ch.PasswordHash}} {
		if f.v != nil {
			pairs = append(pairs, f.name, *f.v)
		}
	}
	if ch.DisabledAt != nil {
		pairs = append(pairs, "disabled_at", enc(*ch.DisabledAt))
	}
	flat, err := updateOperatorScript.Run(ctx, s.c, []string{s.operatorKey(id)}, pairs...).StringSlice()
	if err != nil {
		return nil, wrap(err)
	}
	m := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		m[flat[i]] = flat[i+1]
	}
	return parseOperator(m)
}

// parseOperator reads an operator's hash; an empty one is an unknown
// operator.
func parseOperator(m map[string]string) (*lapse.Operator, error) {
	if len(m) == 0 {
		return nil, errOperatorNotFound
	}
	o := &lapse.Operator{ID: m["id"], Name: m["name"], Role: m["role"], Tenant: m["tenant"], PasswordHash: m["password_hash"]}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"created_at", &o.CreatedAt}, {"disabled_at", &o.DisabledAt}} {
		t, err := dec(m[f.name])
		if err != nil {
			return nil, &lapse.Error{Code: lapse.CodeStoreUnavailable, Message: "an operator's record is damaged", Err: err}
		}
		*f.dst = t
	}
	return o, nil
}
