package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

// eventSeqs records n sessions and returns the seqs of their events.
func eventSeqs(t *testing.T, st lapse.Store, n int) []lapse.Event {
	t.Helper()
	for i := range n {
		mustCreate(t, st, newSession("alice", "acme", "standard", t0.Add(time.Duration(i)*time.Second)), 0)
	}
	evs, err := st.(lapse.EventLog).Events(ctx, 0, 100)
	if err != nil || len(evs) != n {
		t.Fatalf("Events = %d, %v; want %d", len(evs), err, n)
	}
	return evs
}

func deliverySeqs(ds []lapse.Delivery) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.Event.Seq
	}
	return out
}

// testDeliveryEnqueue holds that Enqueue makes each event's delivery
// once per endpoint, however often it is enqueued (two nodes may), that
// Due returns them with their events, oldest first, and that the cursor
// never moves back.
func testDeliveryEnqueue(t *testing.T, st lapse.Store) {
	q := st.(lapse.DeliveryQueue)
	evs := eventSeqs(t, st, 3)
	if _, ok, err := q.Cursor(ctx, "https://a.example/hook"); err != nil || ok {
		t.Fatalf("Cursor of a new endpoint = %v, %v; want none", ok, err)
	}
	now := t0.Add(time.Hour)
	seqs := []int64{evs[0].Seq, evs[1].Seq}
	for range 2 { // a second node enqueues the same events
		if err := q.Enqueue(ctx, "https://a.example/hook", seqs, evs[1].Seq, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Enqueue(ctx, "https://b.example/hook", []int64{evs[2].Seq}, evs[2].Seq, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, "https://a.example/hook", nil, evs[0].Seq, now); err != nil {
		t.Fatal(err)
	}
	if c, ok, err := q.Cursor(ctx, "https://a.example/hook"); err != nil || !ok || c != evs[1].Seq {
		t.Errorf("Cursor = %d, %v, %v; want %d (a cursor never moves back)", c, ok, err, evs[1].Seq)
	}
	if due, err := q.Due(ctx, now.Add(-time.Nanosecond), 10); err != nil || len(due) != 0 {
		t.Errorf("Due before the deliveries are due = %v, %v; want none", deliverySeqs(due), err)
	}
	checkDue(t, q, evs, now.Add(time.Second))
}

// checkDue holds that Due at now returns the deliveries testDeliveryEnqueue
// made, of evs, with their events, oldest first.
func checkDue(t *testing.T, q lapse.DeliveryQueue, evs []lapse.Event, now time.Time) {
	t.Helper()
	due, err := q.Due(ctx, now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{evs[0].Seq, evs[1].Seq, evs[2].Seq}; !slices.Equal(deliverySeqs(due), want) {
		t.Fatalf("Due = %v, want %v (one each, oldest first)", deliverySeqs(due), want)
	}
	for i, d := range due {
		if d.Status != lapse.DeliveryPending || d.Attempts != 0 || d.Event.ID != evs[i].ID || d.Event.SessionID != evs[i].SessionID || d.Event.Type != lapse.EventCreated {
			t.Errorf("delivery %d = %+v, want pending with no attempts, of event %+v", i, d, evs[i])
		}
	}
	if due[0].Endpoint != "https://a.example/hook" || due[2].Endpoint != "https://b.example/hook" || due[0].ID == due[1].ID {
		t.Errorf("deliveries' endpoints and ids = %+v", due)
	}
	if limited, _ := q.Due(ctx, now, 2); len(limited) != 2 {
		t.Errorf("Due with limit 2 returned %d", len(limited))
	}
}

// testDeliveryRecord holds that Record stores each outcome, that only
// pending deliveries due come back from Due, and that Replay brings dead
// ones back, chosen or all.
func testDeliveryRecord(t *testing.T, st lapse.Store) {
	q := st.(lapse.DeliveryQueue)
	evs := eventSeqs(t, st, 4)
	now := t0.Add(time.Hour)
	var seqs []int64
	for _, ev := range evs {
		seqs = append(seqs, ev.Seq)
	}
	if err := q.Enqueue(ctx, "https://a.example/hook", seqs, seqs[3], now); err != nil {
		t.Fatal(err)
	}
	due, err := q.Due(ctx, now, 10)
	if err != nil || len(due) != 4 {
		t.Fatalf("Due = %d, %v; want 4", len(due), err)
	}
	later := now.Add(time.Minute)
	due[0].Status, due[0].Attempts = lapse.DeliveryDelivered, 1
	due[1].Attempts, due[1].NextAt, due[1].LastError = 1, later, "HTTP 503"
	due[2].Status, due[2].Attempts, due[2].LastError = lapse.DeliveryDead, 5, "HTTP 410"
	due[3].Status, due[3].Attempts, due[3].LastError = lapse.DeliveryDead, 5, "timeout"
	if err := q.Record(ctx, due[:3], now); err != nil {
		t.Fatal(err)
	}
	if err := q.Record(ctx, due[3:], now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.Due(ctx, now, 10); len(got) != 0 {
		t.Errorf("Due right after recording = %v, want none (one retries later, the rest are done)", deliverySeqs(got))
	}
	retry, err := q.Due(ctx, later, 10)
	if err != nil || len(retry) != 1 || retry[0].ID != due[1].ID || retry[0].Attempts != 1 || retry[0].LastError != "HTTP 503" || !retry[0].NextAt.Equal(later) {
		t.Errorf("Due at the retry time = %+v, %v; want delivery %d with its attempt and error", retry, err, due[1].ID)
	}
	testReplay(t, q, due, now)
}

// testReplay goes on from testDeliveryRecord: due[2] and due[3] are dead,
// recorded at now and a second later, due[0] delivered.
func testReplay(t *testing.T, q lapse.DeliveryQueue, due []lapse.Delivery, now time.Time) {
	t.Helper()
	dead, err := q.Dead(ctx, 10)
	if err != nil || len(dead) != 2 || dead[0].ID != due[3].ID || dead[1].ID != due[2].ID {
		t.Fatalf("Dead = %+v, %v; want deliveries %d then %d (newest first)", dead, err, due[3].ID, due[2].ID)
	}
	if dead[1].LastError != "HTTP 410" || dead[1].Attempts != 5 || !dead[1].UpdatedAt.Equal(now) {
		t.Errorf("dead delivery = %+v, want its error, attempts and update time kept", dead[1])
	}
	replay(t, q, due, now.Add(time.Hour))
}

// replay replays due[2] alone at replayAt, then every dead delivery.
func replay(t *testing.T, q lapse.DeliveryQueue, due []lapse.Delivery, replayAt time.Time) {
	t.Helper()
	if n, err := q.Replay(ctx, []int64{due[2].ID}, replayAt); err != nil || n != 1 {
		t.Fatalf("Replay of one = %d, %v; want 1", n, err)
	}
	if n, err := q.Replay(ctx, []int64{due[0].ID}, replayAt); err != nil || n != 0 {
		t.Errorf("Replay of a delivered one = %d, %v; want 0", n, err)
	}
	back, err := q.Due(ctx, replayAt, 10)
	if i := slices.IndexFunc(back, func(d lapse.Delivery) bool { return d.ID == due[2].ID }); err != nil || i < 0 || back[i].Attempts != 0 || back[i].Status != lapse.DeliveryPending {
		t.Errorf("Due after a replay = %+v, %v; want delivery %d pending with no attempts", back, err, due[2].ID)
	}
	if n, err := q.Replay(ctx, nil, replayAt); err != nil || n != 1 {
		t.Errorf("Replay of all = %d, %v; want 1 (the one still dead)", n, err)
	}
	if dead, _ := q.Dead(ctx, 10); len(dead) != 0 {
		t.Errorf("Dead after replaying all = %d deliveries, want none", len(dead))
	}
}
