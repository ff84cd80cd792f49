package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lapsehq/lapse"
)

// channel is the notification channel of the change feed.
const channel = "lapse_changes"

// Payload prefixes of the feed's own messages; token hashes are hex, so
// they never start with either.
const (
	heartbeatPrefix = "h:"
	markPrefix      = "m:"
)

// Changes implements [lapse.ChangeFeed]. It blocks; run it in its own
// goroutine. fn is called from that one goroutine, in commit order, and
// must be quick.
//
// It LISTENs on a connection of its own, not one of the pool's (a pooled
// connection would carry other work and could be handed back mid-feed),
// and calls fn with Change{Reset: true} once the LISTEN is in force:
// changes committed before then were not heard.
//
// Changes returns ctx.Err() when ctx is done, and otherwise an error with
// [lapse.CodeStoreUnavailable] as soon as it cannot vouch that it hears
// every change: the connection failed, or a heartbeat did not come back.
// Every heartbeat interval (see [WithHeartbeat]) it sends a heartbeat
// through the pool and requires it to arrive on the listening connection
// before the next, so a connection that stays open but stops delivering
// (a dead peer behind a silent network) is noticed within two intervals.
func (s *Store) Changes(ctx context.Context, fn func(lapse.Change)) error {
	lost := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &lapse.Error{Code: lapse.CodeStoreUnavailable, Message: "the change feed was lost", Err: err}
	}
	conn, err := pgx.ConnectConfig(ctx, s.listen.Copy())
	if err != nil {
		return lost(err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+channel); err != nil {
		return lost(err)
	}
	fn(lapse.Change{Reset: true})

	wait, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	label := heartbeatPrefix + lapse.NewID("") + ":"
	var arrived atomic.Int64 // the newest heartbeat round heard
	go s.beat(wait, stop, label, &arrived)
	for {
		n, err := conn.WaitForNotification(wait)
		if err != nil {
			if cause := context.Cause(wait); cause != nil && ctx.Err() == nil {
				err = cause
			}
			return lost(err)
		}
		if round, ok := strings.CutPrefix(n.Payload, label); ok {
			if r, err := strconv.ParseInt(round, 10, 64); err == nil {
				arrived.Store(r)
			}
			continue
		}
		s.deliver(n.Payload, fn)
	}
}

// deliver calls fn with what a notification carries: changed token
// hashes, or one of this store's marks (marks of other stores and
// heartbeats of other feeds are skipped).
func (s *Store) deliver(payload string, fn func(lapse.Change)) {
	if id, ok := strings.CutPrefix(payload, markPrefix+s.nonce+":"); ok {
		if id, err := strconv.ParseUint(id, 10, 64); err == nil {
			fn(lapse.Change{Mark: id})
		}
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

// beat sends heartbeat rounds label+1, label+2, ... through the pool,
// one each interval, and stops the feed when a round has not arrived by
// the time the next is due, or cannot be sent.
func (s *Store) beat(ctx context.Context, stop context.CancelCauseFunc, label string, arrived *atomic.Int64) {
	tick := time.NewTicker(s.heartbeat)
	defer tick.Stop()
	for round := int64(1); ; round++ {
		sendCtx, cancel := context.WithTimeout(ctx, s.heartbeat)
		_, err := s.pool.Exec(sendCtx, `SELECT pg_notify($1, $2)`, channel, label+strconv.FormatInt(round, 10))
		cancel()
		if err != nil {
			stop(err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if arrived.Load() < round {
			stop(errors.New("postgres: change feed heartbeat " + strconv.FormatInt(round, 10) + " did not arrive"))
			return
		}
	}
}

// Mark implements [lapse.ChangeFeed]: a notification in a transaction of
// its own, which PostgreSQL delivers after those of every transaction
// that committed before it.
func (s *Store) Mark(ctx context.Context, id uint64) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, markPrefix+s.nonce+":"+strconv.FormatUint(id, 10))
	return wrap(err)
}
