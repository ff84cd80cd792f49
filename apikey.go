package lapse

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// Scope names what an API key may do. A route of the API needs exactly
// one scope; a key holds any set of them.
type Scope string

// The scopes of API keys.
const (
	// ScopeSessionsVerify: verify a session, and the session's own routes.
	ScopeSessionsVerify Scope = "sessions:verify"
	// ScopeSessionsWrite: create, revoke by token, step up, credential
	// changed.
	ScopeSessionsWrite Scope = "sessions:write"
	// ScopeSessionsAdmin: read, list and revoke any session; the subject
	// routes.
	ScopeSessionsAdmin Scope = "sessions:admin"
	// ScopeFactorsAdmin: enrol and remove a subject's factors.
	ScopeFactorsAdmin Scope = "factors:admin"
	// ScopeAuditRead: read the audit log.
	ScopeAuditRead Scope = "audit:read"
	// ScopeMetricsRead: scrape /metrics.
	ScopeMetricsRead Scope = "metrics:read"
	// ScopeKeysAdmin: create, list and revoke API keys.
	ScopeKeysAdmin Scope = "keys:admin"
	// ScopeConsole: sign in to the console with the key.
	ScopeConsole Scope = "console"
)

// Scopes returns every scope, in the order the documentation lists them.
func Scopes() []Scope {
	return []Scope{ScopeSessionsVerify, ScopeSessionsWrite, ScopeSessionsAdmin, ScopeFactorsAdmin,
		ScopeAuditRead, ScopeMetricsRead, ScopeKeysAdmin, ScopeConsole}
}

// platformScopes are the scopes of what belongs to no tenant (a
// subject's factors, the node's metrics, the keys, the console): a key
// bound to a tenant cannot hold them.
var platformScopes = []Scope{ScopeFactorsAdmin, ScopeMetricsRead, ScopeKeysAdmin, ScopeConsole}

