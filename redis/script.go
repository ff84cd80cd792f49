package redis

import (
	"strings"

	"github.com/lapsehq/lapse"
	goredis "github.com/redis/go-redis/v9"
)

// The Lua scripts below are the store's only writers. Each runs inside one
// bucket's hash slot (or the event log's, or one index key's), so Redis
// runs it atomically, in cluster mode too. Keys a script derives from its
// arguments (a session's key from an id in a set) carry the same hash tag
// as its declared KEYS, so they live in the same slot.
//
// Times are Unix nanoseconds written as 19 zero-padded digits. Lua numbers
// are doubles, exact only to 2^53, so lt compares the two halves of the
// string as numbers; and Redis sets LC_COLLATE from the environment, so
// ids are compared byte by byte (bytes_lt), never with Lua's '<' on
// strings, to order ties exactly as the SQLite store does. Sorted-set
// scores are whole microseconds (the first 16 digits), exact in a double
// until the year 2255; whoever reads an index by score checks the exact
// time again in the script that acts.
//
// Words between @ signs are replaced by the lapse constants of the same
// meaning before the scripts are loaded, so status, reason and event
// strings have one source.

const prelude = `
local function lt(a, b)
  local ah, bh = tonumber(string.sub(a, 1, 10)), tonumber(string.sub(b, 1, 10))
  if ah ~= bh then return ah < bh end
  return tonumber(string.sub(a, 11)) < tonumber(string.sub(b, 11))
end

local function us(t) return string.sub(t, 1, 16) end

local function bytes_lt(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function oldest_first(a, b)
  if a.created_at ~= b.created_at then return lt(a.created_at, b.created_at) end
  return bytes_lt(a.id, b.id)
end

local B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
local evbase, evn = '', 0
-- evid returns the next event id of this call: the caller's random base
-- and a three-character counter.
local function evid()
  evn = evn + 1
  local n, s = evn, ''
  for _ = 1, 3 do
    local d = n % 62
    s = string.sub(B62, d + 1, d + 1) .. s
    n = math.floor(n / 62)
  end
  return evbase .. s
end

local FIELDS = {'id', 'token', 'prev_token', 'subject', 'tenant', 'tier', 'status',
  'created_at', 'last_active_at', 'idle_expires_at', 'expires_at', 'warn_at', 'warned_for', 'ended_at'}

local function load(key)
  local v = redis.call('HMGET', key, unpack(FIELDS))
  if not v[1] then return nil end
  local s = {key = key}
  for i, f in ipairs(FIELDS) do s[f] = v[i] or '' end
  return s
end

local function deadline(s)
  if lt(s.expires_at, s.idle_expires_at) then return s.expires_at end
  return s.idle_expires_at
end

local function lapsed(s, now) return not lt(now, deadline(s)) end

-- index files the active session s in the bucket's deadline index (by
-- tier, for counting and expiry) and warning index.
local function index(tag, s)
  redis.call('ZADD', tag .. ':d:' .. s.tier, us(deadline(s)), s.id)
  if s.warned_for ~= s.warn_at then redis.call('ZADD', tag .. ':w', us(s.warn_at), s.id) end
end

-- tidy drops the first few members of an index whose session hash the
-- TTL backstop already removed, so indexes do not grow without bound.
local function tidy(tag, key, n)
  for _, id in ipairs(redis.call('ZRANGE', key, 0, n - 1)) do
    if redis.call('EXISTS', tag .. ':s:' .. id) == 0 then redis.call('ZREM', key, id) end
  end
end

-- tidy_created drops the oldest few members of the bucket's listing
-- index (created_at:id) whose session hash is gone.
local function tidy_created(tag, n)
  local c = tag .. ':c'
  for _, m in ipairs(redis.call('ZRANGE', c, 0, n - 1)) do
    if redis.call('EXISTS', tag .. ':s:' .. string.sub(m, 21)) == 0 then redis.call('ZREM', c, m) end
  end
end

local function event(outbox, typ, s, reason, actor, at, ip, name)
  redis.call('XADD', outbox, '*', 'id', evid(), 'type', typ, 'time', at,
    'session_id', s.id, 'subject', s.subject, 'tenant', s.tenant, 'tier', s.tier,
    'reason', reason, 'actor', actor, 'ip', ip or '', 'actor_name', name or '')
end

-- finish ends the active session s as lapse.Session.EndAt does: expired
-- at its deadline, by the system, if that passed at now; otherwise
-- nothing for an expiry, and status and reason at now for a revoke. It
-- records the event and reports whether s changed.
local function finish(tag, outbox, s, status, reason, actor, now, ip, name)
  local at, typ = now, '@EV_REVOKED@'
  if not lt(now, s.expires_at) then
    status, reason, at, actor, typ, ip = '@EXPIRED@', '@ABSOLUTE@', s.expires_at, '@SYSTEM@', '@EV_EXPIRED@', ''
    name = ''
  elseif not lt(now, s.idle_expires_at) then
    status, reason, at, actor, typ, ip = '@EXPIRED@', '@IDLE@', s.idle_expires_at, '@SYSTEM@', '@EV_EXPIRED@', ''
    name = ''
  elseif status == '@EXPIRED@' then
    return false
  end
  redis.call('HSET', s.key, 'status', status, 'end_reason', reason, 'ended_at', at)
  redis.call('SREM', tag .. ':a:' .. s.subject, s.id)
  redis.call('ZREM', tag .. ':d:' .. s.tier, s.id)
  redis.call('ZREM', tag .. ':w', s.id)
  redis.call('ZADD', tag .. ':e', us(at), s.id)
  event(outbox, typ, s, reason, actor, now, ip, name)
  return true
end

-- extend makes key live at least ttl more milliseconds.
local function extend(key, ttl)
  local cur = redis.call('PTTL', key)
  if cur == -1 or (cur >= 0 and cur < ttl) then redis.call('PEXPIRE', key, ttl) end
end

local function publish(channel, tokens)
  if #tokens > 0 then redis.call('PUBLISH', channel, table.concat(tokens, ',')) end
end
`

