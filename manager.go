package lapse

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// Config configures a [Manager]. Store and Policy are required; the zero
// value of every other field is a documented default.
type Config struct {
	// Store keeps the sessions. The manager's cache assumes it is the only
	// writer, unless the store tells it of changes made elsewhere.
	Store Store
	// Policy is the session policy; New validates it.
	Policy *Policy
	// Clock tells the time; nil means [SystemClock].
	Clock Clock
	// CacheSize bounds the verify cache, in sessions; 0 means 100,000
	// (unless CacheMemory is set) and a negative value disables the
	// cache.
	CacheSize int
	// CacheMemory, when positive, bounds the verify cache by memory, in
	// bytes, instead of by a count; CacheSize must then be 0. An eighth
	// holds sessions as structs in a map (an estimate of each one's
	// struct, strings and map slot: about 800 bytes with a short user
	// agent); the rest, on unix outside the Go heap, holds the sessions
	// the map evicts, encoded (160 to 250 bytes each), and a verify that
	// finds one there decodes it without reading the store. Past the
	// bound the oldest encoded sessions are dropped, and read from the
	// store at their next verify. A bound under about 1.15 MiB has no
	// encoded tier: past it, caching a session evicts others at random.
	CacheMemory int64
	// Observer is told of verifications and ended sessions, for metrics;
	// nil means nobody.
	Observer Observer
	// PropagationBound is, on a store shared between nodes (a
	// [ChangeFeed]), how long after a change made on another node this
	// node may still answer from its cache as if it had not happened; 0
	// means [DefaultPropagationBound]. Past it without word from the feed,
	// every verify reads the store.
	PropagationBound time.Duration
	// Reserved makes this the manager of lapse's own sessions (the
	// console's operators): it creates and reaches only sessions whose
	// subject begins with [ReservedPrefix]. false, the platform's
	// manager, creates and reaches only the others.
	Reserved bool
	// Guessing watches for token guessing: tokens that name no session,
	// counted per source address ([Client.IP]); a source it refuses is
	// answered [CodeTooManyAttempts] before its token is looked at. nil
	// watches nothing.
	Guessing GuessGuard
}

// DefaultPropagationBound is the default [Config.PropagationBound].
const DefaultPropagationBound = 100 * time.Millisecond

// ReservedPrefix begins the subjects of lapse's own sessions, such as the
// console's operators. They live in the platform's store but apart from
// its subjects: a platform manager refuses to create a session for such
// a subject and never verifies, reads, lists or ends one (to it they do
// not exist), and a manager made with [Config.Reserved] works only on
// them. So no platform user, whatever the name the platform lets them
// choose, can see or end an operator's session, nor an operator's token
// pass for a platform session.
const ReservedPrefix = "lapse:"

// ReservedSubject reports whether subject is in lapse's own namespace
// ([ReservedPrefix]).
func ReservedSubject(subject string) bool { return strings.HasPrefix(subject, ReservedPrefix) }

// Observer receives what the manager does, for metrics. Its methods are
// called synchronously and must be fast and safe for concurrent use.
type Observer interface {
	// Verified is called after each verify with its outcome ("" for a
	// valid session) and how long it took.
	Verified(outcome Code, took time.Duration)
	// Created is called after a session is created.
	Created(s *Session)
	// Ended is called once for each session the manager ended.
	Ended(s *Session)
}

// Manager applies the session policy: it creates, verifies, extends and
// ends sessions in its [Store]. It is safe for concurrent use.
type Manager struct {
	store  Store
	policy *Policy
	clock  Clock
	cache  *cache // nil when disabled
	obs    Observer
	// shared is set when the store is shared with other nodes (it is a
	// ChangeFeed); the cache then serves only while feed is fresh.
	shared bool
	feed   freshness
	// reserved: the manager of lapse's own sessions (Config.Reserved).
	reserved bool
	// bound: the bound cookies of device-bound sessions accepted lately.
	bound boundCookies
	guess GuessGuard
	// noted remembers the signals this node recorded, so that each is
	// recorded once, not at every verify.
	noted noted
}

