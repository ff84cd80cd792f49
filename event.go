package lapse

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"time"
)

// EventType names a kind of state change.
type EventType string

// Event types. Each state change of a session is recorded as one event in
// the same transaction as the change.
const (
	EventCreated      EventType = "session.created"
	EventExtended     EventType = "session.extended"
	EventSteppedUp    EventType = "session.stepped_up"
	EventRotated      EventType = "session.rotated"
	EventExpired      EventType = "session.expired"
	EventRevoked      EventType = "session.revoked"
	EventExpiringSoon EventType = "session.expiring_soon"
)

// Events of the signs of suspicious activity (docs/signals.md).
const (
	// EventClientChanged: a session was used from a client that differs
	// from the one it was created by ([Session.Drift]); Reason says how
	// ([ReasonNetworkChanged], ...) and IP from where. Recorded once per
	// session and client on each node.
	EventClientChanged EventType = "session.client_changed"
	// EventNewDevice: a session was created from a device none of its
	// subject's sessions came from within the tier's NewDeviceWindow; IP
	// is where from.
	EventNewDevice EventType = "session.new_device"
	// EventTokenReused: a token a step-up replaced was presented after
	// its grace, on a tier that only records it; IP is where from.
	EventTokenReused EventType = "session.token_reused"
	// EventTokenGuessing: many tokens that name no session came from one
	// source (IP set, Reason [ReasonGuessingSource]) or from everywhere
	// (Reason [ReasonGuessingOverall]); recorded once per episode. Like
	// [EventKeyRejected], it names no session.
	EventTokenGuessing EventType = "security.token_guessing"
)

// Reasons of an [EventTokenGuessing].
const (
	ReasonGuessingSource  Reason = "per_source"
	ReasonGuessingOverall Reason = "overall"
)

// EventKeyRejected records a credential lapse refused: an API key that is
// not valid, sent to the API or typed into the console's sign-in. It
// changes no session, so its SessionID, Subject, Tenant and Tier are
// empty; Actor says where the key was sent ([ActorAPI] or "console"), IP
// where from, and Reason why ([ReasonInvalidKey]). A store records it
// with [EventRecorder].
const EventKeyRejected EventType = "security.key_rejected"

// ReasonInvalidKey is the reason of an [EventKeyRejected]: the key is
// not one lapse knows.
const ReasonInvalidKey Reason = "invalid_key"

// Event is one recorded state change of a session, or a security event
// of none ([EventKeyRejected]). It never holds a token or a key.
type Event struct {
	// Seq orders events within one store; assigned by the store.
	Seq       int64     `json:"seq"`
	ID        string    `json:"id"`
	Type      EventType `json:"type"`
	Time      time.Time `json:"time"`
	SessionID string    `json:"session_id"`
	Subject   string    `json:"subject"`
	Tenant    string    `json:"tenant"`
	Tier      string    `json:"tier"`
	Reason    Reason    `json:"reason,omitempty"`
	// Actor is who caused the change: "subject" for the user's own logout,
	// "api" for an API-key caller, "system" for expiry and limits,
	// "console" for an operator in the console, "idp" for the identity
	// provider's logout. An actor with an identity of its own is named by
	// kind and id: "key:<id>" for an API key of the keyring, and so
	// "operator:<id>" for a named console operator.
	Actor string `json:"actor,omitempty"`
	// ActorName is the name Actor had when the event was recorded (an API
	// key's name), so that the log says who by id and name even after the
	// key is gone; empty for actors without one ("system", "api", ...).
	// It reaches events through the context ([WithActor]).
	ActorName string `json:"actor_name,omitempty"`
	// IP is the client address of the request that caused the event,
	// where lapse records one (on [EventKeyRejected]); empty otherwise.
	IP string `json:"ip,omitempty"`
}

// Actors of events.
const (
	ActorSubject = "subject"
	ActorAPI     = "api"
	ActorSystem  = "system"
	ActorIdP     = "idp"
)

// NewEvent returns an event of type typ about s at time at. Its ID is
// from [NewEventID].
func NewEvent(typ EventType, s *Session, reason Reason, actor string, at time.Time) Event {
	return Event{
		ID: NewEventID(at), Type: typ, Time: at,
		SessionID: s.ID, Subject: s.Subject, Tenant: s.Tenant, Tier: s.Tier,
		Reason: reason, Actor: actor,
	}
}

