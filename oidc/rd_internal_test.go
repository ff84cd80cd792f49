package oidc

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzSafeRD checks that an rd is kept only as a path of this origin or
// as a URL on an allowed origin.
func FuzzSafeRD(f *testing.F) {
	rp := &RP{origins: []string{"https://app.example.com", "http://127.0.0.1:8080"}}
	for _, s := range []string{"/", "/a?b", "//evil", `/\evil`, "https://app.example.com/x", "https://app.example.com.evil/", "https://user@app.example.com/", "javascript:x", "HTTPS://APP.EXAMPLE.COM/y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rd string) {
		got := rp.safeRD(rd)
		if got == "/" {
			return
		}
		if got != rd {
			t.Fatalf("safeRD(%q) = %q: neither rd nor /", rd, got)
		}
		if strings.HasPrefix(got, "/") {
			if strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\r\n\t") {
				t.Fatalf("safeRD(%q) kept a path a browser may read as another host", rd)
			}
			return
		}
		u, err := url.Parse(got)
		if err != nil || u.User != nil {
			t.Fatalf("safeRD(%q) kept %q", rd, got)
		}
		o := strings.ToLower(u.Scheme + "://" + u.Host)
		if o != rp.origins[0] && o != rp.origins[1] {
			t.Fatalf("safeRD(%q) kept a URL on %s", rd, o)
		}
	})
}
