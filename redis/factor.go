package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/lapsehq/lapse"
	goredis "github.com/redis/go-redis/v9"
)

var _ lapse.FactorStore = (*Store)(nil)

// A subject's factors live in its bucket, beside its sessions:
//
//	{lapse:17}:f:<subject>    hash: the TOTP factor (secret sealed, as the factor service gave it)
//	{lapse:17}:rc:<subject>   hash: recovery code hash (hex) -> the time it was used, 0 if unused
//	{lapse:17}:at:<n>         hash: attempt n of the bucket (subject, session, factor, time, outcome)
//	{lapse:17}:af:<subject>   sorted set: the subject's attempts not accepted, by time
//	{lapse:17}:as:<session>   sorted set: the session's attempts not accepted, by time
//	{lapse:17}:an             counter: the bucket's last attempt number
//
// An attempt's id is n*Buckets + bucket, so that FinishAttempt, which has
// only the id, finds its bucket. Attempt records live as long as ended
// sessions are kept (WithRetention); factors and codes until removed.
func (s *Store) factorKey(b int, subject string) string { return s.tag(b) + ":f:" + subject }
func (s *Store) codesKey(b int, subject string) string  { return s.tag(b) + ":rc:" + subject }

// zeroTime is enc of the zero time.
var zeroTime = enc(time.Time{})

// putTOTPLua: KEYS factor. ARGV id, subject, secret, created_at, zero.
const putTOTPLua = `
local c = redis.call('HGET', KEYS[1], 'confirmed_at')
if c and tonumber(c) ~= 0 then return 'conflict' end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'subject', ARGV[2], 'secret', ARGV[3], 'created_at', ARGV[4],
  'confirmed_at', ARGV[5], 'last_step', '0', 'last_used_at', ARGV[5])
return 'ok'
`

// confirmTOTPLua: KEYS factor, codes. ARGV id, step, now, then code
// hashes in hex.
const confirmTOTPLua = `
local f = redis.call('HMGET', KEYS[1], 'id', 'confirmed_at')
if not f[1] or f[1] ~= ARGV[1] then return 'notfound' end
if tonumber(f[2]) ~= 0 then return 'conflict' end
redis.call('HSET', KEYS[1], 'confirmed_at', ARGV[3], 'last_step', ARGV[2], 'last_used_at', ARGV[3])
redis.call('DEL', KEYS[2])
for i = 4, #ARGV do redis.call('HSET', KEYS[2], ARGV[i], '0') end
return 'ok'
`

// useStepLua: KEYS factor. ARGV id, step, now.
const useStepLua = `
local f = redis.call('HMGET', KEYS[1], 'id', 'confirmed_at', 'last_step')
if not f[1] or f[1] ~= ARGV[1] or tonumber(f[2]) == 0 then return 'notfound' end
if tonumber(ARGV[2]) <= tonumber(f[3]) then return 'replay' end
redis.call('HSET', KEYS[1], 'last_step', ARGV[2], 'last_used_at', ARGV[3])
return 'used'
`

// useCodeLua: KEYS codes. ARGV code hash in hex, now.
const useCodeLua = `
if redis.call('HGET', KEYS[1], ARGV[1]) == '0' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
`

// removeTOTPLua: KEYS factor, codes.
const removeTOTPLua = `
if redis.call('DEL', KEYS[1]) == 0 then return 'notfound' end
redis.call('DEL', KEYS[2])
return 'ok'
`

