package lapse

import (
	"context"
	"sync"
	"time"
)

// Keyring authenticates, creates and revokes the API keys of a
// [KeyStore]. A key read from the store is served from memory for at
// most the manager's propagation bound, so a key revoked on one node is
// refused on every node within that bound ([Config.PropagationBound]);
// the node that revokes it refuses it at once. It is safe for concurrent
// use.
type Keyring struct {
	m     *Manager
	store KeyStore
	bound time.Duration

	// boot is the bootstrap key's hash (Bootstrap), recorded again if the
	// store lost it; nil before Bootstrap.
	boot *TokenHash

	mu    sync.Mutex
	cache map[string]cachedKey // by id
}

type cachedKey struct {
	key     *APIKey
	read    time.Time // when it was read from the store
	touched time.Time // when its use was last written
}

// maxCachedKeys bounds the keys remembered; past it the cache starts
// afresh (keys are few; this only stops unknown ids from filling it, and
// they are not cached anyway).
const maxCachedKeys = 4096

// NewKeyring returns the keyring of m's store. It fails with
// [CodeInvalid] for a store that is not a [KeyStore].
func NewKeyring(m *Manager) (*Keyring, error) {
	ks, ok := m.store.(KeyStore)
	if !ok {
		return nil, Errorf(CodeInvalid, "this store keeps no API keys")
	}
	return &Keyring{m: m, store: ks, bound: m.feed.bound, cache: map[string]cachedKey{}}, nil
}

// Authenticate returns the key that key is, if it is usable now. ok is
// false for a malformed, unknown, wrong, revoked or expired key; err is
// only a store's failure. The hash is compared in constant time. A use is
// written at most once per [KeyTouchInterval].
func (r *Keyring) Authenticate(ctx context.Context, key string) (k *APIKey, ok bool, err error) {
	id := ParseAPIKey(key)
	now := r.m.clock.Now()
	r.mu.Lock()
	c, hit := r.cache[id]
	r.mu.Unlock()
	if !hit || now.Sub(c.read) > r.bound || now.Before(c.read) {
		got, err := r.readKey(ctx, id)
		if ErrorCode(err) == CodeKeyNotFound {
			HashSecret(key) // as much work as for a known id
			return nil, false, nil
		} else if err != nil {
			return nil, false, err
		}
		c = cachedKey{key: got, read: now, touched: c.touched}
		r.put(id, c)
	}
	if !c.key.compareHash(key) || !c.key.Usable(now) {
		return nil, false, nil
	}
	if now.Sub(c.touched) >= KeyTouchInterval {
		c.touched = now
		r.put(id, c)
		if err := r.store.TouchKey(ctx, id, now); err != nil {
			return nil, false, err
		}
	}
	return c.key, true, nil
}

// readKey reads the key with id from the store. The bootstrap key is
// recorded again if the store lost it (a Redis that keeps nothing across
// a restart), so that the node stays reachable; a revoke it lost is lost
// with it.
func (r *Keyring) readKey(ctx context.Context, id string) (*APIKey, error) {
	k, err := r.store.Key(ctx, id)
	if ErrorCode(err) != CodeKeyNotFound || r.boot == nil || id != LegacyKeyID(*r.boot) {
		return k, err
	}
	if err := r.Bootstrap(ctx, *r.boot); err != nil {
		return nil, err
	}
	return r.store.Key(ctx, id)
}

func (r *Keyring) put(id string, c cachedKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache) >= maxCachedKeys {
		clear(r.cache)
	}
	r.cache[id] = c
}

