package web

import (
	"net/http"
	"strings"

	"github.com/lapsehq/lapse"
)

type stepUpPage struct {
	AAL      int
	NoFactor bool
	// Passkey: the user has a passkey, offered first (with
	// lapse-passkey.js from AssetsURL); Code: a factor whose code the
	// form takes.
	Passkey, Code bool
	AssetsURL     string
	Error         string
	Action        string
	Return        string // the local path to go back to, rd=
	CSRFField     string
	CSRFToken     string
}

// crossOrigin refuses state changes a browser marks as coming from
// another origin (Sec-Fetch-Site, else Origin against Host).
var crossOrigin = http.NewCrossOriginProtection()

// StepUp returns the step-up page: GET offers the user's passkey when
// they have one and Config.Passkeys is set (a button that
// lapse-passkey.js runs through lapse's session routes, which replace
// the cookie and come back to rd), and asks for a code of the user's
// second factor (Config.Factors: an authenticator app's code, or a
// recovery code) when they have one; POST checks a code, raises the session through
// Config.StepUp (which replaces its cookie) and answers 303 to the local
// path in rd= ("/" when rd is missing or not a path on this origin). A
// user without a factor is told to set one up in the app; a request
// without a session gets the signed-out page (401). A POST from another
// origin is refused (403), as is one without the CSRF token when
// Config.CSRFToken is set. Without Config.Factors or Config.StepUp the
// page answers 404.
//
// Wrong codes are answered 422 with the reason, too many of them 429;
// the factor service limits attempts and records each.
func (p *Pages) StepUp() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.cfg.Factors == nil || p.cfg.StepUp == nil {
			http.NotFound(w, r)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			cur, ok := p.stepUpSession(w, r)
			if ok {
				p.stepUpForm(w, r, cur, localPath(r.URL.Query().Get("rd")), http.StatusOK, "")
			}
		case http.MethodPost:
			p.stepUp(w, r)
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	})
}

// stepUpSession returns the request's session, or answers with the
// signed-out page.
func (p *Pages) stepUpSession(w http.ResponseWriter, r *http.Request) (lapse.Session, bool) {
	cur, ok := p.cfg.Session(r)
	if !ok {
		p.signedOut(w, r)
	}
	return cur, ok
}

// signedOut answers 401 with the signed-out page.
func (p *Pages) signedOut(w http.ResponseWriter, r *http.Request) {
	p.renderStatus(w, r, http.StatusUnauthorized, "Signed out", "signedout",
		signedOutPage{Reason: "signed_out", Message: reasonText["signed_out"], SignInURL: p.cfg.SignInURL})
}

// stepUpForm shows the form, or says the user has no factor to step up
// with.
func (p *Pages) stepUpForm(w http.ResponseWriter, r *http.Request, cur lapse.Session, rd string, status int, msg string) {
	st, err := p.cfg.Factors.Factors(r.Context(), cur.Subject)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	page := stepUpPage{AAL: cur.AAL, Error: msg, Action: r.URL.Path, Return: rd, CSRFField: p.cfg.CSRFField, AssetsURL: p.cfg.AssetsURL,
		Passkey: st.Passkeys > 0 && p.cfg.Passkeys != nil, Code: st.TOTP != nil && st.TOTP.Confirmed()}
	page.NoFactor = !page.Passkey && !page.Code
	if p.cfg.CSRFToken != nil {
		page.CSRFToken = p.cfg.CSRFToken(r)
	}
	p.renderStatus(w, r, status, "Confirm it’s you", "stepup", page)
}

func (p *Pages) stepUp(w http.ResponseWriter, r *http.Request) {
	if crossOrigin.Check(r) != nil {
		http.Error(w, "Forbidden: this request came from another site.", http.StatusForbidden)
		return
	}
	if !p.csrfOK(w, r) {
		return
	}
	cur, ok := p.stepUpSession(w, r)
	if !ok {
		return
	}
	rd := localPath(r.PostFormValue("rd"))
	method, err := p.cfg.Factors.Check(r.Context(), &cur, strings.TrimSpace(r.PostFormValue("code")))
	switch lapse.ErrorCode(err) {
	case "": // accepted
	case lapse.CodeRejected, lapse.CodeReused, lapse.CodeInvalid, lapse.CodeFactorNotFound:
		p.stepUpForm(w, r, cur, rd, http.StatusUnprocessableEntity, sentence(err))
		return
	case lapse.CodeTooManyAttempts:
		p.stepUpForm(w, r, cur, rd, http.StatusTooManyRequests, sentence(err))
		return
	default:
		p.fail(w, r, err)
		return
	}
	aal, amr := lapse.FactorAssurance(&cur, method)
	if _, err := p.cfg.StepUp(w, r, aal, amr); err != nil {
		switch code := lapse.ErrorCode(err); code {
		case lapse.CodeSessionNotFound, lapse.CodeSessionExpiredIdle, lapse.CodeSessionExpiredAbsolute, lapse.CodeSessionRevoked:
			p.signedOut(w, r)
		default:
			p.fail(w, r, err)
		}
		return
	}
	http.Redirect(w, r, rd, http.StatusSeeOther)
}

// localPath returns p if it is a path on this origin, else "/": the
// page never sends a browser to another site.
func localPath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, `/\`) || strings.ContainsAny(p, "\r\n\t") {
		return "/"
	}
	return p
}

// sentence turns an error's message into a sentence for the page.
func sentence(err error) string {
	m := lapse.ErrorMessage(err)
	if m == "" {
		return "That did not work; try again."
	}
	m = strings.ToUpper(m[:1]) + m[1:]
	if !strings.HasSuffix(m, ".") {
		m += "."
	}
	return m
}