// createLua: KEYS session, outbox. ARGV tag, channel, evbase, limit,
// ttl_ms, nonce, then the session's field/value pairs.
const createLua = `
local key, outbox = KEYS[1], KEYS[2]
local tag, channel, limit, ttl, nonce = ARGV[1], ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
evbase = ARGV[3]
local f = {key = key}
for i = 7, #ARGV, 2 do f[ARGV[i]] = ARGV[i + 1] end
if redis.call('EXISTS', key) == 1 then
  -- A retry of this very call (same nonce) after a lost reply succeeded.
  if redis.call('HGET', key, 'nonce') == nonce then return {'ok', {}} end
  return {'conflict'}
end
local now = f.created_at
local active = tag .. ':a:' .. f.subject
local tokens, ended = {}, {}
if limit > 0 then
  local live = {}
  for _, id in ipairs(redis.call('SMEMBERS', active)) do
    local s = load(tag .. ':s:' .. id)
    if not s or s.status ~= '@ACTIVE@' then
      redis.call('SREM', active, id)
    elseif s.tenant == f.tenant and s.tier == f.tier and not lapsed(s, now) then
      table.insert(live, s)
    end
  end
  if #live >= limit then
    table.sort(live, oldest_first)
    for i = 1, #live - limit + 1 do
      local s = live[i]
      finish(tag, outbox, s, '@REVOKED@', '@LIMIT@', '@SYSTEM@', now)
      table.insert(tokens, s.token)
      table.insert(ended, redis.call('HGETALL', s.key))
    end
  end
end
redis.call('HSET', key, 'nonce', nonce, unpack(ARGV, 7))
redis.call('PEXPIRE', key, ttl)
local all = tag .. ':u:' .. f.subject
redis.call('SADD', active, f.id)
redis.call('SADD', all, f.id)
extend(active, ttl)
extend(all, ttl)
index(tag, f)
redis.call('SADD', tag .. ':tiers', f.tier)
redis.call('ZADD', tag .. ':c', 0, f.created_at .. ':' .. f.id)
tidy_created(tag, 3)
tidy(tag, tag .. ':d:' .. f.tier, 3)
tidy(tag, tag .. ':w', 3)
tidy(tag, tag .. ':e', 3)
for _, id in ipairs(redis.call('SRANDMEMBER', all, 3)) do
  if redis.call('EXISTS', tag .. ':s:' .. id) == 0 then redis.call('SREM', all, id) end
end
event(outbox, '@EV_CREATED@', f, '', '@API@', now)
-- Only the sessions the limit ended: a new token is in nobody's cache.
publish(channel, tokens)
return {'ok', ended}
`

