package httpapi

import (
	"errors"
	"net/http"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/problem"
)

// writeError answers with err as problem+json. Internal causes are logged
// and never sent; messages of lapse errors never hold a token.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	s.writeProblemCause(w, r, 0, lapse.ErrorCode(err), lapse.ErrorMessage(err), err)
}

func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, code lapse.Code, detail string, cause error) {
	s.writeProblemCause(w, r, 0, code, detail, cause)
}

// writeProblemStatus answers with a status other than the code's usual one.
func (s *Server) writeProblemStatus(w http.ResponseWriter, r *http.Request, status int, code lapse.Code, detail string) {
	s.writeProblemCause(w, r, status, code, detail, nil)
}

// writeProblemCause answers with the problem of code at status (0: the
// code's own), adding the factors a step-up may use when cause has them.
func (s *Server) writeProblemCause(w http.ResponseWriter, r *http.Request, status int, code lapse.Code, detail string, cause error) {
	p := problem.New(status, code, detail, cause)
	if p.Status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", cause)
	}
	var fe *factorsError
	if errors.As(cause, &fe) {
		p.Factors = fe.factors
	}
	problem.Write(w, p)
}
