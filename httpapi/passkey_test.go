package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/passkey"
	"github.com/lapsehq/lapse/passkey/passkeytest"
)

// passkeyOrigin is the origin the harness's relying party allows; the
// requests themselves go to the test server, as through a proxy.
const passkeyOrigin = "https://app.example.com"

func newPasskeys(t *testing.T, m *lapse.Manager, fs lapse.FactorStore) lapse.PasskeyService {
	t.Helper()
	svc, err := passkey.New(passkey.Config{Manager: m, Store: fs, RPID: "example.com", Origins: []string{passkeyOrigin}})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// stepUpCookie is the harness's Config.StepUp: it steps the cookie's
// session up and replaces the cookie, as the middleware does.
func (h *harness) stepUpCookie(m *lapse.Manager) func(http.ResponseWriter, *http.Request, int, []string) (*lapse.Session, error) {
	return func(w http.ResponseWriter, r *http.Request, aal int, amr []string) (*lapse.Session, error) {
		c, err := r.Cookie(h.cookie)
		if err != nil {
			return nil, lapse.Errorf(lapse.CodeSessionNotFound, "no session cookie")
		}
		tok, s, err := m.StepUp(r.Context(), c.Value, aal, amr, lapse.ActorSubject)
		if err != nil {
			return nil, err
		}
		http.SetCookie(w, &http.Cookie{Name: h.cookie, Value: tok.Reveal(), Path: "/", Secure: true, HttpOnly: true})
		return s, nil
	}
}

// asSessionWith is asSession with a JSON body.
func (h *harness) asSessionWith(method, path, token string, v via, body any) *http.Request {
	h.t.Helper()
	req := h.newRequest(method, path, body)
	plain := h.asSession(method, path, token, v)
	req.Header = plain.Header
	return req
}

// options asks a passkey route for a ceremony's options.
func (h *harness) options(path, token string) []byte {
	h.t.Helper()
	r := h.send(h.asSession("POST", path, token, viaBearer))
	if r.status != http.StatusOK {
		h.t.Fatalf("POST %s: %s, want 200", path, r)
	}
	return r.body
}

// withPasskey creates a session of subject and registers a passkey for
// it through the session routes; it returns the session's token and
// the authenticator.
func (h *harness) withPasskey(subject string) (string, *passkeytest.Authenticator) {
	h.t.Helper()
	tok, _ := h.create(map[string]any{"subject": subject})
	a := &passkeytest.Authenticator{Origin: passkeyOrigin}
	cred, err := a.Create(h.options("/v1/session/passkeys/options", tok))
	if err != nil {
		h.t.Fatal(err)
	}
	r := h.send(h.asSessionWith("POST", "/v1/session/passkeys", tok, viaBearer, map[string]any{"credential": json.RawMessage(cred)}))
	if r.status != http.StatusCreated {
		h.t.Fatalf("registering a passkey: %s, want 201", r)
	}
	return tok, a
}

// assertion answers a step-up's options with a.
func (h *harness) assertion(tok string, a *passkeytest.Authenticator) json.RawMessage {
	h.t.Helper()
	cred, err := a.Get(h.options("/v1/session/step-up/passkey/options", tok))
	if err != nil {
		h.t.Fatal(err)
	}
	return cred
}

func TestPasskeyStepUpByBearerAnswersTheNewToken(t *testing.T) {
	h := newHarness(t)
	tok, a := h.withPasskey("alice")
	r := h.send(h.asSessionWith("POST", "/v1/session/step-up/passkey", tok, viaBearer, map[string]any{"credential": h.assertion(tok, a)}))
	var out steppedUpResponse
	if r.status != http.StatusOK || json.Unmarshal(r.body, &out) != nil {
		t.Fatalf("step-up: %s, want 200", r)
	}
	if out.Session.AAL != 2 || !slices.Equal(out.Session.AMR, []string{"hwk", "user"}) || !strings.HasPrefix(out.Token, lapse.TokenPrefix) || out.Token == tok {
		t.Errorf("step-up answered AAL%d %v with token %t; want AAL2 [hwk user] and a new token", out.Session.AAL, out.Session.AMR, out.Token != "")
	}
	if r := h.verify(out.Token, nil); r.status != http.StatusOK {
		t.Errorf("verify with the new token: %s", r)
	}
	if len(r.header.Values("Set-Cookie")) != 0 {
		t.Errorf("a bearer step-up set a cookie: %v", r.header.Values("Set-Cookie"))
	}
}

func TestPasskeyStepUpByCookieReplacesTheCookieAndHidesTheToken(t *testing.T) {
	h := newHarness(t)
	tok, a := h.withPasskey("alice")
	cred := h.assertion(tok, a)
	r := h.send(h.asSessionWith("POST", "/v1/session/step-up/passkey", tok, viaCookie, map[string]any{"credential": cred}))
	if r.status != http.StatusForbidden || r.problem(t).Code != "csrf_header_required" {
		t.Fatalf("a cookie step-up without the CSRF header: %s, want 403 csrf_header_required", r)
	}
	r = h.send(h.asSessionWith("POST", "/v1/session/step-up/passkey", tok, viaCookieCSRF, map[string]any{"credential": cred}))
	var out steppedUpResponse
	if r.status != http.StatusOK || json.Unmarshal(r.body, &out) != nil || out.Token != "" || out.Session.AAL != 2 {
		t.Fatalf("a cookie step-up: %s; want 200 at AAL2 without a token in the body", r)
	}
	var newTok string
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == h.cookie && c.HttpOnly {
			newTok = c.Value
		}
	}
	if newTok == "" || newTok == tok || strings.Contains(string(r.body), newTok) {
		t.Fatalf("the step-up's cookie %q: want a new HttpOnly token, not in the body", newTok)
	}
	// The replaced token keeps verifying for the grace, but steps up no
	// more, even with a fresh ceremony.
	r = h.send(h.asSessionWith("POST", "/v1/session/step-up/passkey/options", tok, viaBearer, nil))
	if r.status != http.StatusUnauthorized || r.problem(t).Code != lapse.CodeSessionNotFound {
		t.Errorf("options with the replaced token: %s, want 401 session_not_found", r)
	}
}

