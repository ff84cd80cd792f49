package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
	goredis "github.com/redis/go-redis/v9"
)

// Relay batch sizes: entries read from one outbox, and events appended to
// the log, per round trip.
const (
	relayPerBucket = 128
	relayPerAppend = 512
	relayRounds    = 64 // bound on one Events call's relaying work
)

var _ lapse.AuditLog = (*Store)(nil)

// Events implements [lapse.EventLog]. It first relays the events waiting
// in the buckets' outboxes into the global log, so that every change
// that returned before the call is in the answer, then reads the log.
// Relaying is safe to run on every node at once. It fails with
// [lapse.CodeStoreUnavailable].
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]lapse.Event, error) {
	recs, err := s.ChainRecords(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]lapse.Event, len(recs))
	for i, r := range recs {
		out[i] = r.Event
	}
	return out, nil
}

// LastSeq implements [lapse.EventLog]: it relays like [Store.Events] and
// returns the Seq of the log's last record, 0 if it is empty.
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	if err := s.relay(ctx); err != nil {
		return 0, err
	}
	v, err := s.c.HGet(ctx, s.logKey("head"), "seq").Result()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	} else if err != nil {
		return 0, wrap(err)
	}
	seq, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, wrap(fmt.Errorf("redis: corrupt log head %q", v))
	}
	return seq, nil
}

// ChainRecords implements [lapse.AuditLog]: it relays like [Store.Events]
// and returns the log's records with their stored chain hashes.
func (s *Store) ChainRecords(ctx context.Context, after int64, limit int) ([]lapse.ChainRecord, error) {
	if err := s.relay(ctx); err != nil {
		return nil, err
	}
	return s.readLog(ctx, after, limit)
}

// readLog reads up to limit records of the global log after Seq after.
func (s *Store) readLog(ctx context.Context, after int64, limit int) ([]lapse.ChainRecord, error) {
	if limit <= 0 {
		return nil, nil
	}
	start := "-"
	if after > 0 {
		start = "(" + strconv.FormatInt(after, 10) + "-0"
	}
	msgs, err := s.c.XRangeN(ctx, s.logKey("events"), start, "+", int64(limit)).Result()
	if err != nil {
		return nil, wrap(err)
	}
	out := make([]lapse.ChainRecord, 0, len(msgs))
	for _, m := range msgs {
		seqStr, _, _ := strings.Cut(m.ID, "-")
		seq, err := strconv.ParseInt(seqStr, 10, 64)
		if err != nil {
			return nil, wrap(fmt.Errorf("redis: corrupt event log id %q", m.ID))
		}
		ev, err := eventOf(m.Values)
		if err != nil {
			return nil, wrap(err)
		}
		ev.Seq = seq
		prevHex, _ := m.Values["prev"].(string)
		hashHex, _ := m.Values["hash"].(string)
		prev, err1 := hex.DecodeString(prevHex)
		hash, err2 := hex.DecodeString(hashHex)
		if err1 != nil || err2 != nil {
			return nil, wrap(fmt.Errorf("redis: corrupt chain hash in event %d", seq))
		}
		out = append(out, lapse.ChainRecord{Event: ev, PrevHash: prev, Hash: hash})
	}
	return out, nil
}

// QueryEvents implements [lapse.AuditLog]. The log has no secondary
// index: it reads the log in Seq order from q.After and keeps what q
// selects, so its cost grows with the part of the log after q.After.
func (s *Store) QueryEvents(ctx context.Context, q lapse.EventQuery) ([]lapse.Event, error) {
	if err := s.relay(ctx); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	var out []lapse.Event
	after := q.After
	for len(out) < limit {
		recs, err := s.readLog(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if matches(q, &r.Event) {
				out = append(out, r.Event)
				if len(out) == limit {
					break
				}
			}
		}
		if len(recs) < 1000 {
			break
		}
		after = recs[len(recs)-1].Seq
	}
	return out, nil
}

func matches(q lapse.EventQuery, e *lapse.Event) bool {
	return (q.Subject == "" || e.Subject == q.Subject) &&
		(q.Tenant == "" || e.Tenant == q.Tenant) &&
		(q.SessionID == "" || e.SessionID == q.SessionID) &&
		(len(q.Types) == 0 || slices.Contains(q.Types, e.Type)) &&
		(q.Since.IsZero() || !e.Time.Before(q.Since)) &&
		(q.Until.IsZero() || e.Time.Before(q.Until))
}

// eventOf reads an event from the fields of a stream entry.
func eventOf(v map[string]any) (lapse.Event, error) {
	str := func(k string) string { s, _ := v[k].(string); return s }
	t, err := dec(str("time"))
	if err != nil {
		return lapse.Event{}, fmt.Errorf("redis: corrupt event time %q", str("time"))
	}
	return lapse.Event{
		ID: str("id"), Type: lapse.EventType(str("type")), Time: t,
		SessionID: str("session_id"), Subject: str("subject"), Tenant: str("tenant"), Tier: str("tier"),
		Reason: lapse.Reason(str("reason")), Actor: str("actor"), IP: str("ip"),
	}, nil
}

