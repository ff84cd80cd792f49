package lapse

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"
)

// DeviceBindingMode says how a tier binds its sessions to the browser's
// device key (Device Bound Session Credentials, DBSC).
type DeviceBindingMode string

// Device binding modes of a tier.
const (
	// DeviceBindingOff (or empty) offers no binding.
	DeviceBindingOff DeviceBindingMode = "off"
	// DeviceBindingPreferred offers binding; a session that binds must
	// then show its short-lived bound cookie, one that does not still
	// works as before.
	DeviceBindingPreferred DeviceBindingMode = "preferred"
	// DeviceBindingRequired offers binding and refuses, with
	// [CodeDeviceUnbound], a session that has not bound within the tier's
	// BindGrace of its creation.
	DeviceBindingRequired DeviceBindingMode = "required"
)

// TheftAction says what lapse does when it suspects that a bound
// session's cookies are used off the device they were bound to.
type TheftAction string

// Theft actions of a tier.
const (
	// TheftRevoke (or empty) records [EventTheftSuspected] and revokes the
	// session with [ReasonTheft].
	TheftRevoke TheftAction = "revoke"
	// TheftRecord records [EventTheftSuspected] and refuses the request,
	// leaving the session active.
	TheftRecord TheftAction = "record"
)

// Defaults of a tier's device binding settings.
const (
	DefaultBindGrace           = 30 * time.Second
	DefaultBoundCookieLifetime = 10 * time.Minute
	// ChallengeLifetime is how long a device challenge may be answered.
	ChallengeLifetime = 5 * time.Minute
	// BoundCookieSlack is how long past its lifetime the server still
	// takes a bound cookie: the browser drops it at its Max-Age and
	// refreshes first, so only a clock that runs behind sends one late,
	// and that must not read as theft.
	BoundCookieSlack = 10 * time.Second
)

// Events and codes of device binding.
const (
	// EventDeviceBound: the session's browser proved a key and the session
	// is bound to it from now on.
	EventDeviceBound EventType = "session.device_bound"
	// EventTheftSuspected: a bound session's token came without a valid
	// bound cookie (and the browser did not say it skipped a refresh), or
	// a refresh proof failed under the registered key while the session's
	// token came with it. Reason says which.
	EventTheftSuspected EventType = "session.theft_suspected"

	// CodeDeviceUnbound: the tier requires device binding and the session
	// did not bind within the grace.
	CodeDeviceUnbound Code = "device_unbound"
	// CodeDeviceProofRequired: the session is bound and the request has
	// no valid bound cookie; the browser must refresh it with a proof.
	CodeDeviceProofRequired Code = "device_proof_required"
	// CodeDeviceProofInvalid: a Secure-Session-Response that is not a
	// well-formed dbsc+jwt signed with ES256 or RS256 by the expected key.
	CodeDeviceProofInvalid Code = "device_proof_invalid"

	// ReasonBoundCookieMissing and ReasonOtherKey are the reasons of an
	// [EventTheftSuspected].
	ReasonBoundCookieMissing Reason = "bound_cookie_missing"
	ReasonOtherKey           Reason = "other_key"
)

// DeviceRules are a tier's device binding settings with defaults applied.
type DeviceRules struct {
	Mode                DeviceBindingMode
	OnTheft             TheftAction
	BindGrace           time.Duration
	BoundCookieLifetime time.Duration
}

// Device returns t's device binding settings, the zero values replaced by
// their defaults.
func (t Tier) Device() DeviceRules {
	r := DeviceRules{Mode: t.DeviceBinding, OnTheft: t.OnTheft, BindGrace: t.BindGrace, BoundCookieLifetime: t.BoundCookieLifetime}
	if r.Mode == "" {
		r.Mode = DeviceBindingOff
	}
	if r.OnTheft == "" {
		r.OnTheft = TheftRevoke
	}
	if r.BindGrace == 0 {
		r.BindGrace = DefaultBindGrace
	}
	if r.BoundCookieLifetime == 0 {
		r.BoundCookieLifetime = DefaultBoundCookieLifetime
	}
	return r
}

// DeviceKey is a browser's public key as it registered it: the JWK and
// its RFC 7638 thumbprint (base64url SHA-256).
type DeviceKey struct {
	Thumbprint string
	JWK        json.RawMessage
}

