package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/problem"
)

// TestEveryRouteNeedsItsScope calls every route that takes an API key
// with a key of each scope alone: a key without the route's scope gets
// 403 insufficient_scope naming it, with the RFC 6750 challenge; one
// with it gets the route's normal answer.
func TestEveryRouteNeedsItsScope(t *testing.T) {
	h := newHarness(t)
	for _, rt := range routes {
		if rt.public() {
			continue
		}
		for _, scope := range lapse.Scopes() {
			t.Run(rt.method+"_"+rt.path+"/"+string(scope), func(t *testing.T) {
				key, _ := h.apiKey(scope)
				req := h.newRequest(rt.method, pathOf(rt.path), scopeBody(rt))
				req.Header.Set("Authorization", "Bearer "+key)
				r := h.send(req)
				if scope != rt.scope {
					p := wantProblem(t, r, http.StatusForbidden, problem.CodeInsufficientScope)
					wantChallenge := `Bearer realm="lapse", error="insufficient_scope", scope="` + string(rt.scope) + `"`
					if p.Scope != rt.scope || r.header.Get("WWW-Authenticate") != wantChallenge {
						t.Errorf("scope %q, challenge %q; want %q and %q", p.Scope, r.header.Get("WWW-Authenticate"), rt.scope, wantChallenge)
					}
					return
				}
				// With the scope: whatever the route answers a valid
				// caller, never a refusal of the key.
				if strings.Contains(string(r.body), `"code":"unauthorized"`) || strings.Contains(string(r.body), `"code":"insufficient_scope"`) {
					t.Errorf("with its scope: got %s, want the route's answer", r)
				}
			})
		}
	}
}

// scopeBody is a valid body for a route, or nil.
func scopeBody(rt route) any {
	switch {
	case rt.method != "POST":
		return nil
	case rt.path == "/v1/sessions":
		return map[string]any{"subject": "alice"}
	case rt.path == "/v1/keys":
		return map[string]any{"name": "app", "scopes": []string{"audit:read"}}
	case rt.path == "/v1/sessions/step-up":
		return map[string]any{"token": string(lapse.NewToken()), "aal": 2}
	case strings.HasSuffix(rt.path, "/credential-changed"):
		return map[string]any{}
	case strings.HasSuffix(rt.path, "/totp/confirm"), rt.path == "/v1/sessions/step-up/totp":
		return map[string]any{"token": string(lapse.NewToken()), "code": "123456"}
	}
	return map[string]any{"token": string(lapse.NewToken())}
}

// TestTenantKeySeesOtherTenantsAsUnknown checks that a key bound to
// tenant acme gets, for a session of another tenant, exactly the answer
// (status and body) it gets for an unknown one, and that it lists, ends
// and reads the audit of acme only. The store-level rule is checked on
// every store by storetest; this checks the API's answers.
func TestTenantKeySeesOtherTenantsAsUnknown(t *testing.T) {
	h := newHarness(t)
	acmeKey, _ := h.tenantKey("acme", lapse.ScopeSessionsVerify, lapse.ScopeSessionsWrite, lapse.ScopeSessionsAdmin, lapse.ScopeAuditRead)
	otherTok, otherID := h.create(map[string]any{"subject": "alice"}) // the platform's own tenant ""
	_, acmeID := h.create(map[string]any{"subject": "alice", "tenant": "acme"})
	as := func(method, path string, body any) *response {
		t.Helper()
		req := h.newRequest(method, path, body)
		req.Header.Set("Authorization", "Bearer "+acmeKey)
		return h.send(req)
	}
	same := func(what string, other, unknown *response) {
		t.Helper()
		if other.status != unknown.status || string(other.body) != string(unknown.body) {
			t.Errorf("%s: another tenant's answered %s; an unknown one %s", what, other, unknown)
		}
	}
	same("GET /v1/sessions/{id}", as("GET", "/v1/sessions/"+otherID, nil), as("GET", "/v1/sessions/ses_unknown", nil))
	same("DELETE /v1/sessions/{id}", as("DELETE", "/v1/sessions/"+otherID, nil), as("DELETE", "/v1/sessions/ses_unknown", nil))
	unknownTok := string(lapse.NewToken())
	same("verify", as("POST", "/v1/sessions/verify", map[string]any{"token": otherTok}), as("POST", "/v1/sessions/verify", map[string]any{"token": unknownTok}))
	same("step-up", as("POST", "/v1/sessions/step-up", map[string]any{"token": otherTok, "aal": 2}), as("POST", "/v1/sessions/step-up", map[string]any{"token": unknownTok, "aal": 2}))
	same("revoke", as("POST", "/v1/sessions/revoke", map[string]any{"token": otherTok}), as("POST", "/v1/sessions/revoke", map[string]any{"token": unknownTok}))

	if r := as("GET", "/v1/subjects/alice/sessions", nil); !strings.Contains(string(r.body), acmeID) || strings.Contains(string(r.body), otherID) {
		t.Errorf("listing alice: %s; want acme's session only", r)
	}
	if r := as("DELETE", "/v1/subjects/alice/sessions", nil); string(r.body) != "{\"revoked\":1}\n" {
		t.Errorf("ending alice: %s; want acme's one session revoked", r)
	}
	if r := h.verify(otherTok, nil); r.status != http.StatusOK {
		t.Errorf("the other tenant's session after acme's calls: %s; want it valid", r)
	}
	if r := as("GET", "/v1/audit", nil); strings.Contains(string(r.body), otherID) || !strings.Contains(string(r.body), acmeID) {
		t.Errorf("audit: %s; want acme's events only", r)
	}
	if r := as("GET", "/v1/audit?tenant=", nil); strings.Contains(string(r.body), otherID) {
		t.Errorf("audit asking for tenant \"\": %s; want acme's events only", r)
	}
	if r := as("POST", "/v1/sessions", map[string]any{"subject": "bob"}); r.status != http.StatusCreated || !strings.Contains(string(r.body), `"tenant":"acme"`) {
		t.Errorf("create without a tenant: %s; want a session in acme", r)
	}
}

