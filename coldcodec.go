package lapse

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// The cold tier of the verify cache keeps sessions as bytes in memory
// the garbage collector neither scans nor counts (coldcache.go). This is
// their encoding: every field of Session and its Tier, strings as a
// length and bytes, numbers as varints, durations and times (as the
// distance from the session's creation) as spans: whole seconds in a
// varint or two, where the nanoseconds are written only when there are
// any. A timeout of an hour takes 2 bytes, a deadline an hour after an
// activity at the creation's instant as well. It never
// leaves the process, so it has no version: a field added to Session or
// Tier must be added here (TestColdCodecCoversEveryField fails until it
// is).
//
// The status and the id come first, so that a cache insert can tell an
// ended entry from an active one without decoding the rest.

// errColdEntry is a cold entry that does not decode: never written by
// appendSession, so a fault of the ring's bookkeeping.
var errColdEntry = errors.New("lapse: malformed cold cache entry")

// appendSession appends the encoding of s to b.
func appendSession(b []byte, s *Session) []byte {
	e := coldEncoder{b: b}
	e.str(string(s.Status))
	e.str(s.ID)
	e.str(s.Subject)
	e.str(s.Tenant)
	e.str(s.Tier)
	e.int(int64(s.AAL))
	e.strs(s.AMR)
	e.str(string(s.EndReason))
	e.time(s.CreatedAt)
	e.base = nanos(s.CreatedAt)
	for _, t := range [...]time.Time{s.LastActiveAt, s.AuthenticatedAt, s.IdleExpiresAt, s.ExpiresAt,
		s.WarnAt, s.EndedAt, s.PrevValidUntil} {
		e.time(t)
	}
	for _, v := range [...]string{s.IP, s.UserAgent, string(s.Metadata), s.IdP.Issuer, s.IdP.Subject, s.IdP.SID} {
		e.str(v)
	}
	e.hash(s.PrevTokenHash)
	e.tier(&s.Policy)
	return e.b
}

func (e *coldEncoder) tier(p *Tier) {
	for _, d := range [...]time.Duration{p.IdleTimeout, p.AbsoluteTimeout, p.WarnBefore, p.MaxAuthAge,
		p.RemindAfter, p.BindGrace, p.BoundCookieLifetime, p.NewDeviceWindow} {
		e.span(int64(d), 0)
	}
	for _, n := range [...]int{p.RequireAAL, p.MaxSessions, p.DriftPrefixV4, p.DriftPrefixV6} {
		e.int(int64(n))
	}
	e.strs(p.Profiles)
	for _, v := range [...]string{string(p.DeviceBinding), string(p.OnTheft), string(p.ClientDrift), string(p.OnTokenReuse)} {
		e.str(v)
	}
}

// decodeSession decodes what appendSession wrote for a session whose
// token hash is h. Its strings share one copy of b.
func decodeSession(b []byte, h TokenHash) (*Session, error) {
	d := coldDecoder{s: string(b)}
	s := &Session{TokenHash: h}
	s.Status = Status(d.str())
	s.ID = d.str()
	s.Subject = d.str()
	s.Tenant = d.str()
	s.Tier = d.str()
	s.AAL = int(d.int())
	s.AMR = d.strs()
	s.EndReason = Reason(d.str())
	s.CreatedAt = d.time()
	d.base = nanos(s.CreatedAt)
	for _, t := range [...]*time.Time{&s.LastActiveAt, &s.AuthenticatedAt, &s.IdleExpiresAt, &s.ExpiresAt,
		&s.WarnAt, &s.EndedAt, &s.PrevValidUntil} {
		*t = d.time()
	}
	s.IP, s.UserAgent = d.str(), d.str()
	if m := d.str(); m != "" {
		s.Metadata = []byte(m)
	}
	s.IdP = IdPSession{Issuer: d.str(), Subject: d.str(), SID: d.str()}
	s.PrevTokenHash = d.hash()
	d.tier(&s.Policy)
	if d.bad || d.i != len(d.s) {
		return nil, errColdEntry
	}
	return s, nil
}

func (d *coldDecoder) tier(p *Tier) {
	for _, v := range [...]*time.Duration{&p.IdleTimeout, &p.AbsoluteTimeout, &p.WarnBefore, &p.MaxAuthAge,
		&p.RemindAfter, &p.BindGrace, &p.BoundCookieLifetime, &p.NewDeviceWindow} {
		*v = time.Duration(d.span(0))
	}
	for _, v := range [...]*int{&p.RequireAAL, &p.MaxSessions, &p.DriftPrefixV4, &p.DriftPrefixV6} {
		*v = int(d.int())
	}
	p.Profiles = d.strs()
	p.DeviceBinding = DeviceBindingMode(d.str())
	p.OnTheft = TheftAction(d.str())
	p.ClientDrift = DriftAction(d.str())
	p.OnTokenReuse = ReuseAction(d.str())
}

