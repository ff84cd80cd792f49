package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/lapsehq/lapse"
	goredis "github.com/redis/go-redis/v9"
)

var _ lapse.DeliveryQueue = (*Store)(nil)

// The webhook delivery queue lives in the event log's slot, {prefix:log},
// so that a script can read a delivery and its event together:
//
//	{lapse:log}:wh:cursor    hash: endpoint -> Seq of the last event enqueued
//	{lapse:log}:wh:next      counter: the last delivery id
//	{lapse:log}:wh:d:<id>    hash: one delivery
//	{lapse:log}:wh:due       sorted set: pending deliveries by next attempt (µs)
//	{lapse:log}:wh:dead      sorted set: dead deliveries by last update (µs)
//
// A delivered delivery's hash expires after the retention; nothing reads
// it again.

const enqueueLua = `
local cursors, next, due = KEYS[1], KEYS[2], KEYS[3]
local tag, endpoint, cursor, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local stored = redis.call('HGET', cursors, endpoint)
local cur = tonumber(stored or '0')
for i = 5, #ARGV do
  -- A Seq at or before the cursor was enqueued already, maybe by another
  -- node that read the same cursor: skipping it keeps one delivery each.
  if tonumber(ARGV[i]) > cur then
    local id = redis.call('INCR', next)
    redis.call('HSET', tag .. ':wh:d:' .. id, 'id', id, 'endpoint', endpoint, 'seq', ARGV[i],
      'status', 'pending', 'attempts', 0, 'next_at', now, 'last_error', '', 'updated_at', now)
    redis.call('ZADD', due, us(now), id)
  end
end
if not stored or cursor > cur then redis.call('HSET', cursors, endpoint, ARGV[3]) end
return 0
`

// deliveriesLua: KEYS a queue index, events. ARGV tag, order ('due' or
// 'dead'), max_score, limit. It returns each delivery and its event.
const deliveriesLua = `
local index, events = KEYS[1], KEYS[2]
local tag, order, limit = ARGV[1], ARGV[2], tonumber(ARGV[4])
local ids
if order == 'due' then
  ids = redis.call('ZRANGEBYSCORE', index, '-inf', ARGV[3], 'LIMIT', 0, limit)
else
  ids = redis.call('ZREVRANGE', index, 0, limit - 1)
end
local out = {}
for _, id in ipairs(ids) do
  local d = redis.call('HGETALL', tag .. ':wh:d:' .. id)
  if #d == 0 then
    redis.call('ZREM', index, id)
  else
    local seq = redis.call('HGET', tag .. ':wh:d:' .. id, 'seq')
    local ev = redis.call('XRANGE', events, seq .. '-0', seq .. '-0')
    local fields = {}
    if #ev > 0 then fields = ev[1][2] end
    table.insert(out, d)
    table.insert(out, fields)
  end
end
return out
`

// recordLua: KEYS delivery, due, dead. ARGV id, status, attempts,
// next_at, last_error, now, retention_ms.
const recordLua = `
local key, due, dead = KEYS[1], KEYS[2], KEYS[3]
local id, status, now = ARGV[1], ARGV[2], ARGV[6]
if redis.call('EXISTS', key) == 0 then return 0 end
redis.call('HSET', key, 'status', status, 'attempts', ARGV[3], 'next_at', ARGV[4], 'last_error', ARGV[5], 'updated_at', now)
if status == '@PENDING@' then
  redis.call('ZADD', due, us(ARGV[4]), id)
  redis.call('ZREM', dead, id)
  redis.call('PERSIST', key)
elseif status == '@DEAD@' then
  redis.call('ZREM', due, id)
  redis.call('ZADD', dead, us(now), id)
  redis.call('PERSIST', key)
else
  redis.call('ZREM', due, id)
  redis.call('ZREM', dead, id)
  redis.call('PEXPIRE', key, ARGV[7])
end
return 1
`

// replayLua: KEYS due, dead. ARGV tag, now, then ids (none: every dead
// delivery).
const replayLua = `
local due, dead = KEYS[1], KEYS[2]
local tag, now = ARGV[1], ARGV[2]
local ids = {}
for i = 3, #ARGV do table.insert(ids, ARGV[i]) end
if #ids == 0 then ids = redis.call('ZRANGE', dead, 0, -1) end
local n = 0
for _, id in ipairs(ids) do
  local key = tag .. ':wh:d:' .. id
  if redis.call('HGET', key, 'status') == '@DEAD@' then
    redis.call('HSET', key, 'status', '@PENDING@', 'attempts', 0, 'next_at', now, 'updated_at', now)
    redis.call('ZREM', dead, id)
    redis.call('ZADD', due, us(now), id)
    n = n + 1
  end
end
return n
`

var (
	enqueueScript    = script(enqueueLua)
	deliveriesScript = script(deliveriesLua)
	recordScript     = script(recordLua)
	replayScript     = script(replayLua)
)

func (s *Store) whKey(name string) string { return s.logKey("wh:" + name) }

