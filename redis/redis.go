// Package redis is a lapse store on Redis 7 (or Valkey), standalone or
// Redis Cluster, for running several stateless lapse nodes on one shared
// session store. Open it with a URL:
//
//	redis://[user:password@]host:port[/db][?options]      standalone (rediss:// for TLS)
//	redis+cluster://[user:password@]h1:p1,h2:p2[?options]  Redis Cluster (rediss+cluster:// for TLS)
//
// Options are go-redis URL options (dial_timeout, read_timeout, pool_size,
// ...). A cluster URL needs only some of the nodes; the client discovers
// the rest. Unless the URL says otherwise the store dials, reads and
// writes with 1-second timeouts and retries once, so that a call to an
// unreachable Redis fails with [lapse.CodeStoreUnavailable] within a few
// seconds instead of hanging. docs/redis.md has the whole design.
//
// # Key layout
//
// Each subject belongs to one of 256 buckets (FNV-1a of the subject,
// modulo 256), and every key of a bucket carries the bucket's hash tag
// {prefix:N}, so a subject's sessions, sets and indexes share one slot.
// With the default prefix "lapse", bucket 17 holds:
//
//	{lapse:17}:s:<id>        hash: one session (the token only as its SHA-256, hex)
//	{lapse:17}:a:<subject>   set: the subject's sessions recorded active
//	{lapse:17}:u:<subject>   set: all the subject's retained sessions
//	{lapse:17}:d:<tier>      sorted set: recorded-active sessions by earlier deadline
//	{lapse:17}:w             sorted set: active sessions not yet warned, by warn_at
//	{lapse:17}:e             sorted set: ended sessions by end time
//	{lapse:17}:tiers         set: tier names used in the bucket
//	{lapse:17}:outbox        stream: the bucket's events not yet in the log
//
// The tag is per subject, not per tenant and subject, because
// [lapse.Filter.AnyTenant] ends or lists a subject's sessions in every
// tenant in one atomic step; it is a bucket rather than the subject
// itself so that the set of outboxes and indexes that sweeps and the
// event relay visit is fixed and small. The bucket count and hash are
// part of the layout: changing either is a data migration.
//
// Calls that know only a session id or a token hash find the bucket
// through index keys, each hashed on its whole name to a slot of its own:
//
//	lapse:id:<id>            "N:<nonce>"       the bucket of a session id
//	lapse:tok:<hex hash>     "N:<id>:<nonce>"  bucket and id of a token hash
//	lapse:idp:<hex hash>     set of session ids signed in through one
//	                         identity provider account (hash of issuer, sub)
//	lapse:idpsid:<hex hash>  ... or through one provider session (issuer, sid)
//	lapse:once:<key>         the until of a single-use key ([Store.FirstUse])
//
// So SessionByToken is two reads: the index, then the session hash, which
// must hold the hash as its token or as the token its last rotation
// replaced. Index entries never change once written, so reading them
// outside the bucket's script cannot see a torn state.
//
// # Atomicity
//
// Every change is one Lua script (EVALSHA, falling back to EVAL) in the
// bucket's slot: the change, its events appended to the bucket's outbox,
// and the change notification (PUBLISH) commit together or not at all,
// and scripts of one bucket never interleave. The session limit of Create
// is enforced inside that script, so it holds under concurrent creates
// on any number of nodes; a sweep's expiry is claimed by the change of
// state itself, so each session.expired is recorded once.
//
// Create and Rotate must also reserve a token hash (and Create the id) in
// an index slot that no bucket script can touch. They claim it first
// (set if absent, with a random nonce so that a retried claim recognises
// itself), then run the bucket script. A claim is invisible until the
// script has written the session, because every read resolves the index
// through the session hash; a duplicate id or token hash fails its claim
// with [lapse.CodeConflict]. A claim left behind by a crash between the
// two steps points at no session: harmless, as ids and tokens are random,
// and it expires with its TTL.
//
// # Time
//
// Deadlines are data: scripts compare stored deadlines with the time the
// caller passes in, never with Redis's clock. Native key expiry is only a
// backstop that reclaims memory: a session's keys expire (ExpiresAt − now)
// + retention after the write that last moved ExpiresAt, which is after
// its absolute deadline whatever happens. Times are stored as Unix
// nanoseconds; a time before 1970 is stored as 1970 (a deadline then
// passes early, never late).
//
// # Events
//
// Events live in Redis Streams, in two stages (a transactional outbox).
// The script that makes a change appends its events to the bucket's
// outbox stream in the same slot, so change and event commit together,
// and the writer then sets the bucket's hint in {prefix:log}:dirty to a
// new value.
// [Store.Events] (and every other log reader, and [Store.Purge]) first
// relays the hinted outboxes (all of them at most once a second, in case
// a crash lost a hint) into one global log stream,
// {prefix:log}:events, whose entry ids are the event sequence numbers:
// the relay assigns Seq, computes the audit chain hash
// ([lapse.Event.ChainHash]) and appends with a compare-and-set on the log
// head and on each bucket's relay cursor, so relayers on several nodes
// neither lose nor duplicate an event. A subject's events keep their
// commit order; events of different buckets are merged by time within a
// relay batch.
//
// A single global stream cannot be written by the same script as a change
// in a cluster (different slots), and a global counter taken before the
// script would let a reader skip an event still in flight; the outbox
// keeps atomicity and the relay keeps one gap-free, hash-chained order.
// Relayed entries stay in their outbox for ten minutes, so that a
// failover of the log's master that loses its last appends (and rolls
// the relay cursors back with them) is healed by the next relay.
// Durability is otherwise Redis's own: run it with appendonly yes and
// appendfsync always, and with replicas; docs/redis.md says what a
// failover can lose.
//
// # Change feed
//
// Every script that changes an existing session publishes the token
// hashes it changed on the channel prefix:changes. [Store.Changes]
// delivers them, so that each node can drop those sessions from its
// verify cache, and returns as soon as it can no longer vouch for the
// feed.
package redis

