package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/problem"
)

// The passkey routes are session routes: the browser calls them itself,
// authenticated like the other /v1/session routes (the session cookie
// with X-Lapse-CSRF on a POST, or a bearer token), with no API key. The
// holder of a session registers, lists, renames and removes its
// subject's passkeys, and steps up with one: the options route starts a
// ceremony (a challenge kept in the store, for this session), the
// browser's navigator.credentials answers it, and the response goes to
// the ceremony's own route. web/static/lapse-passkey.js does the
// browser's part. Without a passkey service they answer 404.

// hasPasskeys answers 404 if the server has no passkey service.
func (s *Server) hasPasskeys(w http.ResponseWriter, r *http.Request) bool {
	if s.passkeys == nil {
		s.writeProblem(w, r, problem.CodeNotFound, "this server has no passkeys (configure a relying party)", nil)
		return false
	}
	return true
}

// passkeySession authenticates a passkey route: the request's session,
// which must be the one of its current token (a token a step-up already
// replaced is refused, even inside its grace), and whether the token
// came from the cookie.
func (s *Server) passkeySession(w http.ResponseWriter, r *http.Request) (tok string, sess *lapse.Session, fromCookie, ok bool) {
	if !s.hasPasskeys(w, r) {
		return "", nil, false, false
	}
	if tok, ok = s.session(w, r); !ok {
		return "", nil, false, false
	}
	_, fromCookie = s.sessionToken(r)
	cur, err := s.m.Current(r.Context(), tok)
	if err == nil && cur.TokenHash != lapse.Token(tok).Hash() {
		err = lapse.Errorf(lapse.CodeSessionNotFound, "this token was already replaced by a step-up")
	}
	if err != nil {
		s.sessionError(w, r, err)
		return "", nil, false, false
	}
	return tok, &cur, fromCookie, true
}

// passkeyError answers an error of a passkey route: a step_up_required
// error gets the subject's factors, too_many_attempts a Retry-After, a
// 401 the session's challenge.
func (s *Server) passkeyError(w http.ResponseWriter, r *http.Request, subject string, err error) {
	err = s.withFactors(r.Context(), subject, err)
	var retry *lapse.RetryError
	if errors.As(err, &retry) {
		secs := math.Ceil(retry.At.Sub(s.m.Clock().Now()).Seconds())
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(secs))))
	}
	s.sessionError(w, r, err)
}

// decodeCredential reads the body of a passkey route into req, and
// checks that it carries the browser's credential, at cred.
func (s *Server) decodeCredential(w http.ResponseWriter, r *http.Request, req any, cred *json.RawMessage) bool {
	if !s.decode(w, r, req) {
		return false
	}
	if len(*cred) == 0 {
		s.writeProblem(w, r, lapse.CodeInvalid, "credential is required: the PublicKeyCredential the browser returned", nil)
		return false
	}
	return true
}

// Passkey is a passkey as the API shows it.
type Passkey struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	CreatedAt  string  `json:"created_at"`
	LastUsedAt *string `json:"last_used_at"`
	// Synced: the authenticator may copy the key to the user's other
	// devices (backup eligible); BackedUp: it has.
	Synced   bool `json:"synced"`
	BackedUp bool `json:"backed_up"`
}

func newPasskey(p *lapse.Passkey) Passkey {
	return Passkey{ID: p.ID, Name: p.Name, CreatedAt: formatTime(p.CreatedAt), LastUsedAt: optTime(p.LastUsedAt),
		Synced: p.BackupEligible, BackedUp: p.BackupState}
}

type passkeysResponse struct {
	Passkeys []Passkey `json:"passkeys"`
}

func (s *Server) listPasskeys(w http.ResponseWriter, r *http.Request) {
	_, sess, _, ok := s.passkeySession(w, r)
	if !ok {
		return
	}
	keys, err := s.passkeys.Passkeys(r.Context(), sess.Subject)
	if err != nil {
		s.passkeyError(w, r, sess.Subject, err)
		return
	}
	out := passkeysResponse{Passkeys: make([]Passkey, len(keys))}
	for i, p := range keys {
		out.Passkeys[i] = newPasskey(p)
	}
	writeJSON(w, http.StatusOK, out)
}

// writeOptions answers with the options of a ceremony, as the library
// made them.
func writeOptions(w http.ResponseWriter, opts []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header()["X-Content-Type-Options"] = nosniff
	w.Write(opts)
}

// passkeyOptions is a route that begins a ceremony for the request's
// session and answers with its options.
func passkeyOptions(begin func(lapse.PasskeyService, context.Context, *lapse.Session) ([]byte, error)) func(*Server, http.ResponseWriter, *http.Request) {
	return func(s *Server, w http.ResponseWriter, r *http.Request) {
		_, sess, _, ok := s.passkeySession(w, r)
		if !ok {
			return
		}
		opts, err := begin(s.passkeys, r.Context(), sess)
		if err != nil {
			s.passkeyError(w, r, sess.Subject, err)
			return
		}
		writeOptions(w, opts)
	}
}

var (
	// routePasskeyRegistrationOptions begins a registration.
	routePasskeyRegistrationOptions = passkeyOptions(lapse.PasskeyService.RegistrationOptions)
	// routePasskeyStepUpOptions begins a step-up.
	routePasskeyStepUpOptions = passkeyOptions(lapse.PasskeyService.StepUpOptions)
)

