package config_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse/config"
)

func TestPasskeys(t *testing.T) {
	f, err := config.Parse("lapse.yaml", []byte(`passkeys:
  rp_id: example.com
  rp_name: Example
  origins: [https://app.example.com, "https://example.com:8443"]
  timeout: 2m
`))
	if err != nil {
		t.Fatal(err)
	}
	if p := f.Passkeys; p == nil || p.RPID != "example.com" || p.RPName != "Example" || p.Timeout != 2*time.Minute ||
		!slices.Equal(p.Origins, []string{"https://app.example.com", "https://example.com:8443"}) {
		t.Errorf("passkeys = %+v", f.Passkeys)
	}
	if f, _ := config.Parse("lapse.yaml", []byte("listen: 127.0.0.1:1\n")); f.Passkeys != nil {
		t.Errorf("without a passkeys section: %+v, want nil (passkeys off)", f.Passkeys)
	}
	for _, c := range []struct{ yaml, want string }{
		{"passkeys:\n  rp_id: 192.0.2.1\n  origins: [https://192.0.2.1]\n", "lapse.yaml:2: passkeys.rp_id: \"192.0.2.1\" must be a domain name"},
		{"passkeys:\n  rp_id: https://example.com\n  origins: [https://example.com]\n", "lapse.yaml:2: passkeys.rp_id:"},
		{"passkeys:\n  origins: [https://example.com]\n", "lapse.yaml:2: passkeys.rp_id: is required"},
		{"passkeys:\n  rp_id: example.com\n", "lapse.yaml:2: passkeys.origins: is required"},
		{"passkeys:\n  rp_id: example.com\n  origins:\n    - https://app.example.com\n    - https://example.org\n", "lapse.yaml:5: passkeys.origins[1]: \"https://example.org\" is not on the relying party id"},
		{"passkeys:\n  rp_id: example.com\n  origins: [http://app.example.com]\n", "lapse.yaml:3: passkeys.origins[0]: \"http://app.example.com\" must be https"},
		{"passkeys:\n  rp_id: example.com\n  origins: [https://app.example.com/login]\n", "passkeys.origins[0]: \"https://app.example.com/login\" must be an origin"},
		{"passkeys:\n  rp_id: example.com\n  origins: [https://example.com]\n  timeout: 20m\n", "lapse.yaml:4: passkeys.timeout: must be between 30s and 10m"},
		{"passkeys:\n  rp_id: example.com\n  origins: [https://example.com]\n  attestation: direct\n", "lapse.yaml:4: passkeys.attestation: is not a known key"},
		{"passkeys: yes\n", "lapse.yaml:1: passkeys: must be a mapping"},
	} {
		_, err := config.Parse("lapse.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.yaml, err, c.want)
		}
	}
	if _, err := config.Parse("lapse.yaml", []byte("passkeys:\n  rp_id: localhost\n  origins: [http://localhost:8080]\n")); err != nil {
		t.Errorf("localhost over http: %v, want accepted (a secure context)", err)
	}
}