// New returns a manager for cfg. It fails with [CodeInvalid] when a
// required field is missing, or with the policy's [*PolicyError].
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, Errorf(CodeInvalid, "lapse.New: Config.Store is required")
	}
	if cfg.Policy == nil {
		return nil, Errorf(CodeInvalid, "lapse.New: Config.Policy is required")
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{store: cfg.Store, policy: cfg.Policy, clock: cfg.Clock, obs: cfg.Observer, reserved: cfg.Reserved, guess: cfg.Guessing}
	if m.clock == nil {
		m.clock = SystemClock{}
	}
	if m.obs == nil {
		m.obs = nopObserver{}
	}
	switch {
	case cfg.CacheMemory < 0 || cfg.CacheMemory > 0 && cfg.CacheSize != 0:
		return nil, Errorf(CodeInvalid, "lapse.New: Config.CacheMemory must not be negative, and CacheSize must be 0 when it is set")
	case cfg.CacheMemory > 0:
		m.cache = newCacheBytes(cfg.CacheMemory)
	case cfg.CacheSize == 0:
		m.cache = newCache(100_000)
	case cfg.CacheSize > 0:
		m.cache = newCache(cfg.CacheSize)
	}
	_, m.shared = cfg.Store.(ChangeFeed)
	m.feed.bound = cfg.PropagationBound
	if m.feed.bound <= 0 {
		m.feed.bound = DefaultPropagationBound
	}
	return m, nil
}

// Policy returns the manager's policy.
func (m *Manager) Policy() *Policy { return m.policy }

// Clock returns the manager's clock.
func (m *Manager) Clock() Clock { return m.clock }

// Store returns the manager's store.
func (m *Manager) Store() Store { return m.store }

// CreateParams describes a session to create after the platform has
// authenticated its subject.
type CreateParams struct {
	Subject string // required: the platform's id of the user
	Tenant  string // "" for a platform without tenants
	Tier    string // "" for the policy's default tier
	// AAL is the assurance level of the authentication (1-3); 0 means 1.
	AAL int
	// AMR lists the authentication methods used, such as "pwd" or "otp".
	AMR       []string
	IP        string          // the client's address, if known
	UserAgent string          // the client's User-Agent, if known
	Metadata  json.RawMessage // a JSON object the platform keeps with the session
	// IdP is the identity provider's session the subject signed in
	// through, if any: recorded with the session, so that the provider's
	// logout can end it.
	IdP IdPSession
	// AuthenticatedAt is when the subject authenticated, when that was
	// before now (an identity provider's auth_time: its own session may be
	// older than this sign-in); zero means now. A later time means now, an
	// earlier one than 1970 means 1970.
	AuthenticatedAt time.Time
}

// Limits on the sizes of what a caller stores with a session.
const (
	MaxSubjectLen   = 256
	MaxUserAgentLen = 1024
	MaxMetadataLen  = 8 << 10
	MaxAMR          = 16
)

// Create starts a session and returns its token, which lapse does not
// keep: only its hash is stored. A session created from a device the
// subject used in none of its sessions within the tier's
// NewDeviceWindow records [EventNewDevice]. If the tier caps concurrent sessions,
// the subject's oldest sessions past the cap are ended with
// [ReasonLimit]. It fails with [CodeInvalid] (also for a subject in the
// other namespace: see [ReservedPrefix]), [CodeUnknownTier],
// [CodeUnknownTenant] or a store error.
func (m *Manager) Create(ctx context.Context, p CreateParams) (Token, *Session, error) {
	if err := p.validate(); err != nil {
		return "", nil, err
	}
	if err := m.checkSubject(p.Subject); err != nil {
		return "", nil, err
	}
	if t := TenantOf(ctx); t != "" && p.Tenant != t {
		// As the policy answers a tenant it does not declare.
		return "", nil, Errorf(CodeUnknownTenant, "tenant %q is not declared in the policy", p.Tenant)
	}
	if !p.IdP.valid() {
		return "", nil, Errorf(CodeInvalid, "idp must name an issuer and a subject, each printable and at most %d bytes", MaxSubjectLen)
	}
	tierName, tier, err := m.policy.Tier(p.Tenant, p.Tier)
	if err != nil {
		return "", nil, err
	}
	now := m.clock.Now()
	tok := NewToken()
	s := &Session{
		ID:              NewSessionID(now),
		TokenHash:       tok.Hash(),
		Subject:         p.Subject,
		Tenant:          p.Tenant,
		Tier:            tierName,
		AAL:             max(p.AAL, 1),
		AMR:             append([]string{}, p.AMR...),
		Status:          StatusActive,
		CreatedAt:       now,
		LastActiveAt:    now,
		AuthenticatedAt: authTime(p.AuthenticatedAt, now),
		ExpiresAt:       now.Add(tier.AbsoluteTimeout),
		IP:              p.IP,
		UserAgent:       p.UserAgent,
		Metadata:        p.Metadata,
		IdP:             p.IdP,
		Policy:          tier,
	}
	s.IdleExpiresAt, s.WarnAt = s.slide(now)
	ended, err := m.store.Create(ctx, s, tier.MaxSessions)
	if err != nil {
		return "", nil, err
	}
	m.ended(ended)
	if m.cache != nil {
		m.cache.set(s)
	}
	m.obs.Created(s)
	out := *s
	m.noticeDevice(ctx, &out, now)
	return tok, &out, nil
}