// APIKey is a named credential for the API, as a [KeyStore] keeps it:
// the hash of its secret, never the secret.
type APIKey struct {
	// ID is public: it is in the key itself ("lpk_<id>_<secret>"), in the
	// audit log's actor ("key:<id>") and in lapse keys list.
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Scopes []Scope `json:"scopes"`
	// Tenant binds the key to one tenant's sessions, subjects and
	// events; "" is a platform key.
	Tenant string `json:"tenant,omitempty"`
	// Hash is the SHA-256 of the whole key ([HashSecret]). The secret is
	// 256 bits from crypto/rand, so a fast hash is enough: there is no
	// password to guess.
	Hash       TokenHash `json:"-"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`   // zero: never
	LastUsedAt time.Time `json:"last_used_at,omitzero"` // debounced, see KeyTouchInterval
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// Has reports whether k holds scope.
func (k *APIKey) Has(scope Scope) bool { return slices.Contains(k.Scopes, scope) }

// Actor returns the actor of the events k's calls cause: "key:<id>".
func (k *APIKey) Actor() string { return "key:" + k.ID }

// Usable reports whether k may be used at now: not revoked, not expired.
func (k *APIKey) Usable(now time.Time) bool {
	return k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}

// KeyStore is implemented by stores that keep API keys for every node
// that shares them.
type KeyStore interface {
	// CreateKey records k and, if ev is not nil, appends ev to the event
	// log in the same atomic step: both or neither. It fails with
	// [CodeConflict] for an id in use.
	CreateKey(ctx context.Context, k *APIKey, ev *Event) error
	// Key returns the key with id, revoked or not. It fails with
	// [CodeKeyNotFound] for an unknown id.
	Key(ctx context.Context, id string) (*APIKey, error)
	// Keys returns every key, revoked ones too, in order of id.
	Keys(ctx context.Context) ([]*APIKey, error)
	// RevokeKey records the key with id revoked at at, and returns it;
	// revoking a revoked key changes nothing (its RevokedAt stays) and
	// reports changed false. ev, if not nil, is appended to the event log
	// in the same atomic step as the revoke, and only if it changed the
	// key. It fails with [CodeKeyNotFound].
	RevokeKey(ctx context.Context, id string, at time.Time, ev *Event) (k *APIKey, changed bool, err error)
	// TouchKey records that the key with id was used at at, unless a
	// later use is recorded. An unknown id is not an error.
	TouchKey(ctx context.Context, id string, at time.Time) error
}

// Event types of API keys. They change no session: SessionID and Subject
// are empty, Tenant is the key's, Reason its id and Actor who created or
// revoked it.
const (
	EventKeyCreated EventType = "key.created"
	EventKeyRevoked EventType = "key.revoked"
)

// KeyTouchInterval is how often a key's LastUsedAt is written at most:
// it may be up to this much behind its last use.
const KeyTouchInterval = time.Minute

// keyIDChars and keySecretChars are the lengths, in base62 characters,
// of a key's id (95 bits, unique without a store checking) and of its
// secret (256 bits).
const (
	keyIDChars     = 16
	keySecretChars = 43
)

// MaxKeyName is the longest name of an API key, in bytes.
const MaxKeyName = 64

// ParseAPIKey returns the id of an API key of the form
// "lpk_<id>_<secret>", or, for any other string (the bootstrap key of
// earlier versions, LAPSE_API_KEY), the id [LegacyKeyID] derives from its
// hash. It says nothing of whether the key exists.
func ParseAPIKey(key string) string {
	rest, ok := strings.CutPrefix(key, APIKeyPrefix)
	if id, secret, found := strings.Cut(rest, "_"); ok && found && len(id) == keyIDChars && len(secret) == keySecretChars &&
		allBase62(id) && allBase62(secret) {
		return id
	}
	return LegacyKeyID(HashSecret(key))
}

// LegacyKeyID is the id under which a key without an id of its own (the
// first start's bootstrap key, LAPSE_API_KEY) is stored: "boot" and the
// first 12 hex digits of its hash, which no generated id can be (it has
// 16 characters).
func LegacyKeyID(h TokenHash) string { return "boot" + hex.EncodeToString(h[:6]) }

func allBase62(s string) bool {
	for i := range len(s) {
		if base62Digit[s[i]] == noDigit {
			return false
		}
	}
	return true
}

// KeySpec describes a key to create.
type KeySpec struct {
	Name      string
	Scopes    []Scope
	Tenant    string
	ExpiresAt time.Time // zero: never
}

// validate checks s: a printable name of 1-[MaxKeyName] bytes, known
// scopes without repeats, at least one, and no platform scope on a
// tenant's key.
func (s *KeySpec) validate() error {
	if s.Name == "" || len(s.Name) > MaxKeyName || !printable(s.Name) {
		return Errorf(CodeInvalid, "a key's name is 1 to %d printable characters", MaxKeyName)
	}
	if len(s.Scopes) == 0 {
		return Errorf(CodeInvalid, "a key needs at least one scope")
	}
	for i, sc := range s.Scopes {
		if !slices.Contains(Scopes(), sc) {
			return Errorf(CodeInvalid, "scope %q is not one of sessions:verify, sessions:write, sessions:admin, factors:admin, audit:read, metrics:read, keys:admin, console", sc)
		}
		if slices.Contains(s.Scopes[:i], sc) {
			return Errorf(CodeInvalid, "scope %q is given twice", sc)
		}
		if s.Tenant != "" && slices.Contains(platformScopes, sc) {
			return Errorf(CodeInvalid, "scope %q is the platform's: a key bound to a tenant cannot hold it", sc)
		}
	}
	if len(s.Tenant) > 256 || !printable(s.Tenant) {
		return Errorf(CodeInvalid, "a tenant is at most 256 printable characters")
	}
	return nil
}

// compareHash reports, in constant time, whether key hashes to k's hash.
func (k *APIKey) compareHash(key string) bool {
	h := HashSecret(key)
	return subtle.ConstantTimeCompare(h[:], k.Hash[:]) == 1
}

// tenantKey is the context key of [WithTenant].
type tenantKey struct{}

// WithTenant returns a context in which the [Manager] reaches only
// tenant's sessions: any other session reads, verifies, revokes and
// lists exactly as an unknown one, and a session of another tenant
// cannot be created. "" reaches every tenant. The API sets it for a key
// bound to a tenant.
func WithTenant(ctx context.Context, tenant string) context.Context {
	if tenant == "" {
		return ctx
	}
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// TenantOf returns the tenant ctx is bound to by [WithTenant], or "".
func TenantOf(ctx context.Context) string {
	t, _ := ctx.Value(tenantKey{}).(string)
	return t
}

// actorKey is the context key of [WithActor].
type actorKey struct{}

type namedActor struct{ id, name string }

// WithActor returns a context whose changes are made on behalf of the
// actor id ("key:<id>", "operator:<id>") named name: the events the
// [Manager] and the [Keyring] record for an actor id carry name as their
// [Event.ActorName]. The API sets it for every call with a key of the
// keyring.
func WithActor(ctx context.Context, id, name string) context.Context {
	return context.WithValue(ctx, actorKey{}, namedActor{id, name})
}

// actorName returns the name [WithActor] set for the actor id, or "" if
// ctx carries another actor or none.
func actorName(ctx context.Context, id string) string {
	if a, ok := ctx.Value(actorKey{}).(namedActor); ok && a.id == id {
		return a.name
	}
	return ""
}

// clientIPKey is the context key of [WithClientIP].
type clientIPKey struct{}

// WithClientIP returns a context whose revokes and step-ups the
// [Manager] records with ip as the client address of their events. The
// API sets it for every call with a key.
func WithClientIP(ctx context.Context, ip string) context.Context {
	if ip == "" {
		return ctx
	}
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// clientIP returns the address [WithClientIP] set, or "".
func clientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}
