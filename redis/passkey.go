package redis

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
	goredis "github.com/redis/go-redis/v9"
)

// A subject's passkeys live in its bucket, beside its factors; a
// challenge lives in the bucket of the subject it was issued to:
//
//	{lapse:17}:pk:<subject>   hash: passkey id -> the passkey as JSON (passkeyRecord)
//	{lapse:17}:ch:<hash>      hash: a challenge awaiting its response (hash in hex)
//	{lapse:17}:chx            sorted set: the bucket's challenges by expiry, for clearing old ones
//
// Scripts read and change the JSON with cjson, so a use's counter check
// and update are one step.
func (s *Store) passkeysKey(b int, subject string) string { return s.tag(b) + ":pk:" + subject }

// passkeyRecord is a passkey as its hash keeps it. Its members are
// scalars only: cjson would write an empty list back as an object.
type passkeyRecord struct {
	ID         string `json:"id"`
	Subject    string `json:"subject"`
	Credential string `json:"cred"` // hex, compared by the add script
	UserHandle []byte `json:"handle"`
	PublicKey  []byte `json:"key"`
	Name       string `json:"name"`
	SignCount  uint32 `json:"count"`
	BE         bool   `json:"be"`
	BS         bool   `json:"bs"`
	Transports string `json:"tr"` // comma-separated
	AAGUID     []byte `json:"aaguid"`
	Format     string `json:"fmt"`
	CreatedAt  string `json:"created"` // enc
	LastUsedAt string `json:"used"`    // enc
}

func toRecord(p *lapse.Passkey) passkeyRecord {
	return passkeyRecord{
		ID: p.ID, Subject: p.Subject, Credential: hex.EncodeToString(p.CredentialID), UserHandle: p.UserHandle,
		PublicKey: p.PublicKey, Name: p.Name, SignCount: p.SignCount, BE: p.BackupEligible, BS: p.BackupState,
		Transports: strings.Join(p.Transports, ","), AAGUID: p.AAGUID, Format: p.AttestationFormat,
		CreatedAt: enc(p.CreatedAt), LastUsedAt: enc(p.LastUsedAt),
	}
}

func (r *passkeyRecord) passkey() (*lapse.Passkey, error) {
	cred, err := hex.DecodeString(r.Credential)
	if err != nil {
		return nil, err
	}
	p := &lapse.Passkey{
		ID: r.ID, Subject: r.Subject, CredentialID: cred, UserHandle: r.UserHandle, PublicKey: r.PublicKey,
		Name: r.Name, SignCount: r.SignCount, BackupEligible: r.BE, BackupState: r.BS, AAGUID: r.AAGUID,
		AttestationFormat: r.Format,
	}
	if r.Transports != "" {
		p.Transports = strings.Split(r.Transports, ",")
	}
	var e1, e2 error
	p.CreatedAt, e1 = dec(r.CreatedAt)
	p.LastUsedAt, e2 = dec(r.LastUsedAt)
	return p, errors.Join(e1, e2)
}

// addPasskeyLua: KEYS passkeys. ARGV id, credential (hex), record.
const addPasskeyLua = `
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
  if cjson.decode(v).cred == ARGV[2] then return 'conflict' end
end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3]) == 0 then return 'conflict' end
return 'ok'
`

// usePasskeyLua: KEYS passkeys. ARGV id, count, backup state (0/1), now.
const usePasskeyLua = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 'notfound' end
local p = cjson.decode(v)
local n = tonumber(ARGV[2])
if n <= p.count and (n ~= 0 or p.count ~= 0) then return 'regressed' end
p.count, p.bs, p.used = n, ARGV[3] == '1', ARGV[4]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(p))
return 'used'
`

// renamePasskeyLua: KEYS passkeys. ARGV id, name.
const renamePasskeyLua = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 'notfound' end
local p = cjson.decode(v)
p.name = ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(p))
return 'ok'
`

// putChallengeLua: KEYS challenge, the bucket's expiry index. ARGV hash
// (hex), subject, session, ceremony, data, expires_at, clear_before, tag.
// It clears the challenges that expired before clear_before.
const putChallengeLua = `
for _, h in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. us(ARGV[7]))) do
  redis.call('DEL', ARGV[8] .. ':ch:' .. h)
  redis.call('ZREM', KEYS[2], h)
end
redis.call('HSET', KEYS[1], 'subject', ARGV[2], 'session', ARGV[3], 'ceremony', ARGV[4], 'data', ARGV[5], 'expires', ARGV[6])
redis.call('PEXPIRE', KEYS[1], 86400000)
redis.call('ZADD', KEYS[2], us(ARGV[6]), ARGV[1])
return 'ok'
`

// takeChallengeLua: KEYS challenge, the bucket's expiry index. ARGV hash
// (hex), subject. It returns the challenge's session, ceremony, data and
// expiry, and deletes it; nothing for another subject's.
const takeChallengeLua = `
local c = redis.call('HMGET', KEYS[1], 'subject', 'session', 'ceremony', 'data', 'expires')
if not c[1] or c[1] ~= ARGV[2] then return false end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return {c[2], c[3], c[4], c[5]}
`

