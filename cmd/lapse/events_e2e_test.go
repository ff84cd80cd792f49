package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lapsehq/lapse/webhook"
	_ "modernc.org/sqlite"
)

// hookReceiver is a local webhook endpoint that fails the first fails
// deliveries, then accepts.
type hookReceiver struct {
	mu      sync.Mutex
	fails   int
	headers []http.Header
	bodies  [][]byte
	got     chan struct{}
}

func newHookReceiver(t *testing.T, fails int) (*hookReceiver, string) {
	r := &hookReceiver{fails: fails, got: make(chan struct{}, 100)}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func (r *hookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.headers = append(r.headers, req.Header.Clone())
	r.bodies = append(r.bodies, body)
	fail := r.fails > 0
	if fail {
		r.fails--
	}
	r.mu.Unlock()
	if fail {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	r.got <- struct{}{}
}

func (r *hookReceiver) wait(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for i := 0; i < n; i++ {
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("received %d of %d webhook deliveries within %v", i, n, within)
		}
	}
}

func TestIdleExpiryWebhookIsSignedAndRetried(t *testing.T) {
	eachStore(t, testIdleExpiryWebhookIsSignedAndRetried)
}

func testIdleExpiryWebhookIsSignedAndRetried(t *testing.T, st storeUnderTest) {
	rcv, url := newHookReceiver(t, 1) // the first delivery fails
	secret := webhook.NewSecret()
	cfg := e2eConfig + st.yaml() + `
sweep_interval: 50ms
webhook_retry: {base: 300ms, max: 1s, attempts: 5}
webhook_allow_networks: [127.0.0.0/8] # the receiver is on loopback
webhooks:
  - name: ops
    url: ` + url + `
    secret_env: TEST_WEBHOOK_SECRET
    events: [session.expired]
`
	s := start(t, t.TempDir(), cfg, "LAPSE_API_KEY="+testKey, "TEST_WEBHOOK_SECRET="+secret)
	created := time.Now()                                    // no later than the server's creation time
	_, id := s.create(t, map[string]any{"subject": "idler"}) // quick tier: idle 2s
	rcv.wait(t, 2, 10*time.Second)                           // the failed attempt and the retry
	key, _ := webhook.ParseSecret(secret)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.headers[0].Get("webhook-id") != rcv.headers[1].Get("webhook-id") {
		t.Errorf("the retry carried another webhook-id")
	}
	h, body := rcv.headers[1], rcv.bodies[1]
	if err := webhook.Verify(key, h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature"), body, time.Now(), time.Minute); err != nil {
		t.Fatalf("the retried delivery's signature does not verify: %v", err)
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != "session.expired" || p.Data.SessionID != id || p.Data.Reason != "idle_timeout" || p.Data.Subject != "idler" {
		t.Errorf("payload = %s", body)
	}
	// The sweeper recorded it, since nobody presented the token: never
	// before the deadline, and with the deadline as the session's end. How
	// soon after the deadline is a figure for bench/ (sweepbench).
	r := call(t, "GET", s.url+"/v1/sessions/"+id, testKey, nil)
	if r.status != 200 || r.body["status"] != "expired" || r.body["ended_at"] != r.body["idle_expires_at"] {
		t.Fatalf("the session after its expiry webhook: %d %s, want expired with ended_at = idle_expires_at", r.status, r.raw)
	}
	deadline, err := time.Parse(time.RFC3339Nano, r.body["idle_expires_at"].(string))
	if err != nil || deadline.Before(created.Add(2*time.Second)) {
		t.Fatalf("idle deadline %v (%v), want no earlier than 2s after the create call at %v", deadline, err, created)
	}
	if p.Data.Time.Before(deadline) {
		t.Errorf("expiry recorded at %v, before the idle deadline %v", p.Data.Time, deadline)
	}
}

// TestAuditVerifyNamesTheAlteredRecord runs lapse audit on every store;
// it alters a record behind lapse's back where the store lets a record
// be rewritten in place (SQLite, PostgreSQL; a Redis stream entry
// cannot be).
func TestAuditVerifyNamesTheAlteredRecord(t *testing.T) {
	eachStore(t, testAuditVerifyNamesTheAlteredRecord)
}

func testAuditVerifyNamesTheAlteredRecord(t *testing.T, st storeUnderTest) {
	dir := t.TempDir()
	s := start(t, dir, e2eConfig+st.yaml(), "LAPSE_API_KEY="+testKey)
	for _, sub := range []string{"a", "b", "c"} {
		tok, _ := s.create(t, map[string]any{"subject": sub, "tier": "durable"})
		call(t, "POST", s.url+"/v1/sessions/revoke", testKey, map[string]any{"token": tok})
	}
	out, err := exec.Command(lapseBin, st.cli(dir, "audit", "verify")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK: 6 records") {
		t.Fatalf("verify of an untouched log: %v\n%s", err, out)
	}
	logOut, err := exec.Command(lapseBin, st.cli(dir, "audit", "log", "--subject", "b", "--format", "json")...).Output()
	if err != nil || strings.Count(string(logOut), "\n") != 2 || !strings.Contains(string(logOut), `"type":"session.revoked"`) {
		t.Errorf("audit log --subject b --format json:\n%s (%v)", logOut, err)
	}
	s.kill(9)

	const alter = `UPDATE events SET reason = 'admin' WHERE seq = 4`
	switch st.name {
	case "sqlite":
		db, err := sql.Open("sqlite", filepath.Join(dir, "lapse.db"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(alter); err != nil {
			t.Fatal(err)
		}
		db.Close()
	case "postgres":
		c, err := pgx.Connect(context.Background(), st.url)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(context.Background(), alter); err != nil {
			t.Fatal(err)
		}
		c.Close(context.Background())
	default:
		return
	}
	out, err = exec.Command(lapseBin, st.cli(dir, "audit", "verify")...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("verify of an altered log: %v, want exit status 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "record 4") || !strings.Contains(string(out), "altered") {
		t.Errorf("verify output does not name record 4 as altered:\n%s", out)
	}
}

func TestDeadLettersCanBeReplayedFromTheCLI(t *testing.T) {
	eachStore(t, testDeadLettersCanBeReplayedFromTheCLI)
}

func testDeadLettersCanBeReplayedFromTheCLI(t *testing.T, st storeUnderTest) {
	rcv, url := newHookReceiver(t, 2)
	dir := t.TempDir()
	cfg := e2eConfig + st.yaml() + `
webhook_retry: {base: 100ms, max: 200ms, attempts: 2}
webhook_allow_networks: [127.0.0.0/8] # the receiver is on loopback
webhooks:
  - {name: ops, url: "` + url + `", secret: "` + webhook.NewSecret() + `", events: [session.revoked]}
`
	s := start(t, dir, cfg, "LAPSE_API_KEY="+testKey)
	tok, _ := s.create(t, map[string]any{"subject": "a", "tier": "durable"})
	call(t, "POST", s.url+"/v1/sessions/revoke", testKey, map[string]any{"token": tok})
	rcv.wait(t, 2, 10*time.Second)
	var out []byte
	for range 50 { // the second failure is recorded just after the receiver answers
		out, _ = exec.Command(lapseBin, st.cli(dir, "webhooks", "dead")...).Output()
		if strings.Contains(string(out), "session.revoked") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(string(out), "session.revoked") || !strings.Contains(string(out), "503") {
		t.Fatalf("webhooks dead does not list the failed delivery:\n%s", out)
	}
	out, err := exec.Command(lapseBin, st.cli(dir, "webhooks", "replay", "--all")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1 deliveries queued again") {
		t.Fatalf("webhooks replay --all: %v\n%s", err, out)
	}
	rcv.wait(t, 1, 10*time.Second)
}
