// Package problem answers lapse's errors over HTTP as RFC 9457 problem
// documents (application/problem+json). It holds the one table from
// error codes to HTTP statuses and the one writer, used by the JSON API
// (httpapi), the Go middleware (middleware), the forward-auth gateway
// (forwardauth) and the operator's console (console), so that a code is
// answered with the same status wherever it comes from.
package problem

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

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
	// CodeTooManyStreams refuses an event stream past the caps per
	// session or per node.
	CodeTooManyStreams lapse.Code = "too_many_streams"
	// CodeCSRFHeader refuses a cookie-authenticated POST to the session's
	// own routes without the X-Lapse-CSRF header.
	CodeCSRFHeader lapse.Code = "csrf_header_required"
	// CodeCrossOrigin refuses a state-changing request a browser marked
	// as coming from another site.
	CodeCrossOrigin lapse.Code = "cross_origin_request"
	// CodeCSRFToken refuses a state-changing request without the
	// session's CSRF token.
	CodeCSRFToken lapse.Code = "csrf_token_invalid"
	// CodeTierRequired: a forward-auth route's tier floor is stricter
	// than the session's tier; a step-up cannot change a tier.
	CodeTierRequired lapse.Code = "tier_required"
	// CodeUntrustedProxy: the caller of a forward-auth endpoint is not a
	// trusted proxy, or sent no valid proxy key.
	CodeUntrustedProxy lapse.Code = "untrusted_proxy"
	// CodeNoOriginalRequest: the proxy did not say which request it asks
	// about (no X-Forwarded-Uri or X-Original-URI), or sent one that is
	// not a request target: a proxy configuration error.
	CodeNoOriginalRequest lapse.Code = "original_request_missing"
	// CodeInsufficientScope: the API key is valid but lacks the scope the
	// route needs (RFC 6750, section 3.1); the problem names the scope.
	CodeInsufficientScope lapse.Code = "insufficient_scope"
	// CodeUnsupportedMediaType: a JSON route was sent a body that is not
	// labelled application/json.
	CodeUnsupportedMediaType lapse.Code = "unsupported_media_type"
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
	lapse.CodeFactorNotFound:         http.StatusNotFound,
	lapse.CodeRejected:               http.StatusForbidden,
	lapse.CodeReused:                 http.StatusForbidden,
	lapse.CodeTooManyAttempts:        http.StatusTooManyRequests,
	lapse.CodeChallengeInvalid:       http.StatusForbidden,
	lapse.CodePasskeyRejected:        http.StatusForbidden,
	lapse.CodeSignCountRegressed:     http.StatusForbidden,
	lapse.CodeDeviceUnbound:          http.StatusUnauthorized,
	lapse.CodeDeviceProofRequired:    http.StatusUnauthorized,
	lapse.CodeDeviceProofInvalid:     http.StatusForbidden,
	CodeMalformedJSON:                http.StatusBadRequest,
	CodeUnknownField:                 http.StatusBadRequest,
	CodeBodyTooLarge:                 http.StatusBadRequest,
	CodeInvalidDuration:              http.StatusBadRequest,
	CodeUnauthorized:                 http.StatusUnauthorized,
	CodeNotFound:                     http.StatusNotFound,
	CodeMethodNotAllowed:             http.StatusMethodNotAllowed,
	CodeTooManyStreams:               http.StatusTooManyRequests,
	CodeCSRFHeader:                   http.StatusForbidden,
	CodeCrossOrigin:                  http.StatusForbidden,
	CodeCSRFToken:                    http.StatusForbidden,
	CodeTierRequired:                 http.StatusForbidden,
	CodeUntrustedProxy:               http.StatusForbidden,
	CodeNoOriginalRequest:            http.StatusForbidden,
	CodeInsufficientScope:            http.StatusForbidden,
	CodeUnsupportedMediaType:         http.StatusUnsupportedMediaType,
	lapse.CodeKeyNotFound:            http.StatusNotFound,
}

// Status returns the HTTP status lapse answers a code with: 500 for a
// code it does not know.
func Status(c lapse.Code) int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Codes returns every code of the table, sorted.
func Codes() []lapse.Code {
	return slices.Sorted(maps.Keys(statuses))
}

// Type returns the type URI of a code.
func Type(c lapse.Code) string { return "urn:lapse:problem:" + string(c) }

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
	// Set with a step_up_required that a change of client caused (a
	// tier whose client_drift is step_up): network_changed,
	// browser_changed or platform_changed.
	Reason lapse.Reason `json:"reason,omitempty"`
	// RetryAfter, with a 429, is how long the caller should wait; Write
	// sends it as Retry-After.
	RetryAfter time.Duration `json:"-"`
	// Set with insufficient_scope: the scope the route needs.
	Scope lapse.Scope `json:"scope,omitempty"`
}

// TimeFormat is how lapse writes times in JSON: RFC 3339 in UTC with
// nine fractional digits, so that times sort as strings.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// New returns the problem document of code, answered with status (0
// means [Status] of the code) and detail, with what cause tells of it: an
// ended session's reason and a step-up's requirement, from a
// [*lapse.Error] in cause's chain.
func New(status int, code lapse.Code, detail string, cause error) *Problem {
	if status == 0 {
		status = Status(code)
	}
	p := &Problem{Type: Type(code), Title: http.StatusText(status), Status: status, Detail: detail, Code: code}
	var le *lapse.Error
	if errors.As(cause, &le) {
		if code == lapse.CodeStepUpRequired {
			p.Reason = le.Reason
		} else {
			p.EndReason = le.Reason
		}
		p.RetryAfter = le.RetryAfter
		if req := le.Requirement; req != nil {
			p.RequiredAAL, p.AAL = req.RequiredAAL, req.AAL
			if req.MaxAuthAge > 0 {
				p.MaxAuthAge = req.MaxAuthAge.String()
			}
			p.AuthenticatedAt = formatTime(req.AuthenticatedAt)
		}
	}
	return p
}

// FromError returns the problem document of err: its code's status, and
// its message as the detail, which never holds a token or an internal
// cause.
func FromError(err error) *Problem {
	return New(0, lapse.ErrorCode(err), lapse.ErrorMessage(err), err)
}

// Write answers with p. A 401 carries the WWW-Authenticate challenge RFC
// 9110 requires, unless the caller set one (error="invalid_token" when a
// session token was refused), a 503 or 429 a Retry-After unless set, and every problem Cache-Control: no-store
// and X-Content-Type-Options: nosniff.
func Write(w http.ResponseWriter, p *Problem) {
	h := w.Header()
	switch p.Status {
	case http.StatusUnauthorized:
		if h.Get("WWW-Authenticate") == "" {
			challenge := `Bearer realm="lapse"`
			if p.Code != CodeUnauthorized {
				challenge += `, error="invalid_token"`
			}
			h.Set("WWW-Authenticate", challenge)
		}
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		if p.RetryAfter > 0 {
			h.Set("Retry-After", strconv.Itoa(int((p.RetryAfter+time.Second-1)/time.Second)))
		} else if h.Get("Retry-After") == "" {
			h.Set("Retry-After", strconv.Itoa(1))
		}
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeFormat)
}
