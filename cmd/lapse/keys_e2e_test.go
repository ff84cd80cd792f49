package main

import (
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestKeysEndToEnd runs lapse serve on each store and manages keys with
// lapse keys: a key with sessions:verify verifies but cannot read the
// audit log (403 insufficient_scope); revoked, it is refused; the
// bootstrap key (LAPSE_API_KEY) works with every scope (/metrics, not to
// be cached, included) until it is
// revoked through the API; every key event names its actor (a key by id
// and name), and lapse audit log filters by actor id.
func TestKeysEndToEnd(t *testing.T) { eachStore(t, testKeysEndToEnd) }

func testKeysEndToEnd(t *testing.T, st storeUnderTest) {
	dir := t.TempDir()
	s := start(t, dir, e2eConfig+st.yaml(), "LAPSE_API_KEY="+testKey)
	lapse := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(lapseBin, st.cli(dir, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("lapse %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := lapse("keys", "create", "--name", "app server", "--scope", "sessions:verify", "--expires", "720h")
	key := regexp.MustCompile(`lpk_[0-9A-Za-z]{16}_[0-9A-Za-z]{43}`).FindString(out)
	if key == "" {
		t.Fatalf("lapse keys create printed no key:\n%s", out)
	}
	id := key[4:20]

	tok, _ := s.create(t, map[string]any{"subject": "alice"})
	if r := call(t, "POST", s.url+"/v1/sessions/verify", key, map[string]any{"token": tok}); r.status != 200 {
		t.Fatalf("verify with a sessions:verify key: %d %s", r.status, r.raw)
	}
	r := call(t, "GET", s.url+"/v1/audit", key, nil)
	if r.status != 403 || code(r) != "insufficient_scope" || !strings.Contains(r.header.Get("WWW-Authenticate"), `scope="audit:read"`) {
		t.Fatalf("audit with a sessions:verify key: %d %s %q, want 403 insufficient_scope naming audit:read", r.status, r.raw, r.header.Get("WWW-Authenticate"))
	}
	if r := call(t, "GET", s.url+"/metrics", key, nil); r.status != 403 || code(r) != "insufficient_scope" {
		t.Errorf("metrics with a sessions:verify key: %d %s, want 403 insufficient_scope", r.status, r.raw)
	}
	if r := call(t, "GET", s.url+"/metrics", testKey, nil); r.status != 200 || r.header.Get("Cache-Control") != "no-store" ||
		r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("metrics with the bootstrap key: %d, Cache-Control %q, X-Content-Type-Options %q; want 200, no-store, nosniff",
			r.status, r.header.Get("Cache-Control"), r.header.Get("X-Content-Type-Options"))
	}
	if list := lapse("keys", "list"); !strings.Contains(list, id) || !strings.Contains(list, "app server") || strings.Contains(list, key) {
		t.Errorf("lapse keys list:\n%s\nwant the key's id and name, never the key", list)
	}

	lapse("keys", "revoke", id)
	// The server reads a key again once its copy is older than the
	// propagation bound (100 ms): a guard of 10 s against "never".
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := call(t, "POST", s.url+"/v1/sessions/verify", key, map[string]any{"token": tok})
		if r.status == 401 && code(r) == "unauthorized" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a key revoked 10 s ago is still accepted: %d %s", r.status, r.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The bootstrap key has every scope, and is revoked like any other.
	keys := call(t, "GET", s.url+"/v1/keys", testKey, nil)
	var list struct {
		Keys []struct {
			ID, Name string
		} `json:"keys"`
	}
	json.Unmarshal([]byte(keys.raw), &list)
	var boot string
	for _, k := range list.Keys {
		if k.Name == "bootstrap" {
			boot = k.ID
		}
	}
	if keys.status != 200 || boot == "" {
		t.Fatalf("GET /v1/keys with the bootstrap key: %d %s; want a key named bootstrap", keys.status, keys.raw)
	}
	if r := call(t, "DELETE", s.url+"/v1/keys/"+boot, testKey, nil); r.status != 200 {
		t.Fatalf("revoking the bootstrap key: %d %s", r.status, r.raw)
	}
	if r := call(t, "GET", s.url+"/v1/keys", testKey, nil); r.status != 401 {
		t.Errorf("the bootstrap key after its revocation on this node: %d %s, want 401", r.status, r.raw)
	}

	audit := lapse("audit", "log", "--actor", "cli", "--format", "json")
	if !strings.Contains(audit, `"key.created"`) || !strings.Contains(audit, `"key.revoked"`) || strings.Contains(audit, `"session.created"`) {
		t.Errorf("lapse audit log --actor cli:\n%s\nwant the key's creation and revocation only", audit)
	}
	if audit := lapse("audit", "log", "--actor", "key:"+boot, "--format", "json"); !strings.Contains(audit, `"reason":"`+boot+`"`) ||
		!strings.Contains(audit, `"actor":"key:`+boot+`","actor_name":"bootstrap"`) {
		t.Errorf("lapse audit log --actor key:%s:\n%s\nwant the bootstrap key's revocation of itself, by id and name", boot, audit)
	}
	if table := lapse("audit", "log", "--actor", "key:"+boot); !strings.Contains(table, "key:"+boot+" (bootstrap)") {
		t.Errorf("lapse audit log --actor key:%s:\n%s\nwant the actor shown as key:%s (bootstrap)", boot, table, boot)
	}
}
