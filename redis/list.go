package redis

import (
	"context"
	"slices"
	"strings"

	"github.com/lapsehq/lapse"
)

var _ lapse.SessionLister = (*Store)(nil)

// listLua: KEYS the bucket's listing index. ARGV tag, after (a member to
// list after, or ” for the newest), limit, subject, tenant, tier,
// status, now, reserved ("1" for lapse's own sessions, "0" for the
// platform's). It walks the index newest first (members are
// "created_at:id", so lexical order is listing order) and returns the
// HGETALL of up to limit sessions that match, dropping members whose
// session hash is gone. It only reads sessions.
const listLua = `
local c = KEYS[1]
local tag, after, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local subject, tenant, tier, status, now = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local reserved = ARGV[9] == '1'
local function wanted(s)
  if (subject ~= '' and s.subject ~= subject) or (tenant ~= '' and s.tenant ~= tenant) or (tier ~= '' and s.tier ~= tier) then
    return false
  end
  if (string.sub(s.subject, 1, #'@RESERVED@') == '@RESERVED@') ~= reserved then return false end
  local active = s.status == '@ACTIVE@' and not lapsed(s, now)
  if status == '@ACTIVE@' then return active end
  if status == '@EXPIRED@' then return s.status == '@EXPIRED@' or (s.status == '@ACTIVE@' and not active) end
  if status == '@REVOKED@' then return s.status == '@REVOKED@' end
  return true
end
local out = {}
local from = '+'
if after ~= '' then from = '(' .. after end
while #out < limit do
  local page = redis.call('ZREVRANGEBYLEX', c, from, '-', 'LIMIT', 0, 256)
  if #page == 0 then break end
  for _, m in ipairs(page) do
    local key = tag .. ':s:' .. string.sub(m, 21)
    local s = load(key)
    if not s then
      redis.call('ZREM', c, m)
    elseif wanted(s) then
      table.insert(out, redis.call('HGETALL', key))
      if #out == limit then break end
    end
  end
  from = '(' .. page[#page]
end
return out
`

var listScript = script(listLua)

// ListSessions implements [lapse.SessionLister]. Each bucket keeps a
// listing index of its sessions, "created_at:id" members of one sorted
// set read in lexical order; a script walks one bucket's index from the
// cursor, filtering as it goes, and returns its first page. A query that
// names a subject reads that subject's bucket; one across subjects reads
// every bucket (one round trip per node) and merges their pages.
// Sessions created before the index existed (by an older lapse) are not
// in it, and are listed only through [Store.Sessions].
func (s *Store) ListSessions(ctx context.Context, q lapse.SessionQuery) ([]*lapse.Session, error) {
	if !lapse.ValidListStatus(q.Status) {
		return nil, lapse.Errorf(lapse.CodeInvalid, "status %q is not one of active, expired, revoked or empty for all", q.Status)
	}
	after := ""
	if !q.After.IsZero() {
		after = enc(q.After.CreatedAt) + ":" + q.After.ID
	}
	buckets := allBuckets
	if q.Subject != "" {
		buckets = []int{bucket(q.Subject)}
	}
	limit := q.PageSize()
	cmds, err := s.evalEach(ctx, listScript, buckets, func(b int) ([]string, []any) {
		reserved := "0"
		if q.Reserved {
			reserved = "1"
		}
		return []string{s.tag(b) + ":c"}, []any{s.tag(b), after, limit, q.Subject, q.Tenant, q.Tier, string(q.Status), enc(q.Now), reserved}
	})
	if err != nil {
		return nil, err
	}
	var out []*lapse.Session
	for _, cmd := range cmds {
		v, err := cmd.Result()
		if err != nil {
			return nil, wrap(err)
		}
		ss, err := decodeList(v)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, ss...)
	}
	sortListing(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// sortListing sorts sessions in listing order: newest first, CreatedAt
// then ID, both descending.
func sortListing(ss []*lapse.Session) {
	slices.SortFunc(ss, func(a, b *lapse.Session) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
}
