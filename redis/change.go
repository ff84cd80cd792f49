package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lapsehq/lapse"
	goredis "github.com/redis/go-redis/v9"
)

// heartbeatPrefix starts the feed's own liveness messages and markPrefix
// its marks; token hashes are hex, so they can never start with either.
const (
	heartbeatPrefix = "hb:"
	markPrefix      = "mk:"
)

// Changes subscribes to the store's change feed and calls fn with the
// token hash of every session that any node changes (touched, rotated,
// ended; a new session is in nobody's cache, so its creation is not
// published), until ctx is done or the feed is lost. It blocks; run it in its
// own goroutine. fn is called from that one goroutine, in the order Redis
// delivered the changes, and must be quick.
//
// Once the subscription is live, Changes calls fn with a
// [lapse.Change] whose Reset is set: "drop everything you cached", since
// changes made before the subscription was live were not delivered. It
// delivers the marks of [Store.Mark] sent by this Store value.
//
// Changes returns ctx.Err() when ctx is done, and otherwise an error with
// [lapse.CodeStoreUnavailable] as soon as it cannot vouch that it hears
// every change: the connection failed, or a heartbeat did not come back.
// Every heartbeat interval (see [WithHeartbeat]) it publishes a heartbeat
// through every master, and requires each to arrive before the next; so
// a feed that stays connected but silently stops delivering, for example
// across a broken cluster bus link, is noticed within two intervals. The
// caller must stop serving from its cache when Changes returns, and may
// call it again to resubscribe.
//
// Changes uses classic PUBLISH/SUBSCRIBE on one channel, also in a
// cluster, where Redis forwards every message to every node: one
// subscription then hears every master. Sharded pub/sub would need one
// subscription per shard, each to be moved when slots move, with more
// ways to miss a message; the change rate (writes, not verifies) is low
// enough for broadcast.
func (s *Store) Changes(ctx context.Context, fn func(lapse.Change)) error {
	ps := s.c.Subscribe(ctx)
	defer ps.Close()
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	lost := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &lapse.Error{Code: lapse.CodeStoreUnavailable, Message: "the change feed was lost", Err: err}
	}
	if err := s.subscribe(ctx, ps); err != nil {
		return lost(err)
	}
	fn(lapse.Change{Reset: true})
	f := feed{fn: fn, marks: s.markLabel(), arrived: map[uint64]int{}, nonce: lapse.NewID("")}
	next := time.Now()
	for {
		if !time.Now().Before(next) {
			if err := s.beat(ctx, &f); err != nil {
				return lost(err)
			}
			next = time.Now().Add(s.heartbeat)
		}
		msg, err := ps.ReceiveTimeout(ctx, max(time.Until(next), time.Millisecond))
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				continue
			}
			return lost(err)
		}
		switch m := msg.(type) {
		case *goredis.Message:
			f.message(m.Payload)
		case *goredis.Subscription:
			if m.Kind != "subscribe" {
				return lost(errors.New("redis: change feed unsubscribed"))
			}
		}
	}
}

// subscribe subscribes ps to the change channel and waits for the
// confirmation: only then are later changes delivered.
func (s *Store) subscribe(ctx context.Context, ps *goredis.PubSub) error {
	if err := ps.Subscribe(ctx, s.channel()); err != nil {
		return err
	}
	for {
		msg, err := ps.ReceiveTimeout(ctx, 2*s.heartbeat)
		if err != nil {
			return err
		}
		if sub, ok := msg.(*goredis.Subscription); ok && sub.Kind == "subscribe" {
			return nil
		}
	}
}