func TestPasskeyReplayAndForeignOriginAreRefusedOverHTTP(t *testing.T) {
	h := newHarness(t)
	tok, a := h.withPasskey("alice")
	cred := h.assertion(tok, a)
	first := h.send(h.asSessionWith("POST", "/v1/session/step-up/passkey", tok, viaBearer, map[string]any{"credential": cred}))
	var out steppedUpResponse
	if first.status != http.StatusOK || json.Unmarshal(first.body, &out) != nil {
		t.Fatalf("step-up: %s", first)
	}
	r := h.send(h.asSessionWith("POST", "/v1/session/step-up/passkey", out.Token, viaBearer, map[string]any{"credential": cred}))
	if r.status != http.StatusForbidden || r.problem(t).Code != lapse.CodeChallengeInvalid {
		t.Errorf("the same assertion again: %s, want 403 challenge_invalid", r)
	}
	opts := h.options("/v1/session/step-up/passkey/options", out.Token)
	a.Origin = "https://app.example.com.evil.test"
	forged, _ := a.Get(opts)
	r = h.send(h.asSessionWith("POST", "/v1/session/step-up/passkey", out.Token, viaBearer, map[string]any{"credential": json.RawMessage(forged)}))
	if r.status != http.StatusForbidden || r.problem(t).Code != lapse.CodePasskeyRejected {
		t.Errorf("an assertion made on another origin: %s, want 403 passkey_rejected", r)
	}
}

func TestPasskeyListRenameRemove(t *testing.T) {
	h := newHarness(t)
	tok, a := h.withPasskey("alice")
	var list passkeysResponse
	r := h.send(h.asSession("GET", "/v1/session/passkeys", tok, viaCookie))
	if r.status != http.StatusOK || json.Unmarshal(r.body, &list) != nil || len(list.Passkeys) != 1 || list.Passkeys[0].Name != passkey.DefaultName {
		t.Fatalf("list: %s", r)
	}
	id := list.Passkeys[0].ID
	r = h.send(h.asSessionWith("POST", "/v1/session/passkeys/"+id+"/rename", tok, viaBearer, map[string]any{"name": "Laptop"}))
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"name":"Laptop"`) {
		t.Errorf("rename: %s", r)
	}
	r = h.send(h.asSessionWith("POST", "/v1/session/passkeys/"+id+"/remove", tok, viaBearer, map[string]any{}))
	if r.status != http.StatusForbidden || r.problem(t).Code != lapse.CodeStepUpRequired || !slices.Equal(r.problem(t).Factors, []string{"passkey"}) {
		t.Errorf("remove at AAL1: %s, want 403 step_up_required with factors [passkey]", r)
	}
	r = h.send(h.asSessionWith("POST", "/v1/session/step-up/passkey", tok, viaBearer, map[string]any{"credential": h.assertion(tok, a)}))
	var out steppedUpResponse
	json.Unmarshal(r.body, &out)
	other, _ := h.create(map[string]any{"subject": "alice"})
	r = h.send(h.asSessionWith("POST", "/v1/session/passkeys/"+id+"/remove", out.Token, viaBearer, map[string]any{"end_others": true}))
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"ended":1`) {
		t.Errorf("remove after the step-up, ending the others: %s, want 200 with the other session ended", r)
	}
	if r := h.verify(other, nil); r.status != http.StatusUnauthorized {
		t.Errorf("another session of alice's after end_others: %s, want 401", r)
	}
}

