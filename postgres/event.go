package postgres

import (
	"context"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/lapsehq/lapse"
)

// RecordEvent implements [lapse.EventRecorder]: ev is appended to the
// audit chain like a session's events, in a transaction of its own.
func (s *Store) RecordEvent(ctx context.Context, ev lapse.Event) error {
	return s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return record(ctx, tx, []lapse.Event{ev}, nil)
	})
}

// record appends evs to the audit chain and sends the change
// notifications of tokens, as the last steps of tx. The chain's head row
// is locked from here until tx ends, so appends of any number of nodes
// take turns and seq order is commit order.
func record(ctx context.Context, tx pgx.Tx, evs []lapse.Event, tokens []lapse.TokenHash) error {
	b := &pgx.Batch{}
	if len(evs) > 0 {
		var (
			seq  int64
			prev []byte
		)
		if err := tx.QueryRow(ctx, `SELECT seq, hash FROM chain_head FOR UPDATE`).Scan(&seq, &prev); err != nil {
			return err
		}
		n := len(evs)
		var (
			seqs, times                                               = make([]int64, n), make([]int64, n)
			ids, types, sessions, subjects, tenants, tiers, why, whom = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			ips, names                                                = make([]string, n), make([]string, n)
			prevs, hashes                                             = make([][]byte, n), make([][]byte, n)
		)
		for i, ev := range evs {
			seq++
			ev.Seq = seq
			hash := ev.ChainHash(prev)
			seqs[i], times[i], ids[i], types[i] = seq, nanos(ev.Time), ev.ID, string(ev.Type)
			sessions[i], subjects[i], tenants[i], tiers[i] = ev.SessionID, ev.Subject, ev.Tenant, ev.Tier
			why[i], whom[i], ips[i], names[i], prevs[i], hashes[i] = string(ev.Reason), ev.Actor, ev.IP, ev.ActorName, prev, hash
			prev = hash
		}
		b.Queue(`INSERT INTO events (seq, id, type, time, session_id, subject, tenant, tier, reason, actor, ip, actor_name, prev_hash, hash)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[],
				$7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bytea[], $14::bytea[])`,
			seqs, ids, types, times, sessions, subjects, tenants, tiers, why, whom, ips, names, prevs, hashes)
		b.Queue(`UPDATE chain_head SET seq = $1, hash = $2`, seq, prev)
	}
	for _, p := range payloads(tokens) {
		b.Queue(`SELECT pg_notify($1, $2)`, channel, p)
	}
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, b).Close()
}

// maxPayload is how many bytes of a notification lapse fills: PostgreSQL
// refuses payloads of 8000 bytes or more.
const maxPayload = 7999

// payloads returns the token hashes in hex, comma-separated, in as few
// notification payloads as fit.
func payloads(tokens []lapse.TokenHash) []string {
	var (
		out []string
		b   strings.Builder
	)
	for _, h := range tokens {
		if b.Len() > 0 && b.Len()+1+2*len(h) > maxPayload {
			out = append(out, b.String())
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(hex.EncodeToString(h[:]))
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

// Events implements [lapse.EventLog].
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]lapse.Event, error) {
	return s.QueryEvents(ctx, lapse.EventQuery{After: after, Limit: limit})
}

// LastSeq implements [lapse.EventLog]: the chain head's seq, which is
// that of the newest committed event.
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT seq FROM chain_head`).Scan(&seq)
	return seq, wrap(err)
}

const eventColumns = `seq, id, type, time, session_id, subject, tenant, tier, reason, actor, ip, actor_name`

func scanEvent(row pgx.Row, extra ...any) (lapse.Event, error) {
	var ev lapse.Event
	var t int64
	err := row.Scan(append([]any{&ev.Seq, &ev.ID, &ev.Type, &t, &ev.SessionID, &ev.Subject, &ev.Tenant, &ev.Tier, &ev.Reason, &ev.Actor, &ev.IP, &ev.ActorName}, extra...)...)
	ev.Time = ts(t)
	return ev, err
}

// QueryEvents implements [lapse.AuditLog].
func (s *Store) QueryEvents(ctx context.Context, q lapse.EventQuery) ([]lapse.Event, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	args := []any{q.After}
	conds := []string{`seq > $1`}
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, cond+` $`+strconv.Itoa(len(args)))
	}
	if q.Subject != "" {
		add(`subject =`, q.Subject)
	}
	if q.Tenant != "" {
		add(`tenant =`, q.Tenant)
	}
	if q.Actor != "" {
		add(`actor =`, q.Actor)
	}
	if q.SessionID != "" {
		add(`session_id =`, q.SessionID)
	}
	if !q.Since.IsZero() {
		add(`time >=`, nanos(q.Since))
	}
	if !q.Until.IsZero() {
		add(`time <`, nanos(q.Until))
	}
	if len(q.Types) > 0 {
		types := make([]string, len(q.Types))
		for i, t := range q.Types {
			types[i] = string(t)
		}
		args = append(args, types)
		conds = append(conds, `type = ANY($`+strconv.Itoa(len(args))+`)`)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	args = append(args, limit)
	evs, err := collect(func(row pgx.Row) (lapse.Event, error) { return scanEvent(row) })(s.pool.Query(ctx,
		`SELECT `+eventColumns+` FROM events WHERE `+strings.Join(conds, ` AND `)+` ORDER BY seq LIMIT $`+strconv.Itoa(len(args)), args...))
	return evs, wrap(err)
}

// ChainRecords implements [lapse.AuditLog].
func (s *Store) ChainRecords(ctx context.Context, after int64, limit int) ([]lapse.ChainRecord, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rs, err := collect(func(row pgx.Row) (r lapse.ChainRecord, err error) {
		r.Event, err = scanEvent(row, &r.PrevHash, &r.Hash)
		return r, err
	})(s.pool.Query(ctx, `SELECT `+eventColumns+`, prev_hash, hash FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit))
	return rs, wrap(err)
}
