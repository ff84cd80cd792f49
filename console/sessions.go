package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
)

// pageSize is how many sessions one page of the sessions table shows.
const pageSize = 50

// sessionFilter is the filter form of the sessions table. Status is
// "active" (the default), "expired", "revoked" or "all".
type sessionFilter struct {
	Subject, Tenant, Tier, Status string
}

func (f sessionFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"subject": f.Subject, "tenant": f.Tenant, "tier": f.Tier, "status": f.Status} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

type sessionsView struct {
	base
	Filter   sessionFilter
	Tiers    []string
	Tenants  []string
	Statuses []string
	Sessions []*lapse.Session
	// Next is the URL of the next page, "" on the last.
	Next string
	// Here is this page's URL, where actions return.
	Here string
	// NeedSubject is set when the store cannot list across subjects and
	// no subject was given.
	NeedSubject bool
	// CanList reports whether the store lists across subjects.
	CanList bool
}

func (c *Console) sessionsPage(w http.ResponseWriter, r *http.Request, a *access) error {
	q := r.URL.Query()
	f := sessionFilter{
		Subject: strings.TrimSpace(q.Get("subject")), Tenant: strings.TrimSpace(q.Get("tenant")),
		Tier: q.Get("tier"), Status: q.Get("status"),
	}
	if f.Status == "" {
		f.Status = string(lapse.StatusActive)
	}
	status := lapse.Status(f.Status)
	if f.Status == "all" {
		status = ""
	}
	if !lapse.ValidListStatus(status) {
		return &pageError{http.StatusBadRequest, "Invalid filter", "Status must be active, expired, revoked or all."}
	}
	after, err := parseCursor(q.Get("after"))
	if err != nil {
		return err
	}
	v := &sessionsView{
		base: c.base(r, a, "Sessions", "sessions"), Filter: f,
		Tiers: c.tierNames(), Tenants: c.m.Policy().TenantNames(),
		Statuses: []string{"active", "expired", "revoked", "all"},
		Here:     r.URL.RequestURI(),
	}
	if a.who.Tenant != "" {
		v.Tenants = []string{a.who.Tenant} // no other tenant's name
	}
	_, v.CanList = c.m.Store().(lapse.SessionLister)
	v.Notice = notice(q)
	if !v.CanList && f.Subject == "" {
		v.NeedSubject = true
		c.render(w, http.StatusOK, "sessions", v)
		return nil
	}
	ctx, cancel := timeout(r)
	defer cancel()
	ss, err := c.managerOf(a, f.Subject, f.Tier).ListSessions(ctx, lapse.SessionQuery{
		Subject: f.Subject, Tenant: f.Tenant, Tier: f.Tier, Status: status, After: after, Limit: pageSize,
	})
	if err != nil {
		return err
	}
	v.Sessions = ss
	if len(ss) == pageSize {
		nq := f.query()
		nq.Set("after", formatCursor(ss[len(ss)-1].Cursor()))
		v.Next = Prefix + "sessions?" + nq.Encode()
	}
	c.render(w, http.StatusOK, "sessions", v)
	return nil
}

// managerOf returns the manager of the sessions a filter selects: the
// console's own for its tier or a subject in lapse's namespace (the
// platform's manager does not reach them), the platform's otherwise.
// Only a platform admin reaches the console's own sessions (other
// operators' addresses and clients, and the power to end them); anyone
// else gets the platform's manager, which has none of them.
func (c *Console) managerOf(a *access, subject, tier string) *lapse.Manager {
	if (lapse.ReservedSubject(subject) || tier == Tier) && a.seesOperators() {
		return c.own
	}
	return c.m
}

// seesOperators reports whether a may see and end other operators'
// console sessions: a platform admin.
func (a *access) seesOperators() bool { return a.who.Role.Allows(RoleAdmin) && a.who.Tenant == "" }