// Cursor implements [lapse.DeliveryQueue].
func (s *Store) Cursor(ctx context.Context, endpoint string) (int64, bool, error) {
	v, err := s.c.HGet(ctx, s.whKey("cursor"), endpoint).Int64()
	if errors.Is(err, goredis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, wrap(err)
	}
	return v, true, nil
}

// Enqueue implements [lapse.DeliveryQueue]. Seqs at or before the
// endpoint's stored cursor are skipped: another node enqueued them.
func (s *Store) Enqueue(ctx context.Context, endpoint string, seqs []int64, cursor int64, now time.Time) error {
	args := []any{"{" + s.prefix + ":log}", endpoint, cursor, enc(now)}
	for _, seq := range seqs {
		args = append(args, seq)
	}
	return wrap(enqueueScript.Run(ctx, s.c, []string{s.whKey("cursor"), s.whKey("next"), s.whKey("due")}, args...).Err())
}

// Due implements [lapse.DeliveryQueue].
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]lapse.Delivery, error) {
	ds, err := s.deliveries(ctx, "due", micros(now), limit)
	if err != nil {
		return nil, err
	}
	ds = slices.DeleteFunc(ds, func(d lapse.Delivery) bool { return d.NextAt.After(now) })
	slices.SortFunc(ds, func(a, b lapse.Delivery) int {
		return cmp.Or(a.NextAt.Compare(b.NextAt), cmp.Compare(a.ID, b.ID))
	})
	return ds, nil
}

// Dead implements [lapse.DeliveryQueue].
func (s *Store) Dead(ctx context.Context, limit int) ([]lapse.Delivery, error) {
	ds, err := s.deliveries(ctx, "dead", "", limit)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ds, func(a, b lapse.Delivery) int {
		return cmp.Or(b.UpdatedAt.Compare(a.UpdatedAt), cmp.Compare(b.ID, a.ID))
	})
	return ds, nil
}

// Record implements [lapse.DeliveryQueue]: one script per delivery, all
// in one pipeline.
func (s *Store) Record(ctx context.Context, ds []lapse.Delivery, now time.Time) error {
	if len(ds) == 0 {
		return nil
	}
	run := func() error {
		pipe := s.c.Pipeline()
		for _, d := range ds {
			id := strconv.FormatInt(d.ID, 10)
			pipe.EvalSha(ctx, recordScript.Hash(), []string{s.whKey("d:" + id), s.whKey("due"), s.whKey("dead")},
				id, string(d.Status), d.Attempts, enc(d.NextAt), d.LastError, enc(now), s.retention.Milliseconds())
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	err := run()
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		// Recording an outcome twice writes the same fields: run it all
		// again once the script is loaded.
		if err := recordScript.Load(ctx, s.c).Err(); err != nil {
			return wrap(err)
		}
		err = run()
	}
	return wrap(err)
}

// Replay implements [lapse.DeliveryQueue].
func (s *Store) Replay(ctx context.Context, ids []int64, now time.Time) (int, error) {
	args := []any{"{" + s.prefix + ":log}", enc(now)}
	for _, id := range ids {
		args = append(args, id)
	}
	n, err := replayScript.Run(ctx, s.c, []string{s.whKey("due"), s.whKey("dead")}, args...).Int()
	return n, wrap(err)
}

// deliveries reads up to limit deliveries from the due or dead index.
func (s *Store) deliveries(ctx context.Context, order, maxScore string, limit int) ([]lapse.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	v, err := deliveriesScript.Run(ctx, s.c, []string{s.whKey(order), s.logKey("events")},
		"{"+s.prefix+":log}", order, maxScore, limit).Slice()
	if err != nil {
		return nil, wrap(err)
	}
	out := make([]lapse.Delivery, 0, len(v)/2)
	for i := 0; i+1 < len(v); i += 2 {
		h, err := flat(v[i])
		if err != nil {
			return nil, wrap(err)
		}
		evFields, err := flat(v[i+1])
		if err != nil {
			return nil, wrap(err)
		}
		d, err := deliveryOf(h, evFields)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, d)
	}
	return out, nil
}

func deliveryOf(h, ev map[string]string) (lapse.Delivery, error) {
	d := lapse.Delivery{Endpoint: h["endpoint"], Status: lapse.DeliveryStatus(h["status"]), LastError: h["last_error"]}
	var err1, err2, err3, err4, err5 error
	d.ID, err1 = strconv.ParseInt(h["id"], 10, 64)
	d.Attempts, err2 = strconv.Atoi(h["attempts"])
	d.NextAt, err3 = dec(h["next_at"])
	d.UpdatedAt, err4 = dec(h["updated_at"])
	values := make(map[string]any, len(ev))
	for k, v := range ev {
		values[k] = v
	}
	d.Event, err5 = eventOf(values)
	if err := cmp.Or(err1, err2, err3, err4, err5); err != nil {
		return d, fmt.Errorf("redis: corrupt delivery %q: %w", h["id"], err)
	}
	d.Event.Seq, _ = strconv.ParseInt(h["seq"], 10, 64)
	return d, nil
}
