package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

func TestAppendSessionMatchesEncodingJSON(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 120, time.UTC)
	base := lapse.Session{
		ID: "ses_x", Subject: "alice", Tenant: "acme", Tier: "standard", AAL: 2, AMR: []string{"pwd", "otp"},
		Status: lapse.StatusActive, CreatedAt: t0, LastActiveAt: t0.Add(time.Second), AuthenticatedAt: t0,
		IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(2 * time.Hour), WarnAt: t0.Add(58 * time.Minute),
		IP: "2001:db8::1", UserAgent: "Mozilla/5.0",
	}
	cases := map[string]func(s *lapse.Session){
		"active": func(*lapse.Session) {},
		"no_amr": func(s *lapse.Session) { s.AMR = nil },
		"revoked": func(s *lapse.Session) {
			s.Status, s.EndReason, s.EndedAt = lapse.StatusRevoked, lapse.ReasonAdmin, t0.Add(time.Minute)
		},
		"metadata": func(s *lapse.Session) { s.Metadata = json.RawMessage(`{ "a" : [1, 2], "html": "<b>&</b>" }`) },
		"escapes": func(s *lapse.Session) {
			s.Subject = "q\"b\\s\n\t\r\b\f\x01<>&\u2028\u2029é\xff"
			s.UserAgent = "\x7f日本"
		},
		"other_zone": func(s *lapse.Session) { s.CreatedAt = s.CreatedAt.In(time.FixedZone("x", 3600)) },
		"remind_at":  func(s *lapse.Session) { s.Policy.RemindAfter = 8 * time.Hour },
		"remind_at_other_zone": func(s *lapse.Session) {
			s.CreatedAt, s.Policy.RemindAfter = s.CreatedAt.In(time.FixedZone("x", -3600)), 90*time.Second
		},
	}
	for name, edit := range cases {
		s := base
		edit(&s)
		want, err := json.Marshal(NewSession(&s))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendSession(nil, &s); string(got) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("plain")
	f.Add("<script>\"\\\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func FuzzAppendTime(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(1_800_000_000), int64(123456789))
	f.Add(int64(-62_135_596_801), int64(1))
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		tm := time.Unix(sec, nsec%1_000_000_000)
		want := `"` + tm.UTC().Format(timeFormat) + `"`
		if tm.IsZero() {
			want = `""`
		}
		if got := string(appendTime(nil, tm)); got != want {
			t.Fatalf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	})
}
