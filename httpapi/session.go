package httpapi

import (
	"encoding/json"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/lapsehq/lapse"
)

// timeFormat is RFC 3339 in UTC with nanoseconds always written, so every
// time has the same shape.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeFormat)
}

// Session is the JSON form of a session.
type Session struct {
	ID              string          `json:"id"`
	Subject         string          `json:"subject"`
	Tenant          string          `json:"tenant"`
	Tier            string          `json:"tier"`
	AAL             int             `json:"aal"`
	AMR             []string        `json:"amr"`
	Status          lapse.Status    `json:"status"`
	EndReason       *lapse.Reason   `json:"end_reason"`
	CreatedAt       string          `json:"created_at"`
	LastActiveAt    string          `json:"last_active_at"`
	AuthenticatedAt string          `json:"authenticated_at"`
	IdleExpiresAt   string          `json:"idle_expires_at"`
	ExpiresAt       string          `json:"expires_at"`
	WarnAt          string          `json:"warn_at"`
	RemindAt        *string         `json:"remind_at"`
	EndedAt         *string         `json:"ended_at"`
	IP              string          `json:"ip"`
	UserAgent       string          `json:"user_agent"`
	Metadata        json.RawMessage `json:"metadata"`
}

// NewSession returns the JSON form of s. Its remind_at is created_at
// plus the tier's RemindAfter, when the session was given one: when the
// browser client suggests signing out of a long session.
func NewSession(s *lapse.Session) Session {
	out := Session{
		ID: s.ID, Subject: s.Subject, Tenant: s.Tenant, Tier: s.Tier, AAL: s.AAL, AMR: s.AMR, Status: s.Status,
		CreatedAt: formatTime(s.CreatedAt), LastActiveAt: formatTime(s.LastActiveAt),
		AuthenticatedAt: formatTime(s.AuthenticatedAt), IdleExpiresAt: formatTime(s.IdleExpiresAt),
		ExpiresAt: formatTime(s.ExpiresAt), WarnAt: formatTime(s.WarnAt),
		IP: s.IP, UserAgent: s.UserAgent, Metadata: s.Metadata,
	}
	if out.AMR == nil {
		out.AMR = []string{}
	}
	if len(out.Metadata) == 0 {
		out.Metadata = json.RawMessage(`{}`)
	}
	if s.Policy.RemindAfter > 0 {
		out.RemindAt = new(formatTime(s.CreatedAt.Add(s.Policy.RemindAfter)))
	}
	if s.Status != lapse.StatusActive {
		reason, ended := s.EndReason, formatTime(s.EndedAt)
		out.EndReason, out.EndedAt = &reason, &ended
	}
	return out
}

type createRequest struct {
	Subject   string          `json:"subject"`
	Tenant    string          `json:"tenant"`
	Tier      string          `json:"tier"`
	AAL       int             `json:"aal"`
	AMR       []string        `json:"amr"`
	IP        string          `json:"ip"`
	UserAgent string          `json:"user_agent"`
	Metadata  json.RawMessage `json:"metadata"`
}