// sessionByID finds a session by id among the platform's and, for a
// platform admin, the console's own, and returns it with the manager
// that reaches it.
func (c *Console) sessionByID(ctx context.Context, a *access, id string) (*lapse.Session, *lapse.Manager, error) {
	s, err := c.m.Session(ctx, id)
	if lapse.ErrorCode(err) != lapse.CodeSessionNotFound || !a.seesOperators() {
		return s, c.m, err
	}
	s, err = c.own.Session(ctx, id)
	return s, c.own, err
}

// tierNames returns the platform's tiers and the console's own.
func (c *Console) tierNames() []string {
	return append(c.m.Policy().TierNames(), Tier)
}

// formatCursor and parseCursor write a listing position into a URL as
// "UNIXNANO.ID".
func formatCursor(cur lapse.SessionCursor) string {
	return strconv.FormatInt(cur.CreatedAt.UnixNano(), 10) + "." + cur.ID
}

func parseCursor(s string) (lapse.SessionCursor, error) {
	if s == "" {
		return lapse.SessionCursor{}, nil
	}
	ns, id, ok := strings.Cut(s, ".")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return lapse.SessionCursor{}, &pageError{http.StatusBadRequest, "Invalid page", "The page link is malformed; start again from the first page."}
	}
	return lapse.SessionCursor{CreatedAt: time.Unix(0, n).UTC(), ID: id}, nil
}

// notice returns the message of a completed action, from the query a
// redirect after the action added.
func notice(q url.Values) string {
	n, _ := strconv.Atoi(q.Get("n"))
	switch q.Get("notice") {
	case "revoked":
		if n == 1 {
			return "Revoked 1 session."
		}
		return fmt.Sprintf("Revoked %d sessions.", n)
	case "unchanged":
		return "The session had already ended; nothing changed."
	case "disabled":
		return fmt.Sprintf("The operator is disabled; %d of their console sessions ended.", n)
	case "key_revoked":
		return "The key is revoked."
	}
	return ""
}

// withNotice returns the console path back with a notice added.
func withNotice(back, kind string, n int) string {
	u, _ := url.Parse(back)
	q := u.Query()
	q.Del("after")
	q.Set("notice", kind)
	q.Set("n", strconv.Itoa(n))
	u.RawQuery = q.Encode()
	return u.RequestURI()
}

type sessionView struct {
	base
	S        *lapse.Session
	Events   []lapse.Event
	NoLog    bool
	Reasons  []lapse.Reason
	Here     string
	Metadata string
	// Binding is the device key the session is bound to (DBSC); nil when
	// it is not bound.
	Binding *lapse.DeviceBinding
	// Signals are the session's events of suspicious activity
	// (docs/signals.md), oldest first.
	Signals []lapse.Event
}

func (c *Console) sessionPage(w http.ResponseWriter, r *http.Request, a *access) error {
	ctx, cancel := timeout(r)
	defer cancel()
	s, _, err := c.sessionByID(ctx, a, r.PathValue("id"))
	if err != nil {
		return err
	}
	v := &sessionView{base: c.base(r, a, "Session "+s.ID, "sessions"), S: s, Reasons: lapse.RevokeReasons,
		Here: r.URL.Path, Metadata: string(s.Metadata)}
	v.Notice = notice(r.URL.Query())
	if b, ok := c.m.Store().(lapse.DeviceBinder); ok {
		if v.Binding, err = b.DeviceBinding(ctx, s.ID); err != nil {
			return err
		}
	}
	if log, ok := c.m.Store().(lapse.AuditLog); ok {
		if v.Events, err = log.QueryEvents(ctx, lapse.EventQuery{SessionID: s.ID, Limit: 1000}); err != nil {
			return err
		}
		for _, e := range v.Events {
			if slices.Contains(signalTypes, e.Type) || e.Type == lapse.EventRevoked && e.Reason == lapse.ReasonTheft {
				v.Signals = append(v.Signals, e)
			}
		}
	} else {
		v.NoLog = true
	}
	c.render(w, http.StatusOK, "session", v)
	return nil
}

