package postgres

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lapsehq/lapse"
)

// expireQuery claims up to $2 active sessions whose earlier deadline is
// at or before $1, earliest first, skipping rows another transaction
// holds, and rewrites them as expired at that deadline. The reason is
// that of lapse.Session.Lapsed: the absolute deadline on a tie.
const expireQuery = `WITH due AS (
		SELECT id FROM sessions WHERE status = 'active' AND deadline <= $1
		ORDER BY deadline LIMIT $2 FOR UPDATE SKIP LOCKED)
	UPDATE sessions s SET status = 'expired',
		end_reason = CASE WHEN s.expires_at <= s.idle_expires_at THEN 'absolute_timeout' ELSE 'idle_timeout' END,
		ended_at = s.deadline
	FROM due WHERE s.id = due.id
	RETURNING s.id, s.token_hash, s.subject, s.tenant, s.tier, s.idle_expires_at, s.expires_at`

// ExpireDue implements [lapse.ExpiryIndex]. The claim is the row itself:
// the sessions are selected FOR UPDATE SKIP LOCKED and rewritten as
// expired in one statement, so sweepers on any number of nodes take
// disjoint sessions without waiting for each other, and a session whose
// row says expired is never selected again. The transaction appends one
// session.expired each and notifies the expired tokens before it
// commits; if it fails, or its node dies, nothing of it stays and the
// next sweep takes the sessions.
func (s *Store) ExpireDue(ctx context.Context, now time.Time, limit int) ([]*lapse.Session, error) {
	var due []*lapse.Session
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		due, err = expired(tx.Query(ctx, expireQuery, nanos(now), limit))
		if err != nil || len(due) == 0 {
			return err
		}
		events := make([]lapse.Event, len(due))
		for i, sess := range due {
			events[i] = lapse.NewEvent(lapse.EventExpired, sess, sess.EndReason, lapse.ActorSystem, now)
		}
		return record(ctx, tx, events, tokensOf(due))
	})
	if err != nil {
		return nil, err
	}
	return due, nil
}

// expired reads the rows of expireQuery as ExpireDue returns them: their
// identity and how they ended, earliest deadline first.
func expired(rows pgx.Rows, err error) ([]*lapse.Session, error) {
	due, err := collect(scanDue)(rows, err)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(due, func(a, b *lapse.Session) int {
		if c := a.EndedAt.Compare(b.EndedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return due, nil
}

// scanDue reads a row of expireQuery.
func scanDue(row pgx.Row) (*lapse.Session, error) {
	var (
		sess      lapse.Session
		hash      []byte
		idle, abs int64
	)
	if err := row.Scan(&sess.ID, &hash, &sess.Subject, &sess.Tenant, &sess.Tier, &idle, &abs); err != nil {
		return nil, err
	}
	copy(sess.TokenHash[:], hash)
	sess.IdleExpiresAt, sess.ExpiresAt = ts(idle), ts(abs)
	reason, at, _ := sess.Lapsed(sess.Deadline())
	sess.Status, sess.EndReason, sess.EndedAt = lapse.StatusExpired, reason, at
	return &sess, nil
}

// warnQuery claims up to $2 sessions to warn at $1, as expireQuery does,
// and marks them warned for their warn_at.
const warnQuery = `WITH due AS (
		SELECT id FROM sessions
		WHERE status = 'active' AND warn_at <= $1 AND warned_for <> warn_at
		  AND warn_at < least(idle_expires_at, expires_at) AND deadline > $1
		ORDER BY warn_at LIMIT $2 FOR UPDATE SKIP LOCKED)
	UPDATE sessions s SET warned_for = s.warn_at FROM due WHERE s.id = due.id
	RETURNING ` + sessionColumnsOfS

// sessionColumnsOfS is sessionColumns qualified with the table alias s.
const sessionColumnsOfS = `s.id, s.token_hash, s.subject, s.tenant, s.tier, s.aal, s.amr, s.status, s.end_reason,
	s.created_at, s.last_active_at, s.authenticated_at, s.idle_expires_at, s.expires_at, s.warn_at, s.ended_at,
	s.ip, s.user_agent, s.metadata,
	s.idle_timeout, s.absolute_timeout, s.warn_before, s.require_aal, s.max_auth_age, s.max_sessions, s.remind_after,
	s.prev_token_hash, s.prev_valid_until, s.idp_issuer, s.idp_subject, s.idp_sid,
	s.client_drift, s.drift_prefix_v4, s.drift_prefix_v6, s.on_token_reuse, s.new_device_window`

// WarnDue implements [lapse.ExpiryIndex], claiming rows as ExpireDue
// does: marking a session warned for its warn_at is the claim.
func (s *Store) WarnDue(ctx context.Context, now time.Time, limit int) ([]*lapse.Session, error) {
	var due []*lapse.Session
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		if due, err = collect(scanSession)(tx.Query(ctx, warnQuery, nanos(now), limit)); err != nil || len(due) == 0 {
			return err
		}
		slices.SortFunc(due, func(a, b *lapse.Session) int { return a.WarnAt.Compare(b.WarnAt) })
		events := make([]lapse.Event, len(due))
		for i, sess := range due {
			events[i] = lapse.NewEvent(lapse.EventExpiringSoon, sess, "", lapse.ActorSystem, now)
		}
		return record(ctx, tx, events, nil)
	})
	if err != nil {
		return nil, err
	}
	return due, nil
}

// Purge implements [lapse.Purger].
func (s *Store) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id IN (
		SELECT id FROM sessions WHERE status <> 'active' AND ended_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, nanos(before), limit)
	if err != nil {
		return 0, wrap(err)
	}
	return int(tag.RowsAffected()), nil
}
