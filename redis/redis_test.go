package redis_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/redis"
	"github.com/lapsehq/lapse/redis/redistest"
	"github.com/lapsehq/lapse/storetest"
	goredis "github.com/redis/go-redis/v9"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC)

// prefixes gives every store of a test run its own key prefix, so that
// subtests share one server without seeing each other.
var prefixes atomic.Int64

func open(t *testing.T, url string, opts ...redis.Option) *redis.Store {
	t.Helper()
	opts = append([]redis.Option{redis.WithPrefix(fmt.Sprintf("t%d", prefixes.Add(1)))}, opts...)
	st, err := redis.Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// claims are the optional interfaces of the Redis store: all but Tidier
// (Redis puts no work off).
var claims = []storetest.Capability{
	storetest.EventLog, storetest.AuditLog, storetest.ActiveCounter, storetest.Pinger,
	storetest.ExpiryIndex, storetest.Purger, storetest.ChangeFeed, storetest.DeliveryQueue,
	storetest.SessionLister, storetest.FactorStore, storetest.EventRecorder,
	storetest.IdPIndex, storetest.ReplayGuard, storetest.DeviceBinder, storetest.KeyStore,
	storetest.OperatorStore,
}

// nodes opens two store values with one prefix, as two nodes would.
func nodes(t *testing.T, url string, down func()) (a, b lapse.Store, stop func()) {
	prefix := redis.WithPrefix(fmt.Sprintf("nodes%d", prefixes.Add(1)))
	hb := redis.WithHeartbeat(200 * time.Millisecond)
	return open(t, url, prefix, hb), open(t, url, prefix, hb), down
}

func TestStore(t *testing.T) {
	srv := redistest.NewServer(t)
	storetest.Run(t, storetest.Spec{
		New:    func(t *testing.T) lapse.Store { return open(t, srv.URL()) },
		Claims: claims,
		Nodes: func(t *testing.T) (a, b lapse.Store, down func()) {
			own := redistest.NewServer(t)
			return nodes(t, own.URL(), own.Stop)
		},
	})
}

func TestStoreCluster(t *testing.T) {
	c := redistest.NewCluster(t, 3)
	storetest.Run(t, storetest.Spec{
		New:    func(t *testing.T) lapse.Store { return open(t, c.URL()) },
		Claims: claims,
		Nodes: func(t *testing.T) (a, b lapse.Store, down func()) {
			own := redistest.NewCluster(t, 3)
			return nodes(t, own.URL(), func() {
				for _, n := range own.Nodes {
					n.Stop()
				}
			})
		},
	})
}

func newSession(subject string, at time.Time) *lapse.Session {
	return &lapse.Session{
		ID: lapse.NewID("ses_"), TokenHash: lapse.NewToken().Hash(),
		Subject: subject, Tier: "standard", AAL: 1, AMR: []string{"pwd"}, Status: lapse.StatusActive,
		CreatedAt: at, LastActiveAt: at, AuthenticatedAt: at,
		IdleExpiresAt: at.Add(10 * time.Minute), ExpiresAt: at.Add(time.Hour), WarnAt: at.Add(9 * time.Minute),
		Policy: lapse.Tier{IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour, WarnBefore: time.Minute},
	}
}

// TestChanges checks that every revoke made through one store value
// reaches another store value's change feed, and that a mark the reader
// sends after a revoke comes back after it, and only to the reader. How
// soon a revoke arrives is a figure for bench/ (loadgen -propagation).
func TestChanges(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		testChanges(t, redistest.NewServer(t).URL())
	})
	t.Run("cluster", func(t *testing.T) {
		testChanges(t, redistest.NewCluster(t, 3).URL())
	})
}

