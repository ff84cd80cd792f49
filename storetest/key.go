package storetest

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
)

func testKey(id, tenant string, scopes ...lapse.Scope) *lapse.APIKey {
	return &lapse.APIKey{ID: id, Name: "key " + id, Scopes: scopes, Tenant: tenant,
		Hash: lapse.HashSecret("secret of " + id), CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
}

func testKeyLifecycle(t *testing.T, st lapse.Store) {
	ks := st.(lapse.KeyStore)
	a := testKey("aaaaaaaaaaaaaaaa", "", lapse.ScopeSessionsVerify, lapse.ScopeAuditRead)
	b := testKey("bbbbbbbbbbbbbbbb", "acme", lapse.ScopeSessionsAdmin)
	b.ExpiresAt = time.Time{}
	for _, k := range []*lapse.APIKey{b, a} {
		if err := ks.CreateKey(ctx, k, keyEvent(lapse.EventKeyCreated, k.ID, "created "+k.ID)); err != nil {
			t.Fatalf("CreateKey(%s): %v", k.ID, err)
		}
	}
	if err := ks.CreateKey(ctx, testKey(a.ID, ""), keyEvent(lapse.EventKeyCreated, a.ID, "conflict")); lapse.ErrorCode(err) != lapse.CodeConflict {
		t.Errorf("CreateKey of a used id: %v; want %s", err, lapse.CodeConflict)
	}
	for _, want := range []*lapse.APIKey{a, b} {
		got, err := ks.Key(ctx, want.ID)
		if err != nil || !sameKey(got, want) {
			t.Errorf("Key(%s) = %+v, %v; want %+v", want.ID, got, err, want)
		}
	}
	if _, err := ks.Key(ctx, "zzzzzzzzzzzzzzzz"); lapse.ErrorCode(err) != lapse.CodeKeyNotFound {
		t.Errorf("Key of an unknown id: %v; want %s", err, lapse.CodeKeyNotFound)
	}
	all, err := ks.Keys(ctx)
	if err != nil || len(all) != 2 || all[0].ID != a.ID || all[1].ID != b.ID {
		t.Fatalf("Keys() = %v, %v; want %s then %s", all, err, a.ID, b.ID)
	}

	// A use is recorded only if it is the latest.
	used := t0.Add(time.Hour)
	for _, at := range []time.Time{used, t0.Add(time.Minute)} {
		if err := ks.TouchKey(ctx, a.ID, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := ks.TouchKey(ctx, "zzzzzzzzzzzzzzzz", used); err != nil {
		t.Errorf("TouchKey of an unknown id: %v; want no error", err)
	}
	if got, _ := ks.Key(ctx, a.ID); !got.LastUsedAt.Equal(used) {
		t.Errorf("last used %v; want %v, the latest use", got.LastUsedAt, used)
	}

	// A revoke is recorded once, at its first time.
	revoked := t0.Add(2 * time.Hour)
	got, changed, err := ks.RevokeKey(ctx, a.ID, revoked, keyEvent(lapse.EventKeyRevoked, a.ID, "revoked "+a.ID))
	if err != nil || !changed || !got.RevokedAt.Equal(revoked) {
		t.Fatalf("RevokeKey = %+v, %v, %v; want revoked at %v, changed", got, changed, err, revoked)
	}
	got, changed, err = ks.RevokeKey(ctx, a.ID, revoked.Add(time.Hour), keyEvent(lapse.EventKeyRevoked, a.ID, "revoked again"))
	if err != nil || changed || !got.RevokedAt.Equal(revoked) {
		t.Errorf("RevokeKey again = %+v, %v, %v; want unchanged, revoked at %v", got, changed, err, revoked)
	}
	if got, _ := ks.Key(ctx, a.ID); !got.RevokedAt.Equal(revoked) || got.Usable(revoked) {
		t.Errorf("read after revoke: revoked at %v, usable %v; want %v, not usable", got.RevokedAt, got.Usable(revoked), revoked)
	}
	if _, _, err := ks.RevokeKey(ctx, "zzzzzzzzzzzzzzzz", revoked, keyEvent(lapse.EventKeyRevoked, "zzzzzzzzzzzzzzzz", "unknown")); lapse.ErrorCode(err) != lapse.CodeKeyNotFound {
		t.Errorf("RevokeKey of an unknown id: %v; want %s", err, lapse.CodeKeyNotFound)
	}
	if _, ok := st.(lapse.EventLog); ok {
		checkKeyEvents(t, st, "created "+b.ID, "created "+a.ID, "revoked "+a.ID)
	}
}

// sameKey compares keys with times by Equal.
func sameKey(a, b *lapse.APIKey) bool {
	return a.ID == b.ID && a.Name == b.Name && slices.Equal(a.Scopes, b.Scopes) && a.Tenant == b.Tenant &&
		a.Hash == b.Hash && a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.LastUsedAt.Equal(b.LastUsedAt) && a.RevokedAt.Equal(b.RevokedAt)
}

// twoTenants is a policy with the tenants acme and globex.
func twoTenants() *lapse.Policy {
	p := &lapse.Policy{
		DefaultTier: "standard",
		Tiers:       map[string]lapse.Tier{"standard": {IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour}},
		Tenants:     map[string]map[string]lapse.TierOverride{"acme": {}, "globex": {}},
	}
	if err := p.Validate(); err != nil {
		panic(err)
	}
	return p
}

// testTenantIsolation checks that a manager in a context bound to one
// tenant (what a tenant-bound API key gets) reaches another tenant's
// sessions exactly as unknown ones, on this store: the same error for
// reading, verifying, stepping up and revoking, nothing listed or ended.
func testTenantIsolation(t *testing.T, st lapse.Store) {
	m, err := lapse.New(lapse.Config{Store: st, Policy: twoTenants(), Clock: lapsetest.NewClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	_, a, err := m.Create(ctx, lapse.CreateParams{Subject: "alice", Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	tokG, g, err := m.Create(ctx, lapse.CreateParams{Subject: "alice", Tenant: "globex"})
	if err != nil {
		t.Fatal(err)
	}
	acme := lapse.WithTenant(ctx, "acme")
	unknown := lapse.NewToken()

	same := func(what string, got, want error) {
		t.Helper()
		if lapse.ErrorCode(got) != lapse.ErrorCode(want) || lapse.ErrorMessage(got) != lapse.ErrorMessage(want) {
			t.Errorf("%s of globex's session: %v; want %v, as for an unknown one", what, got, want)
		}
	}
	_, errG := m.Session(acme, g.ID)
	_, errU := m.Session(acme, "ses_unknown")
	same("Session", errG, errU)
	_, errG = m.Verify(acme, string(tokG), lapse.VerifyOptions{})
	_, errU = m.Verify(acme, string(unknown), lapse.VerifyOptions{})
	same("Verify", errG, errU)
	_, _, errG = m.StepUp(acme, string(tokG), 2, []string{"otp"}, "key:k")
	_, _, errU = m.StepUp(acme, string(unknown), 2, []string{"otp"}, "key:k")
	same("StepUp", errG, errU)
	_, errG = m.End(acme, g.ID, lapse.ReasonAdmin, "key:k")
	_, errU = m.End(acme, "ses_unknown", lapse.ReasonAdmin, "key:k")
	same("End", errG, errU)
	if err := m.Revoke(acme, string(tokG)); err != nil {
		t.Errorf("Revoke of globex's token: %v; want nil, as for an unknown one", err)
	}
	if n, err := m.EndMatching(acme, lapse.Filter{Subject: "alice", AnyTenant: true}, lapse.ReasonAdmin, "key:k"); err != nil || n != 1 {
		t.Errorf("EndMatching of alice in every tenant, bound to acme: %d, %v; want 1 (acme's only)", n, err)
	}
	if n, err := m.EndMatching(acme, lapse.Filter{Subject: "alice", Tenant: "globex"}, lapse.ReasonAdmin, "key:k"); err != nil || n != 0 {
		t.Errorf("EndMatching of alice in globex, bound to acme: %d, %v; want 0", n, err)
	}
	ss, err := m.Sessions(acme, lapse.Filter{Subject: "alice", AnyTenant: true, IncludeEnded: true})
	if err != nil || len(ss) != 1 || ss[0].ID != a.ID {
		t.Errorf("Sessions of alice bound to acme: %v, %v; want acme's %s only", ss, err, a.ID)
	}
	listed, err := m.ListSessions(acme, lapse.SessionQuery{Subject: "alice"})
	if err != nil || len(listed) != 1 || listed[0].ID != a.ID {
		t.Errorf("ListSessions of alice bound to acme: %v, %v; want acme's %s only", listed, err, a.ID)
	}
	if _, _, err := m.Create(acme, lapse.CreateParams{Subject: "bob", Tenant: "globex"}); lapse.ErrorCode(err) != lapse.CodeUnknownTenant {
		t.Errorf("Create in globex bound to acme: %v; want %s", err, lapse.CodeUnknownTenant)
	}
	// Globex's session is untouched by all of it.
	got, err := m.Session(ctx, g.ID)
	if err != nil || got.Status != lapse.StatusActive || got.AAL != 1 || !reflect.DeepEqual(got.LastActiveAt, g.LastActiveAt) {
		t.Errorf("globex's session after acme's calls: %+v, %v; want it active, unchanged", got, err)
	}
	if _, err := m.Verify(ctx, string(tokG), lapse.VerifyOptions{NoTouch: true}); err != nil {
		t.Errorf("globex's token unbound: %v; want it valid", err)
	}
}

// testQueryEventsByActor checks that the audit log selects events by
// their actor, such as the key that caused them.
func testQueryEventsByActor(t *testing.T, st lapse.Store) {
	rec := st.(lapse.EventRecorder)
	for i, actor := range []string{"key:aaaaaaaaaaaaaaaa", "key:bbbbbbbbbbbbbbbb", "key:aaaaaaaaaaaaaaaa"} {
		at := t0.Add(time.Duration(i) * time.Second)
		if err := rec.RecordEvent(ctx, lapse.Event{ID: lapse.NewEventID(at), Type: lapse.EventKeyCreated, Time: at,
			Reason: lapse.Reason(strings.TrimPrefix(actor, "key:")), Actor: actor, IP: "192.0.2.1"}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := st.(lapse.AuditLog).QueryEvents(ctx, lapse.EventQuery{Actor: "key:aaaaaaaaaaaaaaaa"})
	if err != nil || len(evs) != 2 || evs[0].Actor != "key:aaaaaaaaaaaaaaaa" || evs[1].Actor != "key:aaaaaaaaaaaaaaaa" || evs[0].IP != "192.0.2.1" {
		t.Errorf("QueryEvents by actor = %+v, %v; want the two events of key:aaaaaaaaaaaaaaaa, with their IP", evs, err)
	}
}

// testEndAndRotateRecordTheIP checks that a revoke and a step-up record
// the caller's client address and the actor's name with their events.
func testEndAndRotateRecordTheIP(t *testing.T, st lapse.Store) {
	a := newSession("alice", "", "standard", t0)
	b := newSession("bob", "", "standard", t0)
	c := newSession("carol", "", "standard", t0)
	for _, s := range []*lapse.Session{a, b, c} {
		mustCreate(t, st, s, 0)
	}
	now := t0.Add(time.Minute)
	if _, _, err := st.End(ctx, a.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonAdmin, Actor: "key:k", ActorName: "ann", IP: "192.0.2.1", Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EndMatching(ctx, lapse.Filter{Subject: "bob", AnyTenant: true}, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonAdmin, Actor: "key:k", ActorName: "bea", IP: "192.0.2.2", Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Rotate(ctx, c.ID, lapse.Rotation{OldHash: c.TokenHash, NewHash: lapse.NewToken().Hash(), AAL: 2, Actor: "key:k", ActorName: "cy", CallerIP: "2001:db8::3", Now: now, Grace: time.Second}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{a.ID: "192.0.2.1", b.ID: "192.0.2.2", c.ID: "2001:db8::3"}
	wantName := map[string]string{a.ID: "ann", b.ID: "bea", c.ID: "cy"}
	evs := allEvents(t, st)
	n := 0
	for _, ev := range evs {
		if ev.Type == lapse.EventCreated {
			if ev.IP != "" || ev.ActorName != "" {
				t.Errorf("%s of %s has IP %q, actor name %q; want none", ev.Type, ev.SessionID, ev.IP, ev.ActorName)
			}
			continue
		}
		n++
		if ev.IP != want[ev.SessionID] || ev.ActorName != wantName[ev.SessionID] {
			t.Errorf("%s of %s has IP %q, actor name %q; want %q, %q", ev.Type, ev.SessionID, ev.IP, ev.ActorName, want[ev.SessionID], wantName[ev.SessionID])
		}
	}
	if n != 4 {
		t.Errorf("%d events besides the creations; want 4 (two revokes, a step-up and its rotation)", n)
	}
}

func allEvents(t *testing.T, st lapse.Store) []lapse.Event {
	t.Helper()
	evs, err := st.(lapse.EventLog).Events(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// keyEvent returns an event of a change of the key id, by the key
// "key:k" named name (which tells the events apart).
func keyEvent(typ lapse.EventType, id, name string) *lapse.Event {
	return &lapse.Event{ID: lapse.NewEventID(t0), Type: typ, Time: t0, Reason: lapse.Reason(id), Actor: "key:k", ActorName: name, IP: "192.0.2.9"}
}

// checkKeyEvents checks that the log holds the key events named want,
// in order, whole, and no other: a change records its event with it, a
// refused create, an unchanged revoke and an unknown key's none.
func checkKeyEvents(t *testing.T, st lapse.Store, want ...string) {
	t.Helper()
	var got []string
	for _, ev := range allEvents(t, st) {
		if ev.Type != lapse.EventKeyCreated && ev.Type != lapse.EventKeyRevoked {
			continue
		}
		got = append(got, ev.ActorName)
		if ev.Actor != "key:k" || ev.IP != "192.0.2.9" || !ev.Time.Equal(t0) || ev.SessionID != "" {
			t.Errorf("key event %+v: want actor key:k from 192.0.2.9 at %v, no session", ev, t0)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("key events %q; want %q, each with its change only", got, want)
	}
}
