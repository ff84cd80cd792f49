package redis

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
	goredis "github.com/redis/go-redis/v9"
)

// maxListed caps what Sessions returns, as the SQLite store does.
const maxListed = 1000

// enc writes t as the scripts compare times: Unix nanoseconds in 19
// zero-padded digits, the zero time (and anything before 1970) as 0.
func enc(t time.Time) string {
	n := int64(0)
	if !t.IsZero() {
		n = max(t.UnixNano(), 0)
	}
	return fmt.Sprintf("%019d", n)
}

func dec(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}, err
	}
	return time.Unix(0, n).UTC(), nil
}

// fields returns s as the field/value pairs of its hash.
func fields(s *lapse.Session) ([]any, error) {
	amr, err := json.Marshal(nonNil(s.AMR))
	if err != nil {
		return nil, err
	}
	pol, err := json.Marshal(s.Policy)
	if err != nil {
		return nil, err
	}
	return []any{
		"id", s.ID, "token", hex.EncodeToString(s.TokenHash[:]),
		"subject", s.Subject, "tenant", s.Tenant, "tier", s.Tier,
		"aal", s.AAL, "amr", amr, "status", string(s.Status), "end_reason", string(s.EndReason),
		"created_at", enc(s.CreatedAt), "last_active_at", enc(s.LastActiveAt),
		"authenticated_at", enc(s.AuthenticatedAt), "idle_expires_at", enc(s.IdleExpiresAt),
		"expires_at", enc(s.ExpiresAt), "warn_at", enc(s.WarnAt), "ended_at", enc(s.EndedAt),
		"ip", s.IP, "user_agent", s.UserAgent, "metadata", string(s.Metadata),
		"policy", pol,
		"prev_token", hashHex(s.PrevTokenHash), "prev_valid_until", enc(s.PrevValidUntil),
		"warned_for", enc(time.Time{}),
		"idp_issuer", s.IdP.Issuer, "idp_subject", s.IdP.Subject, "idp_sid", s.IdP.SID,
	}, nil
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// hashHex writes a token hash in hex, the zero hash as "".
func hashHex(h lapse.TokenHash) string {
	if h == (lapse.TokenHash{}) {
		return ""
	}
	return hex.EncodeToString(h[:])
}

// decode reads a session from a hash, given as a map or as the flat
// field/value list a script returns.
func decode(h map[string]string) (*lapse.Session, error) {
	s := &lapse.Session{
		ID: h["id"], Subject: h["subject"], Tenant: h["tenant"], Tier: h["tier"],
		Status: lapse.Status(h["status"]), EndReason: lapse.Reason(h["end_reason"]),
		IP: h["ip"], UserAgent: h["user_agent"],
		IdP: lapse.IdPSession{Issuer: h["idp_issuer"], Subject: h["idp_subject"], SID: h["idp_sid"]},
	}
	var errs []error
	if _, err := hex.Decode(s.TokenHash[:], []byte(h["token"])); err != nil || len(h["token"]) != 2*len(s.TokenHash) {
		errs = append(errs, fmt.Errorf("token hash %q", h["token"]))
	}
	if p := h["prev_token"]; p != "" {
		if _, err := hex.Decode(s.PrevTokenHash[:], []byte(p)); err != nil || len(p) != 2*len(s.PrevTokenHash) {
			errs = append(errs, fmt.Errorf("previous token hash %q", p))
		}
	}
	var err error
	s.AAL, err = strconv.Atoi(h["aal"])
	errs = append(errs, err)
	errs = append(errs, json.Unmarshal([]byte(h["amr"]), &s.AMR))
	errs = append(errs, json.Unmarshal([]byte(h["policy"]), &s.Policy))
	for _, t := range []struct {
		dst  *time.Time
		name string
	}{
		{&s.CreatedAt, "created_at"}, {&s.LastActiveAt, "last_active_at"},
		{&s.AuthenticatedAt, "authenticated_at"}, {&s.IdleExpiresAt, "idle_expires_at"},
		{&s.ExpiresAt, "expires_at"}, {&s.WarnAt, "warn_at"}, {&s.EndedAt, "ended_at"},
		{&s.PrevValidUntil, "prev_valid_until"},
	} {
		*t.dst, err = dec(h[t.name])
		errs = append(errs, err)
	}
	if m := h["metadata"]; m != "" {
		s.Metadata = json.RawMessage(m)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("redis: corrupt session %q: %w", s.ID, err)
	}
	return s, nil
}

// flat turns a script's HGETALL reply into a map.
func flat(v any) (map[string]string, error) {
	list, ok := v.([]any)
	if !ok || len(list)%2 != 0 {
		return nil, fmt.Errorf("redis: unexpected script reply %T", v)
	}
	h := make(map[string]string, len(list)/2)
	for i := 0; i < len(list); i += 2 {
		k, _ := list[i].(string)
		val, _ := list[i+1].(string)
		h[k] = val
	}
	return h, nil
}

// decodeList decodes a script's list of HGETALL replies.
func decodeList(v any) ([]*lapse.Session, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("redis: unexpected script reply %T", v)
	}
	out := make([]*lapse.Session, 0, len(list))
	for _, item := range list {
		h, err := flat(item)
		if err != nil {
			return nil, err
		}
		s, err := decode(h)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// reply splits a script's reply into its status word and the rest.
func reply(cmd *goredis.Cmd) (string, []any, error) {
	v, err := cmd.Slice()
	if err != nil {
		return "", nil, wrap(err)
	}
	if len(v) == 0 {
		return "", nil, wrap(errors.New("redis: empty script reply"))
	}
	word, _ := v[0].(string)
	return word, v[1:], nil
}

// eventBase returns the random part of the ids of the events one script
// call records; the script appends a three-character counter, so every
// id has the shape of [lapse.NewEventID]'s: "evt_" and 22 base62
// characters. Redis keeps no ordered index of them, so they need not
// sort by time.
func eventBase() string {
	id := lapse.NewID("evt_")
	return id[:len(id)-3]
}

// ttl is how long the keys of a session written at now live: until its
// absolute deadline, then the retention.
func (s *Store) ttl(sess *lapse.Session, now time.Time) time.Duration {
	return max(sess.ExpiresAt.Sub(now), 0) + s.retention
}

// Create implements [lapse.Store]. It claims the session's id and token
// hash in their index slots, then runs the create script in the
// subject's bucket: see the package documentation.
func (s *Store) Create(ctx context.Context, sess *lapse.Session, limit int) ([]*lapse.Session, error) {
	b := bucket(sess.Subject)
	ttl := s.ttl(sess, sess.CreatedAt)
	nonce := lapse.NewID("")[:16]
	tokHex := hex.EncodeToString(sess.TokenHash[:])
	idKey, idVal := s.idKey(sess.ID), strconv.Itoa(b)+":"+nonce
	tokKey, tokVal := s.tokenKey(tokHex), strconv.Itoa(b)+":"+sess.ID+":"+nonce
	ms := max(ttl.Milliseconds(), 1)

	if ok, err := claimScript.Run(ctx, s.c, []string{idKey}, idVal, ms).Bool(); err != nil {
		return nil, wrap(err)
	} else if !ok {
		return nil, conflict()
	}
	if ok, err := claimScript.Run(ctx, s.c, []string{tokKey}, tokVal, ms).Bool(); err != nil {
		return nil, wrap(err)
	} else if !ok {
		releaseScript.Run(ctx, s.c, []string{idKey}, idVal)
		return nil, conflict()
	}

	if err := s.indexIdP(ctx, sess, ms); err != nil {
		releaseScript.Run(ctx, s.c, []string{idKey}, idVal)
		releaseScript.Run(ctx, s.c, []string{tokKey}, tokVal)
		return nil, err
	}
	f, err := fields(sess)
	if err != nil {
		return nil, &lapse.Error{Code: lapse.CodeInvalid, Message: "redis: session cannot be encoded", Err: err}
	}
	args := append([]any{s.tag(b), s.channel(), eventBase(), limit, ms, nonce}, f...)
	word, rest, err := reply(createScript.Run(ctx, s.c, []string{s.sessionKey(b, sess.ID), s.outboxKey(b)}, args...))
	if err != nil {
		return nil, err
	}
	switch word {
	case "ok":
		s.hint(ctx, b)
		if len(rest) == 0 {
			return nil, nil
		}
		ended, err := decodeList(rest[0])
		if err != nil || len(ended) == 0 {
			return nil, wrap(err)
		}
		return ended, nil
	case "conflict":
		releaseScript.Run(ctx, s.c, []string{idKey}, idVal)
		releaseScript.Run(ctx, s.c, []string{tokKey}, tokVal)
		return nil, conflict()
	}
	return nil, wrap(fmt.Errorf("redis: create script answered %q", word))
}

// bucketOf finds the bucket of a session id through the id index.
func (s *Store) bucketOf(ctx context.Context, id string) (int, error) {
	v, err := s.c.Get(ctx, s.idKey(id)).Result()
	if errors.Is(err, goredis.Nil) {
		return 0, notFound()
	} else if err != nil {
		return 0, wrap(err)
	}
	n, _, _ := strings.Cut(v, ":")
	b, err := strconv.Atoi(n)
	if err != nil || b < 0 || b >= Buckets {
		return 0, wrap(fmt.Errorf("redis: corrupt id index entry %q", v))
	}
	return b, nil
}

// read loads the session hash at key.
func (s *Store) read(ctx context.Context, key string) (*lapse.Session, error) {
	h, err := s.c.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, wrap(err)
	}
	if len(h) == 0 {
		return nil, notFound()
	}
	sess, err := decode(h)
	return sess, wrap(err)
}

// Session implements [lapse.Store].
func (s *Store) Session(ctx context.Context, id string) (*lapse.Session, error) {
	b, err := s.bucketOf(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.read(ctx, s.sessionKey(b, id))
}

// SessionByToken implements [lapse.Store]: it reads the token index, then
// the session, and checks that the session holds h as its token or as
// the token its last rotation replaced.
func (s *Store) SessionByToken(ctx context.Context, h lapse.TokenHash) (*lapse.Session, error) {
	v, err := s.c.Get(ctx, s.tokenKey(hex.EncodeToString(h[:]))).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, notFound()
	} else if err != nil {
		return nil, wrap(err)
	}
	// "N:<id>:<nonce>"; the nonce has no colon, the id might.
	n, rest, _ := strings.Cut(v, ":")
	i := strings.LastIndexByte(rest, ':')
	b, err := strconv.Atoi(n)
	if err != nil || i < 0 || b < 0 || b >= Buckets {
		return nil, wrap(fmt.Errorf("redis: corrupt token index entry"))
	}
	sess, err := s.read(ctx, s.sessionKey(b, rest[:i]))
	if err != nil {
		return nil, err
	}
	if !sess.TokenHash.Equal(h) && !sess.PrevTokenHash.Equal(h) {
		return nil, notFound()
	}
	return sess, nil
}

// Touch implements [lapse.Store].
func (s *Store) Touch(ctx context.Context, seen *lapse.Session, at, idleExpiresAt, warnAt time.Time, force bool) (*lapse.Session, error) {
	id := seen.ID // the script reads the session: one round trip either way
	b, err := s.bucketOf(ctx, id)
	if err != nil {
		return nil, err
	}
	forced := "0"
	if force {
		forced = "1"
	}
	word, rest, err := reply(touchScript.Run(ctx, s.c, []string{s.sessionKey(b, id), s.outboxKey(b)},
		s.tag(b), s.channel(), eventBase(), enc(at), enc(idleExpiresAt), enc(warnAt), forced))
	if err != nil {
		return nil, err
	}
	if len(rest) == 2 { // it recorded session.extended
		s.hint(ctx, b)
		rest = rest[:1]
	}
	return one(word, rest)
}

// one decodes the single session of an "ok", "same" or "changed" reply.
func one(word string, rest []any) (*lapse.Session, error) {
	if word == "notfound" {
		return nil, notFound()
	}
	if len(rest) != 1 {
		return nil, wrap(fmt.Errorf("redis: script answered %q with %d values", word, len(rest)))
	}
	h, err := flat(rest[0])
	if err != nil {
		return nil, wrap(err)
	}
	sess, err := decode(h)
	return sess, wrap(err)
}

// End implements [lapse.Store].
func (s *Store) End(ctx context.Context, id string, e lapse.Ending) (*lapse.Session, bool, error) {
	b, err := s.bucketOf(ctx, id)
	if err != nil {
		return nil, false, err
	}
	word, rest, err := reply(endScript.Run(ctx, s.c, []string{s.sessionKey(b, id), s.outboxKey(b)},
		s.tag(b), s.channel(), eventBase(), string(e.Status), string(e.Reason), e.Actor, enc(e.Now), e.IP, e.ActorName))
	if err != nil {
		return nil, false, err
	}
	sess, err := one(word, rest)
	if err != nil {
		return nil, false, err
	}
	if word == "changed" {
		s.hint(ctx, b)
	}
	return sess, word == "changed", nil
}

// Rotate implements [lapse.Store]. It reads the session to work out its
// new deadlines and events with [lapse.Session.Rotate], claims the new
// token hash in its index slot, then runs a script that applies the
// rotation only if the session is still active at r.Now and still holds
// r.OldHash: the token is the compare-and-set, so of two rotations of one
// token exactly one wins.
func (s *Store) Rotate(ctx context.Context, id string, r lapse.Rotation) (*lapse.Session, error) {
	b, err := s.bucketOf(ctx, id)
	if err != nil {
		return nil, err
	}
	cur, err := s.read(ctx, s.sessionKey(b, id))
	if err != nil {
		return nil, err
	}
	if !cur.ActiveAt(r.Now) {
		return nil, endedError(cur, r.Now)
	}
	if cur.TokenHash != r.OldHash {
		return nil, rotated()
	}
	next := *cur
	events := next.Rotate(r)
	ttl := max(s.ttl(&next, r.Now).Milliseconds(), 1)

	nonce := lapse.NewID("")[:16]
	tokKey, tokVal := s.tokenKey(hex.EncodeToString(r.NewHash[:])), strconv.Itoa(b)+":"+id+":"+nonce
	if ok, err := claimScript.Run(ctx, s.c, []string{tokKey}, tokVal, ttl).Bool(); err != nil {
		return nil, wrap(err)
	} else if !ok {
		return nil, conflict()
	}
	// The session now lives longer: so must its id index entry. Extending
	// it first is harmless if the rotation then fails.
	for _, key := range append([]string{s.idKey(id)}, s.idpKeys(cur.IdP)...) {
		if err := extendScript.Run(ctx, s.c, []string{key}, ttl).Err(); err != nil {
			return nil, wrap(err)
		}
	}
	amr, err := json.Marshal(nonNil(next.AMR))
	if err != nil {
		return nil, &lapse.Error{Code: lapse.CodeInvalid, Message: "redis: AMR cannot be encoded", Err: err}
	}
	set := []any{
		"token", hex.EncodeToString(next.TokenHash[:]), "prev_token", hashHex(next.PrevTokenHash),
		"prev_valid_until", enc(next.PrevValidUntil), "aal", next.AAL, "amr", amr,
		"authenticated_at", enc(next.AuthenticatedAt), "last_active_at", enc(next.LastActiveAt),
		"idle_expires_at", enc(next.IdleExpiresAt), "expires_at", enc(next.ExpiresAt), "warn_at", enc(next.WarnAt),
		"ip", next.IP, "user_agent", next.UserAgent,
	}
	args := []any{s.tag(b), s.channel(), enc(r.Now), hex.EncodeToString(r.OldHash[:]), ttl, len(set) / 2}
	args = append(args, set...)
	args = append(args, len(events))
	for _, ev := range events {
		args = append(args, ev.ID, string(ev.Type), string(ev.Reason), ev.Actor, ev.IP, ev.ActorName)
	}
	word, rest, err := reply(rotateScript.Run(ctx, s.c, []string{s.sessionKey(b, id), s.outboxKey(b)}, args...))
	if err != nil {
		return nil, err
	}
	if word == "ok" {
		s.hint(ctx, b)
		return one(word, rest)
	}
	releaseScript.Run(ctx, s.c, []string{tokKey}, tokVal) // the new token hash was claimed for nothing
	return nil, rotateRefused(word, rest, r.Now)
}

// rotateRefused is the error of a rotate script that did not rotate.
func rotateRefused(word string, rest []any, now time.Time) error {
	switch word {
	case "ended":
		ended, err := one(word, rest)
		if err != nil {
			return err
		}
		return endedError(ended, now)
	case "conflict":
		return rotated()
	case "notfound":
		return notFound()
	}
	return wrap(fmt.Errorf("redis: rotate script answered %q", word))
}

// endedError is the error for rotating a session that is not active at
// now, as the SQLite store reports it.
func endedError(sess *lapse.Session, now time.Time) error {
	c := *sess
	if c.Status == lapse.StatusActive {
		c.EndAt(lapse.Ending{Status: lapse.StatusExpired, Now: now})
	}
	return lapse.EndedError(&c)
}

func rotated() error {
	return &lapse.Error{Code: lapse.CodeConflict, Message: "the session's token was replaced by another step-up"}
}

// EndMatching implements [lapse.Store]. The sessions it ends are those
// recorded active in the subject's bucket, oldest first.
func (s *Store) EndMatching(ctx context.Context, f lapse.Filter, e lapse.Ending) ([]*lapse.Session, error) {
	b := bucket(f.Subject)
	anyTenant := "0"
	if f.AnyTenant {
		anyTenant = "1"
	}
	word, rest, err := reply(endMatchingScript.Run(ctx, s.c, []string{s.activeKey(b, f.Subject), s.outboxKey(b)},
		s.tag(b), s.channel(), eventBase(), f.Tenant, anyTenant, f.Except,
		string(e.Status), string(e.Reason), e.Actor, enc(e.Now), e.IP, e.ActorName))
	if err != nil {
		return nil, err
	}
	if word != "ok" || len(rest) != 1 {
		return nil, wrap(fmt.Errorf("redis: end-matching script answered %q", word))
	}
	ended, err := decodeList(rest[0])
	if err != nil || len(ended) == 0 {
		return nil, wrap(err)
	}
	s.hint(ctx, b)
	return ended, nil
}

// Sessions implements [lapse.Store]. It reads the subject's sessions in
// one script, so the list is one consistent snapshot, and returns at most
// 1000.
func (s *Store) Sessions(ctx context.Context, f lapse.Filter) ([]*lapse.Session, error) {
	b := bucket(f.Subject)
	key := s.activeKey(b, f.Subject)
	if f.IncludeEnded {
		key = s.allKey(b, f.Subject)
	}
	v, err := sessionsScript.Run(ctx, s.c, []string{key}, s.tag(b)).Result()
	if err != nil {
		return nil, wrap(err)
	}
	all, err := decodeList(v)
	if err != nil {
		return nil, wrap(err)
	}
	var out []*lapse.Session
	for _, sess := range all {
		if f.Matches(sess) && (f.IncludeEnded || sess.ActiveAt(f.Now)) {
			out = append(out, sess)
		}
	}
	slices.SortFunc(out, func(a, b *lapse.Session) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if len(out) > maxListed {
		out = out[:maxListed]
	}
	return out, nil
}

// CountActive implements [lapse.ActiveCounter]. It counts, in every
// bucket's deadline index, the sessions recorded active whose earlier
// deadline, in whole microseconds, is after now's.
func (s *Store) CountActive(ctx context.Context, now time.Time) (map[string]int, error) {
	nowUS := strconv.FormatInt(max(now.UnixMicro(), 0), 10)
	cmds, err := s.evalEach(ctx, countScript, allBuckets, func(b int) ([]string, []any) {
		return []string{s.tiersKey(b)}, []any{s.tag(b), nowUS}
	})
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, cmd := range cmds {
		v, err := cmd.Slice()
		if err != nil {
			return nil, wrap(err)
		}
		for i := 0; i+1 < len(v); i += 2 {
			tier, _ := v[i].(string)
			n, _ := v[i+1].(int64)
			if n > 0 {
				out[tier] += int(n)
			}
		}
	}
	return out, nil
}

// allBuckets lists every bucket, for calls that visit them all.
var allBuckets = func() []int {
	bs := make([]int, Buckets)
	for b := range bs {
		bs[b] = b
	}
	return bs
}()

// evalEach runs script once for each of the buckets in one pipeline (one
// round trip per node), loading the script where a node lacks it. The
// commands are in the order of buckets; each may have failed on its own.
func (s *Store) evalEach(ctx context.Context, script *goredis.Script, buckets []int, call func(b int) ([]string, []any)) ([]*goredis.Cmd, error) {
	run := func() ([]*goredis.Cmd, error) {
		pipe := s.c.Pipeline()
		cmds := make([]*goredis.Cmd, len(buckets))
		for i, b := range buckets {
			keys, args := call(b)
			cmds[i] = pipe.EvalSha(ctx, script.Hash(), keys, args...)
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := run()
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		// A node restarted or failed over: load the script on every
		// master and try once more.
		if err := script.Load(ctx, s.c).Err(); err != nil {
			return nil, wrap(err)
		}
		cmds, err = run()
	}
	if err != nil {
		return nil, wrap(err)
	}
	return cmds, nil
}
