package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lapsehq/lapse"
)

// Cursor implements [lapse.DeliveryQueue].
func (s *Store) Cursor(ctx context.Context, endpoint string) (int64, bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT seq FROM webhook_cursors WHERE endpoint = $1`, endpoint).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return seq, err == nil, wrap(err)
}

// Enqueue implements [lapse.DeliveryQueue]. A delivery another node
// already enqueued for the endpoint and event is kept as it is, and the
// cursor never moves back.
func (s *Store) Enqueue(ctx context.Context, endpoint string, seqs []int64, cursor int64, now time.Time) error {
	return s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO webhook_deliveries (endpoint, event_seq, status, attempts, next_at, updated_at)
			SELECT $1, seq, 'pending', 0, $2, $2 FROM unnest($3::bigint[]) AS seq
			ON CONFLICT (endpoint, event_seq) DO NOTHING`, endpoint, nanos(now), seqs)
		b.Queue(`INSERT INTO webhook_cursors (endpoint, seq) VALUES ($1, $2)
			ON CONFLICT (endpoint) DO UPDATE SET seq = greatest(webhook_cursors.seq, excluded.seq)`, endpoint, cursor)
		return tx.SendBatch(ctx, b).Close()
	})
}

const deliveryColumns = `d.id, d.endpoint, d.status, d.attempts, d.next_at, d.last_error, d.updated_at,
	e.seq, e.id, e.type, e.time, e.session_id, e.subject, e.tenant, e.tier, e.reason, e.actor, e.ip, e.actor_name`

func (s *Store) deliveries(ctx context.Context, where string, args ...any) ([]lapse.Delivery, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ds, err := collect(scanDelivery)(s.pool.Query(ctx, `SELECT `+deliveryColumns+`
		FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq `+where, args...))
	return ds, wrap(err)
}

func scanDelivery(row pgx.Row) (lapse.Delivery, error) {
	var (
		d                 lapse.Delivery
		next, upd, evTime int64
	)
	err := row.Scan(&d.ID, &d.Endpoint, &d.Status, &d.Attempts, &next, &d.LastError, &upd,
		&d.Event.Seq, &d.Event.ID, &d.Event.Type, &evTime, &d.Event.SessionID, &d.Event.Subject,
		&d.Event.Tenant, &d.Event.Tier, &d.Event.Reason, &d.Event.Actor, &d.Event.IP, &d.Event.ActorName)
	d.NextAt, d.UpdatedAt, d.Event.Time = ts(next), ts(upd), ts(evTime)
	return d, err
}

// Due implements [lapse.DeliveryQueue].
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]lapse.Delivery, error) {
	return s.deliveries(ctx, `WHERE d.status = 'pending' AND d.next_at <= $1 ORDER BY d.next_at, d.id LIMIT $2`, nanos(now), limit)
}

// Dead implements [lapse.DeliveryQueue].
func (s *Store) Dead(ctx context.Context, limit int) ([]lapse.Delivery, error) {
	return s.deliveries(ctx, `WHERE d.status = 'dead' ORDER BY d.updated_at DESC, d.id DESC LIMIT $1`, limit)
}

// Record implements [lapse.DeliveryQueue]: one statement for them all.
func (s *Store) Record(ctx context.Context, ds []lapse.Delivery, now time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if len(ds) == 0 {
		return nil
	}
	n := len(ds)
	ids, statuses, attempts, next, errs := make([]int64, n), make([]string, n), make([]int32, n), make([]int64, n), make([]string, n)
	for i, d := range ds {
		ids[i], statuses[i], attempts[i], next[i], errs[i] = d.ID, string(d.Status), int32(d.Attempts), nanos(d.NextAt), d.LastError
	}
	_, err := s.pool.Exec(ctx, `UPDATE webhook_deliveries d
		SET status = r.status, attempts = r.attempts, next_at = r.next_at, last_error = r.last_error, updated_at = $6
		FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::bigint[], $5::text[]) AS r(id, status, attempts, next_at, last_error)
		WHERE d.id = r.id`, ids, statuses, attempts, next, errs, nanos(now))
	return wrap(err)
}

// Replay implements [lapse.DeliveryQueue].
func (s *Store) Replay(ctx context.Context, ids []int64, now time.Time) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	q := `UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_at = $1, updated_at = $1 WHERE status = 'dead'`
	args := []any{nanos(now)}
	if len(ids) > 0 {
		q += ` AND id = ANY($2)`
		args = append(args, ids)
	}
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return 0, wrap(err)
	}
	return int(tag.RowsAffected()), nil
}