// beat ends f's heartbeat round, failing if a copy of its heartbeat did
// not arrive, and starts the next: a heartbeat through every master.
func (s *Store) beat(ctx context.Context, f *feed) error {
	if f.rounds > 0 && f.beats < f.sent {
		return errors.New("redis: change feed heartbeat " + strconv.Itoa(f.rounds) + " did not arrive")
	}
	f.rounds++
	f.round = heartbeatPrefix + f.nonce + ":" + strconv.Itoa(f.rounds) + ":"
	masters, err := s.masters(ctx)
	if err == nil {
		err = s.publish(ctx, masters, f.round)
	}
	f.sent, f.beats = len(masters), 0
	return err
}

// feed is the state of one [Store.Changes] subscription.
type feed struct {
	fn      func(lapse.Change)
	nonce   string // tells this subscription's heartbeats from others'
	rounds  int    // heartbeat rounds started
	round   string // the label of the heartbeat round in progress
	sent    int    // the copies of that round's heartbeat published
	beats   int    // the copies of that round's heartbeat that arrived
	marks   string // the prefix of this store's marks
	arrived map[uint64]int
}

// message handles one message of the change channel: a heartbeat, a mark
// or a list of changed sessions' token hashes.
func (f *feed) message(payload string) {
	switch {
	case strings.HasPrefix(payload, heartbeatPrefix):
		if strings.HasPrefix(payload, f.round) {
			f.beats++
		}
	case strings.HasPrefix(payload, markPrefix):
		f.mark(payload)
	default:
		for hx := range strings.SplitSeq(payload, ",") {
			var h lapse.TokenHash
			if n, err := hex.Decode(h[:], []byte(hx)); err == nil && n == len(h) {
				f.fn(lapse.Change{Token: h})
			}
		}
	}
}

// mark counts one copy of a mark, "mk:<nonce>:<id>:<copies>:<n>", and
// delivers the mark once every master's copy has arrived: only then has
// every change published through any master before it been delivered.
func (f *feed) mark(payload string) {
	rest, ok := strings.CutPrefix(payload, f.marks)
	if !ok {
		return // another node's
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 3 {
		return
	}
	id, err1 := strconv.ParseUint(parts[0], 10, 64)
	copies, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return
	}
	f.arrived[id]++
	if f.arrived[id] < copies {
		return
	}
	for k := range f.arrived {
		if k <= id {
			delete(f.arrived, k) // earlier marks that lost a copy are lost
		}
	}
	f.fn(lapse.Change{Mark: id})
}

// Mark sends a mark with id through every master: [Store.Changes] of
// this Store value delivers it once every copy has arrived, after every
// change those masters published before.
func (s *Store) Mark(ctx context.Context, id uint64) error {
	masters, err := s.masters(ctx)
	if err == nil {
		err = s.publish(ctx, masters, s.markLabel()+strconv.FormatUint(id, 10)+":"+strconv.Itoa(len(masters))+":")
	}
	if err != nil {
		return &lapse.Error{Code: lapse.CodeStoreUnavailable, Message: "redis: sending a change feed mark", Err: err}
	}
	return nil
}

// markLabel is the prefix of this Store value's marks.
func (s *Store) markLabel() string {
	return markPrefix + s.nonce + ":"
}

// masters returns a client of every master: the one client of a
// standalone Redis, or each master of a cluster.
func (s *Store) masters(ctx context.Context) ([]goredis.Cmdable, error) {
	cc, ok := s.c.(*goredis.ClusterClient)
	if !ok {
		return []goredis.Cmdable{s.c}, nil
	}
	var (
		mu  sync.Mutex
		out []goredis.Cmdable
	)
	err := cc.ForEachMaster(ctx, func(_ context.Context, c *goredis.Client) error {
		mu.Lock()
		out = append(out, c)
		mu.Unlock()
		return nil
	})
	return out, err
}

// publish publishes label through each of masters, each copy with its
// index appended.
func (s *Store) publish(ctx context.Context, masters []goredis.Cmdable, label string) error {
	for i, c := range masters {
		if err := c.Publish(ctx, s.channel(), label+strconv.Itoa(i)).Err(); err != nil {
			return err
		}
	}
	return nil
}
