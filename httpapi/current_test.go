package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/problem"
)

// via is how a request to a session route carries the session token.
type via int

const (
	viaBearer     via = iota // Authorization: Bearer
	viaCookie                // the session cookie, without the CSRF header
	viaCookieCSRF            // the session cookie and the CSRF header
)

func (v via) String() string { return [...]string{"bearer", "cookie", "cookie_with_csrf_header"}[v] }

// asSession builds a request to a session route that carries token the
// way v says (nothing if token is empty) and no API key.
func (h *harness) asSession(method, path, token string, v via) *http.Request {
	h.t.Helper()
	req := h.newRequest(method, path, nil)
	req.Header.Del("Authorization")
	switch {
	case token == "":
	case v == viaBearer:
		req.Header.Set("Authorization", "Bearer "+token)
	default:
		req.AddCookie(&http.Cookie{Name: h.cookie, Value: token})
	}
	if v == viaCookieCSRF {
		req.Header.Set(CSRFHeader, "1")
	}
	return req
}

// current decodes the answer of GET /v1/session or POST /v1/session/extend.
func current(t *testing.T, r *response) currentResponse {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("got %s, want 200", r)
	}
	var c currentResponse
	if err := json.Unmarshal(r.body, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// wantSessionProblem checks a 401 of a session route: the code and the
// session's challenge.
func wantSessionProblem(t *testing.T, r *response, code lapse.Code) problem.Problem {
	t.Helper()
	p := wantProblem(t, r, http.StatusUnauthorized, code)
	if got := r.header.Get("WWW-Authenticate"); got != sessionChallenge {
		t.Errorf("WWW-Authenticate = %q, want %q", got, sessionChallenge)
	}
	return p
}

// events reads the audit log with query and returns the page.
func (h *harness) events(query string) auditResponse {
	h.t.Helper()
	r := h.call("GET", "/v1/audit"+query, nil)
	if r.status != http.StatusOK {
		h.t.Fatalf("GET /v1/audit%s: got %s, want 200", query, r)
	}
	var page auditResponse
	if err := json.Unmarshal(r.body, &page); err != nil {
		h.t.Fatal(err)
	}
	return page
}

// eventTypesOf returns the types of session id's recorded events, in order.
func (h *harness) eventTypesOf(id string) string {
	h.t.Helper()
	var types []string
	for _, ev := range h.events("?session=" + id).Events {
		types = append(types, string(ev.Type))
	}
	return strings.Join(types, ",")
}

func TestSessionAuthentication(t *testing.T) {
	h := newHarness(t, harnessOptions{feed: true})
	for _, rt := range routes {
		if !rt.session {
			continue
		}
		t.Run("no_token_is_session_not_found/"+rt.method+"_"+rt.path, func(t *testing.T) {
			wantSessionProblem(t, h.send(h.asSession(rt.method, rt.path, "", viaBearer)), lapse.CodeSessionNotFound)
		})
		t.Run("api_key_is_not_a_session_token/"+rt.method+"_"+rt.path, func(t *testing.T) {
			// A logout with a token that opens nothing is a 204, like
			// POST /v1/sessions/revoke: it must still not end anything.
			r := h.send(h.asSession(rt.method, rt.path, h.key, viaBearer))
			if rt.path == "/v1/session/logout" {
				if r.status != http.StatusNoContent {
					t.Errorf("got %s, want 204", r)
				}
				return
			}
			wantSessionProblem(t, r, lapse.CodeSessionNotFound)
		})
	}
	t.Run("bearer_token_wins_over_the_cookie", func(t *testing.T) {
		aliceTok, alice := h.create(map[string]any{"subject": "alice"})
		bobTok, bob := h.create(map[string]any{"subject": "bob"})
		req := h.asSession("GET", "/v1/session", aliceTok, viaBearer)
		req.AddCookie(&http.Cookie{Name: h.cookie, Value: bobTok})
		if got := current(t, h.send(req)).Session.ID; got != alice {
			t.Errorf("got session %s, want alice's %s (not bob's %s)", got, alice, bob)
		}
	})
	t.Run("cookie_name_is_configurable", func(t *testing.T) {
		h := newHarness(t, harnessOptions{cookie: "sid"})
		tok, id := h.create(map[string]any{"subject": "alice"})
		if got := current(t, h.send(h.asSession("GET", "/v1/session", tok, viaCookie))).Session.ID; got != id {
			t.Errorf("got session %s, want %s", got, id)
		}
		req := h.asSession("GET", "/v1/session", "", viaCookie)
		req.AddCookie(&http.Cookie{Name: defaultSessionCookie, Value: tok})
		wantSessionProblem(t, h.send(req), lapse.CodeSessionNotFound)
	})
}

func TestCurrentSession(t *testing.T) {
	t.Run("get_records_no_activity", func(t *testing.T) {
		h := newHarness(t)
		tok, id := h.create(map[string]any{"subject": "alice"})
		h.clock.Advance(10 * time.Minute) // past the touch interval: a verify would write
		c := current(t, h.send(h.asSession("GET", "/v1/session", tok, viaBearer)))
		if c.Session.ID != id || c.Now != formatTime(t0.Add(10*time.Minute)) {
			t.Errorf("got session %s at %s, want %s at %s", c.Session.ID, c.Now, id, formatTime(t0.Add(10*time.Minute)))
		}
		if want := formatTime(t0.Add(30 * time.Minute)); c.Session.IdleExpiresAt != want || c.Session.LastActiveAt != formatTime(t0) {
			t.Errorf("idle_expires_at = %s, last_active_at = %s; want %s and %s unchanged", c.Session.IdleExpiresAt, c.Session.LastActiveAt, want, formatTime(t0))
		}
		if s := session(t, h.call("GET", "/v1/sessions/"+id, nil)); s.IdleExpiresAt != c.Session.IdleExpiresAt || s.LastActiveAt != formatTime(t0) {
			t.Errorf("the store has idle_expires_at %s, last_active_at %s; want them unchanged", s.IdleExpiresAt, s.LastActiveAt)
		}
		if got := h.eventTypesOf(id); got != "session.created" {
			t.Errorf("events [%s], want [session.created]", got)
		}
		h.clock.Advance(20 * time.Minute)
		wantSessionProblem(t, h.send(h.asSession("GET", "/v1/session", tok, viaBearer)), lapse.CodeSessionExpiredIdle)
	})
	t.Run("get_by_cookie_needs_no_csrf_header", func(t *testing.T) {
		h := newHarness(t)
		tok, id := h.create(map[string]any{"subject": "alice"})
		if got := current(t, h.send(h.asSession("GET", "/v1/session", tok, viaCookie))).Session.ID; got != id {
			t.Errorf("got session %s, want %s", got, id)
		}
	})
	t.Run("get_applies_no_assurance_rule", func(t *testing.T) {
		h := newHarness(t)
		tok, _ := h.create(map[string]any{"subject": "alice", "tier": "sensitive", "aal": 1})
		wantProblem(t, h.verify(tok, map[string]any{"touch": false}), http.StatusForbidden, lapse.CodeStepUpRequired)
		if s := current(t, h.send(h.asSession("GET", "/v1/session", tok, viaBearer))).Session; s.AAL != 1 {
			t.Errorf("aal = %d, want 1", s.AAL)
		}
	})
	t.Run("get_of_a_revoked_session_is_session_revoked", func(t *testing.T) {
		h := newHarness(t)
		tok, id := h.create(map[string]any{"subject": "alice"})
		h.call("DELETE", "/v1/sessions/"+id, nil)
		wantSessionProblem(t, h.send(h.asSession("GET", "/v1/session", tok, viaCookie)), lapse.CodeSessionRevoked)
	})
}

func TestExtend(t *testing.T) {
	for _, v := range []via{viaBearer, viaCookieCSRF} {
		t.Run("extend_slides_the_idle_deadline_and_records_extended/"+v.String(), func(t *testing.T) {
			h := newHarness(t)
			tok, id := h.create(map[string]any{"subject": "alice"})
			h.clock.Advance(10 * time.Minute)
			c := current(t, h.send(h.asSession("POST", "/v1/session/extend", tok, v)))
			now := t0.Add(10 * time.Minute)
			s := c.Session
			if s.LastActiveAt != formatTime(now) || s.IdleExpiresAt != formatTime(now.Add(30*time.Minute)) || s.WarnAt != formatTime(now.Add(28*time.Minute)) {
				t.Errorf("last_active_at %s, idle_expires_at %s, warn_at %s; want %s, %s, %s", s.LastActiveAt, s.IdleExpiresAt, s.WarnAt,
					formatTime(now), formatTime(now.Add(30*time.Minute)), formatTime(now.Add(28*time.Minute)))
			}
			if got := session(t, h.call("GET", "/v1/sessions/"+id, nil)).IdleExpiresAt; got != s.IdleExpiresAt {
				t.Errorf("the store has idle_expires_at %s, want %s", got, s.IdleExpiresAt)
			}
			evs := h.events("?session=" + id + "&type=session.extended").Events
			if len(evs) != 1 || !evs[0].Time.Equal(now) || evs[0].Actor != lapse.ActorSubject {
				t.Errorf("extended events %+v, want one at %s by the subject", evs, now)
			}
		})
	}
	t.Run("extend_within_the_touch_interval_still_extends", func(t *testing.T) {
		h := newHarness(t)
		tok, id := h.create(map[string]any{"subject": "alice"})
		h.clock.Advance(10 * time.Second) // a verify would not write yet
		s := current(t, h.send(h.asSession("POST", "/v1/session/extend", tok, viaBearer))).Session
		if want := formatTime(t0.Add(10*time.Second + 30*time.Minute)); s.IdleExpiresAt != want {
			t.Errorf("idle_expires_at = %s, want %s", s.IdleExpiresAt, want)
		}
		if got := h.eventTypesOf(id); got != "session.created,session.extended" {
			t.Errorf("events [%s], want [session.created,session.extended]", got)
		}
	})
	t.Run("extend_of_an_expired_session_is_session_expired_idle", func(t *testing.T) {
		h := newHarness(t)
		tok, id := h.create(map[string]any{"subject": "alice"})
		h.clock.Advance(30 * time.Minute)
		wantSessionProblem(t, h.send(h.asSession("POST", "/v1/session/extend", tok, viaBearer)), lapse.CodeSessionExpiredIdle)
		if got := h.eventTypesOf(id); got != "session.created,session.expired" {
			t.Errorf("events [%s], want [session.created,session.expired]", got)
		}
	})
	t.Run("extend_when_the_store_cannot_write_is_503", func(t *testing.T) {
		h := newHarness(t)
		tok, _ := h.create(map[string]any{"subject": "alice"})
		h.verify(tok, map[string]any{"touch": false}) // cached: only the write fails
		h.clock.Advance(time.Minute)
		h.store.failWith(errUnavailable)
		defer h.store.failWith(nil)
		wantProblem(t, h.send(h.asSession("POST", "/v1/session/extend", tok, viaBearer)), http.StatusServiceUnavailable, lapse.CodeStoreUnavailable)
	})
}

func TestActivity(t *testing.T) {
	// standard tier: idle 30m, warning 2m before, touch interval 1m.
	t.Run("past_the_touch_interval_slides_the_idle_deadline_without_an_event", func(t *testing.T) {
		h := newHarness(t)
		tok, id := h.create(map[string]any{"subject": "alice"})
		h.clock.Advance(10 * time.Minute)
		c := current(t, h.send(h.asSession("POST", "/v1/session/activity", tok, viaCookieCSRF)))
		now := t0.Add(10 * time.Minute)
		if s := c.Session; s.LastActiveAt != formatTime(now) || s.IdleExpiresAt != formatTime(now.Add(30*time.Minute)) || c.Now != formatTime(now) {
			t.Errorf("last_active_at %s, idle_expires_at %s, now %s; want %s, %s, %s", s.LastActiveAt, s.IdleExpiresAt, c.Now,
				formatTime(now), formatTime(now.Add(30*time.Minute)), formatTime(now))
		}
		if got := session(t, h.call("GET", "/v1/sessions/"+id, nil)).IdleExpiresAt; got != c.Session.IdleExpiresAt {
			t.Errorf("the store has idle_expires_at %s, want %s", got, c.Session.IdleExpiresAt)
		}
		if got := h.eventTypesOf(id); got != "session.created" {
			t.Errorf("events [%s], want [session.created]: routine activity is no extend", got)
		}
	})
	t.Run("within_the_touch_interval_writes_nothing", func(t *testing.T) {
		h := newHarness(t)
		tok, id := h.create(map[string]any{"subject": "alice"})
		h.clock.Advance(59 * time.Second)
		c := current(t, h.send(h.asSession("POST", "/v1/session/activity", tok, viaBearer)))
		if c.Session.LastActiveAt != formatTime(t0) {
			t.Errorf("last_active_at %s, want %s: no more writes than a verify makes", c.Session.LastActiveAt, formatTime(t0))
		}
		if got := session(t, h.call("GET", "/v1/sessions/"+id, nil)).LastActiveAt; got != formatTime(t0) {
			t.Errorf("the store has last_active_at %s, want %s", got, formatTime(t0))
		}
	})
	t.Run("in_the_warning_window_is_recorded_as_extended", func(t *testing.T) {
		h := newHarness(t)
		tok, id := h.create(map[string]any{"subject": "alice"})
		h.clock.Advance(29 * time.Minute)
		current(t, h.send(h.asSession("POST", "/v1/session/activity", tok, viaBearer)))
		if got := h.eventTypesOf(id); got != "session.created,session.extended" {
			t.Errorf("events [%s], want [session.created,session.extended]", got)
		}
	})
	t.Run("applies_no_assurance_rule", func(t *testing.T) {
		h := newHarness(t)
		tok, _ := h.create(map[string]any{"subject": "alice", "tier": "sensitive", "aal": 1})
		h.clock.Advance(time.Minute)
		if s := current(t, h.send(h.asSession("POST", "/v1/session/activity", tok, viaBearer))).Session; s.LastActiveAt != formatTime(t0.Add(time.Minute)) {
			t.Errorf("last_active_at %s, want the activity recorded", s.LastActiveAt)
		}
	})
	t.Run("of_an_expired_session_is_session_expired_idle_with_the_reason", func(t *testing.T) {
		h := newHarness(t)
		tok, _ := h.create(map[string]any{"subject": "alice"})
		h.clock.Advance(30 * time.Minute)
		if p := wantSessionProblem(t, h.send(h.asSession("POST", "/v1/session/activity", tok, viaBearer)), lapse.CodeSessionExpiredIdle); p.EndReason != lapse.ReasonIdleTimeout {
			t.Errorf("end_reason = %q, want idle_timeout", p.EndReason)
		}
	})
	t.Run("when_the_store_cannot_write_is_503", func(t *testing.T) {
		h := newHarness(t)
		tok, _ := h.create(map[string]any{"subject": "alice"})
		h.verify(tok, map[string]any{"touch": false}) // cached: only the write fails
		h.clock.Advance(time.Minute)
		h.store.failWith(errUnavailable)
		defer h.store.failWith(nil)
		wantProblem(t, h.send(h.asSession("POST", "/v1/session/activity", tok, viaBearer)), http.StatusServiceUnavailable, lapse.CodeStoreUnavailable)
	})
}

func TestEndedSessionProblemSaysWhy(t *testing.T) {
	for _, c := range []struct {
		name   string
		end    func(h *harness, tok, id string)
		code   lapse.Code
		reason lapse.Reason
	}{
		{"admin_revoke", func(h *harness, _, id string) { h.call("DELETE", "/v1/sessions/"+id, nil) }, lapse.CodeSessionRevoked, lapse.ReasonAdmin},
		{"sign_out_everywhere", func(h *harness, _, _ string) { h.call("DELETE", "/v1/subjects/alice/sessions?reason=logout_all", nil) }, lapse.CodeSessionRevoked, lapse.ReasonLogoutAll},
		{"credential_changed", func(h *harness, _, _ string) {
			h.call("POST", "/v1/subjects/alice/credential-changed", map[string]any{})
		}, lapse.CodeSessionRevoked, lapse.ReasonPasswordChange},
		{"idle", func(h *harness, _, _ string) { h.clock.Advance(30 * time.Minute) }, lapse.CodeSessionExpiredIdle, lapse.ReasonIdleTimeout},
		{"absolute", func(h *harness, tok, _ string) {
			for range 25 {
				h.clock.Advance(29 * time.Minute)
				h.verify(tok, nil)
			}
		}, lapse.CodeSessionExpiredAbsolute, lapse.ReasonAbsoluteTimeout},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			tok, id := h.create(map[string]any{"subject": "alice"})
			c.end(h, tok, id)
			for _, path := range []string{"/v1/session", "/v1/session/activity", "/v1/session/extend"} {
				method := "POST"
				if path == "/v1/session" {
					method = "GET"
				}
				if p := wantSessionProblem(t, h.send(h.asSession(method, path, tok, viaCookieCSRF)), c.code); p.EndReason != c.reason {
					t.Errorf("%s %s: end_reason = %q, want %q", method, path, p.EndReason, c.reason)
				}
			}
			if p := wantProblem(t, h.verify(tok, nil), http.StatusUnauthorized, c.code); p.EndReason != c.reason {
				t.Errorf("verify: end_reason = %q, want %q", p.EndReason, c.reason)
			}
		})
	}
	t.Run("an_unknown_token_has_none", func(t *testing.T) {
		h := newHarness(t)
		if p := wantSessionProblem(t, h.send(h.asSession("GET", "/v1/session", string(lapse.NewToken()), viaBearer)), lapse.CodeSessionNotFound); p.EndReason != "" {
			t.Errorf("end_reason = %q, want none", p.EndReason)
		}
	})
}