var _ lapse.EventRecorder = (*Store)(nil)

// RecordEvent implements [lapse.EventRecorder]: ev goes into the outbox
// of its subject's bucket (the empty subject's), as a session's events
// do from their scripts, and reaches the log with the next relay. It
// fails with [lapse.CodeStoreUnavailable].
func (s *Store) RecordEvent(ctx context.Context, ev lapse.Event) error {
	b := bucket(ev.Subject)
	err := s.c.XAdd(ctx, &goredis.XAddArgs{Stream: s.outboxKey(b), Values: []any{
		"id", ev.ID, "type", string(ev.Type), "time", enc(ev.Time),
		"session_id", ev.SessionID, "subject", ev.Subject, "tenant", ev.Tenant, "tier", ev.Tier,
		"reason", string(ev.Reason), "actor", ev.Actor, "ip", ev.IP,
	}}).Err()
	if err != nil {
		return wrap(err)
	}
	s.hint(ctx, b)
	return nil
}

// pending is one outbox entry waiting to be relayed.
type pending struct {
	bucket int
	id     string // outbox stream id
	ev     lapse.Event
}

// fullSweepEvery is how often at most one store value's relay visits
// every bucket's outbox rather than only the hinted ones: the safety net
// for a hint lost to a crash between a change and its hint.
const fullSweepEvery = time.Second

// hint records, after a script appended events to bucket b's outbox,
// that the bucket has events to relay. A lost hint delays the events
// until the next full sweep; it loses nothing, so a failure is ignored.
func (s *Store) hint(ctx context.Context, buckets ...int) {
	switch len(buckets) {
	case 0:
		return
	case 1:
		s.c.HIncrBy(ctx, s.logKey("dirty"), strconv.Itoa(buckets[0]), 1)
		return
	}
	pipe := s.c.Pipeline()
	for _, b := range buckets {
		pipe.HIncrBy(ctx, s.logKey("dirty"), strconv.Itoa(b), 1)
	}
	pipe.Exec(ctx)
}

// relay moves outbox entries into the global log until none is left or
// it has done relayRounds rounds. It visits the hinted buckets, and every
// bucket when this store value has not done so for fullSweepEvery.
func (s *Store) relay(ctx context.Context) error {
	s.mu.Lock()
	full := time.Since(s.lastFull) >= fullSweepEvery
	s.mu.Unlock()
	for range relayRounds {
		more, err := s.relayOnce(ctx, full)
		if err != nil {
			return err
		}
		if !more {
			break
		}
	}
	if full {
		s.mu.Lock()
		s.lastFull = time.Now()
		s.mu.Unlock()
	}
	return nil
}

