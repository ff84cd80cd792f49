package config_test

import (
	"strings"
	"testing"

	"github.com/lapsehq/lapse/config"
)

// TestURLsNeverEchoTheirSecrets: the store and webhook URLs print
// redacted, and a configuration error about a webhook URL does not repeat
// its password.
func TestURLsNeverEchoTheirSecrets(t *testing.T) {
	f, err := config.Parse("x.yaml", []byte(`
store: redis://:S3cret@127.0.0.1:6379/0
webhooks:
  - {name: ops, url: "https://hook:S3cret@hooks.example.com/x?token=S3cret", secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
`))
	if err != nil {
		t.Fatal(err)
	}
	if s := f.Store.String() + f.Webhooks[0].URL.String(); strings.Contains(s, "S3cret") {
		t.Errorf("printed: %s", s)
	}
	if !strings.Contains(f.Store.Reveal(), "S3cret") {
		t.Errorf("the store URL lost its password: %s", f.Store)
	}
	_, err = config.Parse("x.yaml", []byte(`
webhooks:
  - {name: ops, url: "ftp://hook:S3cret@hooks.example.com/", secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
`))
	if err == nil || !strings.Contains(err.Error(), "is not an http(s) URL") || strings.Contains(err.Error(), "S3cret") {
		t.Errorf("error %v, want one about the URL without its password", err)
	}
}