func TestSessionRemindAt(t *testing.T) {
	h := newHarness(t) // standard tier: remind after 8h; sensitive: never
	tok, _ := h.create(map[string]any{"subject": "alice"})
	s := current(t, h.send(h.asSession("GET", "/v1/session", tok, viaBearer))).Session
	if want := formatTime(t0.Add(8 * time.Hour)); s.RemindAt == nil || *s.RemindAt != want {
		t.Errorf("remind_at = %v, want %s", s.RemindAt, want)
	}
	tok, _ = h.create(map[string]any{"subject": "alice", "tier": "sensitive", "aal": 2})
	r := h.send(h.asSession("GET", "/v1/session", tok, viaBearer))
	if s := current(t, r).Session; s.RemindAt != nil || !strings.Contains(string(r.body), `"remind_at":null`) {
		t.Errorf("remind_at = %v in %s, want null for a tier without remind_after", s.RemindAt, r.body)
	}
}

func TestLogout(t *testing.T) {
	for _, v := range []via{viaBearer, viaCookieCSRF} {
		t.Run("logout_revokes_and_leaves_the_apps_site_data_alone/"+v.String(), func(t *testing.T) {
			h := newHarness(t)
			tok, id := h.create(map[string]any{"subject": "alice"})
			r := h.send(h.asSession("POST", "/v1/session/logout", tok, v))
			if r.status != http.StatusNoContent || len(r.body) != 0 {
				t.Fatalf("got %s, want 204 with no body", r)
			}
			// Mounted inside an app, Clear-Site-Data would wipe the app's
			// cookies and storage too: that is the app's call.
			if got := r.header.Values("Clear-Site-Data"); len(got) != 0 {
				t.Errorf("Clear-Site-Data = %q, want none", got)
			}
			wantProblem(t, h.verify(tok, nil), http.StatusUnauthorized, lapse.CodeSessionRevoked)
			if p := wantSessionProblem(t, h.send(h.asSession("GET", "/v1/session", tok, v)), lapse.CodeSessionRevoked); p.EndReason != lapse.ReasonLogout {
				t.Errorf("end_reason = %q, want logout", p.EndReason)
			}
			evs := h.events("?session=" + id + "&type=session.revoked").Events
			if len(evs) != 1 || evs[0].Reason != lapse.ReasonLogout || evs[0].Actor != lapse.ActorSubject {
				t.Errorf("revoked events %+v, want one for logout by the subject", evs)
			}
			if r := h.send(h.asSession("POST", "/v1/session/logout", tok, v)); r.status != http.StatusNoContent {
				t.Errorf("logging out again: got %s, want 204", r)
			}
		})
	}
	t.Run("logout_without_a_token_is_session_not_found", func(t *testing.T) {
		h := newHarness(t)
		wantSessionProblem(t, h.send(h.asSession("POST", "/v1/session/logout", "", viaCookieCSRF)), lapse.CodeSessionNotFound)
	})
}

