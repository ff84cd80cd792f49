package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/webhook"
)

var ctx = context.Background()

// loopback lets deliveries reach the test receivers, which listen on
// 127.0.0.1: the switch an on-premises receiver needs too.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func TestSignMatchesStandardWebhooksVector(t *testing.T) {
	key, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := webhook.Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %s, want the specification's %s", got, want)
	}
	if err := webhook.Verify(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1,bm9wZQ== "+got,
		[]byte(`{"test": 2432232314}`), time.Unix(1614265330+60, 0), 5*time.Minute); err != nil {
		t.Errorf("Verify of the vector among other signatures: %v", err)
	}
	if err := webhook.Verify(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", got,
		[]byte(`{"test": 2432232315}`), time.Unix(1614265330, 0), 5*time.Minute); err == nil {
		t.Error("Verify accepted an altered body")
	}
}

// receiver records deliveries and answers with the statuses it is given,
// then 200.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	got      []*http.Request
	bodies   [][]byte
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, req)
	r.bodies = append(r.bodies, body)
	status := 200
	if len(r.statuses) > 0 {
		status, r.statuses = r.statuses[0], r.statuses[1:]
	}
	w.WriteHeader(status)
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

type fixture struct {
	m     *lapse.Manager
	store *lapsetest.Store
	clock *lapsetest.Clock
	d     *webhook.Dispatcher
	rcv   *receiver
	key   []byte
}

// newStore returns a store, a fake clock and a manager on them.
func newStore(t *testing.T) (*lapsetest.Store, *lapsetest.Clock, *lapse.Manager) {
	t.Helper()
	m, clock, st := lapsetest.NewManager(t, lapse.Config{})
	return st, clock, m
}

func newFixture(t *testing.T, types []lapse.EventType, statuses ...int) *fixture {
	st, clock, m := newStore(t)
	rcv := &receiver{statuses: statuses}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	key, _ := webhook.ParseSecret(webhook.NewSecret())
	d := webhook.New(webhook.Config{
		Endpoints: []webhook.Endpoint{{Name: "test", URL: lapse.SecretURL(srv.URL), Key: key, Types: types}},
		Log:       st, Queue: st, Clock: clock, AllowNetworks: loopback,
		RetryBase: time.Second, RetryMax: time.Minute, MaxAttempts: 3,
	})
	if err := d.Tick(ctx); err != nil { // a new endpoint starts at the present
		t.Fatal(err)
	}
	return &fixture{m: m, store: st, clock: clock, d: d, rcv: rcv, key: key}
}

func TestDeliversSignedEventsOfChosenTypes(t *testing.T) {
	f := newFixture(t, []lapse.EventType{lapse.EventRevoked})
	tok, s, _ := f.m.Create(ctx, lapse.CreateParams{Subject: "alice"})
	f.m.Revoke(ctx, tok.Reveal())
	if err := f.d.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if f.rcv.count() != 1 {
		t.Fatalf("%d deliveries, want 1 (only session.revoked)", f.rcv.count())
	}
	req, body := f.rcv.got[0], f.rcv.bodies[0]
	if err := webhook.Verify(f.key, req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"),
		req.Header.Get("webhook-signature"), body, f.clock.Now(), 5*time.Minute); err != nil {
		t.Fatalf("the delivery's signature does not verify: %v", err)
	}
	var p webhook.Payload
	json.Unmarshal(body, &p)
	if p.Type != lapse.EventRevoked || p.Data.SessionID != s.ID || p.Data.Reason != lapse.ReasonLogout || p.Data.ID != req.Header.Get("webhook-id") {
		t.Errorf("payload = %+v", p)
	}
	if strings.Contains(string(body), tok.Reveal()) {
		t.Error("the payload holds the token")
	}
	f.d.Tick(ctx)
	if f.rcv.count() != 1 {
		t.Errorf("a delivered event was sent again")
	}
}

