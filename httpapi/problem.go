package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/lapsehq/lapse"
)

// Codes of errors that belong to HTTP rather than to the engine.
const (
	CodeMalformedJSON    lapse.Code = "malformed_json"
	CodeUnknownField     lapse.Code = "unknown_field"
	CodeBodyTooLarge     lapse.Code = "body_too_large"
	CodeInvalidDuration  lapse.Code = "invalid_duration"
	CodeUnauthorized     lapse.Code = "unauthorized"
	CodeNotFound         lapse.Code = "not_found"
	CodeMethodNotAllowed lapse.Code = "method_not_allowed"
	CodeCSRF             lapse.Code = "csrf_header_required"
	CodeTooManyStreams   lapse.Code = "too_many_streams"
)

// statuses maps every code to its HTTP status: the one table that does.
var statuses = map[lapse.Code]int{
	lapse.CodeSessionNotFound:        http.StatusUnauthorized,
	lapse.CodeSessionExpiredIdle:     http.StatusUnauthorized,
	lapse.CodeSessionExpiredAbsolute: http.StatusUnauthorized,
	lapse.CodeSessionRevoked:         http.StatusUnauthorized,
	lapse.CodeStepUpRequired:         http.StatusForbidden,
	lapse.CodeInvalid:                http.StatusBadRequest,
	lapse.CodeUnknownTier:            http.StatusBadRequest,
	lapse.CodeUnknownTenant:          http.StatusBadRequest,
	lapse.CodeConflict:               http.StatusConflict,
	lapse.CodeStoreUnavailable:       http.StatusServiceUnavailable,
	lapse.CodeInternal:               http.StatusInternalServerError,
	CodeMalformedJSON:                http.StatusBadRequest,
	CodeUnknownField:                 http.StatusBadRequest,
	CodeBodyTooLarge:                 http.StatusBadRequest,
	CodeInvalidDuration:              http.StatusBadRequest,
	CodeUnauthorized:                 http.StatusUnauthorized,
	CodeNotFound:                     http.StatusNotFound,
	CodeMethodNotAllowed:             http.StatusMethodNotAllowed,
	CodeCSRF:                         http.StatusForbidden,
	lapse.CodeFactorNotFound:         http.StatusNotFound,
	lapse.CodeRejected:               http.StatusForbidden,
	lapse.CodeReused:                 http.StatusForbidden,
	lapse.CodeTooManyAttempts:        http.StatusTooManyRequests,
	CodeTooManyStreams:               http.StatusTooManyRequests,
}

// Problem is an RFC 9457 problem document with lapse's stable code.
type Problem struct {
	Type   string     `json:"type"`
	Title  string     `json:"title"`
	Status int        `json:"status"`
	Detail string     `json:"detail"`
	Code   lapse.Code `json:"code"`
	// Set with step_up_required: what the session lacks.
	RequiredAAL     int    `json:"required_aal,omitempty"`
	MaxAuthAge      string `json:"max_auth_age,omitempty"`
	AAL             int    `json:"aal,omitempty"`
	AuthenticatedAt string `json:"authenticated_at,omitempty"`
	// Factors the subject can step up with, when the server has built-in
	// factors: an empty list means none.
	Factors []string `json:"factors,omitzero"`
	// Set with session_revoked, session_expired_idle and
	// session_expired_absolute: why the session ended, so that a client
	// without the event stream can say so.
	EndReason lapse.Reason `json:"end_reason,omitempty"`
}

// ProblemType returns the type URI of a code.
func ProblemType(c lapse.Code) string { return "urn:lapse:problem:" + string(c) }

// writeError answers with err as problem+json. Internal causes are logged
// and never sent; messages of lapse errors never hold a token.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := lapse.ErrorCode(err)
	s.writeProblem(w, r, code, lapse.ErrorMessage(err), err)
}

func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, code lapse.Code, detail string, cause error) {
	s.writeProblemCause(w, r, Status(code), code, detail, cause)
}

// writeProblemStatus answers with a status other than the code's usual one.
func (s *Server) writeProblemStatus(w http.ResponseWriter, r *http.Request, status int, code lapse.Code, detail string) {
	s.writeProblemCause(w, r, status, code, detail, nil)
}

func (s *Server) writeProblemCause(w http.ResponseWriter, r *http.Request, status int, code lapse.Code, detail string, cause error) {
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", cause)
	}
	p := Problem{Type: ProblemType(code), Title: http.StatusText(status), Status: status, Detail: detail, Code: code}
	var le *lapse.Error
	if errors.As(cause, &le) {
		p.EndReason = le.Reason
		if req := le.Requirement; req != nil {
			p.RequiredAAL, p.AAL = req.RequiredAAL, req.AAL
			if req.MaxAuthAge > 0 {
				p.MaxAuthAge = req.MaxAuthAge.String()
			}
			p.AuthenticatedAt = formatTime(req.AuthenticatedAt)
		}
	}
	var fe *factorsError
	if errors.As(cause, &fe) {
		p.Factors = fe.factors
	}
	if status == http.StatusUnauthorized && code == CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lapse"`)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(1))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(p)
}

// Status returns the HTTP status lapse answers a code with.
func Status(c lapse.Code) int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}
