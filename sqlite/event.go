package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/lapsehq/lapse"
)

// appendEvent adds ev to the event log inside tx, chained to the last
// record. The writer is a single connection inside an immediate
// transaction, so no other append can slip between the read and the write.
func appendEvent(ctx context.Context, tx *sql.Tx, ev lapse.Event) error {
	var (
		seq  int64
		prev []byte
	)
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if prev == nil {
		prev = []byte{}
	}
	ev.Seq = seq + 1
	_, err = tx.ExecContext(ctx, `INSERT INTO events
		(seq, id, type, time, session_id, subject, tenant, tier, reason, actor, prev_hash, hash)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		ev.Seq, ev.ID, ev.Type, nanos(ev.Time), ev.SessionID, ev.Subject, ev.Tenant, ev.Tier,
		ev.Reason, ev.Actor, prev, ev.ChainHash(prev))
	return err
}

// Events implements [lapse.EventLog].
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]lapse.Event, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, id, type, time, session_id, subject, tenant, tier, reason, actor
		FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []lapse.Event
	for rows.Next() {
		var ev lapse.Event
		var t int64
		if err := rows.Scan(&ev.Seq, &ev.ID, &ev.Type, &t, &ev.SessionID, &ev.Subject, &ev.Tenant, &ev.Tier, &ev.Reason, &ev.Actor); err != nil {
			return nil, wrap(err)
		}
		ev.Time = ts(t)
		out = append(out, ev)
	}
	return out, wrap(rows.Err())
}