// beginAttemptLua: KEYS the subject's and the session's attempt sets,
// the bucket's counter. ARGV tag, subject, session, factor, now, since,
// since_us, subject limit, session limit, ttl_ms. It returns {n} for a
// recorded attempt n, or {0, freed_subject, freed_session}: for each set
// at its limit, the time of the attempt whose leaving the window frees
// a place (” otherwise).
const beginAttemptLua = `
local tag, now, since = ARGV[1], ARGV[5], ARGV[6]
local function freed(key, limit)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[7])
  if limit <= 0 then return '' end
  local times = {}
  for _, n in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local a = redis.call('HMGET', tag .. ':at:' .. n, 'time', 'outcome')
    if not a[1] then
      redis.call('ZREM', key, n)
    elseif a[2] ~= '@ATTEMPT_ACCEPTED@' and lt(since, a[1]) then
      table.insert(times, a[1])
    end
  end
  if #times < limit then return '' end
  table.sort(times, function(x, y) return lt(y, x) end)
  return times[limit]
end
local fs, fx = freed(KEYS[1], tonumber(ARGV[8])), freed(KEYS[2], tonumber(ARGV[9]))
if fs ~= '' or fx ~= '' then return {0, fs, fx} end
local n = redis.call('INCR', KEYS[3])
local key = tag .. ':at:' .. n
redis.call('HSET', key, 'subject', ARGV[2], 'session', ARGV[3], 'factor', ARGV[4], 'time', now, 'outcome', '@ATTEMPT_PENDING@')
redis.call('PEXPIRE', key, ARGV[10])
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], us(now), n)
  redis.call('PEXPIRE', KEYS[i], ARGV[10])
end
return {n}
`

// finishAttemptLua: KEYS the attempt. ARGV tag, n, outcome. An accepted
// attempt leaves the sets that count the others.
const finishAttemptLua = `
local a = redis.call('HMGET', KEYS[1], 'subject', 'session')
if not a[1] then return 0 end
redis.call('HSET', KEYS[1], 'outcome', ARGV[3])
if ARGV[3] == '@ATTEMPT_ACCEPTED@' then
  redis.call('ZREM', ARGV[1] .. ':af:' .. a[1], ARGV[2])
  redis.call('ZREM', ARGV[1] .. ':as:' .. a[2], ARGV[2])
end
return 1
`

var (
	putTOTPScript       = script(putTOTPLua)
	confirmTOTPScript   = script(confirmTOTPLua)
	useStepScript       = script(useStepLua)
	useCodeScript       = script(useCodeLua)
	removeTOTPScript    = script(removeTOTPLua)
	beginAttemptScript  = script(beginAttemptLua)
	finishAttemptScript = script(finishAttemptLua)
)

func factorNotFound(msg string) error {
	return &lapse.Error{Code: lapse.CodeFactorNotFound, Message: msg}
}

// Factors implements [lapse.FactorStore]: the factor and the codes are
// read in one MULTI, a snapshot.
func (s *Store) Factors(ctx context.Context, subject string) (*lapse.FactorState, error) {
	b := bucket(subject)
	var (
		f        *goredis.MapStringStringCmd
		codes    *goredis.StringSliceCmd
		passkeys *goredis.IntCmd
	)
	if _, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		f = p.HGetAll(ctx, s.factorKey(b, subject))
		codes = p.HVals(ctx, s.codesKey(b, subject))
		passkeys = p.HLen(ctx, s.passkeysKey(b, subject))
		return nil
	}); err != nil {
		return nil, wrap(err)
	}
	st := &lapse.FactorState{Passkeys: int(passkeys.Val())}
	for _, used := range codes.Val() {
		if used == "0" {
			st.RecoveryCodes++
		}
	}
	h := f.Val()
	if len(h) == 0 {
		return st, nil
	}
	t := &lapse.TOTPFactor{ID: h["id"], Subject: h["subject"], Secret: []byte(h["secret"])}
	var errs []error
	for _, v := range []struct {
		dst  *time.Time
		name string
	}{{&t.CreatedAt, "created_at"}, {&t.ConfirmedAt, "confirmed_at"}, {&t.LastUsedAt, "last_used_at"}} {
		var err error
		*v.dst, err = dec(h[v.name])
		errs = append(errs, err)
	}
	var err error
	t.LastStep, err = strconv.ParseInt(h["last_step"], 10, 64)
	if err = errors.Join(append(errs, err)...); err != nil {
		return nil, wrap(errors.New("redis: corrupt TOTP factor of " + strconv.Quote(subject) + ": " + err.Error()))
	}
	st.TOTP = t
	return st, nil
}

// PutTOTP implements [lapse.FactorStore].
func (s *Store) PutTOTP(ctx context.Context, f *lapse.TOTPFactor) error {
	b := bucket(f.Subject)
	word, err := putTOTPScript.Run(ctx, s.c, []string{s.factorKey(b, f.Subject)},
		f.ID, f.Subject, f.Secret, enc(f.CreatedAt), zeroTime).Text()
	switch {
	case err != nil:
		return wrap(err)
	case word == "conflict":
		return &lapse.Error{Code: lapse.CodeConflict, Message: "the subject already has a TOTP factor; remove it first"}
	}
	return nil
}

