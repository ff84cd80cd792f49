package httpapi

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/lapsehq/lapse"
)

// Step-up: a session raises its assurance after a further factor, either
// one the app verified itself (POST /v1/sessions/step-up) or lapse's own
// TOTP factor (POST /v1/sessions/step-up/totp). Either way the session
// gets a new token; the old one keeps verifying for lapse.RotateGrace so
// that requests already in flight with it do not fail.

type stepUpRequest struct {
	Token     string   `json:"token"`
	IP        string   `json:"ip"`
	UserAgent string   `json:"user_agent"`
	AAL       int      `json:"aal"`
	AMR       []string `json:"amr"`
}

// stepUp records a fresh authentication the app verified itself (its own
// MFA, a passkey, a password prompt) at the given AAL and methods.
func (s *Server) stepUp(w http.ResponseWriter, r *http.Request) {
	var req stepUpRequest
	if !s.decode(w, r, &req) {
		return
	}
	switch {
	case req.Token == "":
		s.writeProblem(w, r, lapse.CodeInvalid, "token is required", nil)
		return
	case req.AAL < 1 || req.AAL > 3:
		s.writeProblem(w, r, lapse.CodeInvalid, "aal is required: 1, 2 or 3", nil)
		return
	case len(req.AMR) > lapse.MaxAMR:
		s.writeProblem(w, r, lapse.CodeInvalid, "amr lists at most "+strconv.Itoa(lapse.MaxAMR)+" methods", nil)
		return
	}
	for _, m := range req.AMR {
		if m == "" || len(m) > 32 || !printableText(m) {
			s.writeProblem(w, r, lapse.CodeInvalid, "each amr entry is 1-32 printable characters", nil)
			return
		}
	}
	ctx, ok := s.bodyClient(w, r, req.IP, req.UserAgent)
	if !ok {
		return
	}
	tok, sess, err := s.m.StepUp(ctx, req.Token, req.AAL, req.AMR, actor(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{Token: tok.Reveal(), Session: NewSession(sess)})
}

func printableText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

type totpStepUpRequest struct {
	Token     string `json:"token"`
	Code      string `json:"code"`
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
}

// stepUpTOTP steps a session up with a code from the subject's
// authenticator app, or one of its recovery codes.
func (s *Server) stepUpTOTP(w http.ResponseWriter, r *http.Request) {
	if !s.hasFactors(w, r) {
		return
	}
	var req totpStepUpRequest
	if !s.decode(w, r, &req) {
		return
	}
	if req.Token == "" || req.Code == "" {
		s.writeProblem(w, r, lapse.CodeInvalid, "token and code are required", nil)
		return
	}
	ctx, ok := s.bodyClient(w, r, req.IP, req.UserAgent)
	if !ok {
		return
	}
	tok, sess, err := lapse.StepUpWithFactor(ctx, s.m, s.factors, req.Token, req.Code, actor(r))
	if err != nil {
		s.factorError(w, r, "", err)
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{Token: tok.Reveal(), Session: NewSession(sess)})
}

// factorsError is a step_up_required error with the factors the subject
// can step up with, for the problem's "factors" member.
type factorsError struct {
	error
	factors []string
}

func (e *factorsError) Unwrap() error { return e.error }

// withFactors adds the subject's factors to a step_up_required error. If
// there is no factor service, or it fails, err is returned as it is: the
// problem then has no "factors", which says "unknown", not "none".
func (s *Server) withFactors(ctx context.Context, subject string, err error) error {
	if s.factors == nil || lapse.ErrorCode(err) != lapse.CodeStepUpRequired {
		return err
	}
	st, ferr := s.factors.Factors(ctx, subject)
	if ferr != nil {
		return err
	}
	return &factorsError{error: err, factors: st.Available()}
}

// stepUpFactors adds the factors of token's subject to a step_up_required
// error from a verify. It is called only when a verify failed that way,
// so a successful verify never pays for the lookup; the session itself
// is then usually in the manager's cache.
func (s *Server) stepUpFactors(ctx context.Context, token string, err error) error {
	if s.factors == nil || lapse.ErrorCode(err) != lapse.CodeStepUpRequired {
		return err
	}
	sess, cerr := s.m.Current(ctx, token)
	if cerr != nil {
		return err
	}
	return s.withFactors(ctx, sess.Subject, err)
}

// factorError answers an error of a factor route: a step_up_required
// error gets subject's factors ("" for the session's own subject, already
// looked up by the caller or not needed), too_many_attempts gets a
// Retry-After.
func (s *Server) factorError(w http.ResponseWriter, r *http.Request, subject string, err error) {
	if subject != "" {
		err = s.withFactors(r.Context(), subject, err)
	}
	var retry *lapse.RetryError
	if errors.As(err, &retry) {
		secs := math.Ceil(retry.At.Sub(s.m.Clock().Now()).Seconds())
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(secs))))
	}
	s.writeError(w, r, err)
}
