package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/config"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/passkey/passkeytest"
	"github.com/lapsehq/lapse/totp"
)

// gatewayPasskeyConfig is a gateway on plain HTTP to localhost, where
// browsers allow passkeys.
const gatewayPasskeyConfig = `
forward_auth:
  cookie: lapse
passkeys:
  rp_id: localhost
  origins: [http://localhost:8080]
`

// TestGatewayStepUpWithAPasskey mounts what lapse serve mounts for the
// forward-auth gateway and goes through it as lapse-passkey.js would on
// the app's origin: a passkey registered through /.lapse/v1/session,
// lapse's step-up page offering it, the step-up replacing the gateway's
// cookie (its token never in a body), and the passkeys page listing it.
func TestGatewayStepUpWithAPasskey(t *testing.T) {
	cfg, err := config.Parse("lapse.yaml", []byte(gatewayPasskeyConfig))
	if err != nil {
		t.Fatal(err)
	}
	m, _, _ := lapsetest.NewManager(t, lapse.Config{})
	factors, err := totp.New(totp.Config{Manager: m, Key: make([]byte, totp.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := passkeys(cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	if _, err := mountGateway(mux, cfg, m, nil, nil, factors, keys, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tok, s, err := m.Create(t.Context(), lapse.CreateParams{Subject: "alice", AMR: []string{"pwd"}})
	if err != nil {
		t.Fatal(err)
	}
	cookie := tok.Reveal()
	send := func(method, path string, body any) (*http.Response, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.URL+path, rd)
		req.AddCookie(&http.Cookie{Name: "lapse", Value: cookie})
		if method == "POST" {
			req.Header.Set("X-Lapse-CSRF", "1")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	auth := &passkeytest.Authenticator{Origin: "http://localhost:8080"}

	res, opts := send("POST", "/.lapse/v1/session/passkeys/options", nil)
	if res.StatusCode != 200 {
		t.Fatalf("registration options through the gateway: %d %s", res.StatusCode, opts)
	}
	cred, err := auth.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	if res, b := send("POST", "/.lapse/v1/session/passkeys", map[string]any{"credential": json.RawMessage(cred), "name": "Laptop"}); res.StatusCode != 201 {
		t.Fatalf("registering through the gateway: %d %s", res.StatusCode, b)
	}

	res, page := send("GET", "/.lapse/stepup?rd=/billing/", nil)
	for _, want := range []string{`data-lapse-passkey="step-up"`, `data-next="/billing/"`, `src="/.lapse/web/lapse-passkey.js"`} {
		if res.StatusCode != 200 || !bytes.Contains(page, []byte(want)) {
			t.Errorf("the step-up page (%d) lacks %s", res.StatusCode, want)
		}
	}
	if bytes.Contains(page, []byte(`id="lapse-code"`)) {
		t.Error("the step-up page asks for a code, but alice has no authenticator app")
	}
	if res, js := send("GET", "/.lapse/web/lapse-passkey.js", nil); res.StatusCode != 200 || !bytes.Contains(js, []byte("export function stepUp")) {
		t.Errorf("lapse-passkey.js through the gateway: %d", res.StatusCode)
	}

	res, opts = send("POST", "/.lapse/v1/session/step-up/passkey/options", nil)
	assertion, err := auth.Get(opts)
	if res.StatusCode != 200 || err != nil {
		t.Fatalf("step-up options: %d %s (%v)", res.StatusCode, opts, err)
	}
	res, b := send("POST", "/.lapse/v1/session/step-up/passkey", map[string]any{"credential": json.RawMessage(assertion)})
	var newTok string
	for _, c := range res.Cookies() {
		if c.Name == "lapse" && c.HttpOnly && c.Path == "/" {
			newTok = c.Value
		}
	}
	if res.StatusCode != 200 || newTok == "" || newTok == cookie || strings.Contains(string(b), newTok) {
		t.Fatalf("the step-up through the gateway: %d %s; want 200, a new HttpOnly cookie, its token not in the body", res.StatusCode, b)
	}
	up, err := m.Current(t.Context(), newTok)
	if err != nil || up.ID != s.ID || up.AAL != 2 {
		t.Errorf("the new cookie opens %s at AAL%d (%v); want alice's session at AAL2", up.ID, up.AAL, err)
	}
	cookie = newTok
	if res, b := send("GET", "/.lapse/passkeys", nil); res.StatusCode != 200 || !bytes.Contains(b, []byte("Laptop")) {
		t.Errorf("the passkeys page through the gateway: %d, want it listing Laptop", res.StatusCode)
	}
}
