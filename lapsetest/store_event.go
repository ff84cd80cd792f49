package lapsetest

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/lapsehq/lapse"
)

var _ lapse.DeliveryQueue = (*Store)(nil)

// appendEvents adds evs to the log in order, each with the next Seq and
// chained to the record before it.
func (st *Store) appendEvents(evs ...lapse.Event) {
	for _, ev := range evs {
		prev := []byte{} // the first record's
		if n := len(st.events); n > 0 {
			prev = st.events[n-1].Hash
		}
		ev.Seq = int64(len(st.events)) + 1
		st.events = append(st.events, lapse.ChainRecord{Event: ev, PrevHash: prev, Hash: ev.ChainHash(prev)})
	}
}

// RecordEvent implements [lapse.EventRecorder]: ev joins the chain like
// a session's events.
func (st *Store) RecordEvent(_ context.Context, ev lapse.Event) error {
	if err := st.lock(); err != nil {
		return err
	}
	defer st.mu.Unlock()
	st.appendEvents(ev)
	return nil
}

// after returns the records with Seq greater than seq: Seqs start at 1
// and have no gaps, so record i has Seq i+1.
func (st *Store) after(seq int64) []lapse.ChainRecord {
	return st.events[min(max(seq, 0), int64(len(st.events))):]
}

// Events implements [lapse.EventLog].
func (st *Store) Events(ctx context.Context, after int64, limit int) ([]lapse.Event, error) {
	return st.QueryEvents(ctx, lapse.EventQuery{After: after, Limit: limit})
}

// LastSeq implements [lapse.EventLog].
func (st *Store) LastSeq(context.Context) (int64, error) {
	if err := st.lock(); err != nil {
		return 0, err
	}
	defer st.mu.Unlock()
	return int64(len(st.events)), nil
}

// QueryEvents implements [lapse.AuditLog].
func (st *Store) QueryEvents(_ context.Context, q lapse.EventQuery) ([]lapse.Event, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	var out []lapse.Event
	for _, r := range st.after(q.After) {
		if len(out) == limit {
			break
		}
		if q.Matches(&r.Event) {
			out = append(out, r.Event)
		}
	}
	return out, nil
}

// ChainRecords implements [lapse.AuditLog].
func (st *Store) ChainRecords(_ context.Context, after int64, limit int) ([]lapse.ChainRecord, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	recs := st.after(after)
	out := make([]lapse.ChainRecord, 0, min(limit, len(recs)))
	for _, r := range recs[:cap(out)] {
		r.PrevHash, r.Hash = slices.Clone(r.PrevHash), slices.Clone(r.Hash)
		out = append(out, r)
	}
	return out, nil
}

// Cursor implements [lapse.DeliveryQueue].
func (st *Store) Cursor(_ context.Context, endpoint string) (int64, bool, error) {
	if err := st.lock(); err != nil {
		return 0, false, err
	}
	defer st.mu.Unlock()
	seq, ok := st.cursors[endpoint]
	return seq, ok, nil
}

// Enqueue implements [lapse.DeliveryQueue]. A Seq of no event is left
// out: there is nothing to deliver.
func (st *Store) Enqueue(_ context.Context, endpoint string, seqs []int64, cursor int64, now time.Time) error {
	if err := st.lock(); err != nil {
		return err
	}
	defer st.mu.Unlock()
	for _, seq := range seqs {
		queued := slices.ContainsFunc(st.deliveries, func(d lapse.Delivery) bool { return d.Endpoint == endpoint && d.Event.Seq == seq })
		if queued || seq < 1 || seq > int64(len(st.events)) {
			continue
		}
		st.deliveries = append(st.deliveries, lapse.Delivery{
			ID: int64(len(st.deliveries)) + 1, Endpoint: endpoint, Event: st.events[seq-1].Event,
			Status: lapse.DeliveryPending, NextAt: now, UpdatedAt: now,
		})
	}
	if old, ok := st.cursors[endpoint]; !ok || cursor > old {
		st.cursors[endpoint] = cursor
	}
	return nil
}

// deliveriesWhere returns copies of up to limit of the deliveries keep
// selects, in the order compare gives.
func (st *Store) deliveriesWhere(limit int, keep func(*lapse.Delivery) bool, compare func(a, b lapse.Delivery) int) []lapse.Delivery {
	var out []lapse.Delivery
	for _, d := range st.deliveries {
		if keep(&d) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, compare)
	return out[:min(limit, len(out))]
}

// Due implements [lapse.DeliveryQueue].
func (st *Store) Due(_ context.Context, now time.Time, limit int) ([]lapse.Delivery, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	return st.deliveriesWhere(limit,
		func(d *lapse.Delivery) bool { return d.Status == lapse.DeliveryPending && !d.NextAt.After(now) },
		func(a, b lapse.Delivery) int { return cmp.Or(a.NextAt.Compare(b.NextAt), cmp.Compare(a.ID, b.ID)) }), nil
}

// Dead implements [lapse.DeliveryQueue].
func (st *Store) Dead(_ context.Context, limit int) ([]lapse.Delivery, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	return st.deliveriesWhere(limit,
		func(d *lapse.Delivery) bool { return d.Status == lapse.DeliveryDead },
		func(a, b lapse.Delivery) int {
			return cmp.Or(b.UpdatedAt.Compare(a.UpdatedAt), cmp.Compare(b.ID, a.ID))
		}), nil
}

// delivery returns the stored delivery with the given id, or nil.
func (st *Store) delivery(id int64) *lapse.Delivery {
	if id < 1 || id > int64(len(st.deliveries)) {
		return nil
	}
	return &st.deliveries[id-1]
}

// Record implements [lapse.DeliveryQueue].
func (st *Store) Record(_ context.Context, ds []lapse.Delivery, now time.Time) error {
	if err := st.lock(); err != nil {
		return err
	}
	defer st.mu.Unlock()
	for _, d := range ds {
		if x := st.delivery(d.ID); x != nil {
			x.Status, x.Attempts, x.NextAt, x.LastError, x.UpdatedAt = d.Status, d.Attempts, d.NextAt, d.LastError, now
		}
	}
	return nil
}

// Replay implements [lapse.DeliveryQueue].
func (st *Store) Replay(_ context.Context, ids []int64, now time.Time) (int, error) {
	if err := st.lock(); err != nil {
		return 0, err
	}
	defer st.mu.Unlock()
	n := 0
	for i := range st.deliveries {
		d := &st.deliveries[i]
		if d.Status == lapse.DeliveryDead && (len(ids) == 0 || slices.Contains(ids, d.ID)) {
			d.Status, d.Attempts, d.NextAt, d.UpdatedAt = lapse.DeliveryPending, 0, now, now
			n++
		}
	}
	return n, nil
}
