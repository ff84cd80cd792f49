package storetest

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

// binding returns a binding of s to a made-up key.
func binding(s *lapse.Session, thumb string, at time.Time) lapse.DeviceBinding {
	return lapse.DeviceBinding{
		SessionID: s.ID,
		Key:       lapse.DeviceKey{Thumbprint: thumb, JWK: json.RawMessage(`{"kty":"EC","crv":"P-256","x":"` + thumb + `","y":"y"}`)},
		BoundAt:   at, CookieHash: lapse.HashSecret("cookie-" + thumb), CookieExpiresAt: at.Add(10 * time.Minute),
	}
}

func testDeviceBinding(t *testing.T, st lapse.Store) {
	d := st.(lapse.DeviceBinder)
	s := newSession("alice", "acme", "standard", t0)
	mustCreate(t, st, s, 0)
	if got, err := d.DeviceBinding(ctx, s.ID); err != nil || got != nil {
		t.Fatalf("DeviceBinding of an unbound session = %+v, %v; want nil, nil", got, err)
	}
	b := binding(s, "thumb-1", t0.Add(time.Second))
	if err := d.Bind(ctx, b, lapse.NewEvent(lapse.EventDeviceBound, s, "", lapse.ActorSubject, b.BoundAt)); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	got, err := d.DeviceBinding(ctx, s.ID)
	if err != nil || got == nil {
		t.Fatalf("DeviceBinding after Bind = %+v, %v", got, err)
	}
	if got.SessionID != s.ID || got.Key.Thumbprint != "thumb-1" || string(got.Key.JWK) != string(b.Key.JWK) ||
		!got.BoundAt.Equal(b.BoundAt) || !got.CookieHash.Equal(b.CookieHash) || !got.CookieExpiresAt.Equal(b.CookieExpiresAt) {
		t.Errorf("DeviceBinding = %+v, want %+v", got, b)
	}
	again := binding(s, "thumb-2", t0.Add(2*time.Second))
	if err := d.Bind(ctx, again, lapse.NewEvent(lapse.EventDeviceBound, s, "", lapse.ActorSubject, again.BoundAt)); lapse.ErrorCode(err) != lapse.CodeConflict {
		t.Errorf("a second Bind: %v, want %s", err, lapse.CodeConflict)
	}
	unknown := newSession("bob", "acme", "standard", t0)
	if err := d.Bind(ctx, binding(unknown, "thumb-3", t0), lapse.NewEvent(lapse.EventDeviceBound, unknown, "", lapse.ActorSubject, t0)); lapse.ErrorCode(err) != lapse.CodeSessionNotFound {
		t.Errorf("Bind of an unknown session: %v, want %s", err, lapse.CodeSessionNotFound)
	}
	h, until := lapse.HashSecret("cookie-next"), t0.Add(20*time.Minute)
	if err := d.RenewBoundCookie(ctx, s.ID, "thumb-2", h, until); lapse.ErrorCode(err) != lapse.CodeConflict {
		t.Errorf("RenewBoundCookie with another key: %v, want %s", err, lapse.CodeConflict)
	}
	if err := d.RenewBoundCookie(ctx, s.ID, "thumb-1", h, until); err != nil {
		t.Fatalf("RenewBoundCookie: %v", err)
	}
	if got, err := d.DeviceBinding(ctx, s.ID); err != nil || !got.CookieHash.Equal(h) || !got.CookieExpiresAt.Equal(until) || got.Key.Thumbprint != "thumb-1" ||
		!got.PrevCookieHash.Equal(b.CookieHash) || !got.PrevCookieExpiresAt.Equal(b.CookieExpiresAt) {
		t.Errorf("after RenewBoundCookie: %+v, %v; want the new cookie, the replaced one as the previous, the same key", got, err)
	}
	if l, ok := st.(lapse.EventLog); ok {
		evs, err := l.Events(ctx, 0, 10)
		if err != nil || len(evs) != 2 || evs[1].Type != lapse.EventDeviceBound || evs[1].SessionID != s.ID {
			t.Errorf("events = %+v, %v; want created, then one device_bound of %s", evs, err, s.ID)
		}
	}
}

func testDeviceBindOnce(t *testing.T, st lapse.Store) {
	d := st.(lapse.DeviceBinder)
	s := newSession("alice", "acme", "standard", t0)
	mustCreate(t, st, s, 0)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			b := binding(s, "thumb-"+string(rune('a'+i)), t0)
			if err := d.Bind(ctx, b, lapse.NewEvent(lapse.EventDeviceBound, s, "", lapse.ActorSubject, t0)); err == nil {
				wins.Add(1)
			} else if lapse.ErrorCode(err) != lapse.CodeConflict {
				t.Errorf("Bind: %v, want nil or %s", err, lapse.CodeConflict)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d concurrent Binds won, want exactly 1", wins.Load())
	}
}