type registerPasskeyRequest struct {
	// Credential is the PublicKeyCredential navigator.credentials.create()
	// returned, as JSON (its toJSON()).
	Credential json.RawMessage `json:"credential"`
	Name       string          `json:"name"`
	// EndOthers ends the subject's other sessions, in every tenant, with
	// reason password_change: a factor changed (ASVS 5.0 7.4.3).
	EndOthers bool `json:"end_others"`
}

type registeredResponse struct {
	Passkey Passkey `json:"passkey"`
	// Ended is how many other sessions end_others ended.
	Ended int `json:"ended"`
}

func (s *Server) registerPasskey(w http.ResponseWriter, r *http.Request) {
	_, sess, _, ok := s.passkeySession(w, r)
	if !ok {
		return
	}
	var req registerPasskeyRequest
	if !s.decodeCredential(w, r, &req, &req.Credential) {
		return
	}
	p, err := s.passkeys.Register(r.Context(), sess, req.Credential, req.Name)
	if err != nil {
		s.passkeyError(w, r, sess.Subject, err)
		return
	}
	out := registeredResponse{Passkey: newPasskey(p)}
	if req.EndOthers {
		if out.Ended, err = s.endOthers(r, sess); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusCreated, out)
}

// endOthers ends every other session of sess's subject: its factors
// changed.
func (s *Server) endOthers(r *http.Request, sess *lapse.Session) (int, error) {
	return s.m.EndMatching(r.Context(), lapse.Filter{Subject: sess.Subject, AnyTenant: true, Except: sess.ID},
		lapse.ReasonPasswordChange, lapse.ActorSubject)
}

type renamePasskeyRequest struct {
	Name string `json:"name"`
}

type passkeyResponse struct {
	Passkey Passkey `json:"passkey"`
}

func (s *Server) renamePasskey(w http.ResponseWriter, r *http.Request) {
	_, sess, _, ok := s.passkeySession(w, r)
	if !ok {
		return
	}
	var req renamePasskeyRequest
	if !s.decode(w, r, &req) {
		return
	}
	id := r.PathValue("id")
	if err := s.passkeys.Rename(r.Context(), sess, id, req.Name); err != nil {
		s.passkeyError(w, r, sess.Subject, err)
		return
	}
	keys, err := s.passkeys.Passkeys(r.Context(), sess.Subject)
	if err != nil {
		s.passkeyError(w, r, sess.Subject, err)
		return
	}
	for _, p := range keys {
		if p.ID == id {
			writeJSON(w, http.StatusOK, passkeyResponse{Passkey: newPasskey(p)})
			return
		}
	}
	s.writeProblem(w, r, lapse.CodeFactorNotFound, "the passkey was removed meanwhile", nil)
}

type removePasskeyRequest struct {
	EndOthers bool `json:"end_others"`
}

type endedResponse struct {
	Ended int `json:"ended"`
}

func (s *Server) removePasskey(w http.ResponseWriter, r *http.Request) {
	_, sess, _, ok := s.passkeySession(w, r)
	if !ok {
		return
	}
	var req removePasskeyRequest
	if !s.decode(w, r, &req) {
		return
	}
	if err := s.passkeys.Remove(r.Context(), sess, r.PathValue("id")); err != nil {
		s.passkeyError(w, r, sess.Subject, err)
		return
	}
	var out endedResponse
	if req.EndOthers {
		var err error
		if out.Ended, err = s.endOthers(r, sess); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

type passkeyStepUpRequest struct {
	// Credential is the PublicKeyCredential navigator.credentials.get()
	// returned, as JSON.
	Credential json.RawMessage `json:"credential"`
}

// steppedUpResponse is the session after a passkey step-up, with the
// server's time; with a bearer token, the new token too. A cookie is
// replaced in the response instead, and the token never sent to a
// script.
type steppedUpResponse struct {
	Token   string  `json:"token,omitempty"`
	Session Session `json:"session"`
	Now     string  `json:"now"`
}

// stepUpPasskey checks an assertion and steps the session up: AAL2 at
// least, the passkey's methods added, a new token. A cookie-authenticated
// request gets its cookie replaced by Config.StepUp (the app's cookie,
// with the app's attributes), and is refused without one.
func (s *Server) stepUpPasskey(w http.ResponseWriter, r *http.Request) {
	tok, sess, fromCookie, ok := s.passkeySession(w, r)
	if !ok {
		return
	}
	var req passkeyStepUpRequest
	if !s.decodeCredential(w, r, &req, &req.Credential) {
		return
	}
	if fromCookie && s.stepUpCookie == nil {
		s.writeProblem(w, r, problem.CodeNotFound, "this server cannot replace the session cookie: step up through the app, or send the token as a bearer token", nil)
		return
	}
	methods, err := s.passkeys.Check(r.Context(), sess, req.Credential)
	if err != nil {
		s.passkeyError(w, r, sess.Subject, err)
		return
	}
	aal, amr := lapse.FactorAssurance(sess, methods...)
	var out steppedUpResponse
	var up *lapse.Session
	if fromCookie {
		up, err = s.stepUpCookie(w, r, aal, amr)
	} else {
		var newTok lapse.Token
		newTok, up, err = s.m.StepUp(r.Context(), tok, aal, amr, lapse.ActorSubject)
		out.Token = newTok.Reveal()
	}
	if err != nil {
		s.sessionError(w, r, err)
		return
	}
	out.Session, out.Now = NewSession(up), formatTime(s.m.Clock().Now())
	writeJSON(w, http.StatusOK, out)
}
