package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lapsehq/lapse/webhook"
)

// These tests run the built binary against a webhook receiver that
// redirects, and receivers lapse must not reach (issue 26).

// TestWebhookRedirectIsNotFollowed: a receiver answering 307 to an
// internal address gets a failed delivery with the status recorded; the
// internal address is never asked for anything, so the signed event and
// its headers do not reach it, and its answer cannot mark the delivery
// delivered or land in the error.
func TestWebhookRedirectIsNotFollowed(t *testing.T) {
	var internalHits, receiverHits atomic.Int64
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1) // an admin endpoint on the internal network
	}))
	defer internal.Close()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		receiverHits.Add(1)
		http.Redirect(w, r, internal.URL+"/internal-admin/reset", http.StatusTemporaryRedirect)
	}))
	defer receiver.Close()
	dir := t.TempDir()
	cfg := e2eConfig + `
webhook_retry: {base: 100ms, max: 200ms, attempts: 3}
webhook_allow_networks: [127.0.0.0/8] # the receiver is on loopback
webhooks:
  - {name: ops, url: "` + receiver.URL + `/hook", secret: "` + webhook.NewSecret() + `", events: [session.revoked]}
`
	s := start(t, dir, cfg, "LAPSE_API_KEY="+testKey)
	tok, _ := s.create(t, map[string]any{"subject": "a", "tier": "durable"})
	call(t, "POST", s.url+"/v1/sessions/revoke", testKey, map[string]any{"token": tok})
	out := waitFor(t, "session.revoked", 15*time.Second, lapseBin, "webhooks", "dead", "--data-dir", dir)
	if !strings.Contains(out, "307 Temporary Redirect; redirects are not followed") {
		t.Fatalf("webhooks dead does not list the delivery failed with its 307:\n%s", out)
	}
	if receiverHits.Load() != 3 || internalHits.Load() != 0 {
		t.Errorf("the receiver got %d attempts and the internal address %d; want 3 and 0", receiverHits.Load(), internalHits.Load())
	}
	if strings.Contains(out, "internal-admin") {
		t.Errorf("the redirect's target is in the error:\n%s", out)
	}
}

// TestWebhookToLoopbackIsRefusedByDefault: without
// webhook_allow_networks, a receiver on loopback is never connected to,
// whether the URL names its address or a name that resolves to it.
func TestWebhookToLoopbackIsRefusedByDefault(t *testing.T) {
	var hits atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer receiver.Close()
	port := receiver.Listener.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	cfg := e2eConfig + fmt.Sprintf(`
webhook_retry: {base: 100ms, max: 200ms, attempts: 1}
webhooks:
  - {name: by-address, url: "http://127.0.0.1:%d/", secret: "%s", events: [session.revoked]}
  - {name: by-name, url: "http://localhost:%d/", secret: "%s", events: [session.revoked]}
`, port, webhook.NewSecret(), port, webhook.NewSecret())
	s := start(t, dir, cfg, "LAPSE_API_KEY="+testKey)
	tok, _ := s.create(t, map[string]any{"subject": "a", "tier": "durable"})
	call(t, "POST", s.url+"/v1/sessions/revoke", testKey, map[string]any{"token": tok})
	waitFor(t, "by-name", 15*time.Second, lapseBin, "webhooks", "dead", "--data-dir", dir)
	out := waitFor(t, "by-address", 15*time.Second, lapseBin, "webhooks", "dead", "--data-dir", dir)
	if strings.Count(out, "a loopback address") != 2 || hits.Load() != 0 {
		t.Errorf("the receiver got %d requests; dead letters:\n%s\nwant none, both refused as loopback", hits.Load(), out)
	}
}