// coldEnded reports whether entry b is an ended state of session id.
func coldEnded(b []byte, id string) bool {
	d := coldDecoder{s: string(b)}
	status := Status(d.str())
	return status != StatusActive && d.str() == id && !d.bad
}

// nanos is t in nanoseconds since 1970, 0 for the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

type coldEncoder struct {
	b    []byte
	base int64
}

func (e *coldEncoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *coldEncoder) int(v int64) { e.b = binary.AppendVarint(e.b, v) }

// strs writes a nil slice as 0 and any other as its length plus one,
// so that nil and empty stay apart.
func (e *coldEncoder) strs(v []string) {
	if v == nil {
		e.b = append(e.b, 0)
		return
	}
	e.b = binary.AppendUvarint(e.b, uint64(len(v))+1)
	for _, s := range v {
		e.str(s)
	}
}

// time writes the zero time as 0 and any other as its distance from
// base, a span shifted by one.
func (e *coldEncoder) time(t time.Time) {
	if t.IsZero() {
		e.b = append(e.b, 0)
		return
	}
	e.span(t.UnixNano()-e.base, 1)
}

// span writes nanoseconds v as its whole seconds (zigzag), shifted left
// by one with the low bit set when nanoseconds follow, plus shift; then
// the nanoseconds (zigzag, same sign as v), if any.
func (e *coldEncoder) span(v int64, shift uint64) {
	q, r := v/int64(time.Second), v%int64(time.Second)
	head := zigzag(q) << 1
	if r != 0 {
		head |= 1
	}
	e.b = binary.AppendUvarint(e.b, head+shift)
	if r != 0 {
		e.b = binary.AppendUvarint(e.b, zigzag(r))
	}
}

func zigzag(v int64) uint64 { return uint64(v<<1 ^ v>>63) }

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func (e *coldEncoder) hash(h TokenHash) {
	if h == (TokenHash{}) {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 1)
	e.b = append(e.b, h[:]...)
}

// coldDecoder reads an entry from a string, so that the strings it
// returns are slices of one copy of the entry. Past a fault it returns
// zero values and sets bad.
type coldDecoder struct {
	s    string
	i    int
	base int64
	bad  bool
}

func (d *coldDecoder) uvarint() uint64 {
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		if d.i >= len(d.s) {
			break
		}
		c := d.s[d.i]
		d.i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	d.bad = true
	return 0
}

func (d *coldDecoder) int() int64 { return unzigzag(d.uvarint()) }

// span reads what coldEncoder.span wrote with shift. A span past the
// range of int64 nanoseconds, or nanoseconds a second or more or of the
// other sign than the seconds, is malformed.
func (d *coldDecoder) span(shift uint64) int64 {
	head := d.uvarint() - shift
	q := unzigzag(head >> 1)
	if q > math.MaxInt64/int64(time.Second) || q < math.MinInt64/int64(time.Second) {
		d.bad = true
		return 0
	}
	v := q * int64(time.Second)
	if head&1 == 0 {
		return v
	}
	r := unzigzag(d.uvarint())
	if r == 0 || r <= -int64(time.Second) || r >= int64(time.Second) || q > 0 && r < 0 || q < 0 && r > 0 ||
		r > 0 && v > math.MaxInt64-r || r < 0 && v < math.MinInt64-r {
		d.bad = true
		return 0
	}
	return v + r
}

func (d *coldDecoder) str() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.s)-d.i) {
		d.bad = true
		return ""
	}
	s := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}

func (d *coldDecoder) strs() []string {
	n := d.uvarint()
	if n == 0 || d.bad {
		return nil
	}
	n--
	if n > uint64(len(d.s)-d.i) { // each string takes a byte at least
		d.bad = true
		return nil
	}
	v := make([]string, n)
	for i := range v {
		v[i] = d.str()
	}
	return v
}

func (d *coldDecoder) time() time.Time {
	if d.i < len(d.s) && d.s[d.i] == 0 {
		d.i++
		return time.Time{}
	}
	v := d.span(1)
	if d.bad {
		return time.Time{}
	}
	return time.Unix(0, d.base+v).UTC()
}

func (d *coldDecoder) hash() TokenHash {
	var h TokenHash
	if d.i >= len(d.s) {
		d.bad = true
		return h
	}
	d.i++
	if d.s[d.i-1] == 0 {
		return h
	}
	if len(d.s)-d.i < len(h) {
		d.bad = true
		return h
	}
	d.i += copy(h[:], d.s[d.i:])
	return h
}