// Create makes a key of spec, records it and its [EventKeyCreated] on
// behalf of actor from ip, and returns the key, shown this once, and its
// record. It fails with [CodeInvalid] for a spec that is not valid (see
// [KeySpec]) or one that expires in the past, or with a store error.
func (r *Keyring) Create(ctx context.Context, spec KeySpec, actor, ip string) (string, *APIKey, error) {
	if err := spec.validate(); err != nil {
		return "", nil, err
	}
	now := r.m.clock.Now()
	if !spec.ExpiresAt.IsZero() && !spec.ExpiresAt.After(now) {
		return "", nil, Errorf(CodeInvalid, "the key would expire before it is made")
	}
	id := string(appendRandom(nil, keyIDChars))
	key := APIKeyPrefix + id + "_" + string(appendRandom(nil, keySecretChars))
	k := &APIKey{ID: id, Name: spec.Name, Scopes: append([]Scope{}, spec.Scopes...), Tenant: spec.Tenant,
		Hash: HashSecret(key), CreatedAt: now, ExpiresAt: spec.ExpiresAt}
	if err := r.store.CreateKey(ctx, k, r.event(ctx, EventKeyCreated, k, actor, ip, now)); err != nil {
		return "", nil, err
	}
	return key, k, nil
}

// Bootstrap records the key whose hash is h, one without an id of its
// own (the first start's key, LAPSE_API_KEY), as an all-scopes key named
// "bootstrap" under [LegacyKeyID], unless it is recorded already: a
// bootstrap key that was revoked stays revoked. If the store later loses
// the record (a store that keeps nothing across a restart), the keyring
// records it again when the key is next used. Call it before the keyring
// is used concurrently.
func (r *Keyring) Bootstrap(ctx context.Context, h TokenHash) error {
	r.boot = &h
	k := &APIKey{ID: LegacyKeyID(h), Name: "bootstrap", Scopes: Scopes(), Hash: h, CreatedAt: r.m.clock.Now()}
	err := r.store.CreateKey(ctx, k, nil)
	if ErrorCode(err) == CodeConflict {
		return nil
	}
	return err
}

// Revoke revokes the key with id on behalf of actor from ip and records
// an [EventKeyRevoked] if it was not revoked already. A key bound to
// tenant may be revoked only by a caller of that tenant (tenant ""
// reaches all). It fails with [CodeKeyNotFound], also for another
// tenant's key, or with a store error.
func (r *Keyring) Revoke(ctx context.Context, id, actor, ip string) (*APIKey, error) {
	k, err := r.store.Key(ctx, id)
	if err != nil {
		return nil, err
	} else if t := TenantOf(ctx); t != "" && k.Tenant != t {
		return nil, errKeyNotFound
	}
	now := r.m.clock.Now()
	k, _, err = r.store.RevokeKey(ctx, id, now, r.event(ctx, EventKeyRevoked, k, actor, ip, now))
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	delete(r.cache, id)
	r.mu.Unlock()
	return k, nil
}

var errKeyNotFound = &Error{Code: CodeKeyNotFound, Message: "no such API key"}

// Key returns the key with id. It fails with [CodeKeyNotFound], also
// for a key of a tenant other than ctx's ([WithTenant]).
func (r *Keyring) Key(ctx context.Context, id string) (*APIKey, error) {
	k, err := r.store.Key(ctx, id)
	if err == nil && TenantOf(ctx) != "" && k.Tenant != TenantOf(ctx) {
		return nil, errKeyNotFound
	}
	return k, err
}

// Keys returns every key, revoked ones too, in order of id; in a
// context bound to a tenant ([WithTenant]), that tenant's keys only.
func (r *Keyring) Keys(ctx context.Context) ([]*APIKey, error) {
	ks, err := r.store.Keys(ctx)
	if t := TenantOf(ctx); t != "" {
		out := ks[:0]
		for _, k := range ks {
			if k.Tenant == t {
				out = append(out, k)
			}
		}
		ks = out
	}
	return ks, err
}

// event returns the event of a change of k at now, which the store
// records with the change: the key's id as the reason, as the key is
// the subject of the change, and the actor's name if ctx names it
// ([WithActor]).
func (r *Keyring) event(ctx context.Context, typ EventType, k *APIKey, actor, ip string, now time.Time) *Event {
	return &Event{ID: NewEventID(now), Type: typ, Time: now, Tenant: k.Tenant, Reason: Reason(k.ID),
		Actor: actor, ActorName: actorName(ctx, actor), IP: ip}
}
