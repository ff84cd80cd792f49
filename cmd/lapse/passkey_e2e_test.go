package main

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/lapsehq/lapse/passkey/passkeytest"
)

// TestPasskeyEndToEnd runs the built binary with docs/examples/passkeys.yaml
// on every store: register a passkey through the session routes (bearer
// token, as an app's backend or a single-page app would), step up with
// it, and be refused when the same assertion is sent again. On the
// stores that several nodes share, the options come from one node, the
// step-up goes to the other, and the replay to the first: a challenge
// taken on one node is gone on every node.
func TestPasskeyEndToEnd(t *testing.T) { eachStore(t, testPasskeyEndToEnd) }

func testPasskeyEndToEnd(t *testing.T, st storeUnderTest) {
	doc, err := os.ReadFile("../../docs/examples/passkeys.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a := start(t, t.TempDir(), string(doc)+st.yaml(), "LAPSE_API_KEY="+testKey)
	b := a
	if st.url != "" {
		b = start(t, t.TempDir(), string(doc)+st.yaml(), "LAPSE_API_KEY="+testKey)
	}
	want := func(what string, r reply, status int, errCode string) {
		t.Helper()
		if r.status != status || (errCode != "" && code(r) != errCode) {
			t.Fatalf("%s: %d %s, want %d %s", what, r.status, r.raw, status, errCode)
		}
	}
	raw := func(r reply) []byte { b, _ := json.Marshal(r.body); return b }
	auth := &passkeytest.Authenticator{Origin: "https://app.example.com"}

	tok, _ := a.create(t, map[string]any{"subject": "alice", "tier": "billing", "amr": []string{"pwd"}})
	want("verify before the step-up", a.verify(t, tok), 403, "step_up_required")
	r := call(t, "POST", a.url+"/v1/session/passkeys/options", tok, nil)
	want("registration options", r, 200, "")
	cred, err := auth.Create(raw(r))
	if err != nil {
		t.Fatal(err)
	}
	r = call(t, "POST", b.url+"/v1/session/passkeys", tok, map[string]any{"credential": json.RawMessage(cred), "name": "Laptop"})
	want("register on the other node", r, 201, "")

	r = call(t, "POST", b.url+"/v1/session/step-up/passkey/options", tok, nil)
	want("step-up options", r, 200, "")
	assertion, err := auth.Get(raw(r))
	if err != nil {
		t.Fatal(err)
	}
	r = call(t, "POST", a.url+"/v1/session/step-up/passkey", tok, map[string]any{"credential": json.RawMessage(assertion)})
	want("step up on the other node", r, 200, "")
	newTok, _ := r.body["token"].(string)
	sess, _ := r.body["session"].(map[string]any)
	amr, _ := json.Marshal(sess["amr"])
	if newTok == "" || newTok == tok || sess["aal"] != float64(2) || string(amr) != `["pwd","hwk","user"]` {
		t.Fatalf("step-up answered token %t, aal %v, amr %s; want a new token, AAL2, [pwd hwk user]", newTok != "", sess["aal"], amr)
	}
	want("verify after the step-up", a.verify(t, newTok), 200, "")
	for _, n := range slices.Compact([]*server{b, a}) {
		r = call(t, "POST", n.url+"/v1/session/step-up/passkey", newTok, map[string]any{"credential": json.RawMessage(assertion)})
		want("the same assertion again", r, 403, "challenge_invalid")
	}
	r = call(t, "GET", a.url+"/v1/subjects/alice/factors", testKey, nil)
	want("factors", r, 200, "")
	if f, _ := json.Marshal(r.body["factors"]); string(f) != `["passkey"]` || r.body["passkeys"] != float64(1) {
		t.Errorf("alice's factors %s, passkeys %v; want [passkey] and 1", f, r.body["passkeys"])
	}
}
