package lapse_test

import (
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
