package redis

import (
	"context"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/lapsehq/lapse"
)

var _ lapse.KeyStore = (*Store)(nil)

// API keys are few, so they share one slot, {prefix:keys}, in cluster
// mode too: a key's hash and the set of ids change in one script.
//
//	{lapse:keys}:k:<id>   hash: one key (its secret only as its SHA-256, hex)
//	{lapse:keys}:ids      set: every key's id
//	{lapse:keys}:outbox   stream: the events of key changes, written by
//	                      the change's script; the relay drains it as
//	                      the outbox of bucket keysBucket
func (s *Store) apiKey(id string) string { return "{" + s.prefix + ":keys}:k:" + id }
func (s *Store) apiKeyIDs() string       { return "{" + s.prefix + ":keys}:ids" }

// keysBucket is the relay's number of the keys' outbox, one past the
// sessions' buckets.
const keysBucket = Buckets

// keyEventLua appends the event of ARGV from index i on (id, type, time,
// tenant, reason, actor, ip, actor_name), if there is one (n > 0), to
// the keys' outbox KEYS[3].
const keyEventLua = `
local function key_event(i)
  if tonumber(ARGV[i]) == 0 then return end
  redis.call('XADD', KEYS[3], '*', 'id', ARGV[i + 1], 'type', ARGV[i + 2], 'time', ARGV[i + 3],
    'session_id', '', 'subject', '', 'tenant', ARGV[i + 4], 'tier', '',
    'reason', ARGV[i + 5], 'actor', ARGV[i + 6], 'ip', ARGV[i + 7], 'actor_name', ARGV[i + 8])
end
`

// eventArgs returns ev as keyEventLua reads it: 1 and its fields, or 0
// for none.
func eventArgs(ev *lapse.Event) []any {
	if ev == nil {
		return []any{0, "", "", "", "", "", "", "", ""}
	}
	return []any{1, ev.ID, string(ev.Type), enc(ev.Time), ev.Tenant, string(ev.Reason), ev.Actor, ev.IP, ev.ActorName}
}

// createKeyLua: KEYS the key's hash, the id set, the keys' outbox. ARGV
// the event (eventArgs: 9 values), id, then the hash's field-value
// pairs. It answers 0 for an id in use.
var createKeyScript = goredis.NewScript(keyEventLua + `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 11))
redis.call('SADD', KEYS[2], ARGV[10])
key_event(1)
return 1
`)

// revokeKeyScript: KEYS the key's hash, the id set (unused), the keys'
// outbox. ARGV the event (eventArgs: 9 values), the revoke time. It
// answers -1 for an unknown key, 1 if it recorded the revoke and its
// event, 0 if the key was revoked already.
var revokeKeyScript = goredis.NewScript(keyEventLua + `
local r = redis.call('HGET', KEYS[1], 'revoked_at')
if not r then return -1 end
if r ~= '0000000000000000000' then return 0 end
redis.call('HSET', KEYS[1], 'revoked_at', ARGV[10])
key_event(1)
return 1
`)

// touchKeyScript: KEYS the key's hash. ARGV the use's time; it is
// recorded if later than the one recorded (times as enc writes them sort
// as strings).
var touchKeyScript = goredis.NewScript(`
local u = redis.call('HGET', KEYS[1], 'last_used_at')
if u and u < ARGV[1] then redis.call('HSET', KEYS[1], 'last_used_at', ARGV[1]) end
return 0
`)

// CreateKey implements [lapse.KeyStore].
func (s *Store) CreateKey(ctx context.Context, k *lapse.APIKey, ev *lapse.Event) error {
	scopes := make([]string, len(k.Scopes))
	for i, sc := range k.Scopes {
		scopes[i] = string(sc)
	}
	args := append(eventArgs(ev), k.ID,
		"id", k.ID, "name", k.Name, "scopes", strings.Join(scopes, " "), "tenant", k.Tenant,
		"hash", hex.EncodeToString(k.Hash[:]), "created_at", enc(k.CreatedAt), "expires_at", enc(k.ExpiresAt),
		"last_used_at", enc(k.LastUsedAt), "revoked_at", enc(k.RevokedAt))
	n, err := createKeyScript.Run(ctx, s.c, []string{s.apiKey(k.ID), s.apiKeyIDs(), s.outboxKey(keysBucket)}, args...).Int()
	switch {
	case err != nil:
		return wrap(err)
	case n == 0:
		return lapse.Errorf(lapse.CodeConflict, "an API key with this id exists")
	}
	if ev != nil {
		s.hint(ctx, keysBucket)
	}
	return nil
}

// Key implements [lapse.KeyStore].
func (s *Store) Key(ctx context.Context, id string) (*lapse.APIKey, error) {
	m, err := s.c.HGetAll(ctx, s.apiKey(id)).Result()
	if err != nil {
		return nil, wrap(err)
	}
	return parseKey(m)
}

// Keys implements [lapse.KeyStore].
func (s *Store) Keys(ctx context.Context) ([]*lapse.APIKey, error) {
	ids, err := s.c.SMembers(ctx, s.apiKeyIDs()).Result()
	if err != nil {
		return nil, wrap(err)
	}
	slices.Sort(ids)
	var out []*lapse.APIKey
	for _, id := range ids {
		k, err := s.Key(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// RevokeKey implements [lapse.KeyStore].
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time, ev *lapse.Event) (*lapse.APIKey, bool, error) {
	n, err := revokeKeyScript.Run(ctx, s.c, []string{s.apiKey(id), s.apiKeyIDs(), s.outboxKey(keysBucket)},
		append(eventArgs(ev), enc(at))...).Int()
	switch {
	case err != nil:
		return nil, false, wrap(err)
	case n < 0:
		return nil, false, lapse.Errorf(lapse.CodeKeyNotFound, "no such API key")
	}
	if n == 1 && ev != nil {
		s.hint(ctx, keysBucket)
	}
	k, err := s.Key(ctx, id)
	return k, n == 1, err
}

// TouchKey implements [lapse.KeyStore].
func (s *Store) TouchKey(ctx context.Context, id string, at time.Time) error {
	return wrap(touchKeyScript.Run(ctx, s.c, []string{s.apiKey(id)}, enc(at)).Err())
}

// parseKey reads a key's hash; an empty one is an unknown key.
func parseKey(m map[string]string) (*lapse.APIKey, error) {
	if len(m) == 0 {
		return nil, lapse.Errorf(lapse.CodeKeyNotFound, "no such API key")
	}
	k := &lapse.APIKey{ID: m["id"], Name: m["name"], Tenant: m["tenant"]}
	for f := range strings.FieldsSeq(m["scopes"]) {
		k.Scopes = append(k.Scopes, lapse.Scope(f))
	}
	if h, err := hex.DecodeString(m["hash"]); err != nil || len(h) != len(k.Hash) {
		return nil, &lapse.Error{Code: lapse.CodeStoreUnavailable, Message: "an API key's record is damaged"}
	} else {
		copy(k.Hash[:], h)
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"created_at", &k.CreatedAt}, {"expires_at", &k.ExpiresAt}, {"last_used_at", &k.LastUsedAt}, {"revoked_at", &k.RevokedAt}} {
		t, err := dec(m[f.name])
		if err != nil {
			return nil, &lapse.Error{Code: lapse.CodeStoreUnavailable, Message: "an API key's record is damaged", Err: err}
		}
		*f.dst = t
	}
	return k, nil
}