// touchLua: KEYS session, outbox. ARGV tag, channel, evbase, at, idle,
// warn, force.
const touchLua = `
local key, outbox = KEYS[1], KEYS[2]
local tag, channel, at, idle, warn, force = ARGV[1], ARGV[2], ARGV[4], ARGV[5], ARGV[6], ARGV[7] == '1'
evbase = ARGV[3]
local s = load(key)
if not s then return {'notfound'} end
if s.status == '@ACTIVE@' and lt(s.last_active_at, at) and not lapsed(s, at) then
  local extended = force or not lt(at, s.warn_at)
  redis.call('HSET', key, 'last_active_at', at, 'idle_expires_at', idle, 'warn_at', warn)
  s.idle_expires_at, s.warn_at = idle, warn
  index(tag, s)
  publish(channel, {s.token})
  if extended then
    event(outbox, '@EV_EXTENDED@', s, '', '@SUBJECT@', at)
    return {'ok', redis.call('HGETALL', key), 'evented'}
  end
end
return {'ok', redis.call('HGETALL', key)}
`

// endLua: KEYS session, outbox. ARGV tag, channel, evbase, status,
// reason, actor, now, ip, actor_name.
const endLua = `
local key, outbox = KEYS[1], KEYS[2]
local tag, channel = ARGV[1], ARGV[2]
evbase = ARGV[3]
local s = load(key)
if not s then return {'notfound'} end
if s.status ~= '@ACTIVE@' or not finish(tag, outbox, s, ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]) then
  return {'same', redis.call('HGETALL', key)}
end
publish(channel, {s.token})
return {'changed', redis.call('HGETALL', key)}
`

// endMatchingLua: KEYS active set, outbox. ARGV tag, channel, evbase,
// tenant, any_tenant, except, status, reason, actor, now, ip,
// actor_name.
const endMatchingLua = `
local active, outbox = KEYS[1], KEYS[2]
local tag, channel, tenant, any, except = ARGV[1], ARGV[2], ARGV[4], ARGV[5] == '1', ARGV[6]
evbase = ARGV[3]
local match = {}
for _, id in ipairs(redis.call('SMEMBERS', active)) do
  local s = load(tag .. ':s:' .. id)
  if not s or s.status ~= '@ACTIVE@' then
    redis.call('SREM', active, id)
  elseif (any or s.tenant == tenant) and s.id ~= except then
    table.insert(match, s)
  end
end
table.sort(match, oldest_first)
local tokens, ended = {}, {}
for _, s in ipairs(match) do
  if finish(tag, outbox, s, ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12]) then
    table.insert(tokens, s.token)
    table.insert(ended, redis.call('HGETALL', s.key))
  end
end
publish(channel, tokens)
return {'ok', ended}
`