func TestFailedDeliveryIsRetriedAfterBackoff(t *testing.T) {
	f := newFixture(t, nil, 500)
	f.m.Create(ctx, lapse.CreateParams{Subject: "alice"})
	f.d.Tick(ctx)
	if f.rcv.count() != 1 {
		t.Fatalf("%d attempts, want 1", f.rcv.count())
	}
	f.d.Tick(ctx)
	if f.rcv.count() != 1 {
		t.Fatalf("retried before the backoff")
	}
	f.clock.Advance(time.Second) // the first retry waits 0.5-1s
	f.d.Tick(ctx)
	if f.rcv.count() != 2 {
		t.Fatalf("%d attempts after the backoff, want 2", f.rcv.count())
	}
	if f.rcv.got[0].Header.Get("webhook-id") != f.rcv.got[1].Header.Get("webhook-id") {
		t.Error("a retry changed the webhook-id")
	}
	f.clock.Advance(time.Hour)
	f.d.Tick(ctx)
	if f.rcv.count() != 2 {
		t.Errorf("delivered twice after success")
	}
}

func TestDeadLetterAndReplay(t *testing.T) {
	f := newFixture(t, nil, 500, 500, 503)
	f.m.Create(ctx, lapse.CreateParams{Subject: "alice"})
	for range 3 {
		f.d.Tick(ctx)
		f.clock.Advance(time.Minute)
	}
	dead, err := f.store.Dead(ctx, 10)
	if err != nil || len(dead) != 1 || dead[0].Attempts != 3 || !strings.Contains(dead[0].LastError, "503") {
		t.Fatalf("dead letters = %+v, %v; want one after 3 attempts, last error 503", dead, err)
	}
	f.d.Tick(ctx)
	if f.rcv.count() != 3 {
		t.Fatalf("a dead delivery was attempted again")
	}
	if n, err := f.store.Replay(ctx, nil, f.clock.Now()); err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	f.d.Tick(ctx)
	if f.rcv.count() != 4 {
		t.Fatalf("the replayed delivery was not sent")
	}
	if dead, _ := f.store.Dead(ctx, 10); len(dead) != 0 {
		t.Errorf("still dead after a successful replay: %+v", dead)
	}
}

// TestSlowEndpointDoesNotHoldUpOthers: while every slot of an endpoint is
// taken by requests that do not answer, another endpoint still gets its
// deliveries in the same round.
func TestSlowEndpointDoesNotHoldUpOthers(t *testing.T) {
	st, clock, m := newStore(t)
	const n = 64
	var (
		fastGot  atomic.Int64
		fastDone = make(chan struct{})
		timedOut atomic.Bool
	)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // answers only once the fast endpoint has everything
		case <-fastDone:
		case <-time.After(5 * time.Second):
			timedOut.Store(true)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer slow.Close()
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fastGot.Add(1) == n {
			close(fastDone)
		}
	}))
	defer fast.Close()
	key, _ := webhook.ParseSecret(webhook.NewSecret())
	d := webhook.New(webhook.Config{Log: st, Queue: st, Clock: clock, AllowNetworks: loopback, Endpoints: []webhook.Endpoint{
		{Name: "a-slow", URL: lapse.SecretURL(slow.URL), Key: key}, {Name: "b-fast", URL: lapse.SecretURL(fast.URL), Key: key}}})
	if err := d.Tick(ctx); err != nil { // both endpoints start at the present
		t.Fatal(err)
	}
	for i := range n {
		if _, _, err := m.Create(ctx, lapse.CreateParams{Subject: fmt.Sprint("u", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fastGot.Load(); got != n || timedOut.Load() {
		t.Errorf("the fast endpoint got %d of %d deliveries while the slow one held its slots (slow timed out: %v)", got, n, timedOut.Load())
	}
}

// deadAfterOneAttempt sends the first event after the present to url
// with a dispatcher that allows the given networks and makes one attempt,
// and returns the dead delivery.
func deadAfterOneAttempt(t *testing.T, url string, allow []netip.Prefix) lapse.Delivery {
	t.Helper()
	st, clock, m := newStore(t)
	key, _ := webhook.ParseSecret(webhook.NewSecret())
	d := webhook.New(webhook.Config{Log: st, Queue: st, Clock: clock, AllowNetworks: allow, MaxAttempts: 1,
		Endpoints: []webhook.Endpoint{{Name: "ops", URL: lapse.SecretURL(url), Key: key}}})
	if err := d.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	m.Create(ctx, lapse.CreateParams{Subject: "alice"})
	if err := d.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	dead, err := st.Dead(ctx, 10)
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead deliveries = %+v, %v; want the one attempt failed", dead, err)
	}
	return dead[0]
}

// TestRedirectIsAFailedDelivery: a receiver that answers with a redirect
// to an internal address gets a failed delivery with its status
// recorded; lapse neither posts the signed event there nor asks it for
// anything, so the target's answer cannot mark the delivery delivered
// nor land in last_error.
func TestRedirectIsAFailedDelivery(t *testing.T) {
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusFound, http.StatusPermanentRedirect, http.StatusSeeOther} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			var internalHits atomic.Int64
			internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				internalHits.Add(1)
				w.WriteHeader(http.StatusTeapot)
			}))
			defer internal.Close()
			var receiverHits atomic.Int64
			receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				receiverHits.Add(1)
				http.Redirect(w, r, internal.URL+"/internal-admin/reset", status)
			}))
			defer receiver.Close()
			del := deadAfterOneAttempt(t, receiver.URL, loopback)
			if receiverHits.Load() != 1 || internalHits.Load() != 0 {
				t.Errorf("receiver got %d requests and the redirect target %d; want 1 and 0", receiverHits.Load(), internalHits.Load())
			}
			if del.Status != lapse.DeliveryDead || !strings.Contains(del.LastError, strconv.Itoa(status)) ||
				!strings.Contains(del.LastError, "not followed") || strings.Contains(del.LastError, "418") || strings.Contains(del.LastError, "internal-admin") {
				t.Errorf("delivery %s with last error %q; want it failed with %d recorded, nothing of the target", del.Status, del.LastError, status)
			}
		})
	}
}

