package problem_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/problem"
)

func TestStatusIsOneTable(t *testing.T) {
	for code, want := range map[lapse.Code]int{
		lapse.CodeSessionRevoked:   http.StatusUnauthorized,
		lapse.CodeStepUpRequired:   http.StatusForbidden,
		lapse.CodeTooManyAttempts:  http.StatusTooManyRequests,
		lapse.CodeStoreUnavailable: http.StatusServiceUnavailable,
		problem.CodeCSRFToken:      http.StatusForbidden,
		problem.CodeCrossOrigin:    http.StatusForbidden,
		"no_such_code":             http.StatusInternalServerError,
	} {
		if got := problem.Status(code); got != want {
			t.Errorf("Status(%s) = %d, want %d", code, got, want)
		}
	}
}

func TestWrite(t *testing.T) {
	write := func(p *problem.Problem, preset http.Header) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		for k, v := range preset {
			w.Header()[k] = v
		}
		problem.Write(w, p)
		return w
	}
	t.Run("every_401_has_a_challenge", func(t *testing.T) {
		for code, want := range map[lapse.Code]string{
			problem.CodeUnauthorized:     `Bearer realm="lapse"`,
			lapse.CodeSessionRevoked:     `Bearer realm="lapse", error="invalid_token"`,
			lapse.CodeSessionNotFound:    `Bearer realm="lapse", error="invalid_token"`,
			lapse.CodeSessionExpiredIdle: `Bearer realm="lapse", error="invalid_token"`,
		} {
			w := write(problem.New(0, code, "x", nil), nil)
			if got := w.Header().Get("WWW-Authenticate"); w.Code != 401 || got != want {
				t.Errorf("%s: %d with WWW-Authenticate %q, want 401 with %q", code, w.Code, got, want)
			}
		}
		w := write(problem.New(0, lapse.CodeSessionRevoked, "x", nil), http.Header{"Www-Authenticate": {`Bearer realm="mine"`}})
		if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="mine"` {
			t.Errorf("a challenge the caller set became %q", got)
		}
	})
	t.Run("headers_and_body", func(t *testing.T) {
		at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
		cause := &lapse.Error{Code: lapse.CodeStepUpRequired, Message: "more", Requirement: &lapse.Requirement{RequiredAAL: 2, AAL: 1, MaxAuthAge: time.Minute, AuthenticatedAt: at}}
		w := write(problem.FromError(cause), nil)
		h := w.Header()
		if w.Code != 403 || h.Get("Content-Type") != "application/problem+json" || h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("answer %d with headers %v", w.Code, h)
		}
		var p problem.Problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		want := problem.Problem{Type: "urn:lapse:problem:step_up_required", Title: "Forbidden", Status: 403, Detail: "more", Code: lapse.CodeStepUpRequired,
			RequiredAAL: 2, AAL: 1, MaxAuthAge: "1m0s", AuthenticatedAt: "2026-01-02T03:04:05.000000006Z"}
		if p.Type != want.Type || p.Title != want.Title || p.Status != want.Status || p.Detail != want.Detail || p.Code != want.Code ||
			p.RequiredAAL != 2 || p.AAL != 1 || p.MaxAuthAge != want.MaxAuthAge || p.AuthenticatedAt != want.AuthenticatedAt {
			t.Errorf("problem %+v, want %+v", p, want)
		}
	})
	t.Run("ended_session_says_why", func(t *testing.T) {
		cause := fmt.Errorf("wrapped: %w", &lapse.Error{Code: lapse.CodeSessionRevoked, Message: "revoked", Reason: lapse.ReasonAdmin})
		if p := problem.FromError(cause); p.EndReason != lapse.ReasonAdmin || p.Status != 401 {
			t.Errorf("problem %+v, want 401 with end_reason admin", p)
		}
	})
	t.Run("retry_after", func(t *testing.T) {
		if w := write(problem.New(0, lapse.CodeStoreUnavailable, "x", errors.New("down")), nil); w.Header().Get("Retry-After") != "1" {
			t.Errorf("503 without Retry-After: %v", w.Header())
		}
		if w := write(problem.New(0, lapse.CodeTooManyAttempts, "x", nil), http.Header{"Retry-After": {"30"}}); w.Header().Get("Retry-After") != "30" {
			t.Errorf("a Retry-After the caller set became %q", w.Header().Get("Retry-After"))
		}
	})
}