func TestCSRFHeader(t *testing.T) {
	for _, path := range []string{"/v1/session/extend", "/v1/session/activity", "/v1/session/logout"} {
		t.Run("cookie_post_without_the_header_changes_nothing"+strings.TrimPrefix(path, "/v1/session"), func(t *testing.T) {
			h := newHarness(t)
			tok, id := h.create(map[string]any{"subject": "alice"})
			h.clock.Advance(10 * time.Minute)
			wantProblem(t, h.send(h.asSession("POST", path, tok, viaCookie)), http.StatusForbidden, problem.CodeCSRFHeader)
			s := session(t, h.call("GET", "/v1/sessions/"+id, nil))
			if s.Status != lapse.StatusActive || s.LastActiveAt != formatTime(t0) || s.IdleExpiresAt != formatTime(t0.Add(30*time.Minute)) {
				t.Errorf("got %s, last active %s, idle deadline %s; want it active and unchanged", s.Status, s.LastActiveAt, s.IdleExpiresAt)
			}
			if got := h.eventTypesOf(id); got != "session.created" {
				t.Errorf("events [%s], want [session.created]", got)
			}
		})
	}
	t.Run("bearer_post_needs_no_header", func(t *testing.T) {
		h := newHarness(t)
		tok, _ := h.create(map[string]any{"subject": "alice"})
		current(t, h.send(h.asSession("POST", "/v1/session/extend", tok, viaBearer)))
	})
}