var (
	addPasskeyScript    = script(addPasskeyLua)
	usePasskeyScript    = script(usePasskeyLua)
	renamePasskeyScript = script(renamePasskeyLua)
	putChallengeScript  = script(putChallengeLua)
	takeChallengeScript = script(takeChallengeLua)
)

func passkeyNotFound() error { return factorNotFound("the subject has no such passkey") }

// Passkeys implements [lapse.PasskeyStore].
func (s *Store) Passkeys(ctx context.Context, subject string) ([]*lapse.Passkey, error) {
	all, err := s.c.HVals(ctx, s.passkeysKey(bucket(subject), subject)).Result()
	if err != nil {
		return nil, wrap(err)
	}
	out := make([]*lapse.Passkey, 0, len(all))
	for _, v := range all {
		var r passkeyRecord
		err := json.Unmarshal([]byte(v), &r)
		var p *lapse.Passkey
		if err == nil {
			p, err = r.passkey()
		}
		if err != nil {
			return nil, wrap(errors.New("redis: corrupt passkey of " + strconv.Quote(subject) + ": " + err.Error()))
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *lapse.Passkey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// AddPasskey implements [lapse.PasskeyStore].
func (s *Store) AddPasskey(ctx context.Context, p *lapse.Passkey) error {
	rec, err := json.Marshal(toRecord(p))
	if err != nil {
		return wrap(err)
	}
	word, err := addPasskeyScript.Run(ctx, s.c, []string{s.passkeysKey(bucket(p.Subject), p.Subject)},
		p.ID, hex.EncodeToString(p.CredentialID), rec).Text()
	switch {
	case err != nil:
		return wrap(err)
	case word == "conflict":
		return &lapse.Error{Code: lapse.CodeConflict, Message: "this passkey is already registered"}
	}
	return nil
}

// UsePasskey implements [lapse.PasskeyStore].
func (s *Store) UsePasskey(ctx context.Context, subject, id string, count uint32, backupState bool, now time.Time) (bool, error) {
	bs := "0"
	if backupState {
		bs = "1"
	}
	word, err := usePasskeyScript.Run(ctx, s.c, []string{s.passkeysKey(bucket(subject), subject)}, id, count, bs, enc(now)).Text()
	switch {
	case err != nil:
		return false, wrap(err)
	case word == "notfound":
		return false, passkeyNotFound()
	}
	return word == "used", nil
}

// RenamePasskey implements [lapse.PasskeyStore].
func (s *Store) RenamePasskey(ctx context.Context, subject, id, name string) error {
	word, err := renamePasskeyScript.Run(ctx, s.c, []string{s.passkeysKey(bucket(subject), subject)}, id, name).Text()
	switch {
	case err != nil:
		return wrap(err)
	case word == "notfound":
		return passkeyNotFound()
	}
	return nil
}

// RemovePasskey implements [lapse.PasskeyStore].
func (s *Store) RemovePasskey(ctx context.Context, subject, id string) error {
	n, err := s.c.HDel(ctx, s.passkeysKey(bucket(subject), subject), id).Result()
	switch {
	case err != nil:
		return wrap(err)
	case n == 0:
		return passkeyNotFound()
	}
	return nil
}

// PutChallenge implements [lapse.PasskeyStore]; it drops the bucket's
// challenges that expired an hour before c expires, which no take would
// return.
func (s *Store) PutChallenge(ctx context.Context, c *lapse.Challenge) error {
	b := bucket(c.Subject)
	h := hex.EncodeToString(c.Hash[:])
	tag := s.tag(b)
	return wrap(putChallengeScript.Run(ctx, s.c, []string{tag + ":ch:" + h, tag + ":chx"},
		h, c.Subject, c.SessionID, string(c.Ceremony), c.Data, enc(c.ExpiresAt), enc(c.ExpiresAt.Add(-time.Hour)), tag).Err())
}

// TakeChallenge implements [lapse.PasskeyStore]: one script reads and
// deletes the challenge, so two takes cannot both get it.
func (s *Store) TakeChallenge(ctx context.Context, subject string, h lapse.TokenHash, now time.Time) (*lapse.Challenge, error) {
	tag := s.tag(bucket(subject))
	hx := hex.EncodeToString(h[:])
	v, err := takeChallengeScript.Run(ctx, s.c, []string{tag + ":ch:" + hx, tag + ":chx"}, hx, subject).StringSlice()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	} else if err != nil {
		return nil, wrap(err)
	}
	if len(v) != 4 {
		return nil, wrap(errors.New("redis: corrupt challenge"))
	}
	exp, err := dec(v[3])
	if err != nil {
		return nil, wrap(err)
	}
	if !now.Before(exp) {
		return nil, nil
	}
	return &lapse.Challenge{Hash: h, Subject: subject, SessionID: v[0], Ceremony: lapse.Ceremony(v[1]), Data: []byte(v[2]), ExpiresAt: exp}, nil
}
