package compliance_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/compliance"
	"github.com/lapsehq/lapse/lapsetest"
)

// memStore is the embedded store, keeping a copy of every session it was
// handed, to show what lapse stores.
type memStore struct {
	*lapsetest.Store
	mu      sync.Mutex
	created []lapse.Session
}

func newMemStore(t *testing.T) *memStore {
	st := lapsetest.NewStore()
	t.Cleanup(func() { st.Close() })
	return &memStore{Store: st}
}

func (m *memStore) Create(ctx context.Context, s *lapse.Session, limit int) ([]*lapse.Session, error) {
	m.mu.Lock()
	m.created = append(m.created, *s)
	m.mu.Unlock()
	return m.Store.Create(ctx, s, limit)
}

// engineHarness runs a Manager with a fake clock over a tier with a 10m
// idle and a 1h absolute timeout.
type engineHarness struct {
	m     *lapse.Manager
	clock *lapsetest.Clock
	store *memStore
}

func newEngine(t *testing.T) *engineHarness {
	t.Helper()
	h := &engineHarness{clock: lapsetest.NewClock(time.Time{}), store: newMemStore(t)}
	m, err := lapse.New(lapse.Config{Store: h.store, Policy: onePolicy(tier(10*min, hour, 1)), Clock: h.clock})
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	return h
}

