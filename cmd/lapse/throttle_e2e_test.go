package main

import (
	"fmt"
	"testing"
)

// TestInvalidKeysAreThrottledEndToEnd: the review sent 300 wrong keys in
// 7.8 s, all answered 401 and none recorded. Now ten wrong keys from one
// address are answered 401 and recorded as security.key_rejected, then
// the address is refused with 429 and Retry-After, at the API and the
// console's sign-in alike and with the right key too, while the right
// key from another address is served; the metrics count both.
func TestInvalidKeysAreThrottledEndToEnd(t *testing.T) {
	s := start(t, t.TempDir(), e2eConfig, "LAPSE_API_KEY="+testKey)
	attacker, app := from("127.0.0.1"), from("127.0.0.2")
	for i := range 10 {
		if r := doFrom(t, attacker, "POST", s.url+"/v1/sessions/verify", "lpk_guess_"+fmt.Sprint(i), map[string]any{"token": "x"}); r.status != 401 {
			t.Fatalf("wrong key %d: %d %s, want 401", i+1, r.status, r.raw)
		}
	}
	r := doFrom(t, attacker, "POST", s.url+"/v1/sessions", testKey, map[string]any{"subject": "a"})
	if r.status != 429 || code(r) != "too_many_attempts" || r.header.Get("Retry-After") == "" {
		t.Fatalf("the right key after ten wrong ones: %d %s (Retry-After %q), want 429 too_many_attempts", r.status, r.raw, r.header.Get("Retry-After"))
	}
	if resp := consoleSignIn(t, attacker, s.url, testKey); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("console sign-in from the throttled address: %d, want 429 with Retry-After", resp.StatusCode)
	}
	if r := doFrom(t, app, "POST", s.url+"/v1/sessions", testKey, map[string]any{"subject": "a"}); r.status != 201 {
		t.Fatalf("the right key from another address: %d %s, want 201", r.status, r.raw)
	}
	if resp := consoleSignIn(t, app, s.url, testKey); resp.StatusCode != 303 {
		t.Errorf("console sign-in from another address: %d, want 303", resp.StatusCode)
	}
	r = doFrom(t, app, "GET", s.url+"/v1/audit?type=security.key_rejected", testKey, nil)
	evs, _ := r.body["events"].([]any)
	if len(evs) != 10 {
		t.Fatalf("security.key_rejected events = %d, want 10:\n%s", len(evs), r.raw)
	}
	if ev := evs[0].(map[string]any); ev["ip"] != "127.0.0.1" || ev["actor"] != "api" || ev["reason"] != "invalid_key" || ev["session_id"] != "" {
		t.Errorf("event = %v, want from 127.0.0.1, actor api, reason invalid_key, no session", ev)
	}
	for _, want := range []string{`lapse_key_rejections_total{reason="invalid_key"} 10`, `lapse_key_rejections_total{reason="throttled"} 2`} {
		if !metric(t, s, app, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