import (
	"context"
	"errors"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lapsehq/lapse"
	goredis "github.com/redis/go-redis/v9"
)

// Buckets is the number of hash-tag buckets that subjects are spread
// over. It is part of the key layout.
const Buckets = 256

// Defaults of the store's options.
const (
	DefaultPrefix    = "lapse"
	DefaultRetention = 30 * 24 * time.Hour
	DefaultHeartbeat = time.Second
)

// Store is a [lapse.Store] in Redis. It is safe for concurrent use, by
// any number of goroutines and lapse nodes sharing the Redis.
type Store struct {
	c         goredis.UniversalClient
	own       bool // Close closes c
	prefix    string
	retention time.Duration
	heartbeat time.Duration
	nonce     string // tells this Store value's change feed marks from other nodes'

	mu       sync.Mutex
	lastFull time.Time // of the relay's last full sweep
}

var (
	_ lapse.Store         = (*Store)(nil)
	_ lapse.EventLog      = (*Store)(nil)
	_ lapse.ActiveCounter = (*Store)(nil)
	_ lapse.ChangeFeed    = (*Store)(nil)
)

// An Option changes a default of [Open] or [New].
type Option func(*Store)

// WithPrefix sets the prefix of every key and of the change channel;
// "" means [DefaultPrefix]. Stores with different prefixes share a Redis
// without seeing each other. A prefix must not contain '{' or '}'.
func WithPrefix(prefix string) Option {
	return func(s *Store) {
		if prefix != "" {
			s.prefix = prefix
		}
	}
}

// WithRetention sets how long a session's keys outlive its absolute
// deadline before Redis's own expiry removes them, so that ended sessions
// stay listable for that long; 0 or less means [DefaultRetention].
func WithRetention(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.retention = d
		}
	}
}

// WithHeartbeat sets how often [Store.Changes] proves that its
// subscription still receives what every master publishes; 0 or less
// means [DefaultHeartbeat]. A silently broken feed is noticed within two
// heartbeats.
func WithHeartbeat(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.heartbeat = d
		}
	}
}

