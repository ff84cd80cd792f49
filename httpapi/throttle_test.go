package httpapi

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/problem"
)

// from returns a client whose connections leave from the loopback
// address local, so that the server sees another client address.
func from(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

func (h *harness) sendFrom(c *http.Client, req *http.Request) *response {
	h.t.Helper()
	res, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.inspect(req, &response{status: res.StatusCode, header: res.Header, body: body})
}

// TestInvalidKeysAreThrottledPerAddress: ten invalid keys from one
// address are refused with 401 and recorded as security.key_rejected;
// then that address is refused with 429 and Retry-After before its key
// is looked at, the valid key included, while the valid key from another
// address is served; six seconds on (the fake clock) the address has one
// attempt back.
func TestInvalidKeysAreThrottledPerAddress(t *testing.T) {
	h := newHarness(t, harnessOptions{throttleBurst: 10})
	attacker, app := from("127.0.0.1"), from("127.0.0.2")
	wrong := func() *http.Request {
		r := h.newRequest("POST", "/v1/sessions/verify", map[string]any{"token": string(lapse.NewToken())})
		r.Header.Set("Authorization", "Bearer "+lapse.NewAPIKey())
		return r
	}
	for range 10 {
		wantProblem(t, h.sendFrom(attacker, wrong()), http.StatusUnauthorized, problem.CodeUnauthorized)
	}
	r := h.sendFrom(attacker, h.newRequest("POST", "/v1/sessions", map[string]any{"subject": "alice"}))
	wantProblem(t, r, http.StatusTooManyRequests, lapse.CodeTooManyAttempts)
	if got := r.header.Get("Retry-After"); got != "6" {
		t.Errorf("Retry-After = %q, want 6", got)
	}
	if r := h.sendFrom(app, h.newRequest("POST", "/v1/sessions", map[string]any{"subject": "alice"})); r.status != http.StatusCreated {
		t.Fatalf("the valid key from another address: got %s, want 201", r)
	}
	// A request without a key is not a guess: it is answered 401 and
	// counts nothing, even from the throttled address.
	none := h.newRequest("GET", "/v1/audit", nil)
	none.Header.Del("Authorization")
	wantProblem(t, h.sendFrom(attacker, none), http.StatusUnauthorized, problem.CodeUnauthorized)

	h.clock.Advance(6 * time.Second)
	if r := h.sendFrom(attacker, h.newRequest("POST", "/v1/sessions", map[string]any{"subject": "alice"})); r.status != http.StatusCreated {
		t.Fatalf("the valid key once the wait was over: got %s, want 201", r)
	}
	wantProblem(t, h.sendFrom(attacker, wrong()), http.StatusUnauthorized, problem.CodeUnauthorized) // the attempt earned back
	wantProblem(t, h.sendFrom(attacker, wrong()), http.StatusTooManyRequests, lapse.CodeTooManyAttempts)

	evs, err := h.store.QueryEvents(context.Background(), lapse.EventQuery{Types: []lapse.EventType{lapse.EventKeyRejected}})
	if err != nil || len(evs) != 11 {
		t.Fatalf("key_rejected events = %d, %v; want 11 (the throttled attempts are not looked at)", len(evs), err)
	}
	for _, ev := range evs {
		if ev.IP != "127.0.0.1" || ev.Actor != lapse.ActorAPI || ev.Reason != lapse.ReasonInvalidKey || ev.SessionID != "" || ev.Subject != "" {
			t.Fatalf("event %+v, want from 127.0.0.1, actor api, reason invalid_key, no session", ev)
		}
	}
	if rejected, throttled := h.server.throttle.Counts(); rejected != 11 || throttled != 2 {
		t.Errorf("throttle counts %d rejected, %d throttled; want 11 and 2", rejected, throttled)
	}
}
