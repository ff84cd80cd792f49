package httpapi

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

// TestSessionShapesAgree keeps the four places that write a session's
// JSON in step: lapse.Session's own tags (for programs that embed lapse),
// this package's Session (NewSession), the hand-written encoder of the
// verify reply (appendSession, checked against NewSession by
// TestAppendSessionMatchesEncodingJSON) and openapi.json's Session schema
// (checked against Session by TestOpenAPISchemasMatchGoTypes). The domain type
// writes the same members with the same values, but for what only the
// API computes: remind_at, and members it writes even when empty.
func TestSessionShapesAgree(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 120, time.UTC)
	s := &lapse.Session{
		ID: "ses_x", Subject: "alice", Tenant: "acme", Tier: "standard", AAL: 2, AMR: []string{"pwd", "otp"},
		Status: lapse.StatusRevoked, EndReason: lapse.ReasonAdmin,
		CreatedAt: t0, LastActiveAt: t0.Add(time.Second), AuthenticatedAt: t0,
		IdleExpiresAt: t0.Add(time.Hour), ExpiresAt: t0.Add(2 * time.Hour), WarnAt: t0.Add(58 * time.Minute), EndedAt: t0.Add(time.Minute),
		IP: "2001:db8::1", UserAgent: "Mozilla/5.0", Metadata: json.RawMessage(`{"plan":"pro"}`),
	}
	decode := func(v any) map[string]any {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	domain, api := decode(s), decode(NewSession(s))
	delete(api, "remind_at") // the API's alone: created_at plus the tier's remind_after
	if got, want := slices.Sorted(maps.Keys(domain)), slices.Sorted(maps.Keys(api)); !slices.Equal(got, want) {
		t.Fatalf("lapse.Session writes %v, the API's Session %v", got, want)
	}
	for k, want := range api {
		got := domain[k]
		if ws, ok := want.(string); ok {
			if wt, err := time.Parse(time.RFC3339Nano, ws); err == nil {
				gt, err := time.Parse(time.RFC3339Nano, got.(string))
				if err != nil || !gt.Equal(wt) {
					t.Errorf("%s: lapse.Session writes %v, the API %v", k, got, want)
				}
				continue
			}
		}
		if gb, wb := decodeAgain(t, got), decodeAgain(t, want); gb != wb {
			t.Errorf("%s: lapse.Session writes %s, the API %s", k, gb, wb)
		}
	}
}

func decodeAgain(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
