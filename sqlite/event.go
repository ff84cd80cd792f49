package sqlite

import (
	"context"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
)

// appendEvent adds ev to the event log inside tx, chained to the last
// record, with its keys indexed. The writer is a single connection inside
// an immediate transaction, so no other append can slip between the read
// and the write.
func appendEvent(ctx context.Context, tx wtx, ev lapse.Event) error {
	return appendEvents(ctx, tx, []lapse.Event{ev}, false)
}

// appendEvents adds evs in order, chained to the head of the log, with
// times that never decrease along seq (so that QueryEvents can find a
// time range by binary search, with no index on time). Their keys go
// into event_sessions and event_subjects at the end of the batch (one
// sorted insert for all its events, see batchState) while those are caught
// up with the log, unless later is true: a sweep's burst of events
// leaves that to Tidy, which sorts many keys into each page it writes
// instead of writing a random page of each table per event. Readers find
// the events not yet indexed by scanning the log past indexed_until.
func appendEvents(ctx context.Context, tx wtx, evs []lapse.Event, later bool) error {
	b := tx.b
	if !b.known {
		if err := b.readHead(ctx, tx); err != nil {
			return err
		}
	}
	if later && b.pending {
		// The keys of the events before the sweep's are indexed now, as
		// they would have been had they been alone; the sweep's wait.
		if err := b.index(ctx, tx); err != nil {
			return err
		}
	}
	caughtUp := b.indexed == b.seq || b.pending
	for i := 0; i < len(evs); {
		k := len(insertEvents) - 1
		for 1<<k > len(evs)-i {
			k--
		}
		part := evs[i : i+1<<k]
		i += len(part)
		args := make([]any, 0, 14*len(part))
		for _, ev := range part {
			b.seq++
			ev.Seq = b.seq
			// The log's clock never runs back: an event from a process
			// whose clock is behind the last one's takes that time.
			if t := nanos(ev.Time); t < b.last {
				ev.Time = ts(b.last)
			} else {
				b.last = t
			}
			hash := ev.ChainHash(b.prev)
			args = append(args, ev.Seq, ev.ID, ev.Type, nanos(ev.Time), ev.SessionID, ev.Subject,
				ev.Tenant, ev.Tier, ev.Reason, ev.Actor, ev.IP, ev.ActorName, b.prev, hash)
			b.prev = hash
		}
		if _, err := tx.ExecContext(ctx, insertEvents[k], args...); err != nil {
			return err
		}
	}
	b.pending = !later && caughtUp
	return nil
}

// insertEvents[k] inserts 1<<k events: 14 parameters each, up to 256
// rows a statement, so that the writer keeps nine shapes of it. They are
// built once: appendEvents runs in the writer, for every event.
var insertEvents = func() (qs [9]string) {
	for k := range qs {
		qs[k] = `INSERT INTO events (seq, id, type, time, session_id, subject, tenant, tier, reason, actor, ip, actor_name, prev_hash, hash)
			VALUES ` + strings.TrimSuffix(strings.Repeat(`(?,?,?,?,?,?,?,?,?,?,?,?,?,?),`, 1<<k), ",")
	}
	return qs
}()

// indexEvents puts the keys of the events after seq from up to seq to
// into event_sessions and event_subjects, each sorted so that the table
// is written in order, and moves indexed_until to to. It returns how many
// events it indexed.
func indexEvents(ctx context.Context, tx wtx, from, to int64) (int, error) {
	if to <= from {
		return 0, nil
	}
	for _, q := range []string{
		`INSERT INTO event_sessions (session_id, seq) SELECT session_id, seq FROM events WHERE seq > ?1 AND seq <= ?2 ORDER BY session_id, seq`,
		`INSERT INTO event_subjects (subject, seq) SELECT subject, seq FROM events WHERE seq > ?1 AND seq <= ?2 ORDER BY subject, seq`,
		`UPDATE store_state SET value = ?2 WHERE name = 'indexed_until'`,
	} {
		if _, err := tx.ExecContext(ctx, q, from, to); err != nil {
			return 0, err
		}
	}
	if tx.b.known {
		tx.b.indexed = to
	}
	return int(to - from), nil
}

var _ lapse.EventRecorder = (*Store)(nil)

// RecordEvent implements [lapse.EventRecorder]: ev is appended to the
// log, chained and indexed like a session's events.
func (s *Store) RecordEvent(ctx context.Context, ev lapse.Event) error {
	return s.inTx(ctx, func(tx wtx) error { return appendEvent(ctx, tx, ev) })
}

// Events implements [lapse.EventLog].
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]lapse.Event, error) {
	return s.QueryEvents(ctx, lapse.EventQuery{After: after, Limit: limit})
}

const eventColumns = `e.seq, e.id, e.type, e.time, e.session_id, e.subject, e.tenant, e.tier, e.reason, e.actor, e.ip, e.actor_name`

func scanEvent(row scanner, extra ...any) (lapse.Event, error) {
	var ev lapse.Event
	var t int64
	err := row.Scan(append([]any{&ev.Seq, &ev.ID, &ev.Type, &t, &ev.SessionID, &ev.Subject, &ev.Tenant, &ev.Tier, &ev.Reason, &ev.Actor, &ev.IP, &ev.ActorName}, extra...)...)
	ev.Time = ts(t)
	return ev, err
}

