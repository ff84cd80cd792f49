package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/lapsehq/lapse"
)

// appendEvent adds ev to the event log inside tx, chained to the last
// record. The writer is a single connection inside an immediate
// transaction, so no other append can slip between the read and the write.
func appendEvent(ctx context.Context, tx *sql.Tx, ev lapse.Event) error {
	return appendEvents(ctx, tx, []lapse.Event{ev})
}

// appendEvents adds evs in order, reading the chain's head once.
func appendEvents(ctx context.Context, tx *sql.Tx, evs []lapse.Event) error {
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
	const chunk = 200  // rows a statement: 12 parameters each
	var full *sql.Stmt // the statement for a full chunk, parsed once
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	for i := 0; i < len(evs); i += chunk {
		part := evs[i:min(i+chunk, len(evs))]
		args := make([]any, 0, 12*len(part))
		for _, ev := range part {
			seq++
			ev.Seq = seq
			hash := ev.ChainHash(prev)
			args = append(args, ev.Seq, ev.ID, ev.Type, nanos(ev.Time), ev.SessionID, ev.Subject,
				ev.Tenant, ev.Tier, ev.Reason, ev.Actor, prev, hash)
			prev = hash
		}
		insert := `INSERT INTO events (seq, id, type, time, session_id, subject, tenant, tier, reason, actor, prev_hash, hash)
			VALUES ` + strings.TrimSuffix(strings.Repeat(`(?,?,?,?,?,?,?,?,?,?,?,?),`, len(part)), ",")
		if len(part) < chunk {
			if _, err := tx.ExecContext(ctx, insert, args...); err != nil {
				return err
			}
			continue
		}
		if full == nil {
			if full, err = tx.PrepareContext(ctx, insert); err != nil {
				return err
			}
		}
		if _, err := full.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// Events implements [lapse.EventLog].
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]lapse.Event, error) {
	return s.QueryEvents(ctx, lapse.EventQuery{After: after, Limit: limit})
}

const eventColumns = `seq, id, type, time, session_id, subject, tenant, tier, reason, actor`

func scanEvent(row scanner, extra ...any) (lapse.Event, error) {
	var ev lapse.Event
	var t int64
	err := row.Scan(append([]any{&ev.Seq, &ev.ID, &ev.Type, &t, &ev.SessionID, &ev.Subject, &ev.Tenant, &ev.Tier, &ev.Reason, &ev.Actor}, extra...)...)
	ev.Time = ts(t)
	return ev, err
}

// QueryEvents implements [lapse.AuditLog].
func (s *Store) QueryEvents(ctx context.Context, q lapse.EventQuery) ([]lapse.Event, error) {
	query := `SELECT ` + eventColumns + ` FROM events WHERE seq > ?`
	args := []any{q.After}
	add := func(cond string, v any) { query += ` AND ` + cond; args = append(args, v) }
	if q.Subject != "" {
		add(`subject = ?`, q.Subject)
	}
	if q.Tenant != "" {
		add(`tenant = ?`, q.Tenant)
	}
	if q.SessionID != "" {
		add(`session_id = ?`, q.SessionID)
	}
	if !q.Since.IsZero() {
		add(`time >= ?`, nanos(q.Since))
	}
	if !q.Until.IsZero() {
		add(`time < ?`, nanos(q.Until))
	}
	if len(q.Types) > 0 {
		query += ` AND type IN (?` + strings.Repeat(`,?`, len(q.Types)-1) + `)`
		for _, t := range q.Types {
			args = append(args, t)
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.r.QueryContext(ctx, query+` ORDER BY seq LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []lapse.Event
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, ev)
	}
	return out, wrap(rows.Err())
}

// ChainRecords implements [lapse.AuditLog].
func (s *Store) ChainRecords(ctx context.Context, after int64, limit int) ([]lapse.ChainRecord, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+eventColumns+`, prev_hash, hash FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []lapse.ChainRecord
	for rows.Next() {
		var r lapse.ChainRecord
		if r.Event, err = scanEvent(rows, &r.PrevHash, &r.Hash); err != nil {
			return nil, wrap(err)
		}
		out = append(out, r)
	}
	return out, wrap(rows.Err())
}
