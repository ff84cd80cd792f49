package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/problem"
)

// The /v1/session routes are for the browser: each is authenticated by
// the session itself, with its token in "Authorization: Bearer lps_..."
// or in the session cookie. A POST authenticated by the cookie must also
// carry an X-Lapse-CSRF header (any value): a header that no cross-site
// form can send and that makes a cross-origin script ask permission
// first (a CORS preflight lapse does not grant).

// CSRFHeader must accompany cookie-authenticated state changes.
const CSRFHeader = "X-Lapse-CSRF"

// sessionChallenge is the WWW-Authenticate of a 401 from a session
// route: RFC 9110 requires a challenge with every 401, and this one names
// the session token, not the API key.
const sessionChallenge = `Bearer realm="lapse-session"`

// sessionToken returns the session token of r and whether it came from
// the cookie.
func (s *Server) sessionToken(r *http.Request) (string, bool) {
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(tok), false
	}
	if c, err := r.Cookie(s.cookie); err == nil {
		return c.Value, true
	}
	return "", false
}

// currentResponse is a session as its own holder sees it, with the
// server's time so a client can correct for its clock's skew.
type currentResponse struct {
	Session Session `json:"session"`
	Now     string  `json:"now"`
}

func (s *Server) writeCurrent(w http.ResponseWriter, sess *lapse.Session) {
	writeJSON(w, http.StatusOK, currentResponse{Session: NewSession(sess), Now: formatTime(s.m.Clock().Now())})
}

// sessionError answers err from a session route, with the session's
// challenge on a 401.
func (s *Server) sessionError(w http.ResponseWriter, r *http.Request, err error) {
	if problem.Status(lapse.ErrorCode(err)) == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", sessionChallenge)
	}
	s.writeError(w, r, err)
}

// session authenticates r by its session token, refusing a
// cookie-authenticated POST without the CSRF header.
func (s *Server) session(w http.ResponseWriter, r *http.Request) (string, bool) {
	tok, fromCookie := s.sessionToken(r)
	switch {
	case tok == "":
		w.Header().Set("WWW-Authenticate", sessionChallenge)
		s.writeProblem(w, r, lapse.CodeSessionNotFound, "send the session token as Authorization: Bearer or in the "+s.cookie+" cookie", nil)
		return "", false
	case fromCookie && r.Method == http.MethodPost && r.Header.Get(CSRFHeader) == "":
		s.writeProblemStatus(w, r, http.StatusForbidden, problem.CodeCSRFHeader, "a cookie-authenticated POST needs the "+CSRFHeader+" header")
		return "", false
	case s.device != nil:
		// By bearer too: a copied cookie jar holds the token, which it
		// could send as one.
		// A session that no longer verifies is the route's to answer (a
		// logout of an ended session is not an error).
		if cur, err := s.m.Current(r.Context(), tok); err == nil {
			if err := s.device(r, &cur); err != nil {
				s.sessionError(w, r, err)
				return "", false
			}
		}
	}
	return tok, true
}

// sessionRoute answers with the session an action on the request's own
// session token returns.
func sessionRoute(action func(*lapse.Manager, context.Context, string) (lapse.Session, error)) func(*Server, http.ResponseWriter, *http.Request) {
	return func(s *Server, w http.ResponseWriter, r *http.Request) {
		tok, ok := s.session(w, r)
		if !ok {
			return
		}
		sess, err := action(s.m, r.Context(), tok)
		if err != nil {
			s.sessionError(w, r, err)
			return
		}
		s.writeCurrent(w, &sess)
	}
}

var (
	// routeCurrent returns the session without recording activity: looking at
	// one's own session must not keep it alive.
	routeCurrent = sessionRoute((*lapse.Manager).Current)
	// routeExtend is the user's "stay signed in".
	routeExtend = sessionRoute((*lapse.Manager).Extend)
	// routeActivity is the browser's report that its user is there: activity
	// recorded as a verify records it (at most once per touch interval,
	// an event only in the warning window), without assurance rules.
	routeActivity = sessionRoute((*lapse.Manager).Touch)
)