// TestKeyEventsAreAttributed checks that a change made with a stored key
// records the key as its actor, by id and name, and the client's
// address, and that the audit log filters by actor.
func TestKeyEventsAreAttributed(t *testing.T) {
	h := newHarness(t)
	key, k := h.apiKey(lapse.ScopeSessionsAdmin, lapse.ScopeAuditRead)
	_, id := h.create(map[string]any{"subject": "alice"})
	req := h.newRequest("DELETE", "/v1/sessions/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	if r := h.send(req); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %s", r)
	}
	r := h.call("GET", "/v1/audit?actor=key:"+k.ID, nil)
	if !strings.Contains(string(r.body), `"type":"session.revoked"`) || strings.Contains(string(r.body), `"session.created"`) {
		t.Errorf("audit by actor key:%s: %s; want the revocation only", k.ID, r)
	}
	if !strings.Contains(string(r.body), `"ip":"127.0.0.1"`) {
		t.Errorf("audit by actor key:%s: %s; want the revocation with the client's address", k.ID, r)
	}
	if !strings.Contains(string(r.body), `"actor":"key:`+k.ID+`","actor_name":"test"`) {
		t.Errorf("audit by actor key:%s: %s; want the revocation with the key's name", k.ID, r)
	}
}

// TestKeyChangesAreAttributedByName checks that the key.created and
// key.revoked events of keys made and revoked through the API name the
// key that made the change, by id and name, and that events of no key
// carry no name.
func TestKeyChangesAreAttributedByName(t *testing.T) {
	h := newHarness(t)
	admin, k := h.apiKey(lapse.ScopeKeysAdmin, lapse.ScopeAuditRead)
	as := func(method, path string, body any) *response {
		req := h.newRequest(method, path, body)
		req.Header.Set("Authorization", "Bearer "+admin)
		return h.send(req)
	}
	r := as("POST", "/v1/keys", map[string]any{"name": "ci", "scopes": []string{"sessions:verify"}})
	var out struct {
		APIKey struct{ ID string } `json:"api_key"`
	}
	made := &out.APIKey
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &out) != nil || made.ID == "" {
		t.Fatalf("create a key: %s", r)
	}
	if r := as("DELETE", "/v1/keys/"+made.ID, nil); r.status/100 != 2 {
		t.Fatalf("revoke the key: %s", r)
	}
	r = as("GET", "/v1/audit?actor=key:"+k.ID, nil)
	var page struct{ Events []lapse.Event }
	if err := json.Unmarshal(r.body, &page); err != nil {
		t.Fatalf("audit: %s: %v", r, err)
	}
	var types []lapse.EventType
	for _, ev := range page.Events {
		types = append(types, ev.Type)
		if ev.ActorName != "test" || ev.Reason != lapse.Reason(made.ID) {
			t.Errorf("%s: actor %s named %q about %s; want key:%s named test about %s", ev.Type, ev.Actor, ev.ActorName, ev.Reason, k.ID, made.ID)
		}
	}
	if !slices.Equal(types, []lapse.EventType{lapse.EventKeyCreated, lapse.EventKeyRevoked}) {
		t.Errorf("events of key:%s = %v; want key.created, key.revoked", k.ID, types)
	}
	r = h.call("GET", "/v1/audit?actor=api", nil)
	if strings.Contains(string(r.body), "actor_name") {
		t.Errorf("events of the static key: %s; want no actor_name", r)
	}
}