// DeviceBinding is what a store records of a bound session: the key, and
// the hash and expiry of the current short-lived bound cookie.
type DeviceBinding struct {
	SessionID       string
	Key             DeviceKey
	BoundAt         time.Time
	CookieHash      TokenHash
	CookieExpiresAt time.Time
	// PrevCookieHash and PrevCookieExpiresAt are the cookie the last
	// renewal replaced: requests the browser sent while it refreshed
	// still carry it, and it works until its own expiry.
	PrevCookieHash      TokenHash
	PrevCookieExpiresAt time.Time
}

// DeviceBinder is implemented by stores that record device bindings
// (DBSC), for every node that shares them.
type DeviceBinder interface {
	// Bind records b for its session and appends ev in the same atomic
	// step. It fails with [CodeSessionNotFound] for an unknown session
	// and with [CodeConflict] when the session is already bound: a
	// session binds once, to one key.
	Bind(ctx context.Context, b DeviceBinding, ev Event) error
	// DeviceBinding returns the binding of session id, or nil and no error
	// when it has none.
	DeviceBinding(ctx context.Context, id string) (*DeviceBinding, error)
	// RenewBoundCookie replaces the bound cookie of session id's binding
	// by h, valid until until, if the binding's key thumbprint is
	// thumbprint; otherwise it fails with [CodeConflict]. The replaced
	// cookie becomes the binding's previous one (PrevCookieHash,
	// PrevCookieExpiresAt).
	RenewBoundCookie(ctx context.Context, id, thumbprint string, h TokenHash, until time.Time) error
}

// BoundCookie is a fresh short-lived bound cookie: its value (a secret,
// of which the store keeps only the hash) and when it stops working.
type BoundCookie struct {
	Value     string
	ExpiresAt time.Time
}

// DeviceRules returns the device binding settings of s's tier in the
// current policy. Unlike the timeouts, which a session keeps from its
// creation, they are read anew, so an operator can turn binding on for
// the sessions already issued.
func (m *Manager) DeviceRules(s *Session) DeviceRules {
	_, t, err := m.policy.Tier(s.Tenant, s.Tier)
	if err != nil {
		return s.Policy.Device()
	}
	return t.Device()
}

func (m *Manager) binder() (DeviceBinder, error) {
	b, ok := m.store.(DeviceBinder)
	if !ok {
		return nil, Errorf(CodeInternal, "this store records no device bindings")
	}
	return b, nil
}

// DeviceChallenge returns a fresh challenge for a proof by session id's
// device key, to be answered once within [ChallengeLifetime]. It is
// recorded as issued through the store's [ReplayGuard], so that only a
// challenge lapse issued, for that session, is taken, on any node.
func (m *Manager) DeviceChallenge(ctx context.Context, id string) (string, error) {
	g, ok := m.store.(ReplayGuard)
	if !ok {
		return "", Errorf(CodeInternal, "this store cannot take challenges once")
	}
	var raw [32]byte
	rand.Read(raw[:])
	c := base64.RawURLEncoding.EncodeToString(raw[:])
	now := m.clock.Now()
	if _, err := g.FirstUse(ctx, challengeKey("dbsc-issued:", id, c), now.Add(ChallengeLifetime), now); err != nil {
		return "", err
	}
	return c, nil
}

// takeChallenge consumes challenge c of session id: it must have been
// issued for id (its issue mark is found) and not answered before.
func (m *Manager) takeChallenge(ctx context.Context, id, c string) error {
	g, ok := m.store.(ReplayGuard)
	if !ok {
		return Errorf(CodeInternal, "this store cannot take challenges once")
	}
	now := m.clock.Now()
	until := now.Add(ChallengeLifetime)
	// FirstUse on the issue mark finds it used exactly when lapse issued
	// it (and it has not lapsed); a made-up challenge finds it unused.
	unissued, err := g.FirstUse(ctx, challengeKey("dbsc-issued:", id, c), until, now)
	if err != nil {
		return err
	}
	fresh, err := g.FirstUse(ctx, challengeKey("dbsc-used:", id, c), until, now)
	switch {
	case err != nil:
		return err
	case unissued || !fresh:
		return Errorf(CodeChallengeInvalid, "the proof answers no open challenge of this session")
	}
	return nil
}