// rotateLua: KEYS session, outbox. ARGV tag, channel, now, old_token,
// ttl_ms, n, then n field/value pairs, m, then m events as (id, type,
// reason, actor, ip, actor_name).
const rotateLua = `
local key, outbox = KEYS[1], KEYS[2]
local tag, channel, now, old, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local s = load(key)
if not s then return {'notfound'} end
if s.status ~= '@ACTIVE@' or lapsed(s, now) then return {'ended', redis.call('HGETALL', key)} end
if s.token ~= old then return {'conflict'} end
local n, i = tonumber(ARGV[6]), 7
local set = {}
for j = i, i + 2 * n - 1 do table.insert(set, ARGV[j]) end
for j = i, i + 2 * n - 1, 2 do s[ARGV[j]] = ARGV[j + 1] end
i = i + 2 * n
redis.call('HSET', key, unpack(set))
extend(key, ttl)
extend(tag .. ':a:' .. s.subject, ttl)
extend(tag .. ':u:' .. s.subject, ttl)
index(tag, s)
local m = tonumber(ARGV[i])
i = i + 1
for _ = 1, m do
  redis.call('XADD', outbox, '*', 'id', ARGV[i], 'type', ARGV[i + 1], 'time', now,
    'session_id', s.id, 'subject', s.subject, 'tenant', s.tenant, 'tier', s.tier,
    'reason', ARGV[i + 2], 'actor', ARGV[i + 3], 'ip', ARGV[i + 4], 'actor_name', ARGV[i + 5])
  i = i + 6
end
publish(channel, {old, s.token})
return {'ok', redis.call('HGETALL', key)}
`

// sessionsLua: KEYS a subject's set (active or all). ARGV tag. It only
// reads, so that the listing is one consistent snapshot.
const sessionsLua = `
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local h = redis.call('HGETALL', ARGV[1] .. ':s:' .. id)
  if #h > 0 then table.insert(out, h) end
end
return out
`

// countLua: KEYS the bucket's tier set. ARGV tag, now_us.
const countLua = `
local out = {}
for _, tier in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  table.insert(out, tier)
  table.insert(out, redis.call('ZCOUNT', ARGV[1] .. ':d:' .. tier, '(' .. ARGV[2], '+inf'))
end
return out
`

// dueLua: KEYS the bucket's tier set. ARGV tag, now_us, limit. It
// returns (score, tier, id) of up to limit sessions per tier whose
// deadline index score is at or before now_us. It only reads.
const dueLua = `
local out = {}
for _, tier in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local r = redis.call('ZRANGEBYSCORE', ARGV[1] .. ':d:' .. tier, '-inf', ARGV[2], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
  for j = 1, #r, 2 do
    table.insert(out, r[j + 1])
    table.insert(out, tier)
    table.insert(out, r[j])
  end
end
return out
`

// expireLua: KEYS outbox. ARGV tag, channel, evbase, now, then (tier,
// id) pairs. It expires each listed session that is still recorded
// active and has lapsed at now; the change of state is the claim, so two
// nodes sweeping at once expire each session once.
const expireLua = `
local outbox = KEYS[1]
local tag, channel, now = ARGV[1], ARGV[2], ARGV[4]
evbase = ARGV[3]
local tokens, ended = {}, {}
for i = 5, #ARGV, 2 do
  local tier, id = ARGV[i], ARGV[i + 1]
  local s = load(tag .. ':s:' .. id)
  if not s or s.status ~= '@ACTIVE@' then
    redis.call('ZREM', tag .. ':d:' .. tier, id)
  elseif lapsed(s, now) and finish(tag, outbox, s, '@EXPIRED@', '', '@SYSTEM@', now) then
    table.insert(tokens, s.token)
    table.insert(ended, redis.call('HGETALL', s.key))
  end
end
publish(channel, tokens)
return {'ok', ended}
`

// peekLua: KEYS a bucket index (sorted set). ARGV max_score, limit. It
// returns (score, "", id) of the first limit members scored at or below
// max_score. It only reads.
const peekLua = `
local out = {}
local r = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
for j = 1, #r, 2 do
  table.insert(out, r[j + 1])
  table.insert(out, '')
  table.insert(out, r[j])
end
return out
`

// warnLua: KEYS warning index, outbox. ARGV tag, evbase, now, then ids.
// It records one expiring-soon event for each listed session that is
// active, whose warning time has come before its deadline, and that was
// not warned for this warning time yet.
const warnLua = `
local w, outbox = KEYS[1], KEYS[2]
local tag, now = ARGV[1], ARGV[3]
evbase = ARGV[2]
local warned = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local s = load(tag .. ':s:' .. id)
  if not s or s.status ~= '@ACTIVE@' or lapsed(s, now) or s.warned_for == s.warn_at or not lt(s.warn_at, deadline(s)) then
    redis.call('ZREM', w, id)
  elseif not lt(now, s.warn_at) then
    redis.call('HSET', s.key, 'warned_for', s.warn_at)
    redis.call('ZREM', w, id)
    event(outbox, '@EV_EXPIRING_SOON@', s, '', '@SYSTEM@', now)
    table.insert(warned, redis.call('HGETALL', s.key))
  end
end
return {'ok', warned}
`

