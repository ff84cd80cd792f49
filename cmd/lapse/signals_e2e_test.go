package main

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/lapsehq/lapse/webhook"
)

const (
	e2eFirefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
	e2eAndroid = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
)

// TestSignalsEndToEnd runs lapse serve and sends each sign of suspicious
// activity through the API, checking the answer and the webhook.
func TestSignalsEndToEnd(t *testing.T) {
	eachStore(t, testSignalsEndToEnd)
}

func testSignalsEndToEnd(t *testing.T, st storeUnderTest) {
	rcv, url := newHookReceiver(t, 0)
	doc, err := os.ReadFile("../../docs/examples/signals.yaml") // a tier for each action
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(doc) + st.yaml() + `
webhooks:
  - name: security
    url: ` + url + `
    secret: "` + webhook.NewSecret() + `"
    events: [session.client_changed, session.new_device, session.token_reused, security.token_guessing, session.revoked]
`
	s := start(t, t.TempDir(), cfg, "LAPSE_API_KEY="+testKey)
	verify := func(tok, ip, ua string) reply {
		return call(t, "POST", s.url+"/v1/sessions/verify", testKey, map[string]any{"token": tok, "ip": ip, "user_agent": ua})
	}
	laptop := map[string]any{"ip": "192.0.2.10", "user_agent": e2eFirefox}
	with := func(m map[string]any) map[string]any {
		out := map[string]any{"ip": laptop["ip"], "user_agent": laptop["user_agent"]}
		for k, v := range m {
			out[k] = v
		}
		return out
	}

	// New device: alice's first session on the everyday tier.
	everyday, everydayID := s.create(t, with(map[string]any{"subject": "alice"}))

	// Client drift, allow: the phone changes network; the verify passes.
	if r := verify(everyday, "198.51.100.4", e2eFirefox); r.status != 200 {
		t.Fatalf("verify from another network on the default action: %d %s, want 200", r.status, r.raw)
	}

	// Client drift, step_up: 403 with the reason.
	sensitive, _ := s.create(t, with(map[string]any{"subject": "bob", "tier": "sensitive"}))
	if r := verify(sensitive, "192.0.2.10", e2eAndroid); r.status != 403 || r.body["code"] != "step_up_required" || r.body["reason"] != "platform_changed" {
		t.Errorf("verify from another platform on a step_up tier: %d %s, want 403 step_up_required, reason platform_changed", r.status, r.raw)
	}

	// Client drift, revoke: reason theft.
	critical, criticalID := s.create(t, with(map[string]any{"subject": "carol", "tier": "critical"}))
	if r := verify(critical, "203.0.113.50", e2eFirefox); r.status != 401 || r.body["end_reason"] != "theft" {
		t.Errorf("verify from another network on a revoke tier: %d %s, want 401 with end_reason theft", r.status, r.raw)
	}

	// Stolen-token reuse: a replaced token after its 5 s grace.
	reused, reusedID := s.create(t, with(map[string]any{"subject": "dave", "tier": "critical"}))
	up := call(t, "POST", s.url+"/v1/sessions/step-up", testKey, with(map[string]any{"token": reused, "aal": 2, "amr": []string{"pwd", "otp"}}))
	if up.status != 200 {
		t.Fatalf("step-up: %d %s", up.status, up.raw)
	}
	time.Sleep(5500 * time.Millisecond) // lapse.RotateGrace, in real time
	if r := verify(reused, "192.0.2.10", e2eFirefox); r.status != 401 || r.body["end_reason"] != "theft" {
		t.Errorf("the replaced token after its grace on a revoke tier: %d %s, want 401 with end_reason theft", r.status, r.raw)
	}
	if r := verify(up.body["token"].(string), "192.0.2.10", e2eFirefox); r.status != 401 || r.body["end_reason"] != "theft" {
		t.Errorf("the new token once the old one came back: %d %s, want 401 with end_reason theft", r.status, r.raw)
	}

	// Token guessing: the fourth unknown token in a minute from one
	// address refuses it (429, Retry-After); another address is heard.
	for range 4 {
		if r := verify("lps_guess", "203.0.113.9", ""); r.status != 401 {
			t.Fatalf("a guess: %d %s, want 401", r.status, r.raw)
		}
	}
	r := verify(everyday, "203.0.113.9", e2eFirefox)
	if r.status != 429 || r.header.Get("Retry-After") == "" || r.header.Get("Content-Type") != "application/problem+json" || r.body["code"] != "too_many_attempts" {
		t.Errorf("a valid token from the guessing address: %d %v %s, want 429 problem+json with Retry-After", r.status, r.header, r.raw)
	}
	if r := verify(everyday, "192.0.2.10", e2eFirefox); r.status != 200 {
		t.Errorf("a valid token from another address: %d %s, want 200", r.status, r.raw)
	}

	want := map[string]bool{
		"session.new_device/" + everydayID + "/":                    false,
		"session.client_changed/" + everydayID + "/network_changed": false,
		"session.revoked/" + criticalID + "/theft":                  false,
		"session.revoked/" + reusedID + "/theft":                    false,
		"security.token_guessing//per_source":                       false,
	}
	deadline := time.After(20 * time.Second)
	for seen := 0; slices.Contains(valuesOf(want), false); seen++ {
		select {
		case <-rcv.got:
		case <-deadline:
			t.Fatalf("webhooks received: %v; want all of them", want)
		}
		rcv.mu.Lock()
		var p webhook.Payload
		err := json.Unmarshal(rcv.bodies[seen], &p)
		rcv.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		key := string(p.Type) + "/" + p.Data.SessionID + "/" + string(p.Data.Reason)
		if _, ok := want[key]; ok {
			want[key] = true
		}
		if p.Type == "security.token_guessing" && p.Data.IP != "203.0.113.9" {
			t.Errorf("token_guessing webhook names %q, want 203.0.113.9", p.Data.IP)
		}
	}
}

func valuesOf(m map[string]bool) []bool {
	out := make([]bool, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
