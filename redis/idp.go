package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/lapsehq/lapse"
)

var (
	_ lapse.IdPIndex    = (*Store)(nil)
	_ lapse.ReplayGuard = (*Store)(nil)
)

// idpKey names the index set of one provider account ("idp", issuer and
// sub) or one provider session ("idpsid", issuer and sid): a hash, so
// that the provider's values, of any length and alphabet, make a key of
// fixed form.
func (s *Store) idpKey(kind, issuer, value string) string {
	h := sha256.Sum256([]byte(issuer + "\x00" + value))
	return s.prefix + ":" + kind + ":" + hex.EncodeToString(h[:])
}

// idpKeys returns the index sets a session signed in through i belongs
// to: none for a zero i.
func (s *Store) idpKeys(i lapse.IdPSession) []string {
	var keys []string
	if i.Issuer != "" && i.Subject != "" {
		keys = append(keys, s.idpKey("idp", i.Issuer, i.Subject))
	}
	if i.Issuer != "" && i.SID != "" {
		keys = append(keys, s.idpKey("idpsid", i.Issuer, i.SID))
	}
	return keys
}

// indexIdP adds a session about to be created to its provider's index
// sets, which live at least as long as its keys (ttl, ms). An entry
// whose session was then not created is harmless: every read checks the
// session itself.
func (s *Store) indexIdP(ctx context.Context, sess *lapse.Session, ttl int64) error {
	for _, key := range s.idpKeys(sess.IdP) {
		if err := indexScript.Run(ctx, s.c, []string{key}, sess.ID, ttl).Err(); err != nil {
			return wrap(err)
		}
	}
	return nil
}

// SessionsByIdP implements [lapse.IdPIndex]: it reads the index set of
// the provider session (or else of the account), then each session, and
// keeps those recorded active that q matches.
func (s *Store) SessionsByIdP(ctx context.Context, q lapse.IdPSession) ([]*lapse.Session, error) {
	if q.Issuer == "" || q.Subject == "" && q.SID == "" {
		return nil, nil
	}
	key := s.idpKey("idp", q.Issuer, q.Subject)
	if q.SID != "" {
		key = s.idpKey("idpsid", q.Issuer, q.SID)
	}
	ids, err := s.c.SMembers(ctx, key).Result()
	if err != nil {
		return nil, wrap(err)
	}
	var out []*lapse.Session
	for _, id := range ids {
		sess, err := s.Session(ctx, id)
		if lapse.ErrorCode(err) == lapse.CodeSessionNotFound {
			continue // not created, or gone with its keys
		} else if err != nil {
			return nil, err
		}
		if sess.Status == lapse.StatusActive && q.Matches(sess.IdP) && len(out) < maxListed {
			out = append(out, sess)
		}
	}
	return out, nil
}

// FirstUse implements [lapse.ReplayGuard]. The key holds its until, which
// the script compares with now; Redis's own expiry (until − now) only
// reclaims the memory.
func (s *Store) FirstUse(ctx context.Context, key string, until, now time.Time) (bool, error) {
	if len(key) > lapse.MaxReplayKey || key == "" {
		return false, lapse.Errorf(lapse.CodeInvalid, "a single-use key is 1 to %d bytes", lapse.MaxReplayKey)
	}
	ttl := max(until.Sub(now).Milliseconds(), 1)
	n, err := firstUseScript.Run(ctx, s.c, []string{s.onceKey(key)}, enc(until), enc(now), ttl).Int()
	if err != nil {
		return false, wrap(err)
	}
	return n == 1, nil
}
