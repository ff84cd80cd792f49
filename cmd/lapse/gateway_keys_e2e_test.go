package main

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"regexp"
	"testing"
)

// TestGatewayTakesStoredKeys runs lapse serve with a gateway that takes
// API keys (forward_auth.proxy_api_keys) and asks it as a proxy would:
// a key made by lapse keys with only sessions:verify opens
// /v1/auth-request; a valid key without that scope is refused with 403
// insufficient_scope, a key bound to a tenant too; no key, or one that
// is not valid, gets 403 untrusted_proxy.
func TestGatewayTakesStoredKeys(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir, e2eConfig+`
forward_auth:
  cookie: lapse
  proxy_api_keys: true
`, "LAPSE_API_KEY="+testKey)
	newKey := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(lapseBin, append([]string{"keys", "create", "--data-dir", dir}, args...)...).CombinedOutput()
		key := regexp.MustCompile(`lpk_[0-9A-Za-z]{16}_[0-9A-Za-z]{43}`).FindString(string(out))
		if err != nil || key == "" {
			t.Fatalf("lapse keys create %v: %v\n%s", args, err, out)
		}
		return key
	}
	verify := newKey("--name", "nginx", "--scope", "sessions:verify")
	write := newKey("--name", "app", "--scope", "sessions:write")
	tenant := newKey("--name", "acme nginx", "--scope", "sessions:verify", "--tenant", "acme")
	wrong := verify[:len(verify)-1] + "x"
	if wrong == verify {
		wrong = verify[:len(verify)-1] + "y"
	}
	tok, _ := s.create(t, map[string]any{"subject": "alice", "tier": "durable"})

	ask := func(key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.url+"/v1/auth-request", nil)
		req.Header.Set("X-Original-URI", "/docs")
		req.Header.Set("Cookie", "lapse="+tok)
		if key != "" {
			req.Header.Set("X-Lapse-Proxy-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p struct{ Code string }
		json.NewDecoder(resp.Body).Decode(&p)
		return resp.StatusCode, p.Code
	}
	if status, c := ask(verify); status != 200 {
		t.Errorf("a key with sessions:verify: %d %s; want 200", status, c)
	}
	for _, c := range []struct {
		name, key, code string
	}{
		{"a key with sessions:write only", write, "insufficient_scope"},
		{"a tenant's key with sessions:verify", tenant, "insufficient_scope"},
		{"no key", "", "untrusted_proxy"},
		{"a key that is not valid", wrong, "untrusted_proxy"},
	} {
		if status, code := ask(c.key); status != 403 || code != c.code {
			t.Errorf("%s: %d %s; want 403 %s", c.name, status, code, c.code)
		}
	}
}