func testChanges(t *testing.T, url string) {
	ctx := context.Background()
	prefix := redis.WithPrefix(fmt.Sprintf("feed%d", prefixes.Add(1)))
	writer := open(t, url, prefix)
	reader := open(t, url, prefix)

	changes := make(chan lapse.Change, 10000)
	writerChanges := make(chan lapse.Change, 10000)
	feedCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- reader.Changes(feedCtx, func(c lapse.Change) { changes <- c }) }()
	go func() { done <- writer.Changes(feedCtx, func(c lapse.Change) { writerChanges <- c }) }()
	for _, ch := range []chan lapse.Change{changes, writerChanges} {
		select {
		case c := <-ch:
			if !c.Reset {
				t.Fatalf("first change = %+v, want a reset that says the feed is live", c)
			}
		case err := <-done:
			t.Fatalf("Changes returned before it was live: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("Changes did not go live within 10s")
		}
	}

	const n = 200
	for i := range n {
		s := newSession(fmt.Sprintf("user%d", i), t0)
		if _, err := writer.Create(ctx, s, 0); err != nil {
			t.Fatal(err)
		}
		if _, changed, err := writer.End(ctx, s.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonAdmin, Now: t0.Add(time.Minute)}); err != nil || !changed {
			t.Fatalf("End: changed %v, %v", changed, err)
		}
		mark := uint64(i + 1)
		if err := reader.Mark(ctx, mark); err != nil {
			t.Fatalf("Mark: %v", err)
		}
		seen := false
		timeout := time.After(10 * time.Second)
	wait:
		for {
			select {
			case c := <-changes:
				switch {
				case c.Token == s.TokenHash:
					seen = true
				case c.Mark == mark:
					if !seen {
						t.Fatalf("mark %d came back before the revoke of %s that preceded it", mark, s.ID)
					}
					break wait
				}
			case err := <-done:
				t.Fatalf("Changes returned: %v", err)
			case <-timeout:
				t.Fatalf("the revoke of %s (seen: %v) or the mark after it did not come back within 10s", s.ID, seen)
			}
		}
	}
	for len(writerChanges) > 0 {
		if c := <-writerChanges; c.Mark != 0 {
			t.Fatalf("the writer's feed delivered mark %d, which the reader sent", c.Mark)
		}
	}

	stop()
	for range 2 {
		select {
		case err := <-done:
			if err != context.Canceled {
				t.Errorf("Changes after cancel = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Changes did not return within 10s of its context's cancel")
		}
	}
}