// purgeLua: KEYS ended index. ARGV tag, before, then ids. It deletes
// each listed session that ended before before, and returns (id, token,
// prev_token) of each, for the caller to delete their index entries.
const purgeLua = `
local e = KEYS[1]
local tag, before = ARGV[1], ARGV[2]
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local s = load(tag .. ':s:' .. id)
  if not s or s.status == '@ACTIVE@' then
    redis.call('ZREM', e, id)
  elseif lt(s.ended_at, before) then
    redis.call('DEL', s.key)
    redis.call('SREM', tag .. ':u:' .. s.subject, id)
    redis.call('ZREM', tag .. ':c', s.created_at .. ':' .. id)
    redis.call('ZREM', e, id)
    table.insert(out, id)
    table.insert(out, s.token)
    table.insert(out, s.prev_token)
  end
end
return out
`

// claimLua: KEYS an index key. ARGV value, ttl_ms. It sets the key if it
// is absent and reports 1 if the key now holds value (set now, or by an
// earlier try of the same call), 0 if another value holds it.
const claimLua = `
local old = redis.call('GET', KEYS[1])
if not old then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if old == ARGV[1] then return 1 end
return 0
`

// releaseLua: KEYS an index key. ARGV value. It deletes the key only if
// it still holds value.
const releaseLua = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

// extendLua: KEYS a key. ARGV ttl_ms. It makes the key live at least
// ttl_ms more.
const extendLua = `
local cur = redis.call('PTTL', KEYS[1])
if cur == -1 or (cur >= 0 and cur < tonumber(ARGV[1])) then return redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 0
`

// indexLua: KEYS an index set. ARGV member, ttl (ms). It adds member
// and makes the set live at least ttl.
const indexLua = `
redis.call('SADD', KEYS[1], ARGV[1])
local cur = redis.call('PTTL', KEYS[1])
if cur < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`

// firstUseLua: KEYS a single-use key. ARGV until, now (as enc writes
// them), ttl (ms). It answers 0 if the key holds an until after now,
// else records until and answers 1.
const firstUseLua = `
local u = redis.call('GET', KEYS[1])
if u and u > ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
`

// logStateLua: KEYS head, cursor, dirty. ARGV full ('1': every bucket),
// buckets. It returns the last sequence number, its hash, the dirty
// hints as (bucket, value) pairs, and the relay cursor of each bucket to
// visit (every bucket for a full sweep, else the hinted ones) as
// (bucket, cursor) pairs.
const logStateLua = `
local h = redis.call('HMGET', KEYS[1], 'seq', 'hash')
local hints = redis.call('HGETALL', KEYS[3])
local visit = {}
if ARGV[1] == '1' then
  for b = 0, tonumber(ARGV[2]) - 1 do table.insert(visit, tostring(b)) end
else
  for i = 1, #hints, 2 do table.insert(visit, hints[i]) end
end
local cursors = {}
if #visit > 0 then
  local c = redis.call('HMGET', KEYS[2], unpack(visit))
  for i, b in ipairs(visit) do
    table.insert(cursors, b)
    table.insert(cursors, c[i] or '')
  end
end
return {h[1] or '0', h[2] or '', hints, cursors}
`

