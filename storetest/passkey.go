package storetest

import (
	"bytes"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

func testPasskey(id, subject string, cred byte, at time.Time) *lapse.Passkey {
	return &lapse.Passkey{
		ID: id, Subject: subject, Name: "Key " + id, CredentialID: []byte{cred, 1, 2, 3}, UserHandle: []byte("handle-" + subject),
		PublicKey: []byte{0xa5, cred}, SignCount: 7, BackupEligible: true, BackupState: false,
		Transports: []string{"internal", "hybrid"}, AAGUID: bytes.Repeat([]byte{cred}, 16), AttestationFormat: "none",
		CreatedAt: at,
	}
}

func samePasskey(a, b *lapse.Passkey) bool {
	return a.ID == b.ID && a.Subject == b.Subject && a.Name == b.Name && bytes.Equal(a.CredentialID, b.CredentialID) &&
		bytes.Equal(a.UserHandle, b.UserHandle) && bytes.Equal(a.PublicKey, b.PublicKey) && a.SignCount == b.SignCount &&
		a.BackupEligible == b.BackupEligible && a.BackupState == b.BackupState && slices.Equal(a.Transports, b.Transports) &&
		bytes.Equal(a.AAGUID, b.AAGUID) && a.AttestationFormat == b.AttestationFormat &&
		a.CreatedAt.Equal(b.CreatedAt) && a.LastUsedAt.Equal(b.LastUsedAt)
}

// testPasskeyLifecycle holds that passkeys round-trip, list oldest first
// per subject, are counted in Factors, refuse a credential id twice for
// one subject, and are renamed and removed only by their subject.
func testPasskeyLifecycle(t *testing.T, st lapse.Store) {
	fs := st.(lapse.FactorStore)
	if got, err := fs.Passkeys(ctx, "alice"); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Passkeys of nobody = %v, %v; want an empty list", got, err)
	}
	second := testPasskey("pk_2", "alice", 2, t0.Add(time.Second))
	first := testPasskey("pk_1", "alice", 1, t0)
	first.Transports, first.AAGUID, first.BackupEligible = nil, nil, false
	for _, p := range []*lapse.Passkey{second, first, testPasskey("pk_3", "bob", 1, t0)} {
		if err := fs.AddPasskey(ctx, p); err != nil {
			t.Fatalf("AddPasskey(%s): %v", p.ID, err)
		}
	}
	wantFactorCode(t, "a credential id alice already has", fs.AddPasskey(ctx, testPasskey("pk_4", "alice", 2, t0)), lapse.CodeConflict)
	got, err := fs.Passkeys(ctx, "alice")
	if err != nil || len(got) != 2 || !samePasskey(got[0], first) || !samePasskey(got[1], second) {
		t.Fatalf("Passkeys(alice) = %+v, %v; want pk_1 then pk_2 as stored", got, err)
	}
	if fst, _ := fs.Factors(ctx, "alice"); fst.Passkeys != 2 || !slices.Contains(fst.Available(), lapse.FactorPasskey) {
		t.Errorf("Factors(alice) counts %d passkeys (available %v), want 2 and passkey available", fst.Passkeys, fst.Available())
	}
	testPasskeyChange(t, fs)
}