// TestUnavailable stops Redis under a working store: calls fail with
// store_unavailable rather than hang (a guard of seconds) and the change
// feed ends; after a
// restart on the same port the same store works again.
func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	srv := redistest.NewServer(t)
	st := open(t, srv.URL(), redis.WithHeartbeat(200*time.Millisecond))
	s := newSession("alice", t0)
	if _, err := st.Create(ctx, s, 0); err != nil {
		t.Fatal(err)
	}
	feed := make(chan error, 1)
	live := make(chan struct{}, 1)
	go func() {
		feed <- st.Changes(ctx, func(c lapse.Change) {
			if c.Reset {
				live <- struct{}{}
			}
		})
	}()
	select {
	case <-live:
	case err := <-feed:
		t.Fatalf("Changes: %v", err)
	}

	srv.Stop()
	const bound = 10 * time.Second
	calls := []struct {
		name string
		call func() error
	}{
		{"SessionByToken", func() error { _, err := st.SessionByToken(ctx, s.TokenHash); return err }},
		{"Session", func() error { _, err := st.Session(ctx, s.ID); return err }},
		{"Create", func() error { _, err := st.Create(ctx, newSession("bob", t0), 0); return err }},
		{"End", func() error {
			_, _, err := st.End(ctx, s.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogout, Now: t0})
			return err
		}},
		{"Events", func() error { _, err := st.Events(ctx, 0, 10); return err }},
		{"Ping", func() error { return st.Ping(ctx) }},
	}
	for _, c := range calls {
		start := time.Now()
		err := c.call()
		took := time.Since(start)
		if got := lapse.ErrorCode(err); got != lapse.CodeStoreUnavailable {
			t.Errorf("%s with Redis down: code %q (%v), want %q", c.name, got, err, lapse.CodeStoreUnavailable)
		}
		if took > bound {
			t.Errorf("%s with Redis down did not fail for %v: it must fail, not hang", c.name, took)
		}
	}
	select {
	case err := <-feed:
		if got := lapse.ErrorCode(err); got != lapse.CodeStoreUnavailable {
			t.Errorf("Changes with Redis down returned code %q (%v), want %q", got, err, lapse.CodeStoreUnavailable)
		}
	case <-time.After(bound):
		t.Errorf("Changes did not return within %v of Redis going down", bound)
	}

	srv.Start()
	// The same store recovers by itself. The restarted server is empty
	// (no persistence), so the old session is simply not found.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := st.Session(ctx, s.ID)
		if code := lapse.ErrorCode(err); code == lapse.CodeSessionNotFound {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("10s after Redis came back, Session still fails: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b := newSession("bob", t0)
	if _, err := st.Create(ctx, b, 0); err != nil {
		t.Fatalf("Create after the restart: %v", err)
	}
	if got, err := st.SessionByToken(ctx, b.TokenHash); err != nil || got.ID != b.ID {
		t.Fatalf("SessionByToken after the restart = %v, %v", got, err)
	}
}

func TestOpenRejects(t *testing.T) {
	for _, url := range []string{
		"localhost:6379",
		"http://localhost:6379",
		"redis+cluster://",
		"redis+cluster://h1:1,,h2:2",
		"redis+cluster://h1:1/2",
	} {
		_, err := redis.Open(context.Background(), url)
		if got := lapse.ErrorCode(err); got != lapse.CodeInvalid {
			t.Errorf("Open(%q) code %q (%v), want %q", url, got, err, lapse.CodeInvalid)
		}
	}
	_, err := redis.Open(context.Background(), "redis://127.0.0.1:1", redis.WithPrefix("a{b}"))
	if got := lapse.ErrorCode(err); got != lapse.CodeInvalid {
		t.Errorf("Open with a braced prefix: code %q, want %q", got, lapse.CodeInvalid)
	}
}

// TestOpenErrorsHoldNoPassword: a URL that does not parse is refused
// with what is wrong with it, not the URL itself, which holds the
// password.
func TestOpenErrorsHoldNoPassword(t *testing.T) {
	for _, url := range []string{
		"redis://:S3cret@127.0.0.1:notaport/0",
		"rediss://u:S3cret@[::1/0",
		"redis+cluster://:S3cret@h1:1,h2:2/?x=%zz",
	} {
		_, err := redis.Open(context.Background(), url)
		if err == nil || lapse.ErrorCode(err) != lapse.CodeInvalid || strings.Contains(err.Error(), "S3cret") {
			t.Errorf("Open(%q) = %v; want invalid_request without the password", url, err)
		}
	}
}

// dropHeartbeats is a go-redis hook that swallows the change feed's
// heartbeat PUBLISHes, as a broken cluster bus link would lose them.
type dropHeartbeats struct{}

func (dropHeartbeats) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (dropHeartbeats) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}
func (dropHeartbeats) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if args := cmd.Args(); cmd.Name() == "publish" && len(args) == 3 && strings.HasPrefix(fmt.Sprint(args[2]), "hb:") {
			return nil
		}
		return next(ctx, cmd)
	}
}