type tokenResponse struct {
	Token   string  `json:"token"`
	Session Session `json:"session"`
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if !s.decode(w, r, &req) {
		return
	}
	if string(req.Metadata) == "null" {
		req.Metadata = nil
	}
	// Metadata is kept as sent; the decoder checks its syntax but not
	// its encoding, and JSON is UTF-8.
	if !utf8.Valid(req.Metadata) {
		s.writeProblem(w, r, lapse.CodeInvalid, "metadata must be UTF-8", nil)
		return
	}
	if req.Tenant == "" {
		req.Tenant = lapse.TenantOf(r.Context()) // a tenant's key creates in its tenant
	}
	tok, sess, err := s.m.Create(r.Context(), lapse.CreateParams{
		Subject: req.Subject, Tenant: req.Tenant, Tier: req.Tier, AAL: req.AAL, AMR: req.AMR,
		IP: req.IP, UserAgent: req.UserAgent, Metadata: req.Metadata,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, tokenResponse{Token: tok.Reveal(), Session: NewSession(sess)})
}

type verifyRequest struct {
	Token      string   `json:"token"`
	IP         string   `json:"ip"`
	UserAgent  string   `json:"user_agent"`
	Touch      *bool    `json:"touch"`
	RequireAAL int      `json:"require_aal"`
	MaxAuthAge Duration `json:"max_auth_age"`
}

type sessionResponse struct {
	Session Session `json:"session"`
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request) {
	var req verifyRequest
	if !s.decode(w, r, &req) {
		return
	}
	switch {
	case req.Token == "":
		s.writeProblem(w, r, lapse.CodeInvalid, "token is required", nil)
		return
	case req.RequireAAL < 0 || req.RequireAAL > 3:
		s.writeProblem(w, r, lapse.CodeInvalid, "require_aal must be 1, 2 or 3", nil)
		return
	}
	ctx, ok := s.bodyClient(w, r, req.IP, req.UserAgent)
	if !ok {
		return
	}
	sess, err := s.m.Verify(ctx, req.Token, lapse.VerifyOptions{
		NoTouch:    req.Touch != nil && !*req.Touch,
		RequireAAL: req.RequireAAL,
		MaxAuthAge: time.Duration(req.MaxAuthAge),
	})
	if err != nil {
		s.writeError(w, r, s.stepUpFactors(ctx, req.Token, err))
		return
	}
	writeSessionJSON(w, &sess)
}

type revokeRequest struct {
	Token string `json:"token"`
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	var req revokeRequest
	if !s.decode(w, r, &req) {
		return
	}
	if req.Token == "" {
		s.writeProblem(w, r, lapse.CodeInvalid, "token is required", nil)
		return
	}
	if err := s.m.Revoke(r.Context(), req.Token); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// byIDError answers an unknown session id with 404, not the 401 a verify
// of an unknown token gets: here the caller is authenticated and asks
// about a resource.
func (s *Server) byIDError(w http.ResponseWriter, r *http.Request, err error) {
	if lapse.ErrorCode(err) == lapse.CodeSessionNotFound {
		s.writeProblemStatus(w, r, http.StatusNotFound, lapse.CodeSessionNotFound, "no session with this id")
		return
	}
	s.writeError(w, r, err)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	sess, err := s.m.Session(r.Context(), r.PathValue("id"))
	if err != nil {
		s.byIDError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, NewSession(sess))
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	if _, err := s.m.End(r.Context(), r.PathValue("id"), lapse.ReasonAdmin, actor(r)); err != nil {
		s.byIDError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// subjectFilter reads the subject from the path and the optional tenant
// from the query: without one, every tenant's sessions match.
func subjectFilter(r *http.Request) lapse.Filter {
	f := lapse.Filter{Subject: r.PathValue("subject"), AnyTenant: true}
	if q := r.URL.Query(); q.Has("tenant") {
		f.Tenant, f.AnyTenant = q.Get("tenant"), false
	}
	return f
}

type sessionsResponse struct {
	Sessions []Session `json:"sessions"`
}

func (s *Server) listSubject(w http.ResponseWriter, r *http.Request) {
	f := subjectFilter(r)
	switch st := r.URL.Query().Get("status"); st {
	case "", "active":
	case "all":
		f.IncludeEnded = true
	default:
		s.writeProblem(w, r, lapse.CodeInvalid, "status must be active or all", nil)
		return
	}
	ss, err := s.m.Sessions(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := sessionsResponse{Sessions: make([]Session, 0, len(ss))}
	for _, sess := range ss {
		out.Sessions = append(out.Sessions, NewSession(sess))
	}
	writeJSON(w, http.StatusOK, out)
}

type revokedResponse struct {
	Revoked int `json:"revoked"`
}

func (s *Server) endSubject(w http.ResponseWriter, r *http.Request) {
	f := subjectFilter(r)
	q := r.URL.Query()
	f.Except = q.Get("except")
	reason := lapse.Reason(q.Get("reason"))
	switch reason {
	case "":
		reason = lapse.ReasonLogoutAll
	case lapse.ReasonLogoutAll, lapse.ReasonPasswordChange, lapse.ReasonAdmin, lapse.ReasonTheft:
	default:
		s.writeProblem(w, r, lapse.CodeInvalid, "reason must be logout_all, password_change, admin or theft", nil)
		return
	}
	n, err := s.m.EndMatching(r.Context(), f, reason, actor(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, revokedResponse{Revoked: n})
}
