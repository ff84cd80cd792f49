package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/console"
	"github.com/lapsehq/lapse/web"
)

// TestPlatformUserNamedLikeTheConsoleCannotReachOperatorSessions: a
// platform user whose subject is the console's ("lapse:console:key:…",
// as a platform that lets users pick names could hand out) cannot be
// given a session, and the end-user "Your sessions" page, shown to such
// a user, neither lists nor ends the operators' sessions; the API's
// subject routes refuse the subject.
func TestPlatformUserNamedLikeTheConsoleCannotReachOperatorSessions(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	ops, _ := e.store.ListSessions(context.Background(), lapse.SessionQuery{Reserved: true, Now: e.clock.Now()})
	if len(ops) != 1 {
		t.Fatalf("%d operator sessions, want 1", len(ops))
	}
	op := ops[0]
	if _, _, err := e.m.Create(context.Background(), lapse.CreateParams{Subject: console.SubjectOf(admin.Actor)}); lapse.ErrorCode(err) != lapse.CodeInvalid {
		t.Fatalf("creating a platform session for %s: %v, want invalid_request", console.SubjectOf(admin.Actor), err)
	}
	// The page as an app would mount it, for a user the app believes is
	// signed in as the operator.
	pages, err := web.NewPages(web.Config{Manager: e.m, Session: func(*http.Request) (lapse.Session, bool) {
		return lapse.Session{ID: "ses_00000000000000000000ab", Subject: console.SubjectOf(admin.Actor), Status: lapse.StatusActive}, true
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	pages.Sessions().ServeHTTP(rec, httptest.NewRequest("GET", "/account/sessions", nil))
	if strings.Contains(rec.Body.String(), op.ID) || strings.Contains(rec.Body.String(), "lapse-console") {
		t.Errorf("the platform user's page lists the operator's session:\n%s", rec.Body)
	}
	for _, form := range []url.Values{{"action": {"end_others"}}, {"action": {"end"}, "id": {op.ID}}} {
		req := httptest.NewRequest("POST", "/account/sessions", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		pages.Sessions().ServeHTTP(rec, req)
		if form.Get("action") == "end" && rec.Code != http.StatusNotFound {
			t.Errorf("ending the operator's session from the page: %d, want 404", rec.Code)
		}
		if loc := rec.Header().Get("Location"); form.Get("action") == "end_others" && !strings.HasSuffix(loc, "n=0") {
			t.Errorf("sign out everywhere else: redirected to %q, want n=0", loc)
		}
	}
	wantStatus(t, "the console after the platform user's attempts", e.get("/console/sessions"), http.StatusOK)
	if s, err := e.store.Session(context.Background(), op.ID); err != nil || s.Status != lapse.StatusActive {
		t.Errorf("the operator's session: %v, %v; want active", s.Status, err)
	}
}

// TestOperatorsSeeAndRevokeConsoleSessions: the console's own sessions,
// out of the platform's reach, are still the operators': filtered by the
// console's tier the table lists them, and one operator can revoke
// another's.
func TestOperatorsSeeAndRevokeConsoleSessions(t *testing.T) {
	e := newEnv(t)
	csrf := e.signIn()
	first := e.client
	e.clock.Advance(time.Minute) // the second operator's session is the newer
	e.client = e.newClient()
	e.signIn()
	second := e.client
	e.client = first
	ops, _ := e.store.ListSessions(context.Background(), lapse.SessionQuery{Reserved: true, Now: e.clock.Now()})
	if len(ops) != 2 {
		t.Fatalf("%d console sessions, want 2", len(ops))
	}
	res := e.get("/console/sessions?tier=" + console.Tier)
	wantStatus(t, "the console's sessions", res, http.StatusOK)
	for _, s := range ops {
		if !strings.Contains(res.body, s.ID) {
			t.Errorf("the table filtered by tier %s lacks %s", console.Tier, s.ID)
		}
	}
	wantStatus(t, "one console session's page", e.get("/console/sessions/"+ops[0].ID), http.StatusOK)
	res = e.post("/console/sessions/"+ops[0].ID+"/revoke", url.Values{"csrf": {csrf}, "back": {"/console/sessions?tier=" + console.Tier}})
	if res.status != http.StatusSeeOther || !strings.Contains(res.location, "notice=revoked") {
		t.Fatalf("revoking the second operator's session: %d to %q, want 303 with notice=revoked", res.status, res.location)
	}
	e.client = second
	if res := e.get("/console/sessions"); res.status != http.StatusSeeOther || !strings.Contains(res.location, "ended=revoked") {
		t.Errorf("the revoked operator's next page: %d to %q, want the sign-in page saying it was revoked", res.status, res.location)
	}
	e.client = first
	wantStatus(t, "the first operator's console", e.get("/console/sessions"), http.StatusOK)
}