// appendLua: KEYS events, head, cursor, dirty. ARGV expected_seq,
// n_buckets, then (bucket, old_cursor, new_cursor) per bucket, n_hints,
// then (bucket, value) per drained bucket, n_events, then (seq, id,
// type, time, session_id, subject, tenant, tier, reason, actor, ip,
// actor_name, prev, hash) per event. With events, it appends only if no other relayer
// moved the head or a cursor since the caller read them, and checks
// everything before it writes anything. It clears each hint that still
// has the value the caller read: a writer that set it since keeps it
// (hints never repeat a value, see Store.hint).
const appendLua = `
local nb, i = tonumber(ARGV[2]), 3
local ne_at = i + 3 * nb
local nh = tonumber(ARGV[ne_at])
local ne = tonumber(ARGV[ne_at + 1 + 2 * nh])
if ne > 0 then
  if (redis.call('HGET', KEYS[2], 'seq') or '0') ~= ARGV[1] then return 'stale' end
  for _ = 1, nb do
    if (redis.call('HGET', KEYS[3], ARGV[i]) or '') ~= ARGV[i + 1] then return 'stale' end
    i = i + 3
  end
  i = 3
  for _ = 1, nb do
    redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 2])
    i = i + 3
  end
end
i = ne_at + 1
for _ = 1, nh do
  if redis.call('HGET', KEYS[4], ARGV[i]) == ARGV[i + 1] then redis.call('HDEL', KEYS[4], ARGV[i]) end
  i = i + 2
end
i = i + 1
local seq, hash
for _ = 1, ne do
  redis.call('XADD', KEYS[1], ARGV[i] .. '-0', 'id', ARGV[i + 1], 'type', ARGV[i + 2], 'time', ARGV[i + 3],
    'session_id', ARGV[i + 4], 'subject', ARGV[i + 5], 'tenant', ARGV[i + 6], 'tier', ARGV[i + 7],
    'reason', ARGV[i + 8], 'actor', ARGV[i + 9], 'ip', ARGV[i + 10], 'actor_name', ARGV[i + 11],
    'prev', ARGV[i + 12], 'hash', ARGV[i + 13])
  seq, hash = ARGV[i], ARGV[i + 13]
  i = i + 14
end
if seq then redis.call('HSET', KEYS[2], 'seq', seq, 'hash', hash) end
return 'ok'
`

var constants = strings.NewReplacer(
	"@ACTIVE@", string(lapse.StatusActive),
	"@EXPIRED@", string(lapse.StatusExpired),
	"@REVOKED@", string(lapse.StatusRevoked),
	"@ABSOLUTE@", string(lapse.ReasonAbsoluteTimeout),
	"@IDLE@", string(lapse.ReasonIdleTimeout),
	"@LIMIT@", string(lapse.ReasonLimit),
	"@SYSTEM@", lapse.ActorSystem,
	"@SUBJECT@", lapse.ActorSubject,
	"@API@", lapse.ActorAPI,
	"@RESERVED@", lapse.ReservedPrefix,
	"@EV_CREATED@", string(lapse.EventCreated),
	"@EV_EXTENDED@", string(lapse.EventExtended),
	"@EV_REVOKED@", string(lapse.EventRevoked),
	"@EV_EXPIRED@", string(lapse.EventExpired),
	"@EV_EXPIRING_SOON@", string(lapse.EventExpiringSoon),
	"@PENDING@", string(lapse.DeliveryPending),
	"@DEAD@", string(lapse.DeliveryDead),
	"@ATTEMPT_PENDING@", string(lapse.AttemptPending),
	"@ATTEMPT_ACCEPTED@", string(lapse.AttemptAccepted),
)

func script(body string) *goredis.Script {
	return goredis.NewScript(constants.Replace(prelude + body))
}

var (
	createScript      = script(createLua)
	touchScript       = script(touchLua)
	endScript         = script(endLua)
	endMatchingScript = script(endMatchingLua)
	rotateScript      = script(rotateLua)
	sessionsScript    = script(sessionsLua)
	countScript       = script(countLua)
	dueScript         = script(dueLua)
	expireScript      = script(expireLua)
	peekScript        = script(peekLua)
	warnScript        = script(warnLua)
	purgeScript       = script(purgeLua)
	claimScript       = goredis.NewScript(claimLua)
	releaseScript     = goredis.NewScript(releaseLua)
	extendScript      = goredis.NewScript(extendLua)
	indexScript       = goredis.NewScript(indexLua)
	firstUseScript    = goredis.NewScript(firstUseLua)
	logStateScript    = goredis.NewScript(logStateLua)
	appendScript      = goredis.NewScript(appendLua)
)
