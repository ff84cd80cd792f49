package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lapsehq/lapse"
	goredis "github.com/redis/go-redis/v9"
)

// heartbeatPrefix starts the feed's own liveness messages, and
// markPrefix its marks; token hashes are hex, so they can never start
// with either.
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
// Once the subscription is live, Changes calls fn with the zero
// [lapse.TokenHash], which no token hashes to. It means "drop everything
// you cached": changes made before the subscription was live were not
// delivered. A cache that follows this feed may serve only between that
// call and the return of Changes.
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
	if err := ps.Subscribe(ctx, s.channel()); err != nil {
		return lost(err)
	}
	// Wait for the confirmation: only then are later changes delivered.
	for {
		msg, err := ps.ReceiveTimeout(ctx, 2*s.heartbeat)
		if err != nil {
			return lost(err)
		}
		if sub, ok := msg.(*goredis.Subscription); ok && sub.Kind == "subscribe" {
			break
		}
	}
	fn(lapse.Change{Reset: true})

	nonce := lapse.NewID("")
	marks := map[string]int{} // copies of each mark still to arrive
	var (
		round      int
		sent, got  int
		next       = time.Now()
		roundLabel string
	)
	for {
		if !time.Now().Before(next) {
			if round > 0 && got < sent {
				return lost(errors.New("redis: change feed heartbeat " + strconv.Itoa(round) + " did not arrive"))
			}
			round++
			roundLabel = heartbeatPrefix + nonce + ":" + strconv.Itoa(round) + ":"
			n, err := s.beat(ctx, roundLabel)
			if err != nil {
				return lost(err)
			}
			sent, got = n, 0
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
			if strings.HasPrefix(m.Payload, roundLabel) {
				got++
				continue
			}
			s.deliver(m.Payload, marks, fn)
		case *goredis.Subscription:
			if m.Kind != "subscribe" {
				return lost(errors.New("redis: change feed unsubscribed"))
			}
		}
	}
}

// deliver calls fn with what a message of the channel carries: changed
// token hashes, or the last copy of one of this store's marks (marks of
// other stores and heartbeats of other feeds are skipped).
func (s *Store) deliver(payload string, marks map[string]int, fn func(lapse.Change)) {
	if id, ok := s.markArrived(payload, marks); ok {
		fn(lapse.Change{Mark: id})
		return
	}
	if strings.HasPrefix(payload, heartbeatPrefix) || strings.HasPrefix(payload, markPrefix) {
		return
	}
	for _, hx := range strings.Split(payload, ",") {
		var h lapse.TokenHash
		if n, err := hex.Decode(h[:], []byte(hx)); err == nil && n == len(h) {
			fn(lapse.Change{Token: h})
		}
	}
}

// beat publishes one heartbeat through every master, each with its own
// suffix, and returns how many it published.
func (s *Store) beat(ctx context.Context, label string) (int, error) {
	cc, ok := s.c.(*goredis.ClusterClient)
	if !ok {
		return 1, s.c.Publish(ctx, s.channel(), label+"0").Err()
	}
	var n atomic.Int64
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		return c.Publish(ctx, s.channel(), label+strconv.FormatInt(n.Add(1), 10)).Err()
	})
	return int(n.Load()), err
}

// Mark implements [lapse.ChangeFeed]: it publishes the mark through every
// master (one in standalone Redis), each copy as "mk:<store nonce>:<id>:<copies>".
// Each master delivers its messages in the order it published them, so the
// mark is delivered once every copy has arrived: after every change any
// master published before Mark was called.
func (s *Store) Mark(ctx context.Context, id uint64) error {
	label := markPrefix + s.nonce + ":" + strconv.FormatUint(id, 10) + ":"
	cc, ok := s.c.(*goredis.ClusterClient)
	if !ok {
		return wrap(s.c.Publish(ctx, s.channel(), label+"1").Err())
	}
	var masters []*goredis.Client
	var mu sync.Mutex
	if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		mu.Lock()
		masters = append(masters, c)
		mu.Unlock()
		return nil
	}); err != nil {
		return wrap(err)
	}
	for _, c := range masters {
		if err := c.Publish(ctx, s.channel(), label+strconv.Itoa(len(masters))).Err(); err != nil {
			return wrap(err)
		}
	}
	return nil
}

// markArrived counts a copy of one of this store's marks in pending and
// returns the mark's id when its last copy arrived.
func (s *Store) markArrived(payload string, pending map[string]int) (uint64, bool) {
	rest, ok := strings.CutPrefix(payload, markPrefix+s.nonce+":")
	if !ok {
		return 0, false
	}
	idText, copiesText, ok := strings.Cut(rest, ":")
	id, err1 := strconv.ParseUint(idText, 10, 64)
	copies, err2 := strconv.Atoi(copiesText)
	if !ok || err1 != nil || err2 != nil {
		return 0, false
	}
	if pending[idText]++; pending[idText] < copies {
		return 0, false
	}
	delete(pending, idText)
	return id, true
}
