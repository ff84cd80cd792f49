package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/problem"
)

type auditResponse struct {
	Events []lapse.Event `json:"events"`
	// NextAfter is the value of "after" that reads the next page, or null
	// on the last page.
	NextAfter *int64 `json:"next_after"`
}

// eventTypes are the types an audit query may select.
var eventTypes = []lapse.EventType{lapse.EventCreated, lapse.EventExtended, lapse.EventSteppedUp,
	lapse.EventRotated, lapse.EventExpired, lapse.EventRevoked, lapse.EventExpiringSoon, lapse.EventKeyRejected,
	lapse.EventDeviceBound, lapse.EventTheftSuspected,
	lapse.EventClientChanged, lapse.EventNewDevice, lapse.EventTokenReused, lapse.EventTokenGuessing,
	lapse.EventKeyCreated, lapse.EventKeyRevoked,
	lapse.EventOperatorSignedIn, lapse.EventOperatorSignedOut, lapse.EventOperatorSignInFailed, lapse.EventOperatorChanged}

// audit reads the audit log with the filters of lapse audit log:
// subject, tenant, session, type (comma-separated), since and until
// (RFC 3339), after (a seq) and limit (1-1000, default 100). An unknown
// type is refused rather than matching nothing, so that a typo cannot
// pass for an empty log.
func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	log, ok := s.m.Store().(lapse.AuditLog)
	if !ok {
		s.writeProblem(w, r, problem.CodeNotFound, "this store keeps no audit log", nil)
		return
	}
	eq, err := eventQuery(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if t := lapse.TenantOf(r.Context()); t != "" {
		if eq.Tenant != "" && eq.Tenant != t {
			writeJSON(w, http.StatusOK, auditResponse{Events: []lapse.Event{}}) // as for a tenant with no events
			return
		}
		eq.Tenant = t // a tenant's key reads its tenant's events only
	}
	evs, err := log.QueryEvents(r.Context(), eq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := auditResponse{Events: evs}
	if out.Events == nil {
		out.Events = []lapse.Event{}
	}
	if len(evs) == eq.Limit {
		next := evs[len(evs)-1].Seq
		out.NextAfter = &next
	}
	writeJSON(w, http.StatusOK, out)
}

// eventQuery reads the filters of GET /v1/audit, failing with
// [lapse.CodeInvalid] for one it cannot read.
func eventQuery(q url.Values) (lapse.EventQuery, error) {
	eq := lapse.EventQuery{Subject: q.Get("subject"), Tenant: q.Get("tenant"), SessionID: q.Get("session"), Actor: q.Get("actor"), Limit: 100}
	if t := q.Get("type"); t != "" {
		for typ := range strings.SplitSeq(t, ",") {
			if !slices.Contains(eventTypes, lapse.EventType(typ)) {
				return eq, lapse.Errorf(lapse.CodeInvalid, "type must be a comma-separated list of event types such as session.revoked")
			}
			eq.Types = append(eq.Types, lapse.EventType(typ))
		}
	}
	var err error
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &eq.Since}, {"until", &eq.Until}} {
		if v := q.Get(p.name); v != "" {
			if *p.dst, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return eq, lapse.Errorf(lapse.CodeInvalid, "%s must be an RFC 3339 time", p.name)
			}
		}
	}
	if v := q.Get("after"); v != "" {
		if eq.After, err = strconv.ParseInt(v, 10, 64); err != nil || eq.After < 0 {
			return eq, lapse.Errorf(lapse.CodeInvalid, "after must be a record's seq")
		}
	}
	if v := q.Get("limit"); v != "" {
		if eq.Limit, err = strconv.Atoi(v); err != nil || eq.Limit < 1 || eq.Limit > 1000 {
			return eq, lapse.Errorf(lapse.CodeInvalid, "limit must be 1 to 1000")
		}
	}
	return eq, nil
}
