package httpapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/lapsehq/lapse/problem"
)

// TestEventStreamsAreCapped: past the per-session cap a session's new
// stream is refused with 429 too_many_streams while its open streams go
// on; past the per-node cap any new stream is; a stream that ends frees
// its slot; the counts are what metrics read.
func TestEventStreamsAreCapped(t *testing.T) {
	h := newHarness(t, harnessOptions{feed: true, streamsPerSession: 2, streamsPerNode: 3})
	open := func(tok string) (*response, *eventStream) {
		t.Helper()
		return h.openStream(t, h.asSession("GET", "/v1/session/events", tok, viaBearer))
	}
	want := func(what string, wantOpen int, wantSession, wantNode uint64) {
		t.Helper()
		if o, s, n := h.server.StreamCounts(); o != wantOpen || s != wantSession || n != wantNode {
			t.Errorf("%s: %d open, %d refused per session, %d per node; want %d, %d, %d", what, o, s, n, wantOpen, wantSession, wantNode)
		}
	}
	a, aID := h.create(map[string]any{"subject": "alice"})
	var held []*eventStream
	for range 2 {
		_, es := open(a)
		if es == nil {
			t.Fatal("a stream within the cap was refused")
		}
		es.next() // the "session" event: the stream is established
		held = append(held, es)
	}
	r, es := open(a)
	if es != nil {
		t.Fatal("a third stream of one session was opened, want 429")
	}
	wantProblem(t, r, http.StatusTooManyRequests, problem.CodeTooManyStreams)
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	want("after the per-session cap", 2, 1, 0)

	b, _ := h.create(map[string]any{"subject": "bob"})
	_, bs := open(b)
	if bs == nil {
		t.Fatal("bob's first stream was refused")
	}
	bs.next()
	r, es = open(b)
	if es != nil {
		t.Fatal("a fourth stream on the node was opened, want 429")
	}
	wantProblem(t, r, http.StatusTooManyRequests, problem.CodeTooManyStreams)
	want("after the per-node cap", 3, 1, 1)

	// The streams already open were not closed for the ones refused.
	if r := h.call("DELETE", "/v1/sessions/"+aID, nil); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %s", r)
	}
	for _, es := range held {
		if name, _ := es.next(); name != "revoked" {
			t.Errorf("a held stream got %q, want revoked", name)
		}
		es.wantEnd()
	}
	deadline := time.Now().Add(10 * time.Second) // a guard against "never", not a latency
	for {
		if o, _, _ := h.server.StreamCounts(); o == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, es = open(b)
	if es == nil {
		t.Fatal("bob's second stream was refused after alice's ended")
	}
	want("after alice's streams ended", 2, 1, 1)
}