// ConfirmTOTP implements [lapse.FactorStore].
func (s *Store) ConfirmTOTP(ctx context.Context, subject, id string, step int64, recovery []lapse.TokenHash, now time.Time) error {
	b := bucket(subject)
	args := []any{id, step, enc(now)}
	for _, h := range recovery {
		args = append(args, hex.EncodeToString(h[:]))
	}
	word, err := confirmTOTPScript.Run(ctx, s.c, []string{s.factorKey(b, subject), s.codesKey(b, subject)}, args...).Text()
	switch {
	case err != nil:
		return wrap(err)
	case word == "notfound":
		return factorNotFound("the enrolment was replaced or removed; enrol again")
	case word == "conflict":
		return &lapse.Error{Code: lapse.CodeConflict, Message: "the TOTP factor is already confirmed"}
	}
	return nil
}

// UseTOTPStep implements [lapse.FactorStore].
func (s *Store) UseTOTPStep(ctx context.Context, subject, id string, step int64, now time.Time) (bool, error) {
	word, err := useStepScript.Run(ctx, s.c, []string{s.factorKey(bucket(subject), subject)}, id, step, enc(now)).Text()
	switch {
	case err != nil:
		return false, wrap(err)
	case word == "notfound":
		return false, factorNotFound("the subject has no confirmed TOTP factor")
	}
	return word == "used", nil
}

// UseRecoveryCode implements [lapse.FactorStore].
func (s *Store) UseRecoveryCode(ctx context.Context, subject string, h lapse.TokenHash, now time.Time) (bool, error) {
	n, err := useCodeScript.Run(ctx, s.c, []string{s.codesKey(bucket(subject), subject)}, hex.EncodeToString(h[:]), enc(now)).Int()
	return n == 1, wrap(err)
}

// RemoveTOTP implements [lapse.FactorStore].
func (s *Store) RemoveTOTP(ctx context.Context, subject string) error {
	b := bucket(subject)
	word, err := removeTOTPScript.Run(ctx, s.c, []string{s.factorKey(b, subject), s.codesKey(b, subject)}).Text()
	switch {
	case err != nil:
		return wrap(err)
	case word == "notfound":
		return factorNotFound("the subject has no TOTP factor")
	}
	return nil
}

// BeginAttempt implements [lapse.FactorStore]. One script counts the
// subject's and the session's failed attempts and records the new one,
// so concurrent attempts on several nodes cannot all pass a limit.
func (s *Store) BeginAttempt(ctx context.Context, a lapse.Attempt, l lapse.AttemptLimit) (int64, time.Time, error) {
	b := bucket(a.Subject)
	tag := s.tag(b)
	since := a.Now.Add(-l.Window)
	v, err := beginAttemptScript.Run(ctx, s.c,
		[]string{tag + ":af:" + a.Subject, tag + ":as:" + a.SessionID, tag + ":an"},
		tag, a.Subject, a.SessionID, a.Factor, enc(a.Now), enc(since), max(since.UnixMicro(), 0),
		l.PerSubject, l.PerSession, s.retention.Milliseconds()).Slice()
	if err != nil {
		return 0, time.Time{}, wrap(err)
	}
	if n, _ := v[0].(int64); n > 0 {
		return n*Buckets + int64(b), time.Time{}, nil
	}
	var retry time.Time
	for _, f := range v[1:] {
		if at, _ := f.(string); at != "" {
			t, err := dec(at)
			if err != nil {
				return 0, time.Time{}, wrap(err)
			}
			if free := t.Add(l.Window); free.After(retry) {
				retry = free
			}
		}
	}
	return 0, retry, nil
}

// FinishAttempt implements [lapse.FactorStore].
func (s *Store) FinishAttempt(ctx context.Context, id int64, outcome lapse.AttemptOutcome) error {
	b, n := int(id%Buckets), strconv.FormatInt(id/Buckets, 10)
	tag := s.tag(b)
	return wrap(finishAttemptScript.Run(ctx, s.c, []string{tag + ":at:" + n}, tag, n, string(outcome)).Err())
}
