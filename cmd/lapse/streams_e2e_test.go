package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// openStream opens the session event stream of tok and reads up to its
// first event; it returns the answer, the stream open when it was one.
func openStream(t *testing.T, base, tok string) (*http.Response, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/session/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	closeIt := func() { resp.Body.Close(); cancel() }
	t.Cleanup(closeIt)
	if resp.StatusCode == http.StatusOK {
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || line != "event: session\n" {
			t.Fatalf("first line of the stream = %q, %v", line, err)
		}
	}
	return resp, closeIt
}

// metric reports whether the metrics, scraped from c, hold line.
func metric(t *testing.T, s *server, c *http.Client, line string) bool {
	t.Helper()
	return strings.Contains(doFrom(t, c, "GET", s.url+"/metrics", testKey, nil).raw, "\n"+line+"\n")
}

// TestEventStreamsAreCappedEndToEnd: the review opened 5,000 streams with
// one token; here, with the caps set low, a session gets three and the
// fourth is refused with 429 while the three go on, the node holds eight
// in all, and the metrics count what is open and what was refused.
func TestEventStreamsAreCappedEndToEnd(t *testing.T) {
	s := start(t, t.TempDir(), e2eConfig+"event_streams: {per_session: 3, per_node: 8}\n", "LAPSE_API_KEY="+testKey)
	a, aID := s.create(t, map[string]any{"subject": "a", "tier": "durable"})
	var held []*http.Response
	for range 3 {
		resp, _ := openStream(t, s.url, a)
		if resp.StatusCode != 200 {
			t.Fatalf("a stream within the cap: %d", resp.StatusCode)
		}
		held = append(held, resp)
	}
	refused := func(tok, want string) {
		t.Helper()
		resp, _ := openStream(t, s.url, tok)
		if resp.StatusCode == 200 {
			t.Fatalf("%s was opened, want 429 too_many_streams", want)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"code":"too_many_streams"`) {
			t.Fatalf("%s: %d %s (Retry-After %q), want 429 too_many_streams", want, resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	}
	refused(a, "a fourth stream of one session")
	for _, n := range []int{3, 2} {
		tok, _ := s.create(t, map[string]any{"subject": fmt.Sprint("u", n), "tier": "durable"})
		for range n {
			if resp, _ := openStream(t, s.url, tok); resp.StatusCode != 200 {
				t.Fatalf("a stream within the node's cap: %d", resp.StatusCode)
			}
		}
		if n == 2 {
			refused(tok, "a ninth stream on the node")
		}
	}
	for _, want := range []string{"lapse_event_streams_open 8", `lapse_event_streams_refused_total{limit="per_session"} 1`, `lapse_event_streams_refused_total{limit="per_node"} 1`} {
		if !metric(t, s, http.DefaultClient, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The three first streams were kept: each hears the revoke.
	call(t, "DELETE", s.url+"/v1/sessions/"+aID, testKey, nil)
	for _, resp := range held {
		rest, _ := io.ReadAll(resp.Body) // the stream ends after "revoked"
		if !strings.Contains(string(rest), "event: revoked") {
			t.Errorf("a held stream ended without the revoke: %q", rest)
		}
	}
	deadline := time.Now().Add(10 * time.Second) // a guard against "never"
	for !metric(t, s, http.DefaultClient, "lapse_event_streams_open 5") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !metric(t, s, http.DefaultClient, "lapse_event_streams_open 5") {
		t.Error("the ended streams did not give their slots back")
	}
}
