package httpapi

import (
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/problem"
)

// The factor routes let an app enrol its users in lapse's built-in TOTP
// factor and manage it on their behalf, with the API key. Each change
// also carries the user's session token: enrolling needs a recent
// authentication and removing a recent AAL2 step-up (ASVS 5.0 7.5.1),
// and the token must be one of the subject's. Without a factor service
// (a store that keeps no factors) they answer 404 not_found.

// hasFactors answers 404 if the server has no factor service.
func (s *Server) hasFactors(w http.ResponseWriter, r *http.Request) bool {
	if s.factors == nil {
		s.writeProblem(w, r, problem.CodeNotFound, "this server has no built-in factors (its store keeps none)", nil)
		return false
	}
	return true
}

// subjectSession returns the session of token if it is valid and belongs
// to the subject of the path.
func (s *Server) subjectSession(w http.ResponseWriter, r *http.Request, token string) (*lapse.Session, bool) {
	if token == "" {
		s.writeProblem(w, r, lapse.CodeInvalid, "token is required: the subject's session token", nil)
		return nil, false
	}
	sess, err := s.m.Current(r.Context(), token)
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	if sess.Subject != r.PathValue("subject") {
		s.writeProblem(w, r, lapse.CodeInvalid, "the token's session belongs to another subject", nil)
		return nil, false
	}
	return &sess, true
}

// factorsResponse is what a subject has enrolled.
type factorsResponse struct {
	Subject string `json:"subject"`
	// Factors are those the subject can step up with now.
	Factors           []string   `json:"factors"`
	TOTP              *totpState `json:"totp"`
	RecoveryCodesLeft int        `json:"recovery_codes_left"`
	// Passkeys is how many passkeys the subject has.
	Passkeys int `json:"passkeys"`
}

type totpState struct {
	Confirmed   bool    `json:"confirmed"`
	EnrolledAt  string  `json:"enrolled_at"`
	ConfirmedAt *string `json:"confirmed_at"`
	LastUsedAt  *string `json:"last_used_at"`
}

// optTime formats t, or returns nil (JSON null) for the zero time.
func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := formatTime(t)
	return &s
}

func (s *Server) listFactors(w http.ResponseWriter, r *http.Request) {
	if !s.hasFactors(w, r) {
		return
	}
	subject := r.PathValue("subject")
	st, err := s.factors.Factors(r.Context(), subject)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := factorsResponse{Subject: subject, Factors: st.Available(), RecoveryCodesLeft: st.RecoveryCodes, Passkeys: st.Passkeys}
	if f := st.TOTP; f != nil {
		out.TOTP = &totpState{
			Confirmed:   f.Confirmed(),
			EnrolledAt:  formatTime(f.CreatedAt),
			ConfirmedAt: optTime(f.ConfirmedAt),
			LastUsedAt:  optTime(f.LastUsedAt),
		}
	}
	writeJSON(w, http.StatusOK, out)
}

type enrolRequest struct {
	Token   string `json:"token"`
	Account string `json:"account"`
	Issuer  string `json:"issuer"`
}

type enrolResponse struct {
	Secret    string `json:"secret"`
	URI       string `json:"uri"`
	QRPNG     string `json:"qr_png"`
	ConfirmBy string `json:"confirm_by"`
}

func (s *Server) enrolTOTP(w http.ResponseWriter, r *http.Request) {
	if !s.hasFactors(w, r) {
		return
	}
	var req enrolRequest
	if !s.decode(w, r, &req) {
		return
	}
	sess, ok := s.subjectSession(w, r, req.Token)
	if !ok {
		return
	}
	e, err := s.factors.EnrolTOTP(r.Context(), sess, lapse.TOTPParams{Account: req.Account, Issuer: req.Issuer})
	if err != nil {
		s.factorError(w, r, sess.Subject, err)
		return
	}
	writeJSON(w, http.StatusCreated, enrolResponse{
		Secret: e.Secret, URI: e.URI, QRPNG: base64.StdEncoding.EncodeToString(e.QRCode), ConfirmBy: formatTime(e.ConfirmBy),
	})
}

type confirmRequest struct {
	Token string `json:"token"`
	Code  string `json:"code"`
}

type recoveryCodesResponse struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

func (s *Server) confirmTOTP(w http.ResponseWriter, r *http.Request) {
	if !s.hasFactors(w, r) {
		return
	}
	var req confirmRequest
	if !s.decode(w, r, &req) {
		return
	}
	sess, ok := s.subjectSession(w, r, req.Token)
	if !ok {
		return
	}
	codes, err := s.factors.ConfirmTOTP(r.Context(), sess, req.Code)
	if err != nil {
		s.factorError(w, r, sess.Subject, err)
		return
	}
	writeJSON(w, http.StatusOK, recoveryCodesResponse{RecoveryCodes: codes})
}

type removeRequest struct {
	Token string `json:"token"`
}

func (s *Server) removeTOTP(w http.ResponseWriter, r *http.Request) {
	if !s.hasFactors(w, r) {
		return
	}
	var req removeRequest
	if !s.decode(w, r, &req) {
		return
	}
	sess, ok := s.subjectSession(w, r, req.Token)
	if !ok {
		return
	}
	if err := s.factors.RemoveTOTP(r.Context(), sess); err != nil {
		s.factorError(w, r, sess.Subject, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type credentialChangedRequest struct {
	Keep   string  `json:"keep"`
	Tenant *string `json:"tenant"`
}

// credentialChanged ends every other session of a subject whose password
// or factor changed (reason password_change, ASVS 5.0 7.4.3), keeping the
// caller's if asked: keep is its session id or token. A token that no
// longer opens a session keeps nothing, since there is nothing to keep.
func (s *Server) credentialChanged(w http.ResponseWriter, r *http.Request) {
	var req credentialChangedRequest
	if !s.decode(w, r, &req) {
		return
	}
	f := lapse.Filter{Subject: r.PathValue("subject"), AnyTenant: true}
	if req.Tenant != nil {
		f.Tenant, f.AnyTenant = *req.Tenant, false
	}
	if strings.HasPrefix(req.Keep, lapse.TokenPrefix) {
		sess, err := s.m.Current(r.Context(), req.Keep)
		switch lapse.ErrorCode(err) {
		case "":
			if sess.Subject != f.Subject {
				s.writeProblem(w, r, lapse.CodeInvalid, "keep names a session of another subject", nil)
				return
			}
			f.Except = sess.ID
		case lapse.CodeSessionNotFound, lapse.CodeSessionExpiredIdle, lapse.CodeSessionExpiredAbsolute, lapse.CodeSessionRevoked:
		default:
			s.writeError(w, r, err)
			return
		}
	} else {
		f.Except = req.Keep
	}
	n, err := s.m.EndMatching(r.Context(), f, lapse.ReasonPasswordChange, actor(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, revokedResponse{Revoked: n})
}