// sseEvent is one server-sent event: its name, its data and the text it
// was read from.
type sseEvent struct {
	name, data, raw string
}

// readEvent reads the next event from br, passing over comments such as
// heartbeats. At the end of the stream it returns io.EOF.
func readEvent(br *bufio.Reader) (sseEvent, error) {
	var (
		ev      sseEvent
		raw     strings.Builder
		data    []string
		started bool
	)
	for {
		line, err := br.ReadString('\n')
		raw.WriteString(line)
		switch {
		case err == io.EOF && line == "" && !started:
			return sseEvent{}, io.EOF
		case err == io.EOF:
			return sseEvent{}, io.ErrUnexpectedEOF
		case err != nil:
			return sseEvent{}, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		switch {
		case line == "":
			if started {
				if ev.name == "" {
					ev.name = "message"
				}
				ev.data, ev.raw = strings.Join(data, "\n"), raw.String()
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
		default:
			started = true
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				ev.name = value
			case "data":
				data = append(data, value)
			}
		}
	}
}

// parseEvents reads every event of body.
func parseEvents(body []byte) ([]sseEvent, error) {
	br := bufio.NewReader(bytes.NewReader(body))
	var out []sseEvent
	for {
		ev, err := readEvent(br)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

// streamTimeout bounds how long a test reads an event stream.
const streamTimeout = 5 * time.Second

// eventStream is an open server-sent-events stream.
type eventStream struct {
	t      *testing.T
	br     *bufio.Reader
	body   io.Closer
	cancel context.CancelFunc
}

// openStream sends req and, if the answer is an event stream, returns it
// open to read within streamTimeout; any other answer is read whole and
// checked like send's, with a nil stream.
func (h *harness) openStream(t *testing.T, req *http.Request) (*response, *eventStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), streamTimeout)
	res, err := h.srv.Client().Do(req.WithContext(ctx))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &response{status: res.StatusCode, header: res.Header}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "text/event-stream" {
		defer cancel()
		defer res.Body.Close()
		if r.body, err = io.ReadAll(res.Body); err != nil {
			t.Fatal(err)
		}
		return h.inspect(req, r), nil
	}
	es := &eventStream{t: t, br: bufio.NewReader(res.Body), body: res.Body, cancel: cancel}
	t.Cleanup(es.close)
	return r, es
}

func (es *eventStream) close() {
	es.body.Close()
	es.cancel()
}

// next returns the next event's name and data.
func (es *eventStream) next() (string, streamEvent) {
	es.t.Helper()
	ev, err := readEvent(es.br)
	if err != nil {
		es.t.Fatalf("reading the stream: %v, want an event", err)
	}
	var data streamEvent
	if err := json.Unmarshal([]byte(ev.data), &data); err != nil {
		es.t.Fatalf("event %s: data %q: %v", ev.name, ev.data, err)
	}
	return ev.name, data
}

// wantEnd checks that the server ends the stream without another event.
func (es *eventStream) wantEnd() {
	es.t.Helper()
	if ev, err := readEvent(es.br); err != io.EOF {
		es.t.Errorf("after the last event: got %q, %v; want the end of the stream", ev.raw, err)
	}
}

func TestSessionEvents(t *testing.T) {
	open := func(t *testing.T, h *harness, tok string, v via) *eventStream {
		t.Helper()
		r, es := h.openStream(t, h.asSession("GET", "/v1/session/events", tok, v))
		if es == nil {
			t.Fatalf("got %s, want 200 text/event-stream", r)
		}
		if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("got %d with Cache-Control %q, want 200 with no-store", r.status, r.header.Get("Cache-Control"))
		}
		return es
	}
	wantEvent := func(t *testing.T, es *eventStream, name string, reason lapse.Reason, status lapse.Status) streamEvent {
		t.Helper()
		got, data := es.next()
		if got != name || data.Type != name || data.Reason != reason || data.Session.Status != status {
			t.Fatalf("got event %s (data type %s, reason %q, session %s), want %s (reason %q, session %s)",
				got, data.Type, data.Reason, data.Session.Status, name, reason, status)
		}
		return data
	}
	t.Run("session_first_then_revoked_then_the_end", func(t *testing.T) {
		h := newHarness(t, harnessOptions{feed: true})
		tok, id := h.create(map[string]any{"subject": "alice"})
		h.clock.Advance(time.Minute)
		es := open(t, h, tok, viaBearer)
		first := wantEvent(t, es, "session", "", lapse.StatusActive)
		if first.Session.ID != id || first.Now != formatTime(t0.Add(time.Minute)) {
			t.Errorf("got session %s at %s, want %s at %s", first.Session.ID, first.Now, id, formatTime(t0.Add(time.Minute)))
		}
		if r := h.call("DELETE", "/v1/sessions/"+id, nil); r.status != http.StatusNoContent {
			t.Fatalf("revoking by id: got %s, want 204", r)
		}
		last := wantEvent(t, es, "revoked", lapse.ReasonAdmin, lapse.StatusRevoked)
		if last.Session.EndReason == nil || *last.Session.EndReason != lapse.ReasonAdmin {
			t.Errorf("end_reason = %v, want admin", last.Session.EndReason)
		}
		es.wantEnd()
	})
	t.Run("changes_stream_until_logout", func(t *testing.T) {
		h := newHarness(t, harnessOptions{feed: true})
		tok, _ := h.create(map[string]any{"subject": "alice"})
		es := open(t, h, tok, viaCookie) // a GET: no CSRF header needed
		wantEvent(t, es, "session", "", lapse.StatusActive)
		h.clock.Advance(time.Minute)
		current(t, h.send(h.asSession("POST", "/v1/session/extend", tok, viaBearer)))
		ext := wantEvent(t, es, "extended", "", lapse.StatusActive)
		if want := formatTime(t0.Add(31 * time.Minute)); ext.Session.IdleExpiresAt != want {
			t.Errorf("idle_expires_at = %s, want %s", ext.Session.IdleExpiresAt, want)
		}
		h.send(h.asSession("POST", "/v1/session/logout", tok, viaBearer))
		wantEvent(t, es, "revoked", lapse.ReasonLogout, lapse.StatusRevoked)
		es.wantEnd()
	})
	t.Run("expired_session_is_session_expired_idle", func(t *testing.T) {
		h := newHarness(t, harnessOptions{feed: true})
		tok, _ := h.create(map[string]any{"subject": "alice"})
		h.clock.Advance(30 * time.Minute)
		r, es := h.openStream(t, h.asSession("GET", "/v1/session/events", tok, viaBearer))
		if es != nil {
			t.Fatalf("got a stream, want 401")
		}
		wantSessionProblem(t, r, lapse.CodeSessionExpiredIdle)
	})
	t.Run("store_failing_after_the_token_is_known_is_503", func(t *testing.T) {
		h := newHarness(t, harnessOptions{feed: true})
		tok, _ := h.create(map[string]any{"subject": "alice"})
		h.verify(tok, map[string]any{"touch": false}) // cached: the token is known without the store
		h.store.failWith(errUnavailable)
		defer h.store.failWith(nil)
		r, es := h.openStream(t, h.asSession("GET", "/v1/session/events", tok, viaBearer))
		if es != nil {
			t.Fatalf("got a stream, want 503 rather than a stream with no event")
		}
		wantProblem(t, r, http.StatusServiceUnavailable, lapse.CodeStoreUnavailable)
	})
	t.Run("ends_when_a_step_up_retires_its_token", func(t *testing.T) {
		defer func(d time.Duration) { HeartbeatEvery = d }(HeartbeatEvery)
		HeartbeatEvery = 20 * time.Millisecond // the check runs at each heartbeat too; the fake clock moves no timer
		h := newHarness(t, harnessOptions{feed: true})
		tok, _ := h.create(map[string]any{"subject": "alice"})
		es := open(t, h, tok, viaBearer)
		wantEvent(t, es, "session", "", lapse.StatusActive)
		r := h.call("POST", "/v1/sessions/step-up", map[string]any{"token": tok, "aal": 2, "amr": []string{"otp"}})
		if r.status != http.StatusOK {
			t.Fatalf("step-up: %s", r)
		}
		wantEvent(t, es, "stepped_up", "aal_raised", lapse.StatusActive)
		wantEvent(t, es, "rotated", "", lapse.StatusActive)
		// The old token's grace runs out (on the fake clock); the stream
		// holds on to nothing the token no longer opens.
		h.clock.Advance(lapse.RotateGrace)
		es.wantEnd()
	})
	t.Run("without_a_feed_is_not_found", func(t *testing.T) {
		h := newHarness(t)
		tok, _ := h.create(map[string]any{"subject": "alice"})
		r, _ := h.openStream(t, h.asSession("GET", "/v1/session/events", tok, viaBearer))
		wantProblem(t, r, http.StatusNotFound, problem.CodeNotFound)
	})
}

