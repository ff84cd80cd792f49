package lapse

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// GuessGuard watches for token guessing ([Config.Guessing]): tokens that
// name no session (malformed, unknown, or of the other namespace),
// counted per source address. The throttle package has one.
type GuessGuard interface {
	// Refused reports whether ip's source is refused now, and how long it
	// must wait. It must be cheap while no source is refused: every
	// verify that carries a client asks.
	Refused(ip netip.Addr) (wait time.Duration, refused bool)
	// Missed counts one token from ip that named no session, and returns
	// [ReasonGuessingSource] or [ReasonGuessingOverall] when this miss
	// began an episode of guessing (from ip, or from everywhere), "" when
	// it did not.
	Missed(ip netip.Addr) Reason
}

// refused answers a client whose source the guessing guard refuses.
func (m *Manager) refused(c Client) error {
	if m.guess == nil || !c.IP.IsValid() {
		return nil
	}
	if wait, no := m.guess.Refused(c.IP); no {
		return &Error{Code: CodeTooManyAttempts, RetryAfter: wait,
			Message: "too many tokens that name no session came from this address; try again after Retry-After seconds"}
	}
	return nil
}

// missed counts a token of c that named no session, and records the
// episode of guessing it began, if any.
func (m *Manager) missed(ctx context.Context, c Client) {
	if m.guess == nil || !c.IP.IsValid() {
		return
	}
	reason := m.guess.Missed(c.IP)
	if reason == "" {
		return
	}
	ev := Event{Type: EventTokenGuessing, Reason: reason, Actor: ActorSystem}
	if reason == ReasonGuessingSource {
		ev.IP = c.IP.String()
	}
	_ = m.Record(ctx, ev) // a store without an event log keeps only the metric
}

// revokeTheft revokes s with [ReasonTheft] at now, for a signal its tier
// treats as theft, and returns the error the caller gets.
func (m *Manager) revokeTheft(ctx context.Context, s *Session, now time.Time) (*Session, error) {
	ended, changed, err := m.store.End(ctx, s.ID, Ending{Status: StatusRevoked, Reason: ReasonTheft, Actor: ActorSystem, Now: now})
	if err != nil {
		return nil, err
	}
	if changed {
		m.ended([]*Session{ended})
	}
	return nil, EndedError(ended)
}

// noteSignal records an event of type typ about s, from client c, once
// per session, type, reason and client on this node.
func (m *Manager) noteSignal(ctx context.Context, s *Session, typ EventType, reason Reason, c Client) {
	key := notedKey{session: s.ID, typ: typ, reason: reason, ip: c.IP, ua: c.UserAgent}
	if !m.noted.first(key) {
		return
	}
	m.recordSession(ctx, s, typ, reason, c.IP)
}

// recordSession records an event about s that changes nothing of it, if
// the store has an event log; a signal is worth less than the verify it
// rides on, so a failed write is not the caller's failure.
func (m *Manager) recordSession(ctx context.Context, s *Session, typ EventType, reason Reason, ip netip.Addr) {
	rec, ok := m.store.(EventRecorder)
	if !ok {
		return
	}
	now := m.clock.Now()
	ev := NewEvent(typ, s, reason, ActorSystem, now)
	if ip.IsValid() {
		ev.IP = ip.String()
	}
	_ = rec.RecordEvent(ctx, ev)
}

// noticeDevice records [EventNewDevice] when s, just created at now,
// comes from a device (browser family, major version, platform and
// network: [DeviceClass]) that none of its subject's sessions of the
// tier's window came from. It compares what each session recorded when
// it was created or last stepped up; it keeps no identifier of its own.
func (m *Manager) noticeDevice(ctx context.Context, s *Session, now time.Time) {
	window := s.Policy.NewDeviceWindow
	if window == 0 || s.IP == "" && s.UserAgent == "" {
		return // the rule is off, or there is nothing to recognise a device by
	}
	others, err := m.store.Sessions(ctx, Filter{Subject: s.Subject, AnyTenant: true, IncludeEnded: true, Except: s.ID, Now: now})
	if err != nil {
		return
	}
	key := deviceClass(s.IP, s.UserAgent, s.Policy)
	since := now.Add(-window)
	for _, o := range others {
		if !o.LastActiveAt.Before(since) && deviceClass(o.IP, o.UserAgent, s.Policy) == key {
			return
		}
	}
	ip, _ := netip.ParseAddr(s.IP)
	m.recordSession(ctx, s, EventNewDevice, "", ip)
}

// SessionSignals are the signals recorded about one session, for the
// pages that show them.
type SessionSignals struct {
	NewDevice     bool // created from a device new to its subject
	ClientChanged bool // used from another client since
	TokenReused   bool // a replaced token of it came back
	// Reasons lists the reasons of the client changes, oldest first,
	// each once.
	Reasons []Reason
}

// Signals returns, by session id, the signals recorded about subject's
// sessions since since, from the store's audit log; nil if the store
// keeps none. A subject of the other namespace has none.
func (m *Manager) Signals(ctx context.Context, subject string, since time.Time) (map[string]*SessionSignals, error) {
	log, ok := m.store.(AuditLog)
	if !ok || ReservedSubject(subject) != m.reserved {
		return nil, nil
	}
	evs, err := log.QueryEvents(ctx, EventQuery{Subject: subject, Since: since,
		Types: []EventType{EventNewDevice, EventClientChanged, EventTokenReused}})
	if err != nil {
		return nil, err
	}
	out := map[string]*SessionSignals{}
	for _, e := range evs {
		sig := out[e.SessionID]
		if sig == nil {
			sig = &SessionSignals{}
			out[e.SessionID] = sig
		}
		switch e.Type {
		case EventNewDevice:
			sig.NewDevice = true
		case EventTokenReused:
			sig.TokenReused = true
		case EventClientChanged:
			sig.ClientChanged = true
			if !containsReason(sig.Reasons, e.Reason) {
				sig.Reasons = append(sig.Reasons, e.Reason)
			}
		}
	}
	return out, nil
}

func containsReason(rs []Reason, r Reason) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// notedKey is one signal of one session from one client.
type notedKey struct {
	session string
	typ     EventType
	reason  Reason
	ip      netip.Addr
	ua      string
}

// noted is the set of signals this node recorded. It forgets everything
// when it grows past maxNoted: a signal may then be recorded again, which
// is harmless, while memory stays bounded.
type noted struct {
	mu   sync.Mutex
	seen map[notedKey]struct{}
}

const maxNoted = 50_000

// first reports whether k is new, and remembers it.
func (n *noted) first(k notedKey) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.seen[k]; ok {
		return false
	}
	if n.seen == nil || len(n.seen) >= maxNoted {
		n.seen = map[notedKey]struct{}{}
	}
	n.seen[k] = struct{}{}
	return true
}