func (p *CreateParams) validate() error {
	switch {
	case p.Subject == "":
		return Errorf(CodeInvalid, "subject is required")
	case len(p.Subject) > MaxSubjectLen || !printable(p.Subject):
		return Errorf(CodeInvalid, "subject must be printable UTF-8 of at most %d bytes", MaxSubjectLen)
	case p.AAL < 0 || p.AAL > 3:
		return Errorf(CodeInvalid, "aal must be 1, 2 or 3")
	case len(p.UserAgent) > MaxUserAgentLen || !utf8.ValidString(p.UserAgent):
		return Errorf(CodeInvalid, "user_agent must be UTF-8 of at most %d bytes", MaxUserAgentLen)
	case len(p.Metadata) > MaxMetadataLen:
		return Errorf(CodeInvalid, "metadata must be at most %d bytes of JSON", MaxMetadataLen)
	}
	if err := validAMR(p.AMR); err != nil {
		return err
	}
	if p.IP != "" {
		if _, err := netip.ParseAddr(p.IP); err != nil {
			return Errorf(CodeInvalid, "ip %q is not an IP address", p.IP)
		}
	}
	if len(p.Metadata) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(p.Metadata, &obj); err != nil || obj == nil {
			return Errorf(CodeInvalid, "metadata must be a JSON object")
		}
	}
	return nil
}

// valid reports whether i is zero, or names an issuer and a subject (and
// maybe a session) of printable text no longer than a subject.
func (i IdPSession) valid() bool {
	if i.IsZero() {
		return true
	}
	ok := func(s string) bool { return len(s) <= MaxSubjectLen && printable(s) }
	return i.Issuer != "" && i.Subject != "" && ok(i.Issuer) && ok(i.Subject) && ok(i.SID)
}

