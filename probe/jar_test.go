package probe

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// names returns the names of the cookies s sends to u.
func sent(s *session, u string) []string {
	var out []string
	for _, c := range s.cookiesFor(mustURL(u)) {
		out = append(out, c.Name)
	}
	slices.Sort(out)
	return out
}

func TestJarHonoursSecureDomainAndPath(t *testing.T) {
	s := &session{}
	set := func(from, header string) {
		for _, c := range (&http.Response{Header: http.Header{"Set-Cookie": {header}}}).Cookies() {
			s.setCookie(c, mustURL(from), now)
		}
	}
	set("https://app.example/login", "secure=1; Secure; Path=/")
	set("https://app.example/login", "plain=1; Path=/")
	set("https://app.example/admin/login", "admin=1; Path=/admin")
	set("https://app.example/account/settings", "nopath=1")
	set("https://app.example/login", "sub=1; Domain=.App.Example")
	set("https://app.example/login", "elsewhere=1; Domain=other.example")
	set("http://app.example/login", "insecure=1; Secure")
	cases := []struct {
		url  string
		want []string
	}{
		{"https://app.example/account", []string{"nopath", "plain", "secure", "sub"}},
		{"https://app.example/admin", []string{"admin", "plain", "secure", "sub"}},
		{"https://app.example/admin/users", []string{"admin", "plain", "secure", "sub"}},
		{"https://app.example/administrator", []string{"plain", "secure", "sub"}},
		{"https://app.example/", []string{"plain", "secure", "sub"}},
		{"http://app.example/account", []string{"nopath", "plain", "sub"}},
		{"http://127.0.0.1/account", []string{"nopath", "plain", "secure", "sub"}},
	}
	for _, tc := range cases {
		if got := sent(s, tc.url); !slices.Equal(got, tc.want) {
			t.Errorf("to %s: sends %v, want %v", tc.url, got, tc.want)
		}
	}
	// A cookie that a later answer deletes is gone; one set again is replaced.
	set("https://app.example/login", "plain=; Max-Age=0; Path=/")
	set("https://app.example/login", "secure=2; Secure; Path=/")
	if got := sent(s, "https://app.example/"); !slices.Equal(got, []string{"secure", "sub"}) || s.cookie("secure").Value != "2" {
		t.Errorf("after deleting plain and setting secure again: sends %v (secure=%s), want [secure sub] and secure=2", got, s.cookie("secure").Value)
	}
}

func TestSameOriginComparesSchemeHostAndPort(t *testing.T) {
	base := mustURL("https://app.example")
	cases := []struct {
		url  string
		same bool
	}{
		{"https://app.example/x", true},
		{"https://APP.example:443/x", true},
		{"http://app.example/x", false},
		{"http://app.example:443/x", false},
		{"https://app.example:8443/x", false},
		{"https://evil.example/x", false},
		{"https://app.example.evil.example/x", false},
	}
	for _, tc := range cases {
		if got := sameOrigin(mustURL(tc.url), base); got != tc.same {
			t.Errorf("sameOrigin(%s, %s) = %v, want %v", tc.url, base, got, tc.same)
		}
	}
}

// TestIssuedCookiesAreThoseTheSignInLeft checks that the cookies judged as the sign-in's
// are those its answers set and did not delete again.
func TestIssuedCookiesAreThoseTheSignInLeft(t *testing.T) {
	ex := func(headers ...string) *exchange {
		return &exchange{cookies: (&http.Response{Header: http.Header{"Set-Cookie": headers}}).Cookies(), at: now}
	}
	s := &session{signInHops: []*exchange{
		ex("sid=a; Path=/", "legacy=x; Max-Age=600", "flash=hi"),
		ex("legacy=; Max-Age=0", "flash=; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "remember=r; Max-Age=3600"),
	}}
	got, _ := s.issuedCookies()
	var names []string
	for _, c := range got {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"sid", "remember"}) {
		t.Errorf("got %v, want [sid remember]: legacy and flash were deleted by the sign-in", names)
	}
}
