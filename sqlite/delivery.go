package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
)

var _ lapse.DeliveryQueue = (*Store)(nil)

// LastSeq implements [lapse.EventLog]: the last durable event's seq.
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	seq, err := s.durableSeq(ctx)
	return seq, wrap(err)
}

// Cursor implements [lapse.DeliveryQueue].
func (s *Store) Cursor(ctx context.Context, endpoint string) (int64, bool, error) {
	var seq int64
	err := s.r.QueryRowContext(ctx, `SELECT seq FROM webhook_cursors WHERE endpoint = ?`, endpoint).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return seq, err == nil, wrap(err)
}

// Enqueue implements [lapse.DeliveryQueue].
func (s *Store) Enqueue(ctx context.Context, endpoint string, seqs []int64, cursor int64, now time.Time) error {
	return s.inTx(ctx, func(tx wtx) error {
		stmt, err := tx.stmt(`INSERT OR IGNORE INTO webhook_deliveries
			(endpoint, event_seq, status, attempts, next_at, updated_at) VALUES (?, ?, 'pending', 0, ?, ?)`)
		if err != nil {
			return err
		}
		for _, seq := range seqs {
			if _, err := stmt.ExecContext(tx.ctx, endpoint, seq, nanos(now), nanos(now)); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO webhook_cursors (endpoint, seq) VALUES (?, ?)
			ON CONFLICT (endpoint) DO UPDATE SET seq = max(seq, excluded.seq)`, endpoint, cursor)
		return err
	})
}

const deliveryColumns = `d.id, d.endpoint, d.status, d.attempts, d.next_at, d.last_error, d.updated_at,
	e.seq, e.id, e.type, e.time, e.session_id, e.subject, e.tenant, e.tier, e.reason, e.actor, e.ip, e.actor_name`

func (s *Store) deliveries(ctx context.Context, where string, args ...any) ([]lapse.Delivery, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+deliveryColumns+`
		FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq `+where, args...)
	if err != nil {
		return nil, wrap(err)
	}
	ds, err := collect(rows, scanDelivery)
	return ds, wrap(err)
}

func scanDelivery(row scanner) (lapse.Delivery, error) {
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
	return s.deliveries(ctx, `WHERE d.status = 'pending' AND d.next_at <= ? ORDER BY d.next_at, d.id LIMIT ?`, nanos(now), limit)
}

// Dead implements [lapse.DeliveryQueue].
func (s *Store) Dead(ctx context.Context, limit int) ([]lapse.Delivery, error) {
	return s.deliveries(ctx, `WHERE d.status = 'dead' ORDER BY d.updated_at DESC, d.id DESC LIMIT ?`, limit)
}

// Record implements [lapse.DeliveryQueue]: one transaction, so a burst
// of deliveries costs one sync, not one each.
func (s *Store) Record(ctx context.Context, ds []lapse.Delivery, now time.Time) error {
	if len(ds) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx wtx) error {
		for _, d := range ds {
			if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries
				SET status = ?, attempts = ?, next_at = ?, last_error = ?, updated_at = ? WHERE id = ?`,
				d.Status, d.Attempts, nanos(d.NextAt), d.LastError, nanos(now), d.ID); err != nil {
				return err
			}
		}
		return nil
	})
}

// Replay implements [lapse.DeliveryQueue].
func (s *Store) Replay(ctx context.Context, ids []int64, now time.Time) (int, error) {
	q := `UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_at = ?, updated_at = ? WHERE status = 'dead'`
	args := []any{nanos(now), nanos(now)}
	if len(ids) > 0 {
		q += ` AND id IN (?` + strings.Repeat(`,?`, len(ids)-1) + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return 0, wrap(err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap(err)
}
