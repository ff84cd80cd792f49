package forwardauth

import (
	"net/http/httptest"
	"testing"

	"github.com/lapsehq/lapse"
)

// BenchmarkAuthRequest is one decision of GET /v1/auth-request for an
// allowed request, as nginx asks it, without the network.
func BenchmarkAuthRequest(b *testing.B) {
	f := newFixture(b, nil)
	tok, _, err := f.m.Create(b.Context(), lapse.CreateParams{Subject: "alice"})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", authRequest, nil)
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("X-Original-URI", "/docs/1?x=1")
	r.Header.Set("X-Original-Method", "GET")
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("X-Forwarded-Host", "app.example.com")
	r.Header.Set("Cookie", "theme=dark; lapse="+tok.Reveal())
	r.Header.Set("Accept", "application/json")
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		f.mux.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
