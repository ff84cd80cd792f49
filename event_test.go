package lapse_test

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

func TestRecordKeepsEventsOfNoSession(t *testing.T) {
	f := newFixture(t)
	f.clock.Advance(time.Hour)
	err := f.m.Record(ctx, lapse.Event{Type: lapse.EventKeyRejected, Reason: lapse.ReasonInvalidKey, Actor: lapse.ActorAPI, IP: "192.0.2.9"})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := f.store.Events(ctx, 0, 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("Events = %+v, %v; want the one recorded", evs, err)
	}
	if ev := evs[0]; ev.Type != lapse.EventKeyRejected || !ev.Time.Equal(f.clock.Now()) || len(ev.ID) != 26 || ev.IP != "192.0.2.9" {
		t.Errorf("recorded %+v, want key_rejected at the clock's time with an event id and the address", ev)
	}
	if err := f.m.Record(ctx, lapse.Event{Type: lapse.EventRevoked, SessionID: "ses_x"}); lapse.ErrorCode(err) != lapse.CodeInvalid {
		t.Errorf("Record of a session's event = %v, want invalid_request", err)
	}
}

// TestChainHashCoversTheAddressOnlyWhenSet: records written before events
// had an address keep their hashes (this vector was computed by the code
// before the field existed), and an address, once set, is covered.
func TestChainHashCoversTheAddressOnlyWhenSet(t *testing.T) {
	e := lapse.Event{Seq: 7, ID: "evt_0123456789abcdefghijkl", Type: lapse.EventRevoked, Time: time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC),
		SessionID: "ses_x", Subject: "alice", Tenant: "acme", Tier: "standard", Reason: lapse.ReasonLogout, Actor: lapse.ActorSubject}
	if got := hex.EncodeToString(e.ChainHash([]byte("prev"))); got != "bec5f7bdaff55a921ec468d432adebfe80a35bb990c9599c440eb31a3451ed01" {
		t.Errorf("hash of a record without an address = %s, want the one it had before addresses", got)
	}
	a, b := e, e
	a.IP, b.IP = "192.0.2.1", "192.0.2.2"
	if string(a.ChainHash(nil)) == string(b.ChainHash(nil)) || string(a.ChainHash(nil)) == string(e.ChainHash(nil)) {
		t.Error("the address is not covered by the hash")
	}
}

// chainLog is an audit log of fixed records, for VerifyChain.
type chainLog struct {
	lapse.AuditLog // only ChainRecords is called
	recs           []lapse.ChainRecord
}

func (l *chainLog) ChainRecords(_ context.Context, after int64, limit int) ([]lapse.ChainRecord, error) {
	out := l.recs[min(int(after), len(l.recs)):]
	return out[:min(limit, len(out))], nil
}

// TestChainWithoutActorNamesStillVerifies: records written before events
// had an actor name (these hashes were computed by the code before the
// field existed, one record with an address and one without) verify,
// a record with a name appended after them verifies, and changing a
// name, or giving one to a record that had none, breaks the chain there.
func TestChainWithoutActorNamesStillVerifies(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC)
	old := []lapse.Event{
		{Seq: 1, ID: "evt_0123456789abcdefghijk1", Type: lapse.EventRevoked, Time: at, SessionID: "ses_x", Subject: "alice",
			Tenant: "acme", Tier: "standard", Reason: lapse.ReasonAdmin, Actor: "key:0123456789abcdef"},
		{Seq: 2, ID: "evt_0123456789abcdefghijk2", Type: lapse.EventKeyRejected, Time: at, Reason: lapse.ReasonInvalidKey,
			Actor: lapse.ActorAPI, IP: "192.0.2.1"},
	}
	oldHashes := []string{
		"78640c615c31214e3bd45a487abb063a463115d68b33bfcdb33be38c49d04415",
		"8e6b3abe1d5e7ee44127a5da65d7ad26ef3d267f85c51c1b64f3b6a41fcaa705",
	}
	log := &chainLog{}
	prev := []byte{}
	for i, e := range old {
		h, _ := hex.DecodeString(oldHashes[i])
		log.recs = append(log.recs, lapse.ChainRecord{Event: e, PrevHash: prev, Hash: h})
		prev = h
	}
	named := lapse.Event{Seq: 3, ID: "evt_0123456789abcdefghijk3", Type: lapse.EventKeyRevoked, Time: at,
		Reason: "0123456789abcdef", Actor: "key:fedcba9876543210", ActorName: "deploy bot"}
	log.recs = append(log.recs, lapse.ChainRecord{Event: named, PrevHash: prev, Hash: named.ChainHash(prev)})

	ctx := context.Background()
	if rep, err := lapse.VerifyChain(ctx, log, 0, nil); err != nil || !rep.OK() || rep.Records != 3 {
		t.Fatalf("VerifyChain of old records and a named one = %+v, %v; want 3 intact records", rep, err)
	}
	for _, c := range []struct {
		seq  int64
		name string
	}{{3, "deploy bot2"}, {3, ""}, {1, "alice"}, {2, "x"}} {
		tampered := &chainLog{recs: append([]lapse.ChainRecord{}, log.recs...)}
		tampered.recs[c.seq-1].ActorName = c.name
		if rep, err := lapse.VerifyChain(ctx, tampered, 0, nil); err != nil || rep.BrokenAt != c.seq {
			t.Errorf("record %d with actor_name %q: VerifyChain = %+v, %v; want broken at %d", c.seq, c.name, rep, err, c.seq)
		}
	}
}