// passkeyLiveCases produce every documented answer of the passkey
// routes, for TestOpenAPIDescribesEveryAnswer; bare serves no passkeys.
func passkeyLiveCases(bare *harness) []liveCase {
	stepUp := func(prep func(h *harness) (string, any)) func(h *harness) *http.Request {
		return func(h *harness) *http.Request {
			tok, body := prep(h)
			return h.asSessionWith("POST", "/v1/session/step-up/passkey", tok, viaBearer, body)
		}
	}
	withKey := func(then func(h *harness, tok string, a *passkeytest.Authenticator) *http.Request) func(h *harness) *http.Request {
		return func(h *harness) *http.Request {
			tok, a := h.withPasskey(string(lapse.NewID("u_")))
			return then(h, tok, a)
		}
	}
	fresh := func(then func(h *harness, tok string) *http.Request) func(h *harness) *http.Request {
		return func(h *harness) *http.Request {
			tok, _ := h.create(map[string]any{"subject": string(lapse.NewID("u_"))})
			return then(h, tok)
		}
	}
	noPasskeys := func(method, path string) func(*harness) *http.Request {
		return func(*harness) *http.Request {
			tok, _ := bare.create(map[string]any{"subject": "alice"})
			return bare.asSessionWith(method, path, tok, viaBearer, map[string]any{})
		}
	}
	return []liveCase{
		{"passkeys_list", 200, withKey(func(h *harness, tok string, _ *passkeytest.Authenticator) *http.Request {
			return h.asSession("GET", "/v1/session/passkeys", tok, viaBearer)
		})},
		{"passkeys_list_without_passkeys", 404, func(*harness) *http.Request {
			tok, _ := bare.create(map[string]any{"subject": "alice"})
			return bare.asSession("GET", "/v1/session/passkeys", tok, viaBearer)
		}},

		{"passkey_options", 200, fresh(func(h *harness, tok string) *http.Request {
			return h.asSession("POST", "/v1/session/passkeys/options", tok, viaCookieCSRF)
		})},
		{"passkey_options_csrf", 403, fresh(func(h *harness, tok string) *http.Request {
			return h.asSession("POST", "/v1/session/passkeys/options", tok, viaCookie)
		})},
		{"passkey_options_not_recent", 403, fresh(func(h *harness, tok string) *http.Request {
			h.clock.Advance(16 * time.Minute)
			return h.asSession("POST", "/v1/session/passkeys/options", tok, viaBearer)
		})},
		{"passkey_options_without_passkeys", 404, noPasskeys("POST", "/v1/session/passkeys/options")},

		{"passkey_register", 201, fresh(func(h *harness, tok string) *http.Request {
			cred, _ := (&passkeytest.Authenticator{Origin: passkeyOrigin}).Create(h.options("/v1/session/passkeys/options", tok))
			return h.asSessionWith("POST", "/v1/session/passkeys", tok, viaBearer, map[string]any{"credential": json.RawMessage(cred), "name": "Phone", "end_others": true})
		})},
		{"passkey_register_malformed", 400, fresh(func(h *harness, tok string) *http.Request {
			return h.asSessionWith("POST", "/v1/session/passkeys", tok, viaBearer, map[string]any{"credential": map[string]any{"id": "x"}})
		})},
		{"passkey_register_wrong_origin", 403, fresh(func(h *harness, tok string) *http.Request {
			cred, _ := (&passkeytest.Authenticator{Origin: "https://evil.test"}).Create(h.options("/v1/session/passkeys/options", tok))
			return h.asSessionWith("POST", "/v1/session/passkeys", tok, viaBearer, map[string]any{"credential": json.RawMessage(cred)})
		})},
		{"passkey_register_twice", 409, withKey(func(h *harness, tok string, a *passkeytest.Authenticator) *http.Request {
			// A step-up first: a second factor needs one.
			r := h.send(h.asSessionWith("POST", "/v1/session/step-up/passkey", tok, viaBearer, map[string]any{"credential": h.assertion(tok, a)}))
			var out steppedUpResponse
			json.Unmarshal(r.body, &out)
			again, _ := a.Again(h.options("/v1/session/passkeys/options", out.Token))
			return h.asSessionWith("POST", "/v1/session/passkeys", out.Token, viaBearer, map[string]any{"credential": json.RawMessage(again)})
		})},
		{"passkey_register_without_passkeys", 404, noPasskeys("POST", "/v1/session/passkeys")},

		{"passkey_rename", 200, func(h *harness) *http.Request {
			tok, _ := h.withPasskey("rena")
			keys, _ := h.store.Passkeys(context.Background(), "rena")
			return h.asSessionWith("POST", "/v1/session/passkeys/"+keys[0].ID+"/rename", tok, viaBearer, map[string]any{"name": "Laptop"})
		}},
		{"passkey_rename_bad_name", 400, func(h *harness) *http.Request {
			tok, _ := h.withPasskey("reno")
			keys, _ := h.store.Passkeys(context.Background(), "reno")
			return h.asSessionWith("POST", "/v1/session/passkeys/"+keys[0].ID+"/rename", tok, viaBearer, map[string]any{"name": "a\nb"})
		}},
		{"passkey_rename_csrf", 403, fresh(func(h *harness, tok string) *http.Request {
			return h.asSessionWith("POST", "/v1/session/passkeys/pk_x/rename", tok, viaCookie, map[string]any{"name": "x"})
		})},
		{"passkey_rename_unknown", 404, fresh(func(h *harness, tok string) *http.Request {
			return h.asSessionWith("POST", "/v1/session/passkeys/pk_x/rename", tok, viaBearer, map[string]any{"name": "x"})
		})},

		{"passkey_remove", 200, func(h *harness) *http.Request {
			tok, a := h.withPasskey("remy")
			r := h.send(h.asSessionWith("POST", "/v1/session/step-up/passkey", tok, viaBearer, map[string]any{"credential": h.assertion(tok, a)}))
			var out steppedUpResponse
			json.Unmarshal(r.body, &out)
			keys, _ := h.store.Passkeys(context.Background(), "remy")
			return h.asSessionWith("POST", "/v1/session/passkeys/"+keys[0].ID+"/remove", out.Token, viaBearer, map[string]any{})
		}},
		{"passkey_remove_malformed", 400, fresh(func(h *harness, tok string) *http.Request {
			return h.asSessionWith("POST", "/v1/session/passkeys/pk_x/remove", tok, viaBearer, `[]`)
		})},
		{"passkey_remove_at_aal1", 403, withKey(func(h *harness, tok string, _ *passkeytest.Authenticator) *http.Request {
			return h.asSessionWith("POST", "/v1/session/passkeys/pk_x/remove", tok, viaBearer, map[string]any{})
		})},
		{"passkey_remove_unknown", 404, noPasskeys("POST", "/v1/session/passkeys/pk_x/remove")},

		{"passkey_step_up_options", 200, withKey(func(h *harness, tok string, _ *passkeytest.Authenticator) *http.Request {
			return h.asSession("POST", "/v1/session/step-up/passkey/options", tok, viaBearer)
		})},
		{"passkey_step_up_options_csrf", 403, withKey(func(h *harness, tok string, _ *passkeytest.Authenticator) *http.Request {
			return h.asSession("POST", "/v1/session/step-up/passkey/options", tok, viaCookie)
		})},
		{"passkey_step_up_options_none", 404, fresh(func(h *harness, tok string) *http.Request {
			return h.asSession("POST", "/v1/session/step-up/passkey/options", tok, viaBearer)
		})},

		{"passkey_step_up", 200, stepUp(func(h *harness) (string, any) {
			tok, a := h.withPasskey("stan")
			return tok, map[string]any{"credential": h.assertion(tok, a)}
		})},
		{"passkey_step_up_malformed", 400, stepUp(func(h *harness) (string, any) {
			tok, _ := h.withPasskey("stew")
			return tok, map[string]any{}
		})},
		{"passkey_step_up_replay", 403, stepUp(func(h *harness) (string, any) {
			tok, a := h.withPasskey("rhea")
			cred := h.assertion(tok, a)
			r := h.send(h.asSessionWith("POST", "/v1/session/step-up/passkey", tok, viaBearer, map[string]any{"credential": cred}))
			var out steppedUpResponse
			json.Unmarshal(r.body, &out)
			return out.Token, map[string]any{"credential": cred}
		})},
		{"passkey_step_up_without_passkeys", 404, func(*harness) *http.Request {
			tok, _ := bare.create(map[string]any{"subject": "alice"})
			return bare.asSessionWith("POST", "/v1/session/step-up/passkey", tok, viaCookieCSRF, map[string]any{"credential": map[string]any{}})
		}},
		{"passkey_step_up_too_many", 429, stepUp(func(h *harness) (string, any) {
			tok, a := h.withPasskey("tess")
			a.SkipUserVerification = true
			for range 5 {
				h.send(h.asSessionWith("POST", "/v1/session/step-up/passkey", tok, viaBearer, map[string]any{"credential": h.assertion(tok, a)}))
			}
			return tok, map[string]any{"credential": h.assertion(tok, a)}
		})},
	}
}
