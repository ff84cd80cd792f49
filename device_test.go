package lapse_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
)

// countingBinder counts the reads of device bindings.
type countingBinder struct {
	*lapsetest.Store
	reads atomic.Int64
}

func (c *countingBinder) DeviceBinding(ctx context.Context, id string) (*lapse.DeviceBinding, error) {
	c.reads.Add(1)
	return c.Store.DeviceBinding(ctx, id)
}

// TestBoundCookieIsReadOnceAndRefusedPastItsLifetime: a bound session's
// verifies read its binding once per bound cookie, not per request; the
// remembered cookie is refused once past its lifetime, and another
// cookie is never taken for it.
func TestBoundCookieIsReadOnceAndRefusedPastItsLifetime(t *testing.T) {
	p := lapsetest.Policy()
	tier := p.Tiers["standard"]
	tier.DeviceBinding = lapse.DeviceBindingPreferred
	tier.OnTheft = lapse.TheftRecord
	p.Tiers["standard"] = tier
	st := &countingBinder{Store: lapsetest.NewStore()}
	t.Cleanup(func() { st.Close() })
	m, clock, _ := lapsetest.NewManager(t, lapse.Config{Store: st, Policy: p})
	ctx := context.Background()
	_, s, err := m.Create(ctx, lapse.CreateParams{Subject: "alice", Tier: "standard"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.DeviceChallenge(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := m.BindDevice(ctx, s, lapse.DeviceKey{Thumbprint: "k", JWK: []byte(`{}`)}, c)
	if err != nil {
		t.Fatal(err)
	}
	before := st.reads.Load()
	for range 5 {
		if err := m.VerifyDevice(ctx, s, lapse.DevicePresence{Cookie: bc.Value}); err != nil {
			t.Fatalf("VerifyDevice with the bound cookie: %v", err)
		}
	}
	if got := st.reads.Load() - before; got != 1 {
		t.Errorf("5 verifies with one bound cookie read the binding %d times, want 1", got)
	}
	if err := m.VerifyDevice(ctx, s, lapse.DevicePresence{Cookie: "lpb_another"}); lapse.ErrorCode(err) != lapse.CodeDeviceProofRequired {
		t.Errorf("VerifyDevice with another cookie: %v, want %s", err, lapse.CodeDeviceProofRequired)
	}
	clock.Set(bc.ExpiresAt.Add(lapse.BoundCookieSlack))
	if err := m.VerifyDevice(ctx, s, lapse.DevicePresence{Cookie: bc.Value}); lapse.ErrorCode(err) != lapse.CodeDeviceProofRequired {
		t.Errorf("VerifyDevice with the bound cookie past its lifetime: %v, want %s", err, lapse.CodeDeviceProofRequired)
	}
}
