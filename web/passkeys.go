package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/lapsehq/lapse"
)

// passkeyRow is one passkey on the passkeys page.
type passkeyRow struct {
	Now      time.Time
	ID       string
	Name     string
	Created  time.Time
	LastUsed time.Time
	Synced   bool
}

type passkeysPage struct {
	Passkeys  []passkeyRow
	Notice    string
	Error     string
	StepUp    string // the step-up page, coming back here
	CSRFField string
	CSRFToken string
	Action    string
	AssetsURL string
}

// Passkeys returns the "Passkeys" page: GET lists the passkeys of the
// user's subject (name, when added and last used, synced or on this
// device only), with a form to add one, which lapse-passkey.js runs
// through lapse's session routes (so [Assets] must be mounted at
// Config.AssetsURL and the routes beside it); POST with action=rename,
// id and name renames one, POST with action=remove and id removes one.
// Both POSTs check the CSRF token and answer with a redirect back to the
// page (303), and are refused (403) when a browser marks them as coming
// from another origin; end_others=on also ends the subject's other sessions
// (reason password_change, actor subject). Removing needs a recent AAL2
// step-up: without one the page says so and links to the step-up page.
// A passkey that is not the user's own is answered 404. Without
// Config.Passkeys the page answers 404.
func (p *Pages) Passkeys() http.Handler {
	if p.cfg.Passkeys == nil {
		return http.NotFoundHandler()
	}
	list := func(w http.ResponseWriter, r *http.Request, cur lapse.Session) {
		p.listPasskeys(w, r, cur, http.StatusOK, "")
	}
	return p.ownPage("your passkeys", list, p.changePasskey)
}

func (p *Pages) listPasskeys(w http.ResponseWriter, r *http.Request, cur lapse.Session, status int, msg string) {
	keys, err := p.cfg.Passkeys.Passkeys(r.Context(), cur.Subject)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	now := p.cfg.Manager.Clock().Now()
	page := passkeysPage{Error: msg, CSRFField: p.cfg.CSRFField, Action: r.URL.Path, AssetsURL: p.cfg.AssetsURL, StepUp: p.stepUpURL(r.URL.Path)}
	if p.cfg.CSRFToken != nil {
		page.CSRFToken = p.cfg.CSRFToken(r)
	}
	for _, k := range keys {
		page.Passkeys = append(page.Passkeys, passkeyRow{Now: now, ID: k.ID, Name: k.Name, Created: k.CreatedAt, LastUsed: k.LastUsedAt, Synced: k.BackupEligible})
	}
	q := r.URL.Query()
	n, _ := strconv.Atoi(q.Get("n"))
	others := ""
	if n > 0 {
		others = fmt.Sprintf(" %d other %s signed out.", n, plural(n, "session was", "sessions were"))
	}
	switch q.Get("done") {
	case "added":
		page.Notice = "The passkey was added." + others
	case "renamed":
		page.Notice = "The passkey was renamed."
	case "removed":
		page.Notice = "The passkey was removed." + others
	}
	p.renderStatus(w, r, status, "Passkeys", "passkeys", page)
}

func (p *Pages) stepUpURL(back string) string {
	if p.cfg.StepUpURL != nil {
		return p.cfg.StepUpURL(back)
	}
	return "/stepup?" + url.Values{"next": {back}}.Encode()
}

func (p *Pages) changePasskey(w http.ResponseWriter, r *http.Request, cur lapse.Session) {
	if crossOrigin.Check(r) != nil {
		http.Error(w, "Forbidden: this request came from another site.", http.StatusForbidden)
		return
	}
	if !p.csrfOK(w, r) {
		return
	}
	id := r.PostFormValue("id")
	back := url.Values{}
	var err error
	switch r.PostFormValue("action") {
	case "rename":
		err = p.cfg.Passkeys.Rename(r.Context(), &cur, id, r.PostFormValue("name"))
		back.Set("done", "renamed")
	case "remove":
		err = p.cfg.Passkeys.Remove(r.Context(), &cur, id)
		back.Set("done", "removed")
	default:
		http.Error(w, "Unknown action.", http.StatusBadRequest)
		return
	}
	switch lapse.ErrorCode(err) {
	case "":
	case lapse.CodeFactorNotFound:
		http.Error(w, "No such passkey.", http.StatusNotFound)
		return
	case lapse.CodeInvalid:
		p.listPasskeys(w, r, cur, http.StatusUnprocessableEntity, "A passkey's name is 1 to 64 characters.")
		return
	case lapse.CodeStepUpRequired:
		p.listPasskeys(w, r, cur, http.StatusForbidden, "To remove a passkey, confirm it’s you first.")
		return
	default:
		p.fail(w, r, err)
		return
	}
	if back.Get("done") == "removed" && r.PostFormValue("end_others") == "on" {
		n, err := p.cfg.Manager.EndMatching(r.Context(), lapse.Filter{Subject: cur.Subject, AnyTenant: true, Except: cur.ID}, lapse.ReasonPasswordChange, lapse.ActorSubject)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		back.Set("n", strconv.Itoa(n))
	}
	http.Redirect(w, r, (&url.URL{Path: r.URL.Path, RawQuery: back.Encode()}).String(), http.StatusSeeOther)
}