// testPasskeyChange goes on from testPasskeyLifecycle: alice has pk_1 and
// pk_2, bob pk_3; only alice renames and removes hers.
func testPasskeyChange(t *testing.T, fs lapse.FactorStore) {
	if err := fs.RenamePasskey(ctx, "alice", "pk_1", "Work laptop"); err != nil {
		t.Fatal(err)
	}
	wantFactorCode(t, "rename another subject's passkey", fs.RenamePasskey(ctx, "bob", "pk_1", "x"), lapse.CodeFactorNotFound)
	wantFactorCode(t, "rename an unknown passkey", fs.RenamePasskey(ctx, "alice", "pk_9", "x"), lapse.CodeFactorNotFound)
	wantFactorCode(t, "remove another subject's passkey", fs.RemovePasskey(ctx, "bob", "pk_2"), lapse.CodeFactorNotFound)
	if err := fs.RemovePasskey(ctx, "alice", "pk_2"); err != nil {
		t.Fatal(err)
	}
	wantFactorCode(t, "remove twice", fs.RemovePasskey(ctx, "alice", "pk_2"), lapse.CodeFactorNotFound)
	got, _ := fs.Passkeys(ctx, "alice")
	if len(got) != 1 || got[0].Name != "Work laptop" {
		t.Errorf("after renaming pk_1 and removing pk_2: %+v", got)
	}
	if bob, _ := fs.Passkeys(ctx, "bob"); len(bob) != 1 || !samePasskey(bob[0], testPasskey("pk_3", "bob", 1, t0)) {
		t.Errorf("bob's passkeys changed with alice's: %+v", bob)
	}
}

// testPasskeyCounter holds the signature counter's rule: a use passes
// only with a counter above the stored one, or with both at zero, and a
// use that does not pass changes nothing.
func testPasskeyCounter(t *testing.T, st lapse.Store) {
	fs := st.(lapse.FactorStore)
	p := testPasskey("pk_1", "alice", 1, t0)
	p.SignCount = 5
	zero := testPasskey("pk_0", "alice", 0, t0)
	zero.SignCount = 0
	for _, k := range []*lapse.Passkey{p, zero} {
		if err := fs.AddPasskey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range []struct {
		id    string
		count uint32
		want  bool
	}{{"pk_1", 5, false}, {"pk_1", 4, false}, {"pk_1", 0, false}, {"pk_1", 6, true}, {"pk_1", 6, false}, {"pk_1", 9, true},
		{"pk_0", 0, true}, {"pk_0", 0, true}, {"pk_0", 3, true}, {"pk_0", 0, false}} {
		used, err := fs.UsePasskey(ctx, "alice", c.id, c.count, true, t0.Add(time.Duration(i+1)*time.Minute))
		if err != nil || used != c.want {
			t.Errorf("use %d: UsePasskey(%s, %d) = %v, %v; want %v", i, c.id, c.count, used, err, c.want)
		}
	}
	got, _ := fs.Passkeys(ctx, "alice")
	byID := map[string]*lapse.Passkey{}
	for _, k := range got {
		byID[k.ID] = k
	}
	if k := byID["pk_1"]; k == nil || k.SignCount != 9 || !k.BackupState || !k.LastUsedAt.Equal(t0.Add(6*time.Minute)) {
		t.Errorf("pk_1 after its uses: %+v; want counter 9, backed up, last used at the use of 9 (+6m)", k)
	}
	if k := byID["pk_0"]; k == nil || k.SignCount != 3 || !k.LastUsedAt.Equal(t0.Add(9*time.Minute)) {
		t.Errorf("pk_0 after its uses: %+v; want counter 3, last used at +9m (the refused use changed nothing)", k)
	}
	_, err := fs.UsePasskey(ctx, "bob", "pk_1", 10, false, t0)
	wantFactorCode(t, "use another subject's passkey", err, lapse.CodeFactorNotFound)
	testPasskeyCounterRace(t, fs)
}

// testPasskeyCounterRace goes on from testPasskeyCounter: alice's pk_1
// is at counter 9, and ten uses with counter 10 at once let one pass.
func testPasskeyCounterRace(t *testing.T, fs lapse.FactorStore) {
	var passed atomic.Int64
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if used, err := fs.UsePasskey(ctx, "alice", "pk_1", 10, false, t0); err != nil {
				t.Error(err)
			} else if used {
				passed.Add(1)
			}
		}()
	}
	wg.Wait()
	if passed.Load() != 1 {
		t.Errorf("%d of 10 concurrent uses with counter 10 passed, want 1", passed.Load())
	}
}

