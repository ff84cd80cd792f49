package lapse_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/lapsehq/lapse"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://:S3cret@127.0.0.1:6379/0":                 "redis://[REDACTED]@127.0.0.1:6379/0",
		"rediss://user:S3cret@redis.internal:6380":         "rediss://[REDACTED]@redis.internal:6380",
		"redis+cluster://:S3cret@h1:7000,h2:7001/?x=1":     "redis+cluster://[REDACTED]@h1:7000,h2:7001/?x=[REDACTED]",
		"https://hooks.example.com/lapse?token=S3cret&v=2": "https://hooks.example.com/lapse?token=[REDACTED]&v=[REDACTED]",
		"https://u:S3cret@hooks.example.com/a#S3cret":      "https://[REDACTED]@hooks.example.com/a",
		"redis://:pa%zzS3cret@host:1/0":                    "redis://[REDACTED]@host:1/0",
		"http://us er:S3cret@host/":                        "http://[REDACTED]@host/",
		"user:S3cret@host":                                 "[REDACTED]@host",
		"sqlite":                                           "sqlite",
		"https://hooks.example.com/lapse":                  "https://hooks.example.com/lapse",
		"redis://127.0.0.1:6379/0":                         "redis://127.0.0.1:6379/0",
	} {
		if got := lapse.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecretURLPrintsRedacted(t *testing.T) {
	u := lapse.SecretURL("redis://:S3cret@127.0.0.1:6379/0")
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("store", "url", u, "in", struct{ URL lapse.SecretURL }{u})
	out := fmt.Sprintf("%s %v %q %+v %#v", u, u, u, struct{ URL lapse.SecretURL }{u}, u) + fmt.Sprint(u) + fmt.Errorf("store %v", u).Error() + logged.String()
	if strings.Contains(out, "S3cret") {
		t.Errorf("the password was printed: %s", out)
	}
	if u.Reveal() != "redis://:S3cret@127.0.0.1:6379/0" {
		t.Errorf("Reveal = %q, want the URL whole", u.Reveal())
	}
}

// FuzzRedactURL: whatever the string, redacting it does not panic, and
// the user information of a URL that parses is not in the result (unless
// the parts kept hold the same characters).
func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{"redis://:S3cret@127.0.0.1:6379/0", "https://u:p@h/x?token=t#f", "redis+cluster://:p@h1:1,h2:2",
		"user:pw@host", "http://us er:pw@host/", "sqlite", "", "://@?", "%zz://a:b@c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out := lapse.RedactURL(raw)
		u, err := url.Parse(raw)
		if err != nil || u.User == nil || u.Opaque != "" {
			return
		}
		info := u.User.String()
		kept := u.Scheme + u.Host + u.EscapedPath() + u.RawQuery + "[REDACTED]"
		if len(info) >= 3 && strings.Contains(out, info) && !strings.Contains(kept, info) {
			t.Errorf("RedactURL(%q) = %q keeps the user information %q", raw, out, info)
		}
	})
}
