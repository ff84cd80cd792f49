package loopback_test

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"

	"github.com/lapsehq/lapse/loopback"
)

func TestHost(t *testing.T) {
	for hostport, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "localhost:8080": true, "LocalHost:1": true,
		"127.0.0.1": true, "127.0.0.1:8080": true, "127.3.4.5:1": true,
		"::1": true, "[::1]": true, "[::1]:8080": true,
		"": false, "example.com": false, "localhost.example.com": false, "10.0.0.1:80": false,
		"[::2]:80": false, "0.0.0.0:8080": false, "localhostx": false, "[127.0.0.1": false,
	} {
		if got := loopback.Host(hostport); got != want {
			t.Errorf("Host(%q) = %v, want %v", hostport, got, want)
		}
	}
}

func TestPlainRequest(t *testing.T) {
	for _, c := range []struct {
		name, host, remote string
		tls                bool
		want               bool
	}{
		{"loopback_both", "localhost:8080", "127.0.0.1:5000", false, true},
		{"ipv6", "[::1]:8080", "[::1]:5000", false, true},
		{"over_tls", "localhost:8080", "127.0.0.1:5000", true, false},
		{"a_lying_host_header_from_afar", "localhost:8080", "203.0.113.9:5000", false, false},
		{"a_public_host_name", "app.example.com", "127.0.0.1:5000", false, false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host, r.RemoteAddr = c.host, c.remote
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if got := loopback.PlainRequest(r); got != c.want {
			t.Errorf("%s: PlainRequest = %v, want %v", c.name, got, c.want)
		}
	}
}