func testChallenge(subject, session string, n byte) *lapse.Challenge {
	return &lapse.Challenge{
		Hash: lapse.HashSecret(string(rune('a' + n))), Subject: subject, SessionID: session, Ceremony: lapse.CeremonyAssertion,
		Data: []byte(`{"challenge":"x"}`), ExpiresAt: t0.Add(5 * time.Minute),
	}
}

func sameChallenge(got, want *lapse.Challenge) bool {
	return got != nil && got.Hash == want.Hash && got.Subject == want.Subject && got.SessionID == want.SessionID &&
		got.Ceremony == want.Ceremony && string(got.Data) == string(want.Data) && got.ExpiresAt.Equal(want.ExpiresAt)
}

// testChallengeOnce holds that a challenge is taken once, by its
// subject, while it is live, however many take it at once.
func testChallengeOnce(t *testing.T, st lapse.Store) {
	fs := st.(lapse.FactorStore)
	c := testChallenge("alice", "ses_1", 1)
	c.Ceremony = lapse.CeremonyRegistration
	if err := fs.PutChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := fs.TakeChallenge(ctx, "bob", c.Hash, t0); got != nil || err != nil {
		t.Errorf("another subject took alice's challenge: %+v, %v", got, err)
	}
	got, err := fs.TakeChallenge(ctx, "alice", c.Hash, c.ExpiresAt.Add(-time.Nanosecond))
	if err != nil || !sameChallenge(got, c) {
		t.Fatalf("TakeChallenge a nanosecond before expiry = %+v, %v; want it as stored", got, err)
	}
	if got, err := fs.TakeChallenge(ctx, "alice", c.Hash, t0); got != nil || err != nil {
		t.Errorf("a challenge taken twice: %+v, %v", got, err)
	}
	late := testChallenge("alice", "ses_1", 2)
	if err := fs.PutChallenge(ctx, late); err != nil {
		t.Fatal(err)
	}
	if got, err := fs.TakeChallenge(ctx, "alice", late.Hash, late.ExpiresAt); got != nil || err != nil {
		t.Errorf("a challenge taken at its expiry: %+v, %v; want none", got, err)
	}
	if got, _ := fs.TakeChallenge(ctx, "alice", late.Hash, t0); got != nil {
		t.Errorf("a challenge refused at its expiry was taken after: %+v", got)
	}
	testChallengeRace(t, fs)
}

// testChallengeRace holds that of ten takes of one challenge at once,
// one gets it.
func testChallengeRace(t *testing.T, fs lapse.FactorStore) {
	race := testChallenge("alice", "ses_1", 3)
	if err := fs.PutChallenge(ctx, race); err != nil {
		t.Fatal(err)
	}
	var took atomic.Int64
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := fs.TakeChallenge(ctx, "alice", race.Hash, t0); err != nil {
				t.Error(err)
			} else if got != nil {
				took.Add(1)
			}
		}()
	}
	wg.Wait()
	if took.Load() != 1 {
		t.Errorf("%d of 10 concurrent takes got the challenge, want 1", took.Load())
	}
}

// testChallengeNodes holds that a challenge one node issued is taken on
// another, and then on neither: a response cannot be accepted twice by
// sending it to two nodes.
func testChallengeNodes(t *testing.T, nodes func(t *testing.T) (a, b lapse.Store, down func())) {
	a, b, _ := nodes(t)
	c := testChallenge("alice", "ses_1", 4)
	if err := a.(lapse.FactorStore).PutChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := b.(lapse.FactorStore).TakeChallenge(ctx, "alice", c.Hash, t0); err != nil || got == nil {
		t.Fatalf("node b taking node a's challenge: %+v, %v; want it", got, err)
	}
	for name, n := range map[string]lapse.Store{"a": a, "b": b} {
		if got, err := n.(lapse.FactorStore).TakeChallenge(ctx, "alice", c.Hash, t0); got != nil || err != nil {
			t.Errorf("node %s took the challenge again: %+v, %v", name, got, err)
		}
	}
}
