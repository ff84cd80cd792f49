package dbsc_test

import (
	"strings"
	"testing"

	"github.com/lapsehq/lapse/dbsc"
	"github.com/lapsehq/lapse/dbsc/dbsctest"
)

// FuzzParseProof feeds the registration and refresh parsers any header
// value: neither panics, and whatever verifies answers a challenge and
// carries a thumbprint of its key.
func FuzzParseProof(f *testing.F) {
	es, rs := dbsctest.NewES256(), dbsctest.NewRS256()
	f.Add(es.Registration("c1", "aud"))
	f.Add(rs.Registration("c2", ""))
	f.Add(es.Refresh("c3"))
	f.Add("e30.e30.")
	f.Add("..")
	f.Add(`eyJhbGciOiJub25lIiwidHlwIjoiZGJzYytqd3QifQ.eyJqdGkiOiJjIn0.`)
	jwk := []byte(`{"crv":"P-256","kty":"EC","x":"` + es.JWK()["x"] + `","y":"` + es.JWK()["y"] + `"}`)
	f.Fuzz(func(t *testing.T, jwt string) {
		if p, err := dbsc.ParseRegistration(jwt); err == nil && (p.Challenge == "" || p.Key.Thumbprint == "" || len(p.Key.JWK) == 0) {
			t.Errorf("ParseRegistration(%q) = %+v with no challenge or key", jwt, p)
		}
		if p, err := dbsc.ParseRefresh(jwt, jwk); err == nil && (p.Challenge == "" || p.Key.Thumbprint != es.Thumbprint()) {
			t.Errorf("ParseRefresh(%q) = %+v, verified by another key", jwt, p)
		}
		dbsc.ParseJWK([]byte(jwt))
	})
}

// FuzzParseSessionID: the session id header parser never panics, and
// what it returns is printable ASCII within the cap.
func FuzzParseSessionID(f *testing.F) {
	for _, s := range []string{`"ses_1"`, `"a\"b";x=1`, `"`, `"\q"`, ` "x" `, `"x"y`, `"` + strings.Repeat("a", 200) + `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s, ok := dbsc.ParseSessionID(v)
		if !ok {
			return
		}
		if len(s) > dbsc.MaxSessionIDLen {
			t.Errorf("ParseSessionID(%q) = %d bytes, over the cap", v, len(s))
		}
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] > 0x7e {
				t.Errorf("ParseSessionID(%q) = %q, not printable", v, s)
			}
		}
	})
}

func TestParseSessionID(t *testing.T) {
	for in, want := range map[string]string{`"ses_1"`: "ses_1", `"a\"b";x=1`: `a"b`, ` "x" `: "x", "ses_AQNP4wISUuL9I92Mxtxe8A": "ses_AQNP4wISUuL9I92Mxtxe8A"} {
		if got, ok := dbsc.ParseSessionID(in); !ok || got != want {
			t.Errorf("ParseSessionID(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{``, `"`, `x y`, `"\q"`, `"x"y`, "\"\x01\"", "ses;1"} {
		if got, ok := dbsc.ParseSessionID(in); ok {
			t.Errorf("ParseSessionID(%q) = %q, want refused", in, got)
		}
	}
}