// TestInternalAddressesAreRefusedByDefault: without webhook_allow_networks
// a delivery never connects to a loopback receiver, whether the URL names
// its address or a name that resolves to it (checked at connect time,
// after resolution, so DNS cannot get round it).
func TestInternalAddressesAreRefusedByDefault(t *testing.T) {
	var hits atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer receiver.Close()
	_, port, _ := strings.Cut(strings.TrimPrefix(receiver.URL, "http://"), ":")
	for _, url := range []string{receiver.URL, "http://localhost:" + port + "/"} {
		del := deadAfterOneAttempt(t, url, nil)
		if !strings.Contains(del.LastError, "refused to connect") || !strings.Contains(del.LastError, "loopback") {
			t.Errorf("%s: last error %q, want the connection refused as loopback", url, del.LastError)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("the loopback receiver got %d requests, want none", hits.Load())
	}
	// The same receiver, once its network is allowed, gets the event.
	if del := deadAfterOneAttempt(t, "http://localhost:"+port+"/", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}); hits.Load() != 0 || !strings.Contains(del.LastError, "loopback") {
		t.Errorf("another allowed network let loopback through: %q, %d requests", del.LastError, hits.Load())
	}
}

// TestStartFixesTheStartingPoint: an endpoint new to the queue starts at
// the log's end when Start runs, so an event recorded after Start and
// before the first round is delivered, and one recorded before is not.
func TestStartFixesTheStartingPoint(t *testing.T) {
	st, clock, m := newStore(t)
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	key, _ := webhook.ParseSecret(webhook.NewSecret())
	d := webhook.New(webhook.Config{
		Endpoints: []webhook.Endpoint{{Name: "test", URL: lapse.SecretURL(srv.URL), Key: key, Types: []lapse.EventType{lapse.EventCreated}}},
		Log:       st, Queue: st, Clock: clock, AllowNetworks: loopback,
		RetryBase: time.Second, RetryMax: time.Minute, MaxAttempts: 3,
	})
	if _, _, err := m.Create(ctx, lapse.CreateParams{Subject: "before"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	_, s, err := m.Create(ctx, lapse.CreateParams{Subject: "after"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the first round enqueues, the second delivers
		if err := d.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if rcv.count() != 1 {
		t.Fatalf("%d deliveries, want 1: the session created after Start", rcv.count())
	}
	var p webhook.Payload
	json.Unmarshal(rcv.bodies[0], &p)
	if p.Data.SessionID != s.ID {
		t.Errorf("delivered %+v, want the session created after Start", p.Data)
	}
}