func validAMR(amr []string) error {
	if len(amr) > MaxAMR {
		return Errorf(CodeInvalid, "amr lists at most %d methods", MaxAMR)
	}
	for _, m := range amr {
		if m == "" || len(m) > 32 || !printable(m) {
			return Errorf(CodeInvalid, "each amr entry is 1-32 printable characters")
		}
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// VerifyOptions tighten one verification beyond the session's tier.
type VerifyOptions struct {
	// NoTouch leaves the session's activity unrecorded: a status check
	// that must not keep the session alive.
	NoTouch bool
	// RequireAAL is the assurance level this call needs.
	RequireAAL int
	// MaxAuthAge is how long ago the last authentication may be.
	MaxAuthAge time.Duration
}

// Requirement is what a session lacks to pass a verify: it comes with
// [CodeStepUpRequired] so that the app can prompt for reauthentication.
type Requirement struct {
	RequiredAAL     int
	MaxAuthAge      time.Duration
	AAL             int
	AuthenticatedAt time.Time
}

// Verify checks token and returns its session if it may be used now
// ([Session.Check] decides) and meets the tier's and opts' assurance
// rules. Unless opts.NoTouch, it records activity, sliding the idle
// deadline (never past the absolute one). Activity is written to the
// store at most once per [TouchInterval] of a session, so the idle
// deadline it keeps may be up to that much earlier than policy: early,
// never late.
//
// It fails with an [*Error] whose code is [CodeSessionNotFound] (also for
// a malformed token, or one a step-up replaced past its grace),
// [CodeSessionExpiredIdle], [CodeSessionExpiredAbsolute] or
// [CodeSessionRevoked] (with the session's end reason in Reason),
// [CodeStepUpRequired] (with what the session lacks in Requirement), or
// a store's code such as [CodeStoreUnavailable]. A session found past its
// deadline is recorded as expired.
//
// With a warm cache and no activity to write, Verify does not allocate.
func (m *Manager) Verify(ctx context.Context, token string, opts VerifyOptions) (Session, error) {
	start := sinceEpoch()
	var read time.Time // the time to judge at, if Verify tells it (see wallAt)
	if _, system := m.clock.(SystemClock); system {
		read = wallAt(start)
	}
	s, err := m.verify(ctx, token, opts, read)
	m.obs.Verified(ErrorCode(err), sinceEpoch()-start)
	if err != nil {
		return Session{}, err
	}
	return *s, nil
}

func (m *Manager) verify(ctx context.Context, token string, opts VerifyOptions, read time.Time) (*Session, error) {
	s, now, v, err := m.current(ctx, token, read)
	if err != nil {
		return nil, err
	}
	if v.StepUp {
		return nil, &Error{Code: CodeStepUpRequired, Reason: v.Drift.Reason(),
			Message:     "this session is used from another client (" + string(v.Drift.Reason()) + "): authenticate again",
			Requirement: &Requirement{RequiredAAL: s.AAL, AAL: s.AAL, AuthenticatedAt: s.AuthenticatedAt}}
	}
	if err := checkAssurance(s, opts, now); err != nil {
		return nil, err
	}
	if !opts.NoTouch {
		s = m.touch(ctx, s, now)
	}
	return s, nil
}

// Current returns token's session if it is valid now, applying no
// assurance rule and recording no activity: what the session's own holder
// may see of it. It fails like [Manager.Verify] for an invalid token.
func (m *Manager) Current(ctx context.Context, token string) (Session, error) {
	s, _, _, err := m.current(ctx, token, time.Time{})
	if err != nil {
		return Session{}, err
	}
	return *s, nil
}

// current returns token's session if it may be used now, with the time
// it was judged at and [Session.Check]'s verdict. It applies no
// assurance rule (nor a drift's step-up) and records nothing but what
// the verdict asks: an expiry, a revoke for theft, or a signal (see
// signals.go). A source the guessing guard refuses gets
// [CodeTooManyAttempts] before its token is looked at. read is the
// system's time if the caller has just read it, else zero (see lookup).
func (m *Manager) current(ctx context.Context, token string, read time.Time) (*Session, time.Time, Verdict, error) {
	c, _ := ClientFrom(ctx)
	if err := m.refused(c); err != nil {
		return nil, time.Time{}, Verdict{}, err
	}
	if len(token) != TokenLen || !strings.HasPrefix(token, TokenPrefix) { // the rest of ParseToken's check is lookup's
		m.missed(ctx, c)
		return nil, time.Time{}, Verdict{}, errMalformedToken
	}
	s, h, now, err := m.lookup(ctx, token, read)
	if ErrorCode(err) == CodeSessionNotFound || err == nil && !m.owns(ctx, s) {
		m.missed(ctx, c)
		return nil, now, Verdict{}, errMalformedToken // another namespace's is as if it did not exist
	} else if err != nil {
		return nil, now, Verdict{}, err
	}
	v, err := s.Check(h, now, c)
	switch {
	case v.Lapsed:
		s, err = m.expire(ctx, s, h, now)
	case v.Revoke:
		s, err = m.revokeTheft(ctx, s, now)
	case v.Reused:
		m.noteSignal(ctx, s, EventTokenReused, "", c)
	case v.Drift.Any() && !v.StepUp:
		m.noteSignal(ctx, s, EventClientChanged, v.Drift.Reason(), c)
	}
	if err != nil {
		return nil, now, v, err
	}
	return s, now, v, nil
}

// now returns read if it is not zero (Verify on the system clock tells
// the time itself, see wallAt), else the manager's clock's time.
func (m *Manager) now(read time.Time) time.Time {
	if !read.IsZero() {
		return read
	}
	return m.clock.Now()
}

// CacheStats reports what the verify cache holds; zero without a cache.
func (m *Manager) CacheStats() CacheStats {
	if m.cache == nil {
		return CacheStats{}
	}
	return m.cache.stats()
}

// cached reports whether the cache may serve at now: it exists and, for
// a shared store, the change feed vouched for it within the bound.
func (m *Manager) cached(now time.Time) bool {
	return m.cache != nil && (!m.shared || m.feed.fresh(now))
}

// lookup finds the session of token hash h, in the cache first while it
// may serve, and returns it with the time to judge it at. Only a
// session's current token is served from the cache: a token replaced by
// a step-up is looked up in the store, so that it dies with its grace
// whatever any cache holds. After a store read the clock is read again,
// so that a slow read cannot make a deadline late. With the system clock,
// read (the time Verify read at its start, which also starts its timing)
// is taken instead of reading it again. It returns token's hash too.
//
// token has a token's length and prefix. The rest of [ParseToken]'s
// check (alphabet, checksum, which also tells the token's shape) is made
// only on a cache miss: the cache is looked up first by the hash token
// would have as a timed token (see timedHash), the shape every token
// lapse issues has. Only then is token checked, and a token of the
// older shape looked up by its own hash. A malformed token fails with
// [CodeSessionNotFound], as from ParseToken.
func (m *Manager) lookup(ctx context.Context, token string, read time.Time) (*Session, TokenHash, time.Time, error) {
	now := m.now(read)
	cached := m.cached(now)
	h := timedHash(token)
	s, epoch := m.fromCache(cached, h)
	if s != nil {
		return s, h, now, nil
	}
	switch shape(token, TokenPrefix) {
	case malformed:
		return nil, h, now, errMalformedToken
	case random:
		h = HashSecret(token)
		if s, epoch = m.fromCache(cached, h); s != nil {
			return s, h, now, nil
		}
	}
	s, err := m.store.SessionByToken(ctx, h)
	if err != nil {
		return nil, h, now, err
	}
	if cached && s.TokenHash == h {
		m.cache.putIf(h, s, epoch)
	}
	return s, h, m.clock.Now(), nil
}

// fromCache returns the session the cache holds under its current token's
// hash h, if cached says the cache may serve, and the epoch to fill it
// with after a store read.
func (m *Manager) fromCache(cached bool, h TokenHash) (*Session, uint64) {
	if !cached {
		return nil, 0
	}
	s, epoch := m.cache.get(h)
	if s != nil && s.TokenHash == h {
		return s, epoch
	}
	return nil, epoch
}

// expire records that s, presented with token hash h, lapsed at now, and
// returns the store's answer as [Session.Check] judges it: the expiry, or
// the store's newer state if another node recorded activity. If the
// store cannot record it, the session is refused all the same.
func (m *Manager) expire(ctx context.Context, s *Session, h TokenHash, now time.Time) (*Session, error) {
	ended, changed, err := m.store.End(ctx, s.ID, Ending{Status: StatusExpired, Actor: ActorSystem, Now: now})
	if err != nil {
		c := *s
		c.EndAt(Ending{Status: StatusExpired, Now: now})
		e := EndedError(&c)
		e.Err = err
		return nil, e
	}
	if changed {
		m.ended([]*Session{ended})
	} else if m.cache != nil {
		m.cache.set(ended)
	}
	if _, err := ended.Check(h, now, Client{}); err != nil {
		return nil, err
	}
	return ended, nil
}

func checkAssurance(s *Session, opts VerifyOptions, now time.Time) error {
	aal := max(s.Policy.RequireAAL, opts.RequireAAL)
	age := minPositive(s.Policy.MaxAuthAge, opts.MaxAuthAge)
	var msg string
	switch {
	case s.AAL < aal:
		msg = "this needs authentication at a higher assurance level"
	case age > 0 && !now.Before(s.AuthenticatedAt.Add(age)):
		msg = "this needs a more recent authentication"
	default:
		return nil
	}
	return &Error{Code: CodeStepUpRequired, Message: msg, Requirement: &Requirement{
		RequiredAAL: aal, MaxAuthAge: age, AAL: s.AAL, AuthenticatedAt: s.AuthenticatedAt,
	}}
}

func minPositive(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}

// TouchInterval is how often at most the activity of a session is written
// to the store: a twentieth of its idle timeout, at most a minute.
func TouchInterval(s *Session) time.Duration {
	return min(s.Policy.IdleTimeout/20, time.Minute)
}

// touchDue reports whether activity at now is worth writing: the last
// write is at least TouchInterval old, and the idle deadline is not
// already capped by the absolute one.
func touchDue(s *Session, now time.Time) bool {
	return now.Sub(s.LastActiveAt) >= TouchInterval(s) && s.IdleExpiresAt.Before(s.ExpiresAt)
}

// touch writes activity if it is due and returns the session as it now
// stands. A failed write leaves the session as it was: it will simply
// expire earlier.
func (m *Manager) touch(ctx context.Context, s *Session, now time.Time) *Session {
	if !touchDue(s, now) {
		return s
	}
	t, err := m.write(ctx, s, now, false)
	if err != nil || t.Status != StatusActive {
		return s // ended meanwhile: the next verify will say so
	}
	return t
}

// write records activity at now and caches the result unless a newer
// change overtook it.
func (m *Manager) write(ctx context.Context, s *Session, now time.Time, force bool) (*Session, error) {
	idle, warn := s.slide(now)
	var epoch uint64
	if m.cache != nil {
		epoch = m.cache.epoch(s.TokenHash)
	}
	t, err := m.store.Touch(ctx, s, now, idle, warn, force)
	if err != nil {
		return nil, err
	}
	if m.cache != nil && t.TokenHash == s.TokenHash { // a rotation meanwhile: leave it to the store
		m.cache.putIf(t.TokenHash, t, epoch)
	}
	return t, nil
}

// Extend records activity on token's session now, whatever the touch
// interval, and records [EventExtended]: the user's explicit "stay
// signed in". It fails like [Manager.Verify].
func (m *Manager) Extend(ctx context.Context, token string) (Session, error) {
	s, now, _, err := m.current(ctx, token, time.Time{})
	if err != nil {
		return Session{}, err
	}
	t, err := m.write(ctx, s, now, true)
	if err != nil {
		return Session{}, err
	}
	if t.Status != StatusActive {
		return Session{}, EndedError(t)
	}
	return *t, nil
}

// Touch records activity on token's session now exactly as [Manager.Verify]
// does, but applies no assurance rule: the browser's report that its
// user is there. It writes at most once per [TouchInterval] and never
// slides the idle deadline past the absolute one; like any routine
// activity it records [EventExtended] only when it lands in the warning
// window. It returns the session as it stands after the call, and fails
// like [Manager.Current] for a token that is not valid, or with the
// store's error when the write fails.
func (m *Manager) Touch(ctx context.Context, token string) (Session, error) {
	s, now, _, err := m.current(ctx, token, time.Time{})
	if err != nil {
		return Session{}, err
	}
	if !touchDue(s, now) {
		return *s, nil
	}
	t, err := m.write(ctx, s, now, false)
	if err != nil {
		return Session{}, err
	}
	if t.Status != StatusActive {
		return Session{}, EndedError(t)
	}
	return *t, nil
}

// RotateGrace is how long a token replaced by [Manager.StepUp] keeps
// verifying, so that requests already in flight with it do not fail.
const RotateGrace = 5 * time.Second

// StepUp records a fresh authentication of token's session at assurance
// level aal with methods amr, after the platform (or lapse's own factor)
// has verified it: the session gets a new token, both of its timeouts
// start afresh, and the old token stops verifying after [RotateGrace].
// The client in ctx ([WithClient]), if any, becomes the session's: a
// step-up is how a subject answers the step-up a tier asks for when the
// session's client changed, so Check's StepUp does not refuse it.
// It fails with [CodeInvalid] for an AAL outside 1-3 or lower than the
// session's, like [Manager.Verify] for a token that is not valid, and
// with [CodeConflict] if another step-up of the session won the race.
func (m *Manager) StepUp(ctx context.Context, token string, aal int, amr []string, actor string) (Token, *Session, error) {
	return m.StepUpAt(ctx, token, aal, amr, actor, time.Time{})
}

// StepUpAt is [Manager.StepUp] for an authentication that happened at
// at, before now: an identity provider's auth_time. The session's
// AuthenticatedAt is at (or now, for a zero or later at), so that an
// age limit judges the real authentication; its timeouts start afresh
// now, as for any step-up.
func (m *Manager) StepUpAt(ctx context.Context, token string, aal int, amr []string, actor string, at time.Time) (Token, *Session, error) {
	if aal < 1 || aal > 3 {
		return "", nil, Errorf(CodeInvalid, "aal must be 1, 2 or 3")
	}
	if err := validAMR(amr); err != nil {
		return "", nil, err
	}
	old, now, _, err := m.current(ctx, token, time.Time{})
	if err != nil {
		return "", nil, err
	}
	c, _ := ClientFrom(ctx)
	ip := ""
	if c.IP.IsValid() {
		ip = c.IP.String()
	}
	if old.TokenHash != Token(token).Hash() {
		return "", nil, Errorf(CodeSessionNotFound, "this token was already replaced by a step-up")
	}
	if aal < old.AAL {
		return "", nil, Errorf(CodeInvalid, "aal %d is lower than the session's %d", aal, old.AAL)
	}
	tok := NewToken()
	s, err := m.store.Rotate(ctx, old.ID, Rotation{
		OldHash: old.TokenHash, NewHash: tok.Hash(), AAL: aal, AMR: append([]string{}, amr...),
		Actor: actor, ActorName: actorName(ctx, actor), CallerIP: clientIP(ctx), Now: now, AuthenticatedAt: at, Grace: RotateGrace,
		IP: ip, UserAgent: c.UserAgent,
	})
	if err != nil {
		return "", nil, err
	}
	if m.cache != nil {
		m.cache.forget(old.TokenHash)
		m.cache.set(s)
	}
	return tok, s, nil
}

// Revoke ends the session of token: the subject's own logout. It is
// idempotent: an unknown, malformed or already ended token is not an
// error, so logout never fails in a way that leaves a client signed in.
func (m *Manager) Revoke(ctx context.Context, token string) error {
	h, ok := HashToken(token)
	if !ok {
		return nil
	}
	s, err := m.store.SessionByToken(ctx, h)
	if ErrorCode(err) == CodeSessionNotFound {
		return nil
	} else if err != nil {
		return err
	}
	if !s.Holds(h, m.clock.Now()) || !m.owns(ctx, s) {
		return nil // a token a step-up replaced, past its grace, is dead; another namespace's is unknown
	}
	_, err = m.End(ctx, s.ID, ReasonLogout, ActorSubject)
	return err
}

// End ends the session with the given id for reason, on behalf of actor,
// and returns it as ended. Ending an ended session changes nothing. It
// fails with [CodeSessionNotFound] or [CodeInvalid] for a reason that
// is not a revoke reason.
func (m *Manager) End(ctx context.Context, id string, reason Reason, actor string) (*Session, error) {
	if !validRevokeReason(reason) {
		return nil, Errorf(CodeInvalid, "reason %q is not one of logout, logout_all, admin, password_change, theft, idp_logout", reason)
	}
	if _, err := m.Session(ctx, id); err != nil {
		return nil, err // unknown, or in the other namespace
	}
	s, changed, err := m.store.End(ctx, id, Ending{Status: StatusRevoked, Reason: reason, Actor: actor, ActorName: actorName(ctx, actor), IP: clientIP(ctx), Now: m.clock.Now()})
	if err != nil {
		return nil, err
	}
	if changed {
		m.ended([]*Session{s})
	}
	return s, nil
}

// EndMatching revokes every session f matches that is active now, and
// returns how many it revoked.
func (m *Manager) EndMatching(ctx context.Context, f Filter, reason Reason, actor string) (int, error) {
	if !validRevokeReason(reason) {
		return 0, Errorf(CodeInvalid, "reason %q is not one of logout, logout_all, admin, password_change, theft, idp_logout", reason)
	}
	if ReservedSubject(f.Subject) != m.reserved {
		return 0, nil // no such subject here
	}
	if !tenantFilter(ctx, &f) {
		return 0, nil // another tenant's: none here
	}
	ended, err := m.store.EndMatching(ctx, f, Ending{Status: StatusRevoked, Reason: reason, Actor: actor, ActorName: actorName(ctx, actor), IP: clientIP(ctx), Now: m.clock.Now()})
	if err != nil {
		return 0, err
	}
	m.ended(ended)
	n := 0
	for _, s := range ended {
		if s.Status == StatusRevoked {
			n++ // lapsed ones were recorded as expired, not revoked
		}
	}
	return n, nil
}

// EndIdP revokes, with [ReasonIdPLogout] and actor [ActorIdP], every
// session recorded active that the identity provider's session q
// selects ([IdPSession.Matches]) in the manager's namespace (a
// console's manager ends operators' sessions only, the platform's its
// users'): the provider's back-channel logout.
// Each session is ended by one store call, on every node, with its event.
// It returns how many it revoked (sessions found past a deadline are
// recorded as expired instead). It fails with [CodeInvalid] for a q that
// selects nothing and with [CodeInternal] on a store that is not an
// [IdPIndex].
func (m *Manager) EndIdP(ctx context.Context, q IdPSession) (int, error) {
	if q.Issuer == "" || q.Subject == "" && q.SID == "" {
		return 0, Errorf(CodeInvalid, "an identity provider's logout names its issuer and a subject or a session")
	}
	idx, ok := m.store.(IdPIndex)
	if !ok {
		return 0, Errorf(CodeInternal, "this store cannot find sessions by identity provider")
	}
	found, err := idx.SessionsByIdP(ctx, q)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range found {
		// A console's manager ends the operators' sessions, the
		// platform's its users': a logout token sent to one is not the
		// other's.
		if !q.Matches(f.IdP) || ReservedSubject(f.Subject) != m.reserved {
			continue
		}
		s, changed, err := m.store.End(ctx, f.ID, Ending{Status: StatusRevoked, Reason: ReasonIdPLogout, Actor: ActorIdP, Now: m.clock.Now()})
		if ErrorCode(err) == CodeSessionNotFound {
			continue // purged meanwhile
		} else if err != nil {
			return n, err
		}
		if changed {
			m.ended([]*Session{s})
			if s.Status == StatusRevoked {
				n++
			}
		}
	}
	return n, nil
}

func validRevokeReason(r Reason) bool {
	for _, ok := range RevokeReasons {
		if r == ok {
			return true
		}
	}
	return false
}

// ended updates the cache and tells the observer of sessions the store
// just ended.
func (m *Manager) ended(ss []*Session) {
	for _, s := range ss {
		if m.cache != nil {
			m.cache.set(s)
		}
		m.obs.Ended(s)
	}
}

// Session returns the session with the given id as it stands now: one
// whose deadline passed is shown expired even before anything recorded
// it. It fails with [CodeSessionNotFound], also for a session of the
// other namespace ([ReservedPrefix]).
func (m *Manager) Session(ctx context.Context, id string) (*Session, error) {
	s, err := m.store.Session(ctx, id)
	if err != nil {
		return nil, err
	}
	if !m.owns(ctx, s) {
		return nil, errMalformedToken // answered exactly as an unknown id
	}
	return asOf(s, m.clock.Now()), nil
}

// Sessions returns the sessions f matches as they stand now, newest
// first; f.Now is set by the manager. A subject of the other namespace
// ([ReservedPrefix]) has none.
func (m *Manager) Sessions(ctx context.Context, f Filter) ([]*Session, error) {
	if ReservedSubject(f.Subject) != m.reserved {
		return nil, nil
	}
	if !tenantFilter(ctx, &f) {
		return nil, nil
	}
	f.Now = m.clock.Now()
	ss, err := m.store.Sessions(ctx, f)
	if err != nil {
		return nil, err
	}
	for i, s := range ss {
		ss[i] = asOf(s, f.Now)
	}
	return ss, nil
}

// asOf shows an active session whose deadline passed as expired.
func asOf(s *Session, now time.Time) *Session {
	if s.Status == StatusActive {
		s.EndAt(Ending{Status: StatusExpired, Now: now})
	}
	return s
}

// owns reports whether s is in the manager's namespace and, in a
// context bound to a tenant ([WithTenant]), of that tenant.
func (m *Manager) owns(ctx context.Context, s *Session) bool {
	if t := TenantOf(ctx); t != "" && s.Tenant != t {
		return false
	}
	return ReservedSubject(s.Subject) == m.reserved
}

// tenantFilter narrows f to the tenant ctx is bound to ([WithTenant]),
// and reports false if f selects another tenant's sessions.
func tenantFilter(ctx context.Context, f *Filter) bool {
	t := TenantOf(ctx)
	switch {
	case t == "":
		return true
	case f.AnyTenant:
		f.Tenant, f.AnyTenant = t, false
		return true
	}
	return f.Tenant == t
}

// checkSubject refuses a subject of the other namespace.
func (m *Manager) checkSubject(subject string) error {
	switch {
	case ReservedSubject(subject) == m.reserved:
		return nil
	case m.reserved:
		return Errorf(CodeInvalid, "this manager keeps lapse's own sessions: the subject must begin with %q", ReservedPrefix)
	}
	return Errorf(CodeInvalid, "subjects beginning with %q are reserved for lapse's own sessions", ReservedPrefix)
}

// Record records ev, an event that changes no session (such as
// [EventKeyRejected]), in the store's event log: hash-chained and
// delivered to webhooks like the sessions' events. It sets ev's ID and
// Time, and its ActorName if ctx names its Actor ([WithActor]). It
// fails with [CodeInvalid] when ev names a session or the store
// is not an [EventRecorder], or with a store error.
func (m *Manager) Record(ctx context.Context, ev Event) error {
	rec, ok := m.store.(EventRecorder)
	switch {
	case ev.SessionID != "" || ev.Subject != "":
		return Errorf(CodeInvalid, "Record takes events of no session; a session's events are recorded with its change")
	case !ok:
		return Errorf(CodeInvalid, "this store records no events outside a session's")
	}
	ev.Time = m.clock.Now()
	ev.ID = NewEventID(ev.Time)
	if ev.ActorName == "" {
		ev.ActorName = actorName(ctx, ev.Actor)
	}
	return rec.RecordEvent(ctx, ev)
}

type nopObserver struct{}

func (nopObserver) Verified(Code, time.Duration) {}
func (nopObserver) Created(*Session)             {}
func (nopObserver) Ended(*Session)               {}