func (h *engineHarness) create(t *testing.T) (lapse.Token, *lapse.Session) {
	t.Helper()
	tok, s, err := h.m.Create(context.Background(), lapse.CreateParams{Subject: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	return tok, s
}

func (h *engineHarness) verify(tok lapse.Token) lapse.Code {
	_, err := h.m.Verify(context.Background(), tok.Reveal(), lapse.VerifyOptions{})
	return lapse.ErrorCode(err)
}

// TestLapseEngine checks each fact LapseEngine states against a running
// Manager, so that the structural rules cannot pass on a false claim.
func TestLapseEngine(t *testing.T) {
	facts := compliance.LapseEngine()
	tests := map[string]func(t *testing.T){
		"TokenBits": func(t *testing.T) {
			if facts.TokenBits != 208 {
				t.Errorf("TokenBits = %d, want 208 (35 random base62 characters)", facts.TokenBits)
			}
			if tok := lapse.NewToken(); len(tok.Reveal()) != lapse.TokenLen {
				t.Errorf("token length %d, want lapse.TokenLen %d", len(tok.Reveal()), lapse.TokenLen)
			}
		},
		"TokenGenerator": func(t *testing.T) {
			if facts.TokenGenerator != "crypto/rand" {
				t.Errorf("TokenGenerator = %q, want crypto/rand", facts.TokenGenerator)
			}
		},
		"TokenCSPRNG": func(t *testing.T) {
			// A smoke test only: no black-box test shows a CSPRNG; the
			// fact rests on lapse.NewToken reading crypto/rand.
			seen := map[lapse.Token]bool{}
			for range 1000 {
				tok := lapse.NewToken()
				if seen[tok] {
					t.Fatalf("NewToken repeated a token within 1000 draws")
				}
				seen[tok] = true
			}
		},
		"TokenHashedAtRest": func(t *testing.T) {
			h := newEngine(t)
			tok, _ := h.create(t)
			stored := h.store.created[0]
			if stored.TokenHash != tok.Hash() {
				t.Errorf("stored TokenHash is not lapse.HashToken of the token")
			}
			secret := tok.Reveal()[len(lapse.TokenPrefix):]
			if dump := fmt.Sprintf("%#v", stored); strings.Contains(dump, secret) {
				t.Errorf("the store was handed the token's secret: %s", dump)
			}
		},
		"TokenRedacted": func(t *testing.T) {
			tok := lapse.NewToken()
			secret := tok.Reveal()[len(lapse.TokenPrefix):]
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "token", tok)
			for _, out := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %s %+v", tok, tok, tok), buf.String()} {
				if strings.Contains(out, secret) {
					t.Errorf("token secret printed: %s", out)
				}
			}
		},
		"NewTokenPerAuthentication": func(t *testing.T) {
			h := newEngine(t)
			t1, s1 := h.create(t)
			t2, s2 := h.create(t)
			if t1 == t2 || s1.ID == s2.ID {
				t.Errorf("two authentications share a token or an id")
			}
		},
		"AbsoluteFixed": func(t *testing.T) {
			h := newEngine(t)
			tok, s := h.create(t)
			for range 11 { // active every 5m until 55m
				h.clock.Advance(5 * min)
				if c := h.verify(tok); c != "" {
					t.Fatalf("verify at %s: %s, want valid", h.clock.Now().Sub(s.CreatedAt), c)
				}
			}
			h.clock.Advance(5 * min) // 1h: the absolute deadline, however active
			if c := h.verify(tok); c != lapse.CodeSessionExpiredAbsolute {
				t.Errorf("verify at the absolute deadline after steady activity: got %q, want %q", c, lapse.CodeSessionExpiredAbsolute)
			}
		},
		"ActivityResetsIdle": func(t *testing.T) {
			h := newEngine(t)
			tok, _ := h.create(t)
			h.clock.Advance(9 * min)
			if c := h.verify(tok); c != "" {
				t.Fatalf("verify at 9m: %s, want valid", c)
			}
			h.clock.Advance(9 * min) // 18m after creation, 9m after activity
			if c := h.verify(tok); c != "" {
				t.Errorf("verify 9m after activity: %s, want valid: activity must restart the idle timeout", c)
			}
			h.clock.Advance(10 * min)
			if c := h.verify(tok); c != lapse.CodeSessionExpiredIdle {
				t.Errorf("verify 10m after activity: got %q, want %q", c, lapse.CodeSessionExpiredIdle)
			}
		},
		"ReauthResetsBoth": func(t *testing.T) {
			h := newEngine(t)
			old, _ := h.create(t)
			h.clock.Advance(50 * min)
			h.verify(old)
			tok, s := h.create(t) // reauthentication: a new session
			now := h.clock.Now()
			if !s.ExpiresAt.Equal(now.Add(hour)) || !s.IdleExpiresAt.Equal(now.Add(10*min)) || !s.AuthenticatedAt.Equal(now) {
				t.Errorf("after reauthentication: absolute %s, idle %s; want both counted from now %s", s.ExpiresAt, s.IdleExpiresAt, now)
			}
			h.clock.Advance(9 * min) // past the old session's absolute deadline
			if c := h.verify(tok); c != "" {
				t.Errorf("reauthenticated session past the old absolute deadline: %s, want valid", c)
			}
		},
		"ServerSideExpiry": func(t *testing.T) {
			h := newEngine(t)
			tok, s := h.create(t)
			h.clock.Advance(10 * min)
			for i := range 2 {
				if c := h.verify(tok); c != lapse.CodeSessionExpiredIdle {
					t.Errorf("verify #%d after the idle deadline: got %q, want %q", i+1, c, lapse.CodeSessionExpiredIdle)
				}
			}
			got, err := h.m.Session(context.Background(), s.ID)
			if err != nil || got.Status != lapse.StatusExpired {
				t.Errorf("stored session after expiry: %v, %v; want status expired", got, err)
			}
		},
		"LogoutInvalidates": func(t *testing.T) {
			h := newEngine(t)
			tok, _ := h.create(t)
			if err := h.m.Revoke(context.Background(), tok.Reveal()); err != nil {
				t.Fatal(err)
			}
			if c := h.verify(tok); c != lapse.CodeSessionRevoked {
				t.Errorf("verify after logout: got %q, want %q", c, lapse.CodeSessionRevoked)
			}
		},
	}
	typ := reflect.TypeOf(facts)
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		if v := reflect.ValueOf(facts).Field(i); v.Kind() == reflect.Bool && !v.Bool() {
			t.Errorf("LapseEngine().%s is false", name)
		}
		test, ok := tests[name]
		if !ok {
			t.Errorf("LapseEngine().%s has no test against the Manager", name)
			continue
		}
		t.Run(name, test)
	}
}
