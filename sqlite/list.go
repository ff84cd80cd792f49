package sqlite

import (
	"context"
	"strings"

	"github.com/lapsehq/lapse"
)

var _ lapse.SessionLister = (*Store)(nil)

// ListSessions implements [lapse.SessionLister]. A query naming a
// subject reads the subject index; one across subjects scans the
// sessions table, keeping only a page's worth of rows in the sort.
func (s *Store) ListSessions(ctx context.Context, q lapse.SessionQuery) ([]*lapse.Session, error) {
	var (
		conds []string
		args  []any
	)
	add := func(cond string, vs ...any) { conds = append(conds, cond); args = append(args, vs...) }
	// The namespace: lapse's own sessions or the platform's.
	add(`(substr(subject, 1, ?) = ?) = ?`, len(lapse.ReservedPrefix), lapse.ReservedPrefix, q.Reserved)
	if q.Subject != "" {
		add(`subject = ?`, q.Subject)
	}
	if q.Tenant != "" {
		add(`tenant = ?`, q.Tenant)
	}
	if q.Tier != "" {
		add(`tier = ?`, q.Tier)
	}
	now := nanos(q.Now)
	switch q.Status {
	case "":
	case lapse.StatusActive:
		add(`status = 'active' AND idle_expires_at > ? AND expires_at > ? AND `+unswept, now, now)
	case lapse.StatusExpired:
		add(`(status = 'expired' OR status = 'active' AND (idle_expires_at <= ? OR expires_at <= ? OR NOT `+unswept+`))`, now, now)
	case lapse.StatusRevoked:
		add(`status = 'revoked'`)
	default:
		return nil, lapse.Errorf(lapse.CodeInvalid, "status %q is not one of active, expired, revoked or empty for all", q.Status)
	}
	if !q.After.IsZero() {
		at := nanos(q.After.CreatedAt)
		add(`(created_at < ? OR created_at = ? AND id < ?)`, at, at, q.After.ID)
	}
	query := `SELECT ` + sessionSelect + ` FROM sessions`
	if len(conds) > 0 {
		query += ` WHERE ` + strings.Join(conds, ` AND `)
	}
	rows, err := s.r.QueryContext(ctx, query+` ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, q.PageSize())...)
	if err != nil {
		return nil, wrap(err)
	}
	ss, err := collect(rows, scanSession)
	return ss, wrap(err)
}
