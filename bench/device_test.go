package bench

import (
	"context"
	"testing"

	"github.com/lapsehq/lapse"
)

// BenchmarkVerifyDevice measures a request's session check with device
// binding (DBSC) against the same check without it, in one run on one
// SQLite store, the manager's cache warm:
//
//   - off: Verify, then VerifyDevice in a tier whose binding is off,
//     which reads nothing (the baseline);
//   - preferred_unbound: the same in a tier that prefers binding, for a
//     session that did not bind: one read of the binding;
//   - bound: a bound session with its bound cookie: the read and the
//     cookie's hash.
func BenchmarkVerifyDevice(b *testing.B) {
	const n = 256
	f := newFixture(b, n, 0)
	p := f.policy
	t := p.Tiers["standard"]
	t.DeviceBinding = lapse.DeviceBindingPreferred
	p.Tiers["bound"] = t
	if err := p.Validate(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	m := f.manager(b, 0, nil)
	unbound := createSessions(b, m, "bound", n)
	bound := createSessions(b, m, "bound", n)
	cookies := make([]string, n)
	for i, tok := range bound {
		s, err := m.Current(ctx, tok)
		if err != nil {
			b.Fatal(err)
		}
		c, err := m.DeviceChallenge(ctx, s.ID)
		if err != nil {
			b.Fatal(err)
		}
		key := lapse.DeviceKey{Thumbprint: s.ID, JWK: []byte(`{}`)}
		bc, err := m.BindDevice(ctx, &s, key, c)
		if err != nil {
			b.Fatal(err)
		}
		cookies[i] = bc.Value
	}
	run := func(tokens, cookies []string) func(*testing.B) {
		return func(b *testing.B) {
			warm(b, m, tokens)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				s, err := m.Verify(ctx, tokens[i%len(tokens)], lapse.VerifyOptions{})
				if err != nil {
					b.Fatal(err)
				}
				var p lapse.DevicePresence
				if cookies != nil {
					p.Cookie = cookies[i%len(cookies)]
				}
				if err := m.VerifyDevice(ctx, &s, p); err != nil {
					b.Fatal(err)
				}
				i++
			}
		}
	}
	b.Run("off", run(f.tokens, nil))
	b.Run("preferred_unbound", run(unbound, nil))
	b.Run("bound", run(bound, cookies))
}