// relayOnce does one round and reports whether more may be waiting. It
// reads the log head, the hints and the cursors of the buckets to visit,
// reads those outboxes past their cursors (one pipeline), merges, chains
// and appends the entries with a compare-and-set on head and cursors,
// clears the hints of the buckets it drained, and trims their outboxes.
// A round that loses the compare-and-set to another relayer says "more",
// and the next round starts over.
func (s *Store) relayOnce(ctx context.Context, full bool) (bool, error) {
	fullArg := "0"
	if full {
		fullArg = "1"
	}
	state, err := logStateScript.Run(ctx, s.c, []string{s.logKey("head"), s.logKey("cursor"), s.logKey("dirty")}, fullArg, Buckets).Slice()
	if err != nil {
		return false, wrap(err)
	}
	if len(state) != 4 {
		return false, wrap(fmt.Errorf("redis: unexpected log state reply"))
	}
	headStr, _ := state[0].(string)
	headHash, _ := state[1].(string)
	head, err := strconv.ParseInt(headStr, 10, 64)
	if err != nil {
		return false, wrap(fmt.Errorf("redis: corrupt log head %q", headStr))
	}
	hints, err := pairs(state[2])
	if err != nil {
		return false, wrap(err)
	}
	visit, err := pairs(state[3])
	if err != nil {
		return false, wrap(err)
	}
	if len(visit) == 0 {
		return false, nil
	}
	buckets := make([]int, 0, len(visit))
	cursors := make(map[int]string, len(visit))
	for _, kv := range visit {
		b, err := strconv.Atoi(kv[0])
		if err != nil || b < 0 || b >= Buckets {
			return false, wrap(fmt.Errorf("redis: corrupt relay bucket %q", kv[0]))
		}
		buckets = append(buckets, b)
		cursors[b] = kv[1]
	}

	pipe := s.c.Pipeline()
	reads := make([]*goredis.XMessageSliceCmd, len(buckets))
	for i, b := range buckets {
		start := "-"
		if c := cursors[b]; c != "" {
			start = "(" + c
		}
		reads[i] = pipe.XRangeN(ctx, s.outboxKey(b), start, "+", relayPerBucket)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return false, wrap(err)
	}
	queues := make(map[int][]pending, len(buckets))
	cut := map[int]bool{} // buckets that may hold more than was read
	total := 0
	for i, cmd := range reads {
		b := buckets[i]
		for _, m := range cmd.Val() {
			ev, err := eventOf(m.Values)
			if err != nil {
				return false, wrap(err)
			}
			queues[b] = append(queues[b], pending{bucket: b, id: m.ID, ev: ev})
		}
		cut[b] = len(queues[b]) == relayPerBucket
		total += len(queues[b])
	}

	// Merge the queues by event time, each queue in its own order, so a
	// subject's events keep their commit order whatever their times say.
	batch := make([]pending, 0, min(total, relayPerAppend))
	for len(batch) < cap(batch) {
		best := -1
		for _, b := range buckets {
			q := queues[b]
			if len(q) > 0 && (best < 0 || q[0].ev.Time.Before(queues[best][0].ev.Time)) {
				best = b
			}
		}
		batch = append(batch, queues[best][0])
		queues[best] = queues[best][1:]
	}

	prev, err := hex.DecodeString(headHash)
	if err != nil {
		return false, wrap(fmt.Errorf("redis: corrupt log head hash"))
	}
	last := map[int]string{} // bucket -> new cursor
	var order []int
	evArgs := make([]any, 0, 1+13*len(batch))
	evArgs = append(evArgs, len(batch))
	for i := range batch {
		p := &batch[i]
		p.ev.Seq = head + int64(i) + 1
		hash := p.ev.ChainHash(prev)
		evArgs = append(evArgs, p.ev.Seq, p.ev.ID, string(p.ev.Type), enc(p.ev.Time),
			p.ev.SessionID, p.ev.Subject, p.ev.Tenant, p.ev.Tier, string(p.ev.Reason), p.ev.Actor, p.ev.IP,
			hex.EncodeToString(prev), hex.EncodeToString(hash))
		prev = hash
		if _, ok := last[p.bucket]; !ok {
			order = append(order, p.bucket)
		}
		last[p.bucket] = p.id
	}
	// A hint is cleared only for a bucket this round drains: nothing of
	// it left in its queue, and its read was not cut off at the page size.
	more := false
	var clear []any
	for _, kv := range hints {
		b, _ := strconv.Atoi(kv[0])
		if len(queues[b]) == 0 && !cut[b] {
			clear = append(clear, kv[0], kv[1])
		}
	}
	for _, b := range buckets {
		more = more || len(queues[b]) > 0 || cut[b]
	}
	args := make([]any, 0, 3+3*len(order)+len(clear)+len(evArgs))
	args = append(args, head, len(order))
	for _, b := range order {
		args = append(args, b, cursors[b], last[b])
	}
	args = append(args, len(clear)/2)
	args = append(args, clear...)
	args = append(args, evArgs...)
	res, err := appendScript.Run(ctx, s.c, []string{s.logKey("events"), s.logKey("head"), s.logKey("cursor"), s.logKey("dirty")}, args...).Text()
	if err != nil {
		return false, wrap(err)
	}
	if res != "ok" {
		return true, nil // another relayer moved first: read again
	}

	// The entries are in the log. Keep them in the outboxes for
	// outboxKeep all the same: if the log's master fails over and loses
	// its last appends, the cursors (in the log's slot) roll back with
	// them, and the next relay appends those entries again. A failed trim
	// is redone by the next one.
	if len(order) > 0 {
		keep := strconv.FormatInt(time.Now().Add(-outboxKeep).UnixMilli(), 10) + "-0"
		pipe = s.c.Pipeline()
		for _, b := range order {
			pipe.XTrimMinID(ctx, s.outboxKey(b), minID(nextID(last[b]), keep))
		}
		pipe.Exec(ctx)
	}
	return more, nil
}

// outboxKeep is how long relayed events stay in their outbox: far longer
// than a replica lags behind its master.
const outboxKeep = 10 * time.Minute

// minID returns the smaller of two stream ids ("ms-seq").
func minID(a, b string) string {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	ams, _ := strconv.ParseUint(am, 10, 64)
	bms, _ := strconv.ParseUint(bm, 10, 64)
	asq, _ := strconv.ParseUint(as, 10, 64)
	bsq, _ := strconv.ParseUint(bs, 10, 64)
	if ams < bms || ams == bms && asq < bsq {
		return a
	}
	return b
}

// pairs reads a flat reply of (key, value) pairs.
func pairs(v any) ([][2]string, error) {
	list, ok := v.([]any)
	if !ok || len(list)%2 != 0 {
		return nil, fmt.Errorf("redis: unexpected reply %T", v)
	}
	out := make([][2]string, 0, len(list)/2)
	for i := 0; i < len(list); i += 2 {
		k, _ := list[i].(string)
		val, _ := list[i+1].(string)
		out = append(out, [2]string{k, val})
	}
	return out, nil
}

// nextID returns the smallest stream id after id ("ms-seq").
func nextID(id string) string {
	ms, seq, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseUint(seq, 10, 64)
	return ms + "-" + strconv.FormatUint(n+1, 10)
}