func challengeKey(purpose, id, c string) string {
	h := sha256.Sum256([]byte(id + "\x00" + c))
	return purpose + base64.RawURLEncoding.EncodeToString(h[:])
}

// BindDevice binds s, which the caller has just verified with its token,
// to key, whose proof over challenge the caller has verified: it takes
// the challenge once, records the binding with [EventDeviceBound], and
// returns the first bound cookie. It fails with [CodeChallengeInvalid],
// [CodeConflict] when s is already bound, or the ended session's code.
func (m *Manager) BindDevice(ctx context.Context, s *Session, key DeviceKey, challenge string) (BoundCookie, error) {
	b, err := m.binder()
	if err != nil {
		return BoundCookie{}, err
	}
	if err := m.takeChallenge(ctx, s.ID, challenge); err != nil {
		return BoundCookie{}, err
	}
	now := m.clock.Now()
	if !s.ActiveAt(now) {
		return BoundCookie{}, EndedError(asOf(s, now))
	}
	c := newBoundCookie(now, m.DeviceRules(s).BoundCookieLifetime)
	ev := NewEvent(EventDeviceBound, s, "", ActorSubject, now)
	err = b.Bind(ctx, DeviceBinding{SessionID: s.ID, Key: key, BoundAt: now, CookieHash: HashSecret(c.Value), CookieExpiresAt: c.ExpiresAt}, ev)
	return c, err
}

func newBoundCookie(now time.Time, lifetime time.Duration) BoundCookie {
	var raw [32]byte
	rand.Read(raw[:])
	return BoundCookie{Value: base64.RawURLEncoding.EncodeToString(raw[:]), ExpiresAt: now.Add(lifetime)}
}