func TestAudit(t *testing.T) {
	h := newHarness(t)
	// The log, a minute apart: a1 created, b1 created, a2 (acme)
	// created, a1 revoked by logout, a2 extended.
	ids := map[string]string{}
	var a1, a2 string
	a1, ids["a1"] = h.create(map[string]any{"subject": "alice"})
	h.clock.Advance(time.Minute)
	_, ids["b1"] = h.create(map[string]any{"subject": "bob"})
	h.clock.Advance(time.Minute)
	a2, ids["a2"] = h.create(map[string]any{"subject": "alice", "tenant": "acme"})
	h.clock.Advance(time.Minute)
	h.call("POST", "/v1/sessions/revoke", map[string]any{"token": a1})
	h.clock.Advance(time.Minute)
	current(t, h.send(h.asSession("POST", "/v1/session/extend", a2, viaBearer)))

	labels := func(evs []lapse.Event) string {
		var out []string
		for _, ev := range evs {
			name := ev.SessionID
			for n, id := range ids {
				if id == ev.SessionID {
					name = n
				}
			}
			out = append(out, name+"."+strings.TrimPrefix(string(ev.Type), "session."))
		}
		return strings.Join(out, ",")
	}
	at := func(d time.Duration) string { return url.QueryEscape(formatTime(t0.Add(d))) }
	all := "a1.created,b1.created,a2.created,a1.revoked,a2.extended"
	filters := []struct {
		name, query, want string
	}{
		{"no_filter_reads_everything_in_order", "", all},
		{"subject", "?subject=alice", "a1.created,a2.created,a1.revoked,a2.extended"},
		{"tenant", "?tenant=acme", "a2.created,a2.extended"},
		{"empty_tenant_is_every_tenant", "?tenant=", all},
		{"session", "?session=" + ids["a1"], "a1.created,a1.revoked"},
		{"one_type", "?type=session.revoked", "a1.revoked"},
		{"types", "?type=session.created,session.extended", "a1.created,b1.created,a2.created,a2.extended"},
		{"since_is_inclusive", "?since=" + at(time.Minute), "b1.created,a2.created,a1.revoked,a2.extended"},
		{"until_is_exclusive", "?until=" + at(3*time.Minute), "a1.created,b1.created,a2.created"},
		{"since_and_until", "?since=" + at(time.Minute) + "&until=" + at(3*time.Minute), "b1.created,a2.created"},
		{"since_with_an_offset", "?since=" + url.QueryEscape(t0.Add(time.Minute).In(time.FixedZone("", 3600)).Format(time.RFC3339Nano)),
			"b1.created,a2.created,a1.revoked,a2.extended"},
		{"filters_combine", "?subject=alice&type=session.created", "a1.created,a2.created"},
		{"nothing_matches", "?subject=nobody", ""},
	}
	for _, c := range filters {
		t.Run("filter/"+c.name, func(t *testing.T) {
			page := h.events(c.query)
			if got := labels(page.Events); got != c.want {
				t.Errorf("got [%s], want [%s]", got, c.want)
			}
			if page.NextAfter != nil {
				t.Errorf("next_after = %d, want null on the only page", *page.NextAfter)
			}
		})
	}
	t.Run("an_event_holds_what_happened", func(t *testing.T) {
		evs := h.events("?type=session.revoked").Events
		if len(evs) != 1 {
			t.Fatalf("got %d revoked events, want 1", len(evs))
		}
		ev := evs[0]
		if ev.SessionID != ids["a1"] || ev.Subject != "alice" || ev.Tenant != "" || ev.Tier != "standard" ||
			ev.Reason != lapse.ReasonLogout || ev.Actor != lapse.ActorSubject || !ev.Time.Equal(t0.Add(3*time.Minute)) || ev.Seq == 0 {
			t.Errorf("got %+v, want a1 revoked for logout by the subject at %s", ev, t0.Add(3*time.Minute))
		}
	})
	t.Run("nothing_matches_is_an_empty_list", func(t *testing.T) {
		r := h.call("GET", "/v1/audit?subject=nobody", nil)
		if want := `{"events":[],"next_after":null}`; strings.TrimSpace(string(r.body)) != want {
			t.Errorf("got %s, want 200 %s", r, want)
		}
	})
	t.Run("pages_follow_next_after", func(t *testing.T) {
		var pages []string
		var got []lapse.Event
		query := "?limit=2"
		for range 10 {
			page := h.events(query)
			pages = append(pages, labels(page.Events))
			got = append(got, page.Events...)
			if page.NextAfter == nil {
				break
			}
			if last := page.Events[len(page.Events)-1].Seq; *page.NextAfter != last {
				t.Errorf("next_after = %d, want the page's last seq %d", *page.NextAfter, last)
			}
			query = "?limit=2&after=" + strconv.FormatInt(*page.NextAfter, 10)
		}
		if labels(got) != all || len(pages) != 3 {
			t.Errorf("pages %q, want [%s] in 3 pages of at most 2", pages, all)
		}
	})
	t.Run("a_full_last_page_is_followed_by_an_empty_one", func(t *testing.T) {
		page := h.events("?type=session.created&limit=3")
		if labels(page.Events) != "a1.created,b1.created,a2.created" || page.NextAfter == nil {
			t.Fatalf("got [%s] with next_after %v, want three events and a next_after", labels(page.Events), page.NextAfter)
		}
		next := h.events("?type=session.created&limit=3&after=" + strconv.FormatInt(*page.NextAfter, 10))
		if len(next.Events) != 0 || next.NextAfter != nil {
			t.Errorf("got [%s] with next_after %v, want no event and null", labels(next.Events), next.NextAfter)
		}
	})
	bad := []struct{ name, query string }{
		{"since_not_a_time", "?since=yesterday"},
		{"until_not_rfc3339", "?until=2026-03-01"},
		{"unencoded_plus_offset", "?since=2026-03-01T10:00:00+01:00"}, // the + arrives as a space
		{"after_negative", "?after=-1"},
		{"after_not_a_number", "?after=x"},
		{"limit_zero", "?limit=0"},
		{"limit_above_1000", "?limit=1001"},
		{"limit_not_a_number", "?limit=ten"},
		{"type_without_prefix", "?type=revoked"},
		{"type_unknown", "?type=session.deleted"},
		{"type_list_with_an_empty_item", "?type=session.created,"},
	}
	for _, c := range bad {
		t.Run("bad/"+c.name+"_is_invalid_request", func(t *testing.T) {
			wantProblem(t, h.call("GET", "/v1/audit"+c.query, nil), http.StatusBadRequest, lapse.CodeInvalid)
		})
	}
	t.Run("a_store_without_audit_log_is_not_found", func(t *testing.T) {
		h := newHarness(t, harnessOptions{noAuditLog: true})
		wantProblem(t, h.call("GET", "/v1/audit", nil), http.StatusNotFound, problem.CodeNotFound)
	})
	t.Run("a_failing_store_is_503", func(t *testing.T) {
		h.store.failWith(errUnavailable)
		defer h.store.failWith(nil)
		wantProblem(t, h.call("GET", "/v1/audit", nil), http.StatusServiceUnavailable, lapse.CodeStoreUnavailable)
	})
}