// TestChangesFailsClosedWhenHeartbeatsAreLost checks that a feed which
// stays connected but stops delivering is given up: Changes returns
// store_unavailable rather than vouch for a feed that hears nothing.
func TestChangesFailsClosedWhenHeartbeatsAreLost(t *testing.T) {
	srv := redistest.NewServer(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { client.Close() })
	client.AddHook(dropHeartbeats{})
	st, err := redis.New(client, "silent", redis.WithHeartbeat(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	live := false
	err = st.Changes(ctx, func(c lapse.Change) { live = live || c.Reset })
	if !live {
		t.Fatal("Changes never went live")
	}
	if got := lapse.ErrorCode(err); got != lapse.CodeStoreUnavailable {
		t.Fatalf("Changes with lost heartbeats = %v (code %q), want %q (a context error means it never noticed, within 10s)", err, got, lapse.CodeStoreUnavailable)
	}
}

// TestEventsAcrossNodes has several store values (nodes) write and relay
// events at once, then checks that the log holds every event exactly
// once, gap-free, each session's events in order, and that its chain
// verifies.
func TestEventsAcrossNodes(t *testing.T) {
	t.Run("standalone", func(t *testing.T) { testEventsAcrossNodes(t, redistest.NewServer(t).URL()) })
	t.Run("cluster", func(t *testing.T) { testEventsAcrossNodes(t, redistest.NewCluster(t, 3).URL()) })
}

func testEventsAcrossNodes(t *testing.T, url string) {
	ctx := context.Background()
	prefix := redis.WithPrefix(fmt.Sprintf("nodes%d", prefixes.Add(1)))
	nodes := []*redis.Store{open(t, url, prefix), open(t, url, prefix), open(t, url, prefix)}

	var (
		wg       sync.WaitGroup
		recorded atomic.Int64 // events the writers caused
		stop     = make(chan struct{})
		readErr  = make(chan error, len(nodes))
	)
	for w, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				s := newSession(fmt.Sprintf("u%d", (w*7+i)%40), t0.Add(time.Duration(i)*time.Second))
				ended, err := node.Create(ctx, s, 2)
				if err != nil {
					t.Errorf("Create: %v", err)
					return
				}
				recorded.Add(1 + int64(len(ended)))
				if i%3 == 0 {
					_, changed, err := node.End(ctx, s.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogout, Now: s.CreatedAt})
					if err != nil {
						t.Errorf("End: %v", err)
						return
					}
					if changed {
						recorded.Add(1)
					}
				}
			}
		}()
	}
	// Every node relays while the others write.
	for _, node := range nodes {
		go func() {
			for {
				select {
				case <-stop:
					readErr <- nil
					return
				default:
				}
				if _, err := node.Events(ctx, 0, 1); err != nil {
					readErr <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	for range nodes {
		if err := <-readErr; err != nil {
			t.Fatalf("Events while writing: %v", err)
		}
	}

	var all []lapse.Event
	for after := int64(0); ; {
		evs, err := nodes[0].Events(ctx, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].Seq
	}
	if int64(len(all)) != recorded.Load() {
		t.Errorf("the log holds %d events, the writers caused %d", len(all), recorded.Load())
	}
	seen := map[string]bool{}
	state := map[string]lapse.EventType{}
	for i, e := range all {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has Seq %d: the log has a gap or a duplicate", i+1, e.Seq)
		}
		if seen[e.ID] {
			t.Fatalf("event %s is in the log twice", e.ID)
		}
		seen[e.ID] = true
		if prev, ok := state[e.SessionID]; e.Type == lapse.EventCreated && ok || e.Type == lapse.EventRevoked && prev != lapse.EventCreated {
			t.Fatalf("session %s: %s follows %q", e.SessionID, e.Type, prev)
		}
		state[e.SessionID] = e.Type
	}
	rep, err := lapse.VerifyChain(ctx, nodes[1], 0, nil)
	if err != nil || !rep.OK() || rep.Records != int64(len(all)) {
		t.Errorf("VerifyChain = %+v, %v; want %d intact records", rep, err, len(all))
	}
	t.Logf("%d events from %d nodes, relayed concurrently, in one gap-free chained log", len(all), len(nodes))
}

// quiet drops go-redis's own log lines (dial failures while a test has
// stopped Redis on purpose).
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	goredis.SetLogger(quiet{})
	os.Exit(m.Run())
}

// TestDeliveryQueue walks webhook deliveries through the queue: enqueue
// once, due in order with their events, retry later, dead, replay.
func TestDeliveryQueue(t *testing.T) {
	ctx := context.Background()
	st := open(t, redistest.NewServer(t).URL())
	if _, ok, err := st.Cursor(ctx, "ep"); ok || err != nil {
		t.Fatalf("Cursor of a new endpoint = %v, %v; want none", ok, err)
	}
	if err := st.Enqueue(ctx, "fresh", nil, 0, t0); err != nil {
		t.Fatal(err)
	}
	if seq, ok, _ := st.Cursor(ctx, "fresh"); !ok || seq != 0 {
		t.Errorf("Cursor after Enqueue(cursor 0) = %d, %v; want 0, true", seq, ok)
	}
	for i := range 3 {
		if _, err := st.Create(ctx, newSession(fmt.Sprintf("u%d", i), t0), 0); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := st.Events(ctx, 0, 10)
	if err != nil || len(evs) != 3 {
		t.Fatalf("Events = %d, %v", len(evs), err)
	}
	for range 2 { // a second node enqueueing the same range adds nothing
		if err := st.Enqueue(ctx, "ep", []int64{1, 2, 3}, 3, t0); err != nil {
			t.Fatal(err)
		}
	}
	if seq, ok, _ := st.Cursor(ctx, "ep"); !ok || seq != 3 {
		t.Errorf("Cursor = %d, %v; want 3", seq, ok)
	}
	due, err := st.Due(ctx, t0, 10)
	if err != nil || len(due) != 3 {
		t.Fatalf("Due = %d deliveries, %v; want 3", len(due), err)
	}
	for i, d := range due {
		if d.Event.Seq != int64(i+1) || d.Event.Type != lapse.EventCreated || d.Event.ID != evs[i].ID || d.Status != lapse.DeliveryPending {
			t.Errorf("delivery %d = %+v, want pending, with event %d", i, d, i+1)
		}
	}
	done, retry, dead := due[0], due[1], due[2]
	done.Status, done.Attempts = lapse.DeliveryDelivered, 1
	retry.Attempts, retry.NextAt, retry.LastError = 1, t0.Add(time.Minute), "HTTP 500"
	dead.Status, dead.Attempts, dead.LastError = lapse.DeliveryDead, 3, "HTTP 503"
	for _, d := range []lapse.Delivery{done, retry, dead} {
		if err := st.Record(ctx, []lapse.Delivery{d}, t0); err != nil {
			t.Fatal(err)
		}
	}
	if due, _ := st.Due(ctx, t0.Add(time.Minute-time.Nanosecond), 10); len(due) != 0 {
		t.Errorf("Due before the retry time = %+v, want none", due)
	}
	if due, _ := st.Due(ctx, t0.Add(time.Minute), 10); len(due) != 1 || due[0].ID != retry.ID || due[0].Attempts != 1 || due[0].LastError != "HTTP 500" {
		t.Errorf("Due at the retry time = %+v, want the retried delivery", due)
	}
	if got, _ := st.Dead(ctx, 10); len(got) != 1 || got[0].ID != dead.ID || got[0].LastError != "HTTP 503" {
		t.Fatalf("Dead = %+v, want the dead delivery", got)
	}
	if n, err := st.Replay(ctx, nil, t0.Add(2*time.Minute)); err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v; want 1", n, err)
	}
	due, _ = st.Due(ctx, t0.Add(2*time.Minute), 10)
	if len(due) != 2 || due[0].ID != retry.ID || due[1].ID != dead.ID || due[1].Attempts != 0 {
		t.Errorf("Due after the replay = %+v, want the retried and the replayed delivery", due)
	}
	if got, _ := st.Dead(ctx, 10); len(got) != 0 {
		t.Errorf("Dead after the replay = %+v, want none", got)
	}
}

// TestExpireDueBacklog puts more due sessions in one bucket than one
// round lists, and checks that one call still expires them all.
func TestExpireDueBacklog(t *testing.T) {
	ctx := context.Background()
	st := open(t, redistest.NewServer(t).URL())
	const n = 300 // one subject: one bucket
	for i := range n {
		if _, err := st.Create(ctx, newSession("busy", t0.Add(time.Duration(i)*time.Millisecond)), 0); err != nil {
			t.Fatal(err)
		}
	}
	due, err := st.ExpireDue(ctx, t0.Add(2*time.Hour), 2000)
	if err != nil || len(due) != n {
		t.Fatalf("ExpireDue = %d sessions, %v; want all %d", len(due), err, n)
	}
	if !slices.IsSortedFunc(due, func(a, b *lapse.Session) int { return a.EndedAt.Compare(b.EndedAt) }) {
		t.Error("ExpireDue did not return the sessions earliest first")
	}
	if counts, _ := st.CountActive(ctx, t0); len(counts) != 0 {
		t.Errorf("CountActive after expiring everything = %v", counts)
	}
}
