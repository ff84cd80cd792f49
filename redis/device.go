package redis

import (
	"context"
	"encoding/hex"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/lapsehq/lapse"
)

var _ lapse.DeviceBinder = (*Store)(nil)

// bindingKey is the hash of session id's device binding, in the bucket
// (and so the cluster slot) of its session.
func (s *Store) bindingKey(b int, id string) string { return s.tag(b) + ":db:" + id }

// bindLua: KEYS session, binding, outbox. ARGV thumbprint, jwk, bound_at,
// cookie hash (hex), cookie expiry, then the event's id, type, time,
// session, subject, tenant, tier, actor. It answers 0 for an unknown
// session, -1 for one already bound, else records the binding (kept as
// long as the session's keys) and the event, and answers 1.
var bindScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('HSET', KEYS[2], 'th', ARGV[1], 'jwk', ARGV[2], 'at', ARGV[3], 'ch', ARGV[4], 'cx', ARGV[5])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
redis.call('XADD', KEYS[3], '*', 'id', ARGV[6], 'type', ARGV[7], 'time', ARGV[8],
  'session_id', ARGV[9], 'subject', ARGV[10], 'tenant', ARGV[11], 'tier', ARGV[12],
  'reason', '', 'actor', ARGV[13], 'ip', '')
return 1
`)

// renewLua: KEYS binding. ARGV thumbprint, cookie hash (hex), expiry. It
// answers 1 when the binding's key is thumbprint and the cookie was
// replaced (the old one kept as the previous), 0 otherwise.
var renewScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'th') ~= ARGV[1] then return 0 end
local h = redis.call('HMGET', KEYS[1], 'ch', 'cx')
redis.call('HSET', KEYS[1], 'pch', h[1], 'pcx', h[2], 'ch', ARGV[2], 'cx', ARGV[3])
return 1
`)

// Bind implements [lapse.DeviceBinder]: one script checks the session,
// records the binding and appends the event to its bucket's outbox.
func (s *Store) Bind(ctx context.Context, d lapse.DeviceBinding, ev lapse.Event) error {
	b, err := s.bucketOf(ctx, d.SessionID)
	if err != nil {
		return err
	}
	n, err := bindScript.Run(ctx, s.c, []string{s.sessionKey(b, d.SessionID), s.bindingKey(b, d.SessionID), s.outboxKey(b)},
		d.Key.Thumbprint, string(d.Key.JWK), enc(d.BoundAt), hex.EncodeToString(d.CookieHash[:]), enc(d.CookieExpiresAt),
		ev.ID, string(ev.Type), enc(ev.Time), ev.SessionID, ev.Subject, ev.Tenant, ev.Tier, ev.Actor).Int()
	switch {
	case err != nil:
		return wrap(err)
	case n == 0:
		return notFound()
	case n < 0:
		return lapse.Errorf(lapse.CodeConflict, "the session is already bound to a device")
	}
	s.hint(ctx, b)
	return nil
}

// DeviceBinding implements [lapse.DeviceBinder].
func (s *Store) DeviceBinding(ctx context.Context, id string) (*lapse.DeviceBinding, error) {
	b, err := s.bucketOf(ctx, id)
	if lapse.ErrorCode(err) == lapse.CodeSessionNotFound {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	h, err := s.c.HGetAll(ctx, s.bindingKey(b, id)).Result()
	if err != nil {
		return nil, wrap(err)
	}
	if len(h) == 0 {
		return nil, nil
	}
	d := &lapse.DeviceBinding{SessionID: id, Key: lapse.DeviceKey{Thumbprint: h["th"], JWK: []byte(h["jwk"])}}
	var errs [5]error
	d.BoundAt, errs[0] = dec(h["at"])
	d.CookieExpiresAt, errs[1] = dec(h["cx"])
	raw, err := hex.DecodeString(h["ch"])
	errs[2] = err
	copy(d.CookieHash[:], raw)
	if h["pch"] != "" {
		d.PrevCookieExpiresAt, errs[3] = dec(h["pcx"])
		raw, errs[4] = hex.DecodeString(h["pch"])
		copy(d.PrevCookieHash[:], raw)
	}
	for _, err := range errs {
		if err != nil {
			return nil, wrap(err)
		}
	}
	return d, nil
}

// RenewBoundCookie implements [lapse.DeviceBinder].
func (s *Store) RenewBoundCookie(ctx context.Context, id, thumbprint string, h lapse.TokenHash, until time.Time) error {
	b, err := s.bucketOf(ctx, id)
	if lapse.ErrorCode(err) == lapse.CodeSessionNotFound {
		return lapse.Errorf(lapse.CodeConflict, "the session is not bound to that key")
	} else if err != nil {
		return err
	}
	n, err := renewScript.Run(ctx, s.c, []string{s.bindingKey(b, id)}, thumbprint, hex.EncodeToString(h[:]), enc(until)).Int()
	if err != nil {
		return wrap(err)
	}
	if n == 0 {
		return lapse.Errorf(lapse.CodeConflict, "the session is not bound to that key")
	}
	return nil
}