// New returns a store on client, whose keys start with prefix ("" means
// [DefaultPrefix]). It does no I/O. The store does not own client:
// [Store.Close] leaves it open, and its timeouts are the caller's to set.
// client is a *goredis.Client (standalone or Sentinel-managed) or a
// *goredis.ClusterClient. It fails with [lapse.CodeInvalid] for a prefix
// with braces.
func New(client goredis.UniversalClient, prefix string, opts ...Option) (*Store, error) {
	s := &Store{c: client, prefix: DefaultPrefix, retention: DefaultRetention, heartbeat: DefaultHeartbeat, nonce: lapse.NewID("")}
	opts = append(opts, WithPrefix(prefix))
	for _, o := range opts {
		o(s)
	}
	if strings.ContainsAny(s.prefix, "{}") {
		return nil, lapse.Errorf(lapse.CodeInvalid, "redis: key prefix %q must not contain '{' or '}'", s.prefix)
	}
	return s, nil
}

// Open connects to the Redis at url (see the package documentation for
// its forms), checks that it answers, and returns a store that owns the
// connection. It fails with [lapse.CodeInvalid] for a malformed URL and
// with [lapse.CodeStoreUnavailable] if Redis does not answer.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	client, err := newClient(url)
	if err != nil {
		return nil, &lapse.Error{Code: lapse.CodeInvalid, Message: "redis: invalid URL", Err: err}
	}
	s, err := New(client, "", opts...)
	if err != nil {
		client.Close()
		return nil, err
	}
	s.own = true
	if err := s.Ping(ctx); err != nil {
		client.Close()
		return nil, err
	}
	return s, nil
}

// Ping checks that Redis answers; in a cluster, that every master does.
// It fails with [lapse.CodeStoreUnavailable]. A readiness check can call
// it.
func (s *Store) Ping(ctx context.Context) error {
	if cc, ok := s.c.(*goredis.ClusterClient); ok {
		return wrap(cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return c.Ping(ctx).Err()
		}))
	}
	return wrap(s.c.Ping(ctx).Err())
}

// Close closes the connection if the store opened it ([Open]); a client
// passed to [New] stays open.
func (s *Store) Close() error {
	if s.own {
		return s.c.Close()
	}
	return nil
}

// bucket returns the bucket of a subject: FNV-1a, modulo [Buckets].
func bucket(subject string) int {
	h := fnv.New32a()
	h.Write([]byte(subject))
	return int(h.Sum32() % Buckets)
}

// tag returns the hash tag of bucket b, which starts all its keys.
func (s *Store) tag(b int) string { return "{" + s.prefix + ":" + strconv.Itoa(b) + "}" }

func (s *Store) sessionKey(b int, id string) string { return s.tag(b) + ":s:" + id }
func (s *Store) activeKey(b int, sub string) string { return s.tag(b) + ":a:" + sub }
func (s *Store) allKey(b int, sub string) string    { return s.tag(b) + ":u:" + sub }
func (s *Store) tiersKey(b int) string              { return s.tag(b) + ":tiers" }
func (s *Store) outboxKey(b int) string {
	if b == keysBucket {
		return "{" + s.prefix + ":keys}:outbox"
	}
	return s.tag(b) + ":outbox"
}
func (s *Store) idKey(id string) string         { return s.prefix + ":id:" + id }
func (s *Store) tokenKey(hexHash string) string { return s.prefix + ":tok:" + hexHash }
func (s *Store) onceKey(key string) string      { return s.prefix + ":once:" + key }
func (s *Store) logKey(name string) string      { return "{" + s.prefix + ":log}:" + name }
func (s *Store) channel() string                { return s.prefix + ":changes" }

// wrap turns a Redis or network error into a lapse error. Every failure
// to get an answer from Redis is [lapse.CodeStoreUnavailable]: lapse
// cannot vouch for a session it could not read.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	var le *lapse.Error
	if errors.As(err, &le) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &lapse.Error{Code: lapse.CodeStoreUnavailable, Message: "the session store did not answer in time", Err: err}
	}
	return &lapse.Error{Code: lapse.CodeStoreUnavailable, Message: "the session store failed", Err: err}
}

func notFound() error {
	return &lapse.Error{Code: lapse.CodeSessionNotFound, Message: "no such session"}
}

func conflict() error {
	return &lapse.Error{Code: lapse.CodeConflict, Message: "a session with this id or token exists"}
}