// TestChainHashTellsActorNameFromAddress: a name on a record without an
// address does not hash as that string taken for its address.
func TestChainHashTellsActorNameFromAddress(t *testing.T) {
	e := lapse.Event{Seq: 1, ID: "evt_x", Type: lapse.EventKeyCreated, Actor: "key:abc"}
	a, b := e, e
	a.IP, b.ActorName = "deploy", "deploy"
	if string(a.ChainHash(nil)) == string(b.ChainHash(nil)) {
		t.Error("a record named deploy hashes as one from the address deploy")
	}
}

// TestChainHashIsStable: the hash of a record never changes, whatever the
// code that computes it, or every stored chain would break. These vectors
// were computed by the code before ChainHash built its input on the stack;
// they cover an address, a name, both, a large seq, a time in another
// zone (hashed in UTC) and an empty and a full previous hash.
func TestChainHashIsStable(t *testing.T) {
	base := lapse.Event{Seq: 42, ID: "evt_0000000000000000000000", Type: lapse.EventCreated,
		Time:      time.Date(2026, 12, 6, 23, 30, 1, 123456789, time.FixedZone("X", 3600)),
		SessionID: "ses_abc", Subject: "ada@example.com", Tenant: "acme", Tier: "standard", Actor: lapse.ActorAPI}
	withIP, named, both := base, base, base
	withIP.IP = "192.0.2.1"
	named.ActorName = "ops"
	both.IP, both.ActorName, both.Reason, both.Seq = "2001:db8::1", "ops", lapse.ReasonTheft, 1<<40
	prev := []byte("0123456789abcdef0123456789abcdef")
	for _, c := range []struct {
		ev          lapse.Event
		empty, full string // the hash after an empty previous hash, and after prev
	}{
		{base, "5f0cc2e150e3120fec8f307082317bed21dceee748a7a11af1da64fe33ece606", "7b0c0311b56009993d6cf0e92e6e4005f05ede2fb32437af237ebe4773fd2dfd"},
		{withIP, "2f4c89445a613fb0dac0ae4561beaa45a3bb65e5fd763b11f2ba9b6373cea308", "62c769e6115c0e42c569384c77e8c02f61a913f9c4c61aada120d82e398689e8"},
		{named, "df4c281f17c0e087df40aa0a3761e74b0cb19cc1d39e217dc53d38e79e3a8e77", "17e8c618d71d675ac6ff82f3665904a23e55a2590a3f4687601e66ea9543f2e2"},
		{both, "291a24d27baaadc190216ad8738b2b123f0798c8d0ad796faf02686d3315ebac", "3f9004632bbddf403ac2724ceeea53c5b587db429720b1fc195396525fdc5cfb"},
	} {
		if h := hex.EncodeToString(c.ev.ChainHash([]byte{})); h != c.empty {
			t.Errorf("%+v after an empty hash: %s, want %s", c.ev, h, c.empty)
		}
		if h := hex.EncodeToString(c.ev.ChainHash(prev)); h != c.full {
			t.Errorf("%+v after %q: %s, want %s", c.ev, prev, h, c.full)
		}
	}
}
