package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/lapsehq/lapse"
)

// The verify route answers every request of an active user, so its reply
// is written by hand into a pooled buffer instead of through reflection:
// appendSession writes exactly what json.Marshal(NewSession(s)) writes
// (a test holds it to that), at a fraction of the cost.

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// nosniff is the value of X-Content-Type-Options on every JSON answer;
// headers are only read after they are set, so one slice serves all.
var nosniff = []string{"nosniff"}

// writeSessionJSON answers {"session": s} with status 200.
func writeSessionJSON(w http.ResponseWriter, s *lapse.Session) {
	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], `{"session":`...)
	b = appendSession(b, s)
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header()["X-Content-Type-Options"] = nosniff // shared, so the hot path allocates no slice
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	*bp = b
	bufPool.Put(bp)
}

// appendSession appends the JSON form of s, as [NewSession] describes it.
func appendSession(b []byte, s *lapse.Session) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, s.ID)
	b = append(b, `,"subject":`...)
	b = appendString(b, s.Subject)
	b = append(b, `,"tenant":`...)
	b = appendString(b, s.Tenant)
	b = append(b, `,"tier":`...)
	b = appendString(b, s.Tier)
	b = append(b, `,"aal":`...)
	b = strconv.AppendInt(b, int64(s.AAL), 10)
	b = append(b, `,"amr":[`...)
	for i, m := range s.AMR {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, m)
	}
	b = append(b, `],"status":`...)
	b = appendString(b, string(s.Status))
	b = append(b, `,"end_reason":`...)
	if s.Status == lapse.StatusActive {
		b = append(b, "null"...)
	} else {
		b = appendString(b, string(s.EndReason))
	}
	for _, f := range []struct {
		key string
		t   time.Time
	}{
		{`,"created_at":`, s.CreatedAt}, {`,"last_active_at":`, s.LastActiveAt},
		{`,"authenticated_at":`, s.AuthenticatedAt}, {`,"idle_expires_at":`, s.IdleExpiresAt},
		{`,"expires_at":`, s.ExpiresAt}, {`,"warn_at":`, s.WarnAt},
	} {
		b = append(b, f.key...)
		b = appendTime(b, f.t)
	}
	b = append(b, `,"remind_at":`...)
	if s.Policy.RemindAfter > 0 {
		b = appendTime(b, s.CreatedAt.Add(s.Policy.RemindAfter))
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"ended_at":`...)
	if s.Status == lapse.StatusActive {
		b = append(b, "null"...)
	} else {
		b = appendTime(b, s.EndedAt)
	}
	b = append(b, `,"ip":`...)
	b = appendString(b, s.IP)
	b = append(b, `,"user_agent":`...)
	b = appendString(b, s.UserAgent)
	b = append(b, `,"metadata":`...)
	if len(s.Metadata) == 0 {
		b = append(b, "{}"...)
	} else {
		var compact bytes.Buffer
		json.Compact(&compact, s.Metadata)
		var escaped bytes.Buffer
		json.HTMLEscape(&escaped, compact.Bytes())
		b = append(b, escaped.Bytes()...)
	}
	return append(b, '}')
}

// appendTime appends t in timeFormat: what time.AppendFormat writes for
// it, digit by digit, since the general formatter is most of the cost of
// a verify reply.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, `""`...)
	}
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	if year < 0 || year > 9999 {
		b = append(b, '"')
		b = t.AppendFormat(b, timeFormat)
		return append(b, '"')
	}
	b = append(b, '"')
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond(), 9)
	return append(b, 'Z', '"')
}

// appendDigits appends n zero-padded to width decimal digits.
func appendDigits(b []byte, n, width int) []byte {
	var buf [9]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, buf[:width]...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string with encoding/json's escaping:
// control characters, quote, backslash, <, >, &, U+2028 and U+2029
// escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		esc, size := asciiEscapes[s[i]&0x7f], 1
		if s[i] >= utf8.RuneSelf {
			esc, size = runeEscape(s[i:])
		}
		if esc != "" {
			b = append(b, s[start:i]...)
			b = append(b, esc...)
			start = i + size
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// asciiEscapes holds the escape of each ASCII character that
// encoding/json escapes, and "" for the others.
var asciiEscapes = func() (t [utf8.RuneSelf]string) {
	for c := range 0x20 {
		t[c] = `\u00` + string(hexDigits[c>>4]) + string(hexDigits[c&0xF])
	}
	t['\n'], t['\r'], t['\t'], t['\b'], t['\f'] = `\n`, `\r`, `\t`, `\b`, `\f`
	t['"'], t['\\'] = `\"`, `\\`
	t['<'], t['>'], t['&'] = `\u003c`, `\u003e`, `\u0026`
	return t
}()

// runeEscape returns the escape of the non-ASCII rune that starts s, ""
// if it needs none, and its length in s.
func runeEscape(s string) (string, int) {
	r, size := utf8.DecodeRuneInString(s)
	switch {
	case r == utf8.RuneError && size == 1:
		return `\ufffd`, 1
	case r == '\u2028':
		return `\u2028`, size
	case r == '\u2029':
		return `\u2029`, size
	}
	return "", size
}
