package redis

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/lapsehq/lapse"
	goredis "github.com/redis/go-redis/v9"
)

var (
	_ lapse.ExpiryIndex = (*Store)(nil)
	_ lapse.Purger      = (*Store)(nil)
	_ lapse.Pinger      = (*Store)(nil)
)

// ExpireDue, WarnDue and Purge work in rounds of two steps. First one
// read-only script per bucket (one pipeline) lists up to peekCap
// candidates from the bucket's index, scored in whole microseconds; the
// candidates of all buckets are merged, earliest first, and as many kept
// as the call still needs. Then one script per bucket acts on its
// candidates, checking each again at nanosecond precision: a session
// another node already expired, warned or touched is skipped, so nodes
// sweeping at once never record an event twice. Another round follows
// while the call needs more and some bucket had more candidates than it
// listed. The cap keeps a backlog (after an outage) from pulling every
// bucket's whole index at once; the price is that "earliest first" holds
// within a round, across buckets only to the cap.
const peekCap = 128

// candidate is one index entry found in the first step.
type candidate struct {
	score  int64
	bucket int
	tier   string
	id     string
}

// candidates lists, over every bucket, the first limit index entries that
// peek (one read-only script per bucket, given at most n, answering
// score, tier, id triples) returns, earliest first, and reports whether
// some bucket may hold more.
func (s *Store) candidates(ctx context.Context, peek *goredis.Script, limit int, call func(b, n int) ([]string, []any)) ([]candidate, bool, error) {
	n := min(limit, peekCap)
	cmds, err := s.evalEach(ctx, peek, allBuckets, func(b int) ([]string, []any) { return call(b, n) })
	if err != nil {
		return nil, false, err
	}
	var out []candidate
	more := false
	for i, cmd := range cmds {
		v, err := cmd.StringSlice()
		if err != nil {
			return nil, false, wrap(err)
		}
		more = more || len(v)/3 >= n
		for j := 0; j+2 < len(v); j += 3 {
			f, err := strconv.ParseFloat(v[j], 64)
			if err != nil {
				return nil, false, wrap(fmt.Errorf("redis: corrupt index score %q", v[j]))
			}
			out = append(out, candidate{score: int64(f), bucket: allBuckets[i], tier: v[j+1], id: v[j+2]})
		}
	}
	slices.SortFunc(out, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.score, b.score), cmp.Compare(a.bucket, b.bucket), cmp.Compare(a.id, b.id))
	})
	if len(out) > limit {
		out, more = out[:limit], true
	}
	return out, more, nil
}

// rounds calls round, which peeks and acts for at most the number of
// results still wanted and says how many it produced and whether more
// candidates may wait, until limit results are in, or no candidate is
// left, or a round produced nothing (its candidates were not due yet at
// nanosecond precision, or other nodes took them).
func rounds(limit int, round func(want int) (int, bool, error)) error {
	for got := 0; got < limit; {
		n, more, err := round(limit - got)
		if err != nil || !more || n == 0 {
			return err
		}
		got += n
	}
	return nil
}

// byBucket groups candidates by bucket, keeping their order.
func byBucket(cs []candidate) ([]int, map[int][]candidate) {
	var order []int
	m := map[int][]candidate{}
	for _, c := range cs {
		if _, ok := m[c.bucket]; !ok {
			order = append(order, c.bucket)
		}
		m[c.bucket] = append(m[c.bucket], c)
	}
	return order, m
}

// bucketsOf returns the buckets of the sessions' subjects.
func bucketsOf(ss []*lapse.Session) []int {
	var bs []int
	for _, sess := range ss {
		if b := bucket(sess.Subject); !slices.Contains(bs, b) {
			bs = append(bs, b)
		}
	}
	return bs
}

// micros is t in whole Unix microseconds, as the indexes score it.
func micros(t time.Time) string { return strconv.FormatInt(max(t.UnixMicro(), 0), 10) }

// ExpireDue implements [lapse.ExpiryIndex]. It fails with
// [lapse.CodeStoreUnavailable].
func (s *Store) ExpireDue(ctx context.Context, now time.Time, limit int) ([]*lapse.Session, error) {
	if limit <= 0 {
		return nil, nil
	}
	nowUS := micros(now)
	var out []*lapse.Session
	err := rounds(limit, func(want int) (int, bool, error) {
		cs, more, err := s.candidates(ctx, dueScript, want, func(b, n int) ([]string, []any) {
			return []string{s.tiersKey(b)}, []any{s.tag(b), nowUS, n}
		})
		if err != nil || len(cs) == 0 {
			return 0, false, err
		}
		buckets, groups := byBucket(cs)
		cmds, err := s.evalEach(ctx, expireScript, buckets, func(b int) ([]string, []any) {
			args := []any{s.tag(b), s.channel(), eventBase(), enc(now)}
			for _, c := range groups[b] {
				args = append(args, c.tier, c.id)
			}
			return []string{s.outboxKey(b)}, args
		})
		if err != nil {
			return 0, false, err
		}
		done, err := collectEnded(cmds)
		if err != nil {
			return 0, false, err
		}
		s.hint(ctx, bucketsOf(done)...)
		slices.SortStableFunc(done, func(a, b *lapse.Session) int { return a.EndedAt.Compare(b.EndedAt) })
		out = append(out, done...)
		return len(done), more, nil
	})
	return out, err
}

