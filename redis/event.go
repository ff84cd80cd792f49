package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/lapsehq/lapse"
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
			if q.Matches(&r.Event) {
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
		ActorName: str("actor_name"),
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
		"reason", string(ev.Reason), "actor", ev.Actor, "ip", ev.IP, "actor_name", ev.ActorName,
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
//
// Each hint is a value no hint had before, not a count: a relay round
// clears a hint only if it still holds the value the round read, and a
// count starts again at 1 after a clear, so a hint cleared by another
// round and set again by a new write read as the old one, and the round
// cleared it: the new event then waited for the next full sweep, though
// Events promises every change that returned before it. The value is a
// random 52-bit number rather than any random string so that a node not
// yet upgraded, which counts with HINCRBY, can still add to it.
func (s *Store) hint(ctx context.Context, buckets ...int) {
	if len(buckets) == 0 {
		return
	}
	v := strconv.FormatInt(rand.Int64N(1<<52), 10)
	fields := make([]any, 0, 2*len(buckets))
	for _, b := range buckets {
		fields = append(fields, strconv.Itoa(b), v)
	}
	s.c.HSet(ctx, s.logKey("dirty"), fields...)
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
	st, err := s.logState(ctx, full)
	if err != nil || len(st.buckets) == 0 {
		return false, err
	}
	queues, cut, err := s.readOutboxes(ctx, st)
	if err != nil {
		return false, err
	}
	batch := merge(queues, st.buckets, relayPerAppend)
	args := st.chain(batch)
	// A hint is cleared only for a bucket this round drains: nothing of
	// it left in its queue, and its read was not cut off at the page size.
	more := false
	for _, h := range st.hints {
		if len(queues[h.bucket]) == 0 && !cut[h.bucket] {
			args.hints = append(args.hints, h)
		}
	}
	for _, b := range st.buckets {
		more = more || len(queues[b]) > 0 || cut[b]
	}
	res, err := appendScript.Run(ctx, s.c, []string{s.logKey("events"), s.logKey("head"), s.logKey("cursor"), s.logKey("dirty")}, args.argv()...).Text()
	if err != nil {
		return false, wrap(err)
	}
	if res != "ok" {
		return true, nil // another relayer moved first: read again
	}
	s.trimOutboxes(ctx, args.cursors)
	return more, nil
}

// logState is what a relay round read of the log: its head, the hints
// and the buckets to visit with their cursors.
type logState struct {
	head     int64
	headHash []byte
	hints    []hint
	buckets  []int
	cursors  map[int]string // bucket -> stream id of the last entry relayed
}

// hint is a bucket's entry in the hints hash, with the value read.
type hint struct {
	bucket int
	value  string
}

// logState reads the log's head, the hints, and the buckets to visit:
// the hinted ones, or every one when full is set.
func (s *Store) logState(ctx context.Context, full bool) (*logState, error) {
	fullArg := "0"
	if full {
		fullArg = "1"
	}
	reply, err := logStateScript.Run(ctx, s.c, []string{s.logKey("head"), s.logKey("cursor"), s.logKey("dirty")}, fullArg, Buckets+1).Slice()
	if err != nil {
		return nil, wrap(err)
	}
	if len(reply) != 4 {
		return nil, wrap(errors.New("redis: unexpected log state reply"))
	}
	headStr, _ := reply[0].(string)
	headHash, _ := reply[1].(string)
	st := &logState{cursors: map[int]string{}}
	if st.head, err = strconv.ParseInt(headStr, 10, 64); err != nil {
		return nil, wrap(fmt.Errorf("redis: corrupt log head %q", headStr))
	}
	if st.headHash, err = hex.DecodeString(headHash); err != nil {
		return nil, wrap(errors.New("redis: corrupt log head hash"))
	}
	hints, err := bucketPairs(reply[2])
	if err != nil {
		return nil, wrap(err)
	}
	visit, err := bucketPairs(reply[3])
	if err != nil {
		return nil, wrap(err)
	}
	st.hints = hints
	for _, v := range visit {
		st.buckets = append(st.buckets, v.bucket)
		st.cursors[v.bucket] = v.value
	}
	return st, nil
}

// readOutboxes reads the outboxes of st's buckets past their cursors, up
// to relayPerBucket entries each, in one pipeline. cut says which
// buckets may hold more than was read.
func (s *Store) readOutboxes(ctx context.Context, st *logState) (queues map[int][]pending, cut map[int]bool, err error) {
	pipe := s.c.Pipeline()
	reads := make([]*goredis.XMessageSliceCmd, len(st.buckets))
	for i, b := range st.buckets {
		start := "-"
		if c := st.cursors[b]; c != "" {
			start = "(" + c
		}
		reads[i] = pipe.XRangeN(ctx, s.outboxKey(b), start, "+", relayPerBucket)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, wrap(err)
	}
	queues = make(map[int][]pending, len(st.buckets))
	cut = map[int]bool{}
	for i, cmd := range reads {
		b := st.buckets[i]
		for _, m := range cmd.Val() {
			ev, err := eventOf(m.Values)
			if err != nil {
				return nil, nil, wrap(err)
			}
			queues[b] = append(queues[b], pending{bucket: b, id: m.ID, ev: ev})
		}
		cut[b] = len(queues[b]) == relayPerBucket
	}
	return queues, cut, nil
}

// merge takes up to limit entries from the queues, by event time, each
// queue in its own order, so a subject's events keep their commit order
// whatever their times say. It removes what it takes from queues.
func merge(queues map[int][]pending, buckets []int, limit int) []pending {
	total := 0
	for _, q := range queues {
		total += len(q)
	}
	batch := make([]pending, 0, min(total, limit))
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
	return batch
}

// chain numbers and chains batch after the log's head and returns the
// arguments of the append script, hints not yet chosen.
func (st *logState) chain(batch []pending) *appendArgs {
	a := &appendArgs{expectedSeq: st.head}
	moved := map[int]int{} // bucket -> index in a.cursors
	prev := st.headHash
	for i := range batch {
		p := &batch[i]
		p.ev.Seq = st.head + int64(i) + 1
		hash := p.ev.ChainHash(prev)
		a.events = append(a.events, chained{ev: p.ev, prev: prev, hash: hash})
		prev = hash
		if k, ok := moved[p.bucket]; ok {
			a.cursors[k].to = p.id
			continue
		}
		moved[p.bucket] = len(a.cursors)
		a.cursors = append(a.cursors, cursorMove{bucket: p.bucket, from: st.cursors[p.bucket], to: p.id})
	}
	return a
}

// appendArgs are the arguments of appendLua; argv lays them out in the
// order the script reads them.
type appendArgs struct {
	expectedSeq int64        // the log head the round read
	cursors     []cursorMove // each bucket relayed, in the order first met
	hints       []hint       // the hints to clear, with the values read
	events      []chained    // the events to append, in Seq order
}

// cursorMove moves a bucket's relay cursor from one stream id to another.
type cursorMove struct {
	bucket   int
	from, to string
}

// chained is an event with its place in the hash chain.
type chained struct {
	ev         lapse.Event
	prev, hash []byte
}

// argv returns ARGV as appendLua reads it: expected_seq, n_buckets,
// (bucket, old_cursor, new_cursor) each, n_hints, (bucket, value) each,
// n_events, then (seq, id, type, time, session_id, subject, tenant, tier,
// reason, actor, ip, actor_name, prev, hash) each.
func (a *appendArgs) argv() []any {
	out := make([]any, 0, 4+3*len(a.cursors)+2*len(a.hints)+14*len(a.events))
	out = append(out, a.expectedSeq, len(a.cursors))
	for _, c := range a.cursors {
		out = append(out, c.bucket, c.from, c.to)
	}
	out = append(out, len(a.hints))
	for _, h := range a.hints {
		out = append(out, h.bucket, h.value)
	}
	out = append(out, len(a.events))
	for _, c := range a.events {
		e := c.ev
		out = append(out, e.Seq, e.ID, string(e.Type), enc(e.Time), e.SessionID, e.Subject, e.Tenant, e.Tier,
			string(e.Reason), e.Actor, e.IP, e.ActorName, hex.EncodeToString(c.prev), hex.EncodeToString(c.hash))
	}
	return out
}

// trimOutboxes drops from the outboxes what the round relayed and what is
// older than outboxKeep, whichever is less. The entries are in the log;
// they are kept for outboxKeep all the same: if the log's master fails
// over and loses its last appends, the cursors (in the log's slot) roll
// back with them, and the next relay appends those entries again. A
// failed trim is redone by the next one.
func (s *Store) trimOutboxes(ctx context.Context, moved []cursorMove) {
	if len(moved) == 0 {
		return
	}
	keep := strconv.FormatInt(time.Now().Add(-outboxKeep).UnixMilli(), 10) + "-0"
	pipe := s.c.Pipeline()
	for _, c := range moved {
		pipe.XTrimMinID(ctx, s.outboxKey(c.bucket), minID(nextID(c.to), keep))
	}
	pipe.Exec(ctx)
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

// bucketPairs reads a flat reply of (bucket, value) pairs.
func bucketPairs(v any) ([]hint, error) {
	list, ok := v.([]any)
	if !ok || len(list)%2 != 0 {
		return nil, fmt.Errorf("redis: unexpected reply %T", v)
	}
	out := make([]hint, 0, len(list)/2)
	for i := 0; i < len(list); i += 2 {
		k, _ := list[i].(string)
		val, _ := list[i+1].(string)
		b, err := strconv.Atoi(k)
		if err != nil || b < 0 || b > keysBucket {
			return nil, fmt.Errorf("redis: corrupt relay bucket %q", k)
		}
		out = append(out, hint{bucket: b, value: val})
	}
	return out, nil
}

// nextID returns the smallest stream id after id ("ms-seq").
func nextID(id string) string {
	ms, seq, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseUint(seq, 10, 64)
	return ms + "-" + strconv.FormatUint(n+1, 10)
}
