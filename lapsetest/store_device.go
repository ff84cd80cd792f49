package lapsetest

import (
	"context"
	"slices"
	"time"

	"github.com/lapsehq/lapse"
)

// Bind implements [lapse.DeviceBinder].
func (st *Store) Bind(_ context.Context, b lapse.DeviceBinding, ev lapse.Event) error {
	if err := st.lock(); err != nil {
		return err
	}
	defer st.mu.Unlock()
	if st.byID(b.SessionID) == nil {
		return lapse.Errorf(lapse.CodeSessionNotFound, "no session %q", b.SessionID)
	}
	if _, ok := st.bindings[b.SessionID]; ok {
		return lapse.Errorf(lapse.CodeConflict, "the session is already bound to a device")
	}
	b.Key.JWK = slices.Clone(b.Key.JWK)
	st.bindings[b.SessionID] = b
	st.appendEvents(ev)
	return nil
}

// DeviceBinding implements [lapse.DeviceBinder].
func (st *Store) DeviceBinding(_ context.Context, id string) (*lapse.DeviceBinding, error) {
	if err := st.lock(); err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	b, ok := st.bindings[id]
	if !ok {
		return nil, nil
	}
	b.Key.JWK = slices.Clone(b.Key.JWK)
	return &b, nil
}

// RenewBoundCookie implements [lapse.DeviceBinder].
func (st *Store) RenewBoundCookie(_ context.Context, id, thumbprint string, h lapse.TokenHash, until time.Time) error {
	if err := st.lock(); err != nil {
		return err
	}
	defer st.mu.Unlock()
	b, ok := st.bindings[id]
	if !ok || b.Key.Thumbprint != thumbprint {
		return lapse.Errorf(lapse.CodeConflict, "the session is not bound to that key")
	}
	b.PrevCookieHash, b.PrevCookieExpiresAt = b.CookieHash, b.CookieExpiresAt
	b.CookieHash, b.CookieExpiresAt = h, until
	st.bindings[id] = b
	return nil
}