// WarnDue implements [lapse.ExpiryIndex]. It fails with
// [lapse.CodeStoreUnavailable].
func (s *Store) WarnDue(ctx context.Context, now time.Time, limit int) ([]*lapse.Session, error) {
	if limit <= 0 {
		return nil, nil
	}
	nowUS := micros(now)
	var out []*lapse.Session
	err := rounds(limit, func(want int) (int, bool, error) {
		cs, more, err := s.candidates(ctx, peekScript, want, func(b, n int) ([]string, []any) {
			return []string{s.tag(b) + ":w"}, []any{nowUS, n}
		})
		if err != nil || len(cs) == 0 {
			return 0, false, err
		}
		buckets, groups := byBucket(cs)
		cmds, err := s.evalEach(ctx, warnScript, buckets, func(b int) ([]string, []any) {
			args := []any{s.tag(b), eventBase(), enc(now)}
			for _, c := range groups[b] {
				args = append(args, c.id)
			}
			return []string{s.tag(b) + ":w", s.outboxKey(b)}, args
		})
		if err != nil {
			return 0, false, err
		}
		done, err := collectEnded(cmds)
		if err != nil {
			return 0, false, err
		}
		s.hint(ctx, bucketsOf(done)...)
		slices.SortStableFunc(done, func(a, b *lapse.Session) int { return a.WarnAt.Compare(b.WarnAt) })
		out = append(out, done...)
		return len(done), more, nil
	})
	return out, err
}

// collectEnded decodes the {"ok", sessions} replies of several scripts.
func collectEnded(cmds []*goredis.Cmd) ([]*lapse.Session, error) {
	var out []*lapse.Session
	for _, cmd := range cmds {
		word, rest, err := reply(cmd)
		if err != nil {
			return nil, err
		}
		if word != "ok" || len(rest) != 1 {
			return nil, wrap(fmt.Errorf("redis: sweep script answered %q", word))
		}
		ss, err := decodeList(rest[0])
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, ss...)
	}
	return out, nil
}

// Purge implements [lapse.Purger]: it deletes up to limit sessions that
// ended before before, oldest end first, and then their index entries.
// Their events stay in the log. It also relays pending events (see
// [Store.Events]), so that the outboxes drain at least as often as the
// engine purges even where nothing reads the log. It fails with
// [lapse.CodeStoreUnavailable]. Sessions nobody purges still disappear
// when their keys' TTL runs out (see [WithRetention]).
func (s *Store) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := s.relay(ctx); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, nil
	}
	beforeUS := micros(before)
	total := 0
	err := rounds(limit, func(want int) (int, bool, error) {
		cs, more, err := s.candidates(ctx, peekScript, want, func(b, n int) ([]string, []any) {
			return []string{s.tag(b) + ":e"}, []any{beforeUS, n}
		})
		if err != nil || len(cs) == 0 {
			return 0, false, err
		}
		buckets, groups := byBucket(cs)
		cmds, err := s.evalEach(ctx, purgeScript, buckets, func(b int) ([]string, []any) {
			args := []any{s.tag(b), enc(before)}
			for _, c := range groups[b] {
				args = append(args, c.id)
			}
			return []string{s.tag(b) + ":e"}, args
		})
		if err != nil {
			return 0, false, err
		}
		// The sessions are gone; their index entries now point at
		// nothing, which reads as not found. Delete them too, one key per
		// command, as each lives in a slot of its own.
		n := 0
		pipe := s.c.Pipeline()
		for _, cmd := range cmds {
			v, err := cmd.StringSlice()
			if err != nil {
				return 0, false, wrap(err)
			}
			for j := 0; j+2 < len(v); j += 3 {
				n++
				pipe.Del(ctx, s.idKey(v[j]))
				pipe.Del(ctx, s.tokenKey(v[j+1]))
				if v[j+2] != "" {
					pipe.Del(ctx, s.tokenKey(v[j+2]))
				}
			}
		}
		total += n
		if n > 0 {
			if _, err := pipe.Exec(ctx); err != nil {
				return 0, false, wrap(err)
			}
		}
		return n, more, nil
	})
	return total, err
}