// logout ends the session; like POST /v1/sessions/revoke it is idempotent.
// It sends no Clear-Site-Data: mounted inside an app, lapse would wipe
// the app's own cookies and storage with it. That is for the app's
// sign-out page to decide.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	tok, ok := s.session(w, r)
	if !ok {
		return
	}
	if err := s.m.Revoke(r.Context(), tok); err != nil {
		s.sessionError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// HeartbeatEvery is how often an idle event stream sends a comment, so
// proxies keep it open and a dead client is noticed.
var HeartbeatEvery = 15 * time.Second

// streamRetryAfter is the Retry-After of a stream refused by a cap, in
// seconds.
const streamRetryAfter = "10"

// stream holds a server-sent-events stream of the session's own events:
// "session" once with its state, then "expiring_soon", "extended",
// "stepped_up", "rotated", "revoked" and "expired" as they happen, each
// with the session as it stands after the event. It ends after
// "revoked" or "expired", or after "session" if the session ended
// before the stream began. Holding it does not count as activity. A
// stream past the caps (StreamsPerSession, StreamsPerNode) is refused
// with 429 too_many_streams and Retry-After; the open ones are kept.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	if s.events == nil {
		s.writeProblem(w, r, problem.CodeNotFound, "this server has no event stream", nil)
		return
	}
	tok, ok := s.session(w, r)
	if !ok {
		return
	}
	id, ok := s.takeStream(w, r, tok)
	if !ok {
		return
	}
	defer s.streams.release(id)
	// Watch first, then read the session: no change can fall between.
	events, stop := s.events.Watch(id)
	defer stop()
	// The first read is made before the 200 is committed, so that a
	// failing store is answered as such rather than with an empty stream.
	first, err := s.m.Session(r.Context(), id)
	if err != nil {
		s.sessionError(w, r, err)
		return
	}
	e := &sse{s: s, w: w, r: r, rc: http.NewResponseController(w), tok: tok, id: id}
	e.rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// A session that ended between Current and Watch will send no
	// further event: end the stream now rather than hold it open.
	if !e.send("session", "", first) || first.Status != lapse.StatusActive {
		return
	}
	e.follow(events)
}

// sse is one open event stream of a session.
type sse struct {
	s   *Server
	w   http.ResponseWriter
	r   *http.Request
	rc  *http.ResponseController
	tok string // the token that opened it
	id  string // the session's id
	// graceOver fires when the grace of a token a step-up replaced ends.
	graceOver <-chan time.Time
}

// send writes one event with the session as it stands, and reports
// whether it reached the client.
func (e *sse) send(name string, reason lapse.Reason, full *lapse.Session) bool {
	b, _ := json.Marshal(streamEvent{Type: name, Reason: reason, Now: formatTime(e.s.m.Clock().Now()), Session: NewSession(full)})
	fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", name, b)
	return e.rc.Flush() == nil
}

// valid reports whether the token that opened the stream still opens
// its session: the stream lives only as long as it does, checked at each
// heartbeat and when a step-up's grace for it runs out.
func (e *sse) valid() bool {
	_, err := e.s.m.Current(e.r.Context(), e.tok)
	return err == nil
}

// heartbeat writes a comment, so proxies keep the stream open and a dead
// client is noticed, and reports whether it reached the client.
func (e *sse) heartbeat() bool {
	fmt.Fprint(e.w, ": heartbeat\n\n")
	return e.rc.Flush() == nil
}

// follow sends the session's events as they come, and heartbeats, until
// the session ends, the token dies, or the client or the feed goes away.
func (e *sse) follow(events <-chan lapse.Event) {
	beat := time.NewTicker(HeartbeatEvery)
	defer beat.Stop()
	for {
		var more bool
		select {
		case <-e.r.Context().Done():
			return
		case <-e.graceOver:
			more = e.valid()
		case <-beat.C:
			more = e.valid() && e.heartbeat()
		case ev, open := <-events:
			// A closed watch: the client reconnects and reads the session afresh.
			more = open && e.event(ev)
		}
		if !more {
			return
		}
	}
}

// event sends ev with the session as it now stands, and reports whether
// the stream goes on: it ends after revoked or expired.
func (e *sse) event(ev lapse.Event) bool {
	if ev.Type == lapse.EventCreated {
		return true
	}
	full, err := e.s.m.Session(e.r.Context(), e.id)
	if err != nil {
		return false
	}
	name := strings.TrimPrefix(string(ev.Type), "session.")
	if !e.send(name, ev.Reason, full) || ev.Type == lapse.EventRevoked || ev.Type == lapse.EventExpired {
		return false
	}
	if ev.Type == lapse.EventRotated && full.TokenHash != lapse.Token(e.tok).Hash() {
		// The browser reconnects with its new cookie; this token dies
		// when its grace does.
		e.graceOver = time.After(full.PrevValidUntil.Sub(e.s.m.Clock().Now()) + 10*time.Millisecond)
	}
	return true
}

// takeStream takes a slot for a stream of tok's session and returns
// the session's id; or it answers the error of a token that is not valid
// now, or 429 too_many_streams past a cap, and returns false.
func (s *Server) takeStream(w http.ResponseWriter, r *http.Request, tok string) (string, bool) {
	sess, err := s.m.Current(r.Context(), tok)
	if err != nil {
		s.sessionError(w, r, err)
		return "", false
	}
	limit, ok := s.streams.acquire(sess.ID)
	if ok {
		return sess.ID, true
	}
	w.Header().Set("Retry-After", streamRetryAfter)
	msg := fmt.Sprintf("this session already has %d event streams open on this server; one per browser is enough", s.streams.perSession)
	if limit == limitPerNode {
		msg = "this server holds as many event streams as it allows; try again later"
	}
	s.writeProblemStatus(w, r, http.StatusTooManyRequests, problem.CodeTooManyStreams, msg)
	return "", false
}

// streamEvent is the data of one server-sent event.
type streamEvent struct {
	Type    string       `json:"type"`
	Reason  lapse.Reason `json:"reason,omitempty"`
	Now     string       `json:"now"`
	Session Session      `json:"session"`
}
