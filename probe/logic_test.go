package probe

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestJudgeCookie(t *testing.T) {
	hour := time.Hour
	sound := func() *http.Cookie {
		return &http.Cookie{Name: "__Host-sid", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	}
	with := func(f func(c *http.Cookie)) *http.Cookie { c := sound(); f(c); return c }
	cases := []struct {
		name       string
		cookie     *http.Cookie
		credential bool
		https      bool
		fail       string // a substring of the failing findings; "" for none
	}{
		{"sound_session_cookie", sound(), true, true, ""},
		{"no_secure_on_https", with(func(c *http.Cookie) { c.Name, c.Secure = "sid", false }), true, true, "no Secure"},
		{"no_secure_on_http_is_not_judged", with(func(c *http.Cookie) { c.Name, c.Secure = "sid", false }), true, false, ""},
		{"no_httponly", with(func(c *http.Cookie) { c.HttpOnly = false }), true, true, "no HttpOnly"},
		{"other_cookie_may_be_read_by_scripts", with(func(c *http.Cookie) { c.HttpOnly = false }), false, true, ""},
		{"samesite_none", with(func(c *http.Cookie) { c.SameSite = http.SameSiteNoneMode }), true, true, "SameSite=None"},
		{"samesite_missing", with(func(c *http.Cookie) { c.SameSite = 0 }), true, true, "no valid SameSite"},
		{"host_prefix_with_domain", with(func(c *http.Cookie) { c.Domain = "example.com" }), false, true, "__Host- prefix"},
		{"secure_prefix_without_secure", with(func(c *http.Cookie) { c.Name, c.Secure = "__Secure-id", false }), false, false, "__Secure- prefix"},
		{"persists_beyond_absolute_timeout", with(func(c *http.Cookie) { c.MaxAge = 86400 }), true, true, "beyond the absolute timeout"},
		{"persists_within_absolute_timeout", with(func(c *http.Cookie) { c.Expires = now.Add(30 * time.Minute) }), true, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var fails []string
			for _, f := range judgeCookie(tc.cookie, tc.credential, tc.https, hour, now) {
				if f.fail {
					fails = append(fails, f.msg)
				}
			}
			got := strings.Join(fails, "; ")
			if tc.fail == "" && got != "" || !strings.Contains(got, tc.fail) {
				t.Errorf("got failures %q, want %q", got, tc.fail)
			}
		})
	}
}

func obs(spec string) []observation {
	var out []observation
	for f := range strings.FieldsSeq(spec) {
		d, err := time.ParseDuration(f[1:])
		if err != nil {
			panic(err)
		}
		out = append(out, observation{after: d, accepted: f[0] == '+'})
	}
	return out
}

func TestJudgeTimeoutBracketsTheExpiry(t *testing.T) {
	phrase := func(d string) string { return "after " + d }
	cases := []struct {
		name   string
		obs    string // +accepted -refused, in any order
		early  bool
		status Status
		want   *Window
	}{
		{"ends_inside_the_window", "+1s -2.5s +1.5s -2s +1.75s", true, Pass, &Window{Min: 1.75, Max: 2}},
		{"never_ends", "+1s +1.5s +2s +2.5s", true, Fail, &Window{Min: 2.5}},
		{"ends_too_early_counts", "+0.5s -1s -1.5s -2s -2.5s", true, Fail, &Window{Min: 0.5, Max: 1}},
		{"ends_too_early_is_fine_for_absolute", "+0.5s -1s", false, Pass, &Window{Min: 0.5, Max: 1}},
		{"accepted_at_the_late_edge_fails", "+2.5s -2.6s", true, Fail, &Window{Min: 2.5, Max: 2.6}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, detail, got := judgeTimeout(obs(tc.obs), 2*time.Second, 500*time.Millisecond, tc.early, phrase)
			if status != tc.status || *got != *tc.want {
				t.Errorf("got %s %v (%s), want %s %v", status, *got, detail, tc.status, *tc.want)
			}
		})
	}
}

func TestIdlePointsSpanTheToleranceWindow(t *testing.T) {
	got := idlePoints(2*time.Second, 500*time.Millisecond)
	want := []time.Duration{500 * time.Millisecond, time.Second, 1500 * time.Millisecond, 1750 * time.Millisecond, 2 * time.Second, 2250 * time.Millisecond, 2500 * time.Millisecond}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestAbsolutePointsKeepTheSessionBusy(t *testing.T) {
	for _, keep := range []time.Duration{300 * time.Millisecond, time.Second, 7 * time.Second} {
		pts := absolutePoints(10*time.Second, time.Second, keep)
		prev := time.Duration(0)
		for _, p := range pts {
			if p-prev > keep {
				t.Errorf("keepAlive %v: gap %v between %v and %v is longer", keep, p-prev, prev, p)
			}
			prev = p
		}
		if pts[len(pts)-1] != 11*time.Second {
			t.Errorf("keepAlive %v: last point %v, want 11s (limit + tolerance)", keep, pts[len(pts)-1])
		}
	}
}

func TestCacheable(t *testing.T) {
	cases := []struct {
		header string
		ok     bool
	}{
		{"no-store", true},
		{"private, No-Store, max-age=0", true},
		{"private, no-cache", true},
		{"no-cache", false},
		{"private, max-age=600", false},
		{"", false},
	}
	for _, tc := range cases {
		h := http.Header{}
		if tc.header != "" {
			h.Set("Cache-Control", tc.header)
		}
		if got := cacheable(h) == ""; got != tc.ok {
			t.Errorf("Cache-Control %q: kept out of caches = %v, want %v", tc.header, got, tc.ok)
		}
	}
}