// NewID returns prefix followed by 22 random base62 characters (131 bits),
// for public identifiers such as those of factors and passkeys.
func NewID(prefix string) string {
	return string(appendRandom([]byte(prefix), 22))
}

// NewEventID returns "evt_" and 22 base62 characters: 8 for the
// milliseconds of at since 1970, then 14 random ones (83 bits), so that
// ids are unique without a store checking them and sort by the time they
// were made: a receiver can order and page by them, and an index on them
// would grow at its end instead of taking a random page per event.
func NewEventID(at time.Time) string { return newTimeID("evt_", at) }

// NewSessionID returns "ses_" and 22 base62 characters laid out as
// [NewEventID]'s: the milliseconds of at, the session's creation time
// (public already, as its created_at), then 83 random bits. The stores
// key sessions and their event index by id; an id that grows with time
// lands at the end of those B-trees, one page for a whole batch of
// creates, where a random id dirtied a page of its own for each.
func NewSessionID(at time.Time) string { return newTimeID("ses_", at) }

// newTimeID returns prefix, 8 base62 characters for the milliseconds of
// at since 1970 (0 before it) and 14 random ones.
func newTimeID(prefix string, at time.Time) string {
	b := append(make([]byte, 0, len(prefix)+22), prefix...)
	return string(appendRandom(appendMillis(b, at), 14))
}

// appendMillis appends the milliseconds of at since 1970 (0 before it)
// in 8 base62 characters, which sort as the times do.
func appendMillis(b []byte, at time.Time) []byte {
	ms := max(at.UnixMilli(), 0)
	n := len(b)
	b = append(b, "00000000"...)
	for i := len(b) - 1; i >= n; i-- {
		b[i] = base62[ms%62]
		ms /= 62
	}
	return b
}

// appendRandom appends n uniform base62 characters from crypto/rand.
func appendRandom(b []byte, n int) []byte {
	end := len(b) + n
	var buf [32]byte
	for len(b) < end {
		rand.Read(buf[:])
		for _, c := range buf {
			if c < 248 && len(b) < end {
				b = append(b, base62[c%62])
			}
		}
	}
	return b
}

// ChainHash returns the audit-chain hash of e: SHA-256 over the previous
// record's hash, e's Seq and every field of e in a fixed, length-prefixed
// encoding (IP only when it or ActorName is set, ActorName only when it
// is set). A store that keeps events as an
// audit log stores it with each event, so that altering, removing or
// reordering a record breaks the chain from that record on.
func (e *Event) ChainHash(prev []byte) []byte {
	// The encoding is built in a buffer on the stack and hashed once: a
	// store computes this in its single writer, for every event, and
	// hashing field by field through hash.Hash cost more (the hasher and
	// the sum allocated; here only the sum returned is).
	var buf [512]byte
	b := appendField(buf[:0], prev)
	var n [20]byte
	b = appendField(b, strconv.AppendInt(n[:0], e.Seq, 10))
	b = appendField(b, e.ID)
	b = appendField(b, e.Type)
	var t [len(time.RFC3339Nano) + 8]byte
	b = appendField(b, e.Time.UTC().AppendFormat(t[:0], time.RFC3339Nano))
	b = appendField(b, e.SessionID)
	b = appendField(b, e.Subject)
	b = appendField(b, e.Tenant)
	b = appendField(b, e.Tier)
	b = appendField(b, e.Reason)
	b = appendField(b, e.Actor)
	if e.IP != "" {
		// Only when set, so that the records written before events had
		// an address keep their hashes.
		b = appendField(b, e.IP)
	}
	if e.ActorName != "" {
		// Likewise; after IP (written even when empty), so that an event
		// with a name never hashes as one with that string as its address.
		if e.IP == "" {
			b = appendField(b, "")
		}
		b = appendField(b, e.ActorName)
	}
	sum := sha256.Sum256(b)
	return sum[:]
}

// appendField appends s to b as ChainHash encodes a field: its length as
// an unsigned varint, then its bytes.
func appendField[S ~string | ~[]byte](b []byte, s S) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}