// QueryEvents implements [lapse.AuditLog]. A query naming a session or a
// subject reads its keys in event_sessions or event_subjects and the
// events not yet indexed past indexed_until, merged in seq order. It
// reads only durable events (durable.go).
func (s *Store) QueryEvents(ctx context.Context, q lapse.EventQuery) ([]lapse.Event, error) {
	durable, err := s.durableSeq(ctx)
	if err != nil {
		return nil, wrap(err)
	}
	// Times never decrease along seq from ordered_from on, so there the
	// time range is a seq range; the records before it (written before
	// times were kept in order) are read whole and filtered by time.
	var from, to int64
	if !q.Since.IsZero() || !q.Until.IsZero() {
		var ordered int64
		if err := s.r.QueryRowContext(ctx, `SELECT value FROM store_state WHERE name = 'ordered_from'`).Scan(&ordered); err != nil {
			return nil, wrap(err)
		}
		last := durable
		if !q.Since.IsZero() {
			if from = 1; ordered <= 1 {
				if from, err = s.firstAt(ctx, q.Since, ordered, last); err != nil {
					return nil, wrap(err)
				}
			}
		}
		if !q.Until.IsZero() {
			if to, err = s.firstAt(ctx, q.Until, ordered, last); err != nil {
				return nil, wrap(err)
			}
		}
	}
	query, args := eventQuery(q, from, to, durable)
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrap(err)
	}
	evs, err := collect(rows, func(row scanner) (lapse.Event, error) { return scanEvent(row) })
	return evs, wrap(err)
}

// firstAt returns the seq of the first event at or after t among those
// from ordered to last, or last+1 if none is, by binary search: their
// times never decrease along seq. Events appended meanwhile come after
// it, with times no earlier.
func (s *Store) firstAt(ctx context.Context, t time.Time, ordered, last int64) (int64, error) {
	lo, hi := max(ordered, 1), last+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		var at int64
		if err := s.r.QueryRowContext(ctx, `SELECT time FROM events WHERE seq >= ? ORDER BY seq LIMIT 1`, mid).Scan(&at); err != nil {
			return 0, err
		}
		if at >= nanos(t) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// eventQuery returns the query of the events q selects and its arguments,
// given seq bounds for q.Since and q.Until (0 for none) that hold every
// event of the time range, and the last durable seq.
func eventQuery(q lapse.EventQuery, since, until, durable int64) (string, []any) {
	var (
		conds []string
		args  []any
	)
	add := func(cond string, v any) { conds = append(conds, cond); args = append(args, v) }
	add(`e.seq > ?`, q.After)
	add(`e.seq <= ?`, durable)
	if q.Subject != "" {
		add(`e.subject = ?`, q.Subject)
	}
	if q.Tenant != "" {
		add(`e.tenant = ?`, q.Tenant)
	}
	if q.Actor != "" {
		add(`e.actor = ?`, q.Actor)
	}
	if q.SessionID != "" {
		add(`e.session_id = ?`, q.SessionID)
	}
	if !q.Since.IsZero() {
		add(`e.seq >= ?`, since)
		add(`e.time >= ?`, nanos(q.Since))
	}
	if !q.Until.IsZero() {
		add(`e.seq < ?`, until)
		add(`e.time < ?`, nanos(q.Until))
	}
	if len(q.Types) > 0 {
		conds = append(conds, `e.type IN (?`+strings.Repeat(`,?`, len(q.Types)-1)+`)`)
		for _, t := range q.Types {
			args = append(args, t)
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	where := strings.Join(conds, ` AND `)
	query := `SELECT ` + eventColumns + ` FROM events e WHERE ` + where
	after := q.After // where the key arm starts reading
	if !q.Since.IsZero() {
		after = max(after, since-1)
	}
	switch {
	case q.SessionID != "":
		query, args = byKey(`event_sessions`, `session_id`, q.SessionID, after, where, args)
	case q.Subject != "":
		query, args = byKey(`event_subjects`, `subject`, q.Subject, after, where, args)
	}
	return query + ` ORDER BY seq LIMIT ?`, append(args, limit)
}

// byKey returns the query of the events that meet where (with args) and
// whose key, column of table, is key: those indexed there, then those
// past indexed_until, which are not yet.
func byKey(table, column, key string, after int64, where string, args []any) (string, []any) {
	// k.seq, equal to e.seq, tells SQLite that the first arm comes out of
	// the key table's primary key already in seq order, to merge.
	query := `SELECT k.seq` + strings.TrimPrefix(eventColumns, `e.seq`) + ` FROM ` + table + ` k JOIN events e ON e.seq = k.seq WHERE k.` + column + ` = ? AND k.seq > ? AND ` + where +
		` UNION ALL SELECT ` + eventColumns + ` FROM events e WHERE e.seq > (SELECT value FROM store_state WHERE name = 'indexed_until') AND ` + where
	all := append([]any{key, after}, args...)
	return query, append(all, args...)
}

// ChainRecords implements [lapse.AuditLog]: durable records only.
func (s *Store) ChainRecords(ctx context.Context, after int64, limit int) ([]lapse.ChainRecord, error) {
	durable, err := s.durableSeq(ctx)
	if err != nil {
		return nil, wrap(err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+eventColumns+`, e.prev_hash, e.hash FROM events e WHERE e.seq > ? AND e.seq <= ? ORDER BY e.seq LIMIT ?`,
		after, durable, limit)
	if err != nil {
		return nil, wrap(err)
	}
	rs, err := collect(rows, func(row scanner) (r lapse.ChainRecord, err error) {
		r.Event, err = scanEvent(row, &r.PrevHash, &r.Hash)
		return r, err
	})
	return rs, wrap(err)
}