// revokeReason reads the reason of a revoke form: admin unless the
// operator chose another revoke reason.
func revokeReason(r *http.Request) (lapse.Reason, error) {
	reason := lapse.Reason(r.PostFormValue("reason"))
	if reason == "" {
		return lapse.ReasonAdmin, nil
	}
	if !slices.Contains(lapse.RevokeReasons, reason) {
		return "", &pageError{http.StatusBadRequest, "Invalid reason", "Choose one of the listed reasons."}
	}
	return reason, nil
}

func (c *Console) revokeSession(w http.ResponseWriter, r *http.Request, a *access) error {
	reason, err := revokeReason(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	before, m, err := c.sessionByID(r.Context(), a, id)
	if err != nil {
		return err
	}
	back := localPath(r.PostFormValue("back"), Prefix+"sessions/"+url.PathEscape(id))
	if before.Status != lapse.StatusActive {
		http.Redirect(w, r, withNotice(back, "unchanged", 0), http.StatusSeeOther)
		return nil
	}
	s, err := m.End(r.Context(), id, reason, a.who.Actor)
	if err != nil {
		return err
	}
	kind, n := "revoked", 1
	if s.Status != lapse.StatusRevoked {
		kind, n = "unchanged", 0 // it lapsed just before: recorded as expired
	}
	http.Redirect(w, r, withNotice(back, kind, n), http.StatusSeeOther)
	return nil
}

type revokeSubjectView struct {
	base
	Subject    string
	Tenant     string
	AnyTenant  bool
	Sessions   []*lapse.Session
	Reasons    []lapse.Reason
	NeedLister bool
}

// subjectScope reads which of a subject's sessions a revoke-all form or
// link means: the subject's sessions in one tenant, or in every tenant.
func subjectScope(get func(string) string) (subject, tenant string, allTenants bool, err error) {
	subject = strings.TrimSpace(get("subject"))
	if subject == "" {
		return "", "", false, &pageError{http.StatusBadRequest, "No subject", "Name the subject whose sessions to revoke."}
	}
	return subject, strings.TrimSpace(get("tenant")), get("all_tenants") == "1", nil
}

// revokeSubjectPage asks the operator to confirm revoking every active
// session of a subject, listing them.
func (c *Console) revokeSubjectPage(w http.ResponseWriter, r *http.Request, a *access) error {
	subject, tenant, allTenants, err := subjectScope(r.URL.Query().Get)
	if err != nil {
		return err
	}
	ctx, cancel := timeout(r)
	defer cancel()
	q := lapse.SessionQuery{Subject: subject, Status: lapse.StatusActive, Limit: lapse.MaxListLimit}
	if !allTenants {
		q.Tenant = tenant
	}
	ss, err := c.managerOf(a, subject, "").ListSessions(ctx, q)
	if err != nil {
		return err
	}
	ss = slices.DeleteFunc(ss, func(s *lapse.Session) bool { return !allTenants && s.Tenant != tenant })
	v := &revokeSubjectView{base: c.base(r, a, "Revoke all sessions of "+subject, "sessions"),
		Subject: subject, Tenant: tenant, AnyTenant: allTenants, Sessions: ss, Reasons: lapse.RevokeReasons}
	c.render(w, http.StatusOK, "revoke-subject", v)
	return nil
}

func (c *Console) revokeSubject(w http.ResponseWriter, r *http.Request, a *access) error {
	subject, tenant, allTenants, err := subjectScope(r.PostFormValue)
	if err != nil {
		return err
	}
	reason, err := revokeReason(r)
	if err != nil {
		return err
	}
	n, err := c.managerOf(a, subject, "").EndMatching(r.Context(), lapse.Filter{Subject: subject, Tenant: tenant, AnyTenant: allTenants}, reason, a.who.Actor)
	if err != nil {
		return err
	}
	back := Prefix + "sessions?" + sessionFilter{Subject: subject, Status: "all"}.query().Encode()
	http.Redirect(w, r, withNotice(back, "revoked", n), http.StatusSeeOther)
	return nil
}