// DeviceSession returns session id and its binding, for a refresh. A
// refresh is not user activity: nothing is touched. It fails with
// [CodeSessionNotFound] for an unknown or unbound session and with the
// ended session's code for one that is not active now (the browser is
// then told to stop refreshing).
func (m *Manager) DeviceSession(ctx context.Context, id string) (*Session, *DeviceBinding, error) {
	b, err := m.binder()
	if err != nil {
		return nil, nil, err
	}
	s, err := m.Session(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if s.Status != StatusActive {
		return s, nil, EndedError(s)
	}
	d, err := b.DeviceBinding(ctx, id)
	switch {
	case err != nil:
		return s, nil, err
	case d == nil:
		return s, nil, Errorf(CodeSessionNotFound, "the session is not bound to a device")
	}
	return s, d, nil
}

// RefreshDevice answers a refresh of s's bound cookie whose proof over
// challenge by d's key the caller has verified: it takes the challenge
// once and records a fresh bound cookie. It fails with
// [CodeChallengeInvalid], or [CodeConflict] if the binding changed.
func (m *Manager) RefreshDevice(ctx context.Context, s *Session, d *DeviceBinding, challenge string) (BoundCookie, error) {
	b, err := m.binder()
	if err != nil {
		return BoundCookie{}, err
	}
	if err := m.takeChallenge(ctx, s.ID, challenge); err != nil {
		return BoundCookie{}, err
	}
	c := newBoundCookie(m.clock.Now(), m.DeviceRules(s).BoundCookieLifetime)
	return c, b.RenewBoundCookie(ctx, s.ID, d.Key.Thumbprint, HashSecret(c.Value), c.ExpiresAt)
}

// DevicePresence is what a request shows of its device binding: the
// bound cookie's value ("" when it sent none) and whether the browser
// said it skipped a refresh (the Secure-Session-Skipped header).
type DevicePresence struct {
	Cookie  string
	Skipped bool
}

// VerifyDevice checks the device binding of s, a session the caller has
// just verified by its token, against what the request shows, under
// the tier's rules: with binding off it reads nothing; an unbound
// session passes, unless the tier requires binding and the grace since
// its creation has passed ([CodeDeviceUnbound]); a bound session needs
// its current bound cookie, unexpired. A bound session without one is
// refused with [CodeDeviceProofRequired]; unless the browser said it
// skipped the refresh, theft is suspected ([Manager.SuspectTheft]) and
// the session may be revoked, in which case the revoke's error is
// returned.
func (m *Manager) VerifyDevice(ctx context.Context, s *Session, p DevicePresence) error {
	rules := m.DeviceRules(s)
	if rules.Mode == DeviceBindingOff {
		return nil
	}
	b, ok := m.store.(DeviceBinder)
	if !ok {
		return nil // config refuses binding on such a store; nothing to check
	}
	var h TokenHash
	if p.Cookie != "" {
		h = HashSecret(p.Cookie)
		if m.bound.holds(s.ID, h, m.clock.Now()) {
			return nil
		}
	}
	d, err := b.DeviceBinding(ctx, s.ID)
	if err != nil {
		return err
	}
	now := m.clock.Now()
	if d == nil {
		if rules.Mode == DeviceBindingRequired && !now.Before(s.CreatedAt.Add(rules.BindGrace)) {
			return Errorf(CodeDeviceUnbound, "this tier requires a device-bound session and the browser did not bind this one")
		}
		return nil
	}
	if p.Cookie != "" {
		if until, ok := d.holds(h, now); ok {
			m.bound.accept(s.ID, h, until)
			return nil
		}
	} else if !p.Skipped && now.Before(d.BoundAt.Add(BoundCookieSlack)) {
		// A request the browser sent before registration gave it the
		// bound cookie (registration does not hold other requests back)
		// may arrive just after the binding: not a sign of theft.
		return nil
	}
	return m.refuseUnbound(ctx, s, p.Skipped)
}

// refuseUnbound refuses a request of the bound session s that has no
// valid bound cookie: unless the browser said it skipped the refresh,
// theft is suspected, and the revoke's error is returned if the tier
// revokes.
func (m *Manager) refuseUnbound(ctx context.Context, s *Session, skipped bool) error {
	refused := Errorf(CodeDeviceProofRequired, "the session is bound to a device and the request has no valid bound cookie")
	if skipped {
		return refused
	}
	if ended, err := m.SuspectTheft(ctx, s, ReasonBoundCookieMissing); err != nil {
		return err
	} else if ended != nil {
		return EndedError(ended)
	}
	return refused
}

// holds reports whether h is the hash of d's current or previous bound
// cookie, unexpired at now, and until when that cookie is accepted.
func (d *DeviceBinding) holds(h TokenHash, now time.Time) (until time.Time, ok bool) {
	if h.Equal(d.CookieHash) {
		if until = d.CookieExpiresAt.Add(BoundCookieSlack); now.Before(until) {
			return until, true
		}
	}
	if h.Equal(d.PrevCookieHash) {
		if until = d.PrevCookieExpiresAt.Add(BoundCookieSlack); now.Before(until) {
			return until, true
		}
	}
	return time.Time{}, false
}

// SuspectTheft records [EventTheftSuspected] for s with reason why and,
// when s's tier says [TheftRevoke], revokes s with [ReasonTheft]; it
// returns the revoked session then, nil otherwise.
func (m *Manager) SuspectTheft(ctx context.Context, s *Session, why Reason) (*Session, error) {
	now := m.clock.Now()
	if rec, ok := m.store.(EventRecorder); ok {
		if err := rec.RecordEvent(ctx, NewEvent(EventTheftSuspected, s, why, ActorSystem, now)); err != nil {
			return nil, err
		}
	}
	if m.DeviceRules(s).OnTheft != TheftRevoke {
		return nil, nil
	}
	ended, changed, err := m.store.End(ctx, s.ID, Ending{Status: StatusRevoked, Reason: ReasonTheft, Actor: ActorSystem, Now: now})
	if err != nil {
		return nil, err
	}
	if changed {
		m.ended([]*Session{ended})
	}
	return ended, nil
}

// DeviceBound reports which of the sessions ids are bound to a device,
// for pages that list sessions. A store without bindings binds none.
func (m *Manager) DeviceBound(ctx context.Context, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	b, ok := m.store.(DeviceBinder)
	if !ok {
		return out, nil
	}
	for _, id := range ids {
		d, err := b.DeviceBinding(ctx, id)
		if err != nil {
			return nil, err
		}
		out[id] = d != nil
	}
	return out, nil
}
