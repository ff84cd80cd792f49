// Package storetest is the conformance suite every [lapse.Store] must
// pass. A store's test file states what the store claims to implement
// and makes a fresh store for each case:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, storetest.Spec{
//			New:    func(t *testing.T) lapse.Store { return openFresh(t) },
//			Claims: []storetest.Capability{storetest.EventLog, storetest.AuditLog, ...},
//		})
//	}
//
// Each rule of the Store contract and of every optional interface is a
// subtest. The claims are checked both ways against the interfaces the
// store's type implements: a store that claims a capability it lacks
// fails, and so does one that implements an optional interface it does
// not claim, so a store that gains or loses an interface cannot go
// unnoticed. Every case of a claimed capability runs, with no skip; the
// cases of capabilities the store does not claim are not run, and Run
// logs them in one line.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

// Capability names an optional interface of the root package that a
// store may implement.
type Capability string

// The optional interfaces of a store.
const (
	EventLog      Capability = "EventLog"
	AuditLog      Capability = "AuditLog"
	ActiveCounter Capability = "ActiveCounter"
	Pinger        Capability = "Pinger"
	ExpiryIndex   Capability = "ExpiryIndex"
	Tidier        Capability = "Tidier"
	Purger        Capability = "Purger"
	ChangeFeed    Capability = "ChangeFeed"
	DeliveryQueue Capability = "DeliveryQueue"
	FactorStore   Capability = "FactorStore"
	SessionLister Capability = "SessionLister"
	EventRecorder Capability = "EventRecorder"
	IdPIndex      Capability = "IdPIndex"
	ReplayGuard   Capability = "ReplayGuard"
	DeviceBinder  Capability = "DeviceBinder"
	KeyStore      Capability = "KeyStore"
	OperatorStore Capability = "OperatorStore"
)

// implements tells, for each capability, whether a store has it.
var implements = map[Capability]func(lapse.Store) bool{
	EventLog:      func(s lapse.Store) bool { _, ok := s.(lapse.EventLog); return ok },
	AuditLog:      func(s lapse.Store) bool { _, ok := s.(lapse.AuditLog); return ok },
	ActiveCounter: func(s lapse.Store) bool { _, ok := s.(lapse.ActiveCounter); return ok },
	Pinger:        func(s lapse.Store) bool { _, ok := s.(lapse.Pinger); return ok },
	ExpiryIndex:   func(s lapse.Store) bool { _, ok := s.(lapse.ExpiryIndex); return ok },
	Tidier:        func(s lapse.Store) bool { _, ok := s.(lapse.Tidier); return ok },
	Purger:        func(s lapse.Store) bool { _, ok := s.(lapse.Purger); return ok },
	ChangeFeed:    func(s lapse.Store) bool { _, ok := s.(lapse.ChangeFeed); return ok },
	DeliveryQueue: func(s lapse.Store) bool { _, ok := s.(lapse.DeliveryQueue); return ok },
	FactorStore:   func(s lapse.Store) bool { _, ok := s.(lapse.FactorStore); return ok },
	SessionLister: func(s lapse.Store) bool { _, ok := s.(lapse.SessionLister); return ok },
	EventRecorder: func(s lapse.Store) bool { _, ok := s.(lapse.EventRecorder); return ok },
	IdPIndex:      func(s lapse.Store) bool { _, ok := s.(lapse.IdPIndex); return ok },
	ReplayGuard:   func(s lapse.Store) bool { _, ok := s.(lapse.ReplayGuard); return ok },
	DeviceBinder:  func(s lapse.Store) bool { _, ok := s.(lapse.DeviceBinder); return ok },
	KeyStore:      func(s lapse.Store) bool { _, ok := s.(lapse.KeyStore); return ok },
	OperatorStore: func(s lapse.Store) bool { _, ok := s.(lapse.OperatorStore); return ok },
}

// Spec describes the store under test.
type Spec struct {
	// New returns an empty store for one case and arranges its cleanup.
	New func(t *testing.T) lapse.Store
	// Claims lists every optional interface the store implements.
	Claims []Capability
	// Nodes returns two store values on one fresh backing service, as two
	// lapse nodes would open it, and a function that takes the service
	// away (stops it) for the rest of the case. The ChangeFeed cases need
	// it.
	Nodes func(t *testing.T) (a, b lapse.Store, down func())
}

// Run runs the suite: first that the store implements exactly what it
// claims, then every case whose capabilities it claims.
func Run(t *testing.T, spec Spec) {
	t.Helper()
	claimed := map[Capability]bool{}
	for _, c := range spec.Claims {
		if implements[c] == nil {
			t.Fatalf("storetest: unknown capability %q claimed", c)
		}
		claimed[c] = true
	}
	t.Run("claims_are_what_the_store_implements", func(t *testing.T) {
		for _, m := range mismatches(spec.New(t), claimed) {
			t.Error(m)
		}
		if claimed[ChangeFeed] && spec.Nodes == nil {
			t.Errorf("the store claims ChangeFeed but Spec.Nodes is nil: the feed's cases need two store values on one service")
		}
	})
	var notApplied []string
	for _, c := range cases {
		if missing := lacking(c.needs, claimed); len(missing) > 0 {
			notApplied = append(notApplied, fmt.Sprintf("%s (%s)", c.name, strings.Join(missing, ", ")))
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			if c.nodes != nil {
				if spec.Nodes == nil {
					t.Fatal("Spec.Nodes is nil")
				}
				c.nodes(t, spec.Nodes)
				return
			}
			c.run(t, spec.New(t))
		})
	}
	if len(notApplied) > 0 {
		t.Logf("storetest: %d of %d cases not applied, for capabilities the store does not claim: %s",
			len(notApplied), len(cases), strings.Join(notApplied, "; "))
	} else {
		t.Logf("storetest: all %d cases applied", len(cases))
	}
}

// mismatches says where what st's type implements differs from what is
// claimed, both ways.
func mismatches(st lapse.Store, claimed map[Capability]bool) []string {
	var out []string
	for _, c := range capabilities() {
		switch has := implements[c](st); {
		case claimed[c] && !has:
			out = append(out, fmt.Sprintf("the store claims %s but %T does not implement lapse.%s", c, st, c))
		case has && !claimed[c]:
			out = append(out, fmt.Sprintf("%T implements lapse.%s but the store's test does not claim it: add storetest.%s to Spec.Claims", st, c, c))
		}
	}
	return out
}

// capabilities returns every capability, in a stable order.
func capabilities() []Capability {
	out := make([]Capability, 0, len(implements))
	for c := range implements {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

func lacking(needs []Capability, claimed map[Capability]bool) []string {
	var out []string
	for _, c := range needs {
		if !claimed[c] {
			out = append(out, string(c))
		}
	}
	return out
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC)

// A case is one rule. run gets a fresh store; a case with nodes gets the
// Spec's Nodes instead.
type testCase struct {
	name  string
	needs []Capability
	run   func(t *testing.T, st lapse.Store)
	nodes func(t *testing.T, nodes func(t *testing.T) (a, b lapse.Store, down func()))
}

var cases = []testCase{
	{name: "create_then_read_by_id_and_token_round_trips_every_field", run: testRoundTrip},
	{name: "unknown_id_and_token_are_session_not_found", run: testNotFound},
	{name: "duplicate_id_or_token_is_conflict", run: testConflict},
	{name: "limit_revokes_oldest_active_of_same_subject_tenant_tier", run: testLimit},
	{name: "limit_ignores_lapsed_and_other_tiers", run: testLimitScope},
	{name: "limit_holds_under_concurrent_creates", run: testLimitConcurrent},
	{name: "touch_moves_deadline_forward_only", run: testTouchForward},
	{name: "touch_never_revives_a_lapsed_or_ended_session", run: testTouchNoRevive},
	{name: "touch_returns_the_stored_session_not_a_stale_one", run: testTouchStaleSeen},
	{name: "end_revokes_once_and_is_idempotent", run: testEndOnce},
	{name: "end_after_deadline_records_expiry_at_deadline", run: testEndLapsed},
	{name: "end_unknown_is_session_not_found", run: testEndUnknown},
	{name: "end_matching_respects_except_and_tenant", run: testEndMatching},
	{name: "sessions_lists_active_newest_first_or_all", run: testSessions},
	{name: "every_change_is_an_event_in_order", needs: []Capability{EventLog}, run: testEvents},
	{name: "count_active_by_tier", needs: []Capability{ActiveCounter}, run: testCountActive},
	{name: "touch_in_warning_window_or_forced_records_extended", needs: []Capability{EventLog}, run: testTouchExtended},
	{name: "rotate_replaces_token_resets_timers_and_keeps_grace", needs: []Capability{EventLog}, run: testRotate},
	{name: "rotate_refuses_stale_token_and_ended_session", run: testRotateRefuses},
	{name: "rotate_records_an_earlier_authentication_time", run: testRotateAuthenticatedAt},
	{name: "rotate_records_the_client_that_authenticated", run: testRotateClient},
	{name: "create_keeps_the_signal_settings_of_the_tier", run: testSignalPolicy},
	{name: "expire_due_ends_lapsed_earliest_first_once", needs: []Capability{ExpiryIndex, EventLog}, run: testExpireDue},
	{name: "expire_due_claims_each_session_once_under_concurrency", needs: []Capability{ExpiryIndex}, run: testExpireDueConcurrent},
	{name: "expire_due_takes_sessions_sharing_a_deadline_once_each", needs: []Capability{ExpiryIndex}, run: testExpireDueTies},
	{name: "an_expiry_recorded_is_final_for_every_read_and_write", needs: []Capability{ExpiryIndex, EventLog}, run: testExpiredIsFinal},
	{name: "tidy_changes_no_read", needs: []Capability{Tidier, ExpiryIndex, AuditLog}, run: testTidy},
	{name: "warn_due_warns_once_per_warn_at", needs: []Capability{ExpiryIndex, EventLog}, run: testWarnDue},
	{name: "purge_deletes_old_ended_sessions_keeps_events", needs: []Capability{Purger, EventLog}, run: testPurge},
	{name: "query_events_filters", needs: []Capability{AuditLog}, run: testQueryEvents},
	{name: "audit_chain_verifies", needs: []Capability{AuditLog}, run: testChain},
	{name: "audit_chain_stays_linear_under_concurrent_writers", needs: []Capability{AuditLog}, run: testChainConcurrent},
	{name: "list_sessions_filters_by_status_and_pages_newest_first", needs: []Capability{SessionLister}, run: testListSessions},
	{name: "ping_answers", needs: []Capability{Pinger}, run: testPing},
	{name: "delivery_queue_enqueues_once_and_keeps_the_cursor", needs: []Capability{DeliveryQueue, EventLog}, run: testDeliveryEnqueue},
	{name: "delivery_queue_records_outcomes_and_replays_the_dead", needs: []Capability{DeliveryQueue, EventLog}, run: testDeliveryRecord},
	{name: "factor_store_enrols_confirms_uses_and_removes", needs: []Capability{FactorStore}, run: testFactorLifecycle},
	{name: "factor_store_spends_each_code_and_step_once_under_concurrency", needs: []Capability{FactorStore}, run: testFactorOnce},
	{name: "factor_store_limits_attempts", needs: []Capability{FactorStore}, run: testFactorAttempts},
	{name: "factor_store_keeps_passkeys_per_subject", needs: []Capability{FactorStore}, run: testPasskeyLifecycle},
	{name: "factor_store_passes_a_passkey_use_only_with_a_counter_that_moved_on", needs: []Capability{FactorStore}, run: testPasskeyCounter},
	{name: "factor_store_hands_a_challenge_out_once_while_live", needs: []Capability{FactorStore}, run: testChallengeOnce},
	{name: "factor_store_challenge_taken_on_one_node_is_gone_on_every_node", needs: []Capability{FactorStore, ChangeFeed}, nodes: testChallengeNodes},
	{name: "change_feed_resets_then_delivers_the_changes_of_another_store_value", needs: []Capability{ChangeFeed}, nodes: testFeedDelivers},
	{name: "change_feed_mark_follows_earlier_changes_and_only_its_own", needs: []Capability{ChangeFeed}, nodes: testFeedMark},
	{name: "change_feed_returns_when_cancelled_or_the_service_goes_away", needs: []Capability{ChangeFeed}, nodes: testFeedLost},
	{name: "event_without_a_session_is_recorded_chained_and_delivered", needs: []Capability{EventRecorder, EventLog}, run: testRecordEvent},
	{name: "idp_index_finds_active_sessions_by_provider_subject_or_session", needs: []Capability{IdPIndex}, run: testIdPIndex},
	{name: "first_use_is_once_per_key_until_it_expires", needs: []Capability{ReplayGuard}, run: testFirstUse},
	{name: "first_use_is_once_under_concurrency", needs: []Capability{ReplayGuard}, run: testFirstUseConcurrent},
	{name: "key_store_creates_reads_lists_touches_and_revokes_keys", needs: []Capability{KeyStore}, run: testKeyLifecycle},
	{name: "operator_store_creates_finds_lists_and_updates_operators", needs: []Capability{OperatorStore}, run: testOperatorLifecycle},
	{name: "operator_store_update_writes_only_its_change_so_a_newer_disable_holds", needs: []Capability{OperatorStore}, run: testOperatorStaleUpdate},
	{name: "end_and_rotate_record_the_callers_ip_and_actor_name", needs: []Capability{EventLog}, run: testEndAndRotateRecordTheIP},
	{name: "query_events_filters_by_actor", needs: []Capability{AuditLog, EventRecorder}, run: testQueryEventsByActor},
	{name: "a_tenant_bound_manager_reaches_another_tenants_sessions_as_unknown_ones", run: testTenantIsolation},
	{name: "first_use_is_once_across_nodes", needs: []Capability{ReplayGuard, ChangeFeed}, nodes: testFirstUseNodes},
	{name: "device_binder_binds_once_and_renews_the_cookie_of_its_key", needs: []Capability{DeviceBinder}, run: testDeviceBinding},
	{name: "device_binder_binds_once_under_concurrency", needs: []Capability{DeviceBinder}, run: testDeviceBindOnce},
}

var ctx = context.Background()

// newSession returns an active session created at at, with the policy of
// a 10m idle, 1h absolute tier.
func newSession(subject, tenant, tier string, at time.Time) *lapse.Session {
	tok := lapse.NewToken()
	s := &lapse.Session{
		ID: lapse.NewID("ses_"), TokenHash: tok.Hash(),
		Subject: subject, Tenant: tenant, Tier: tier,
		AAL: 1, AMR: []string{"pwd"}, Status: lapse.StatusActive,
		CreatedAt: at, LastActiveAt: at, AuthenticatedAt: at,
		IdleExpiresAt: at.Add(10 * time.Minute), ExpiresAt: at.Add(time.Hour),
		WarnAt: at.Add(9 * time.Minute),
		Policy: lapse.Tier{IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour, WarnBefore: time.Minute},
	}
	return s
}

func mustCreate(t *testing.T, st lapse.Store, s *lapse.Session, limit int) []*lapse.Session {
	t.Helper()
	ended, err := st.Create(ctx, s, limit)
	if err != nil {
		t.Fatalf("Create(%s): %v", s.ID, err)
	}
	return ended
}

func wantCode(t *testing.T, what string, err error, want lapse.Code) {
	t.Helper()
	if got := lapse.ErrorCode(err); got != want {
		t.Fatalf("%s: error code = %q (%v), want %q", what, got, err, want)
	}
}

func testRoundTrip(t *testing.T, st lapse.Store) {
	s := newSession("alice@example.com", "acme", "sensitive", t0)
	s.AAL, s.AMR = 2, []string{"pwd", "otp"}
	s.IP, s.UserAgent = "2001:db8::1", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
	s.Metadata = json.RawMessage(`{"plan":"pro","n":1}`)
	s.IdP = lapse.IdPSession{Issuer: "https://idp.example.com/realms/acme", Subject: "f81d4fae-7dec-11d0-a765-00a0c91e6bf6", SID: "sid-1"}
	s.Policy = lapse.Tier{IdleTimeout: 5 * time.Minute, AbsoluteTimeout: time.Hour, WarnBefore: time.Minute,
		RequireAAL: 2, MaxAuthAge: 15 * time.Minute, MaxSessions: 3, RemindAfter: 8 * time.Hour}
	mustCreate(t, st, s, 0)
	byID, err := st.Session(ctx, s.ID)
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	byTok, err := st.SessionByToken(ctx, s.TokenHash)
	if err != nil {
		t.Fatalf("SessionByToken: %v", err)
	}
	for name, got := range map[string]*lapse.Session{"Session": byID, "SessionByToken": byTok} {
		if diff := compare(got, s); diff != "" {
			t.Errorf("%s returned a different session: %s", name, diff)
		}
	}
}

// compare reports the first field where got differs from want.
func compare(got, want *lapse.Session) string {
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		return fmt.Sprintf("\n got %s\nwant %s", g, w)
	}
	switch {
	case got.TokenHash != want.TokenHash:
		return "token hash differs"
	case got.Policy.IdleTimeout != want.Policy.IdleTimeout || got.Policy.AbsoluteTimeout != want.Policy.AbsoluteTimeout ||
		got.Policy.WarnBefore != want.Policy.WarnBefore || got.Policy.RequireAAL != want.Policy.RequireAAL ||
		got.Policy.MaxAuthAge != want.Policy.MaxAuthAge || got.Policy.MaxSessions != want.Policy.MaxSessions ||
		got.Policy.RemindAfter != want.Policy.RemindAfter:
		return fmt.Sprintf("policy: got %+v, want %+v", got.Policy, want.Policy)
	}
	return ""
}

func testNotFound(t *testing.T, st lapse.Store) {
	_, err := st.Session(ctx, "ses_nope")
	wantCode(t, "Session(unknown)", err, lapse.CodeSessionNotFound)
	_, err = st.SessionByToken(ctx, lapse.NewToken().Hash())
	wantCode(t, "SessionByToken(unknown)", err, lapse.CodeSessionNotFound)
}

func testConflict(t *testing.T, st lapse.Store) {
	a := newSession("alice", "", "standard", t0)
	mustCreate(t, st, a, 0)
	sameID := newSession("bob", "", "standard", t0)
	sameID.ID = a.ID
	_, err := st.Create(ctx, sameID, 0)
	wantCode(t, "Create(duplicate id)", err, lapse.CodeConflict)
	sameTok := newSession("bob", "", "standard", t0)
	sameTok.TokenHash = a.TokenHash
	_, err = st.Create(ctx, sameTok, 0)
	wantCode(t, "Create(duplicate token)", err, lapse.CodeConflict)
}

func testLimit(t *testing.T, st lapse.Store) {
	var ids []string
	for i := range 3 {
		s := newSession("alice", "acme", "sensitive", t0.Add(time.Duration(i)*time.Second))
		if ended := mustCreate(t, st, s, 3); len(ended) != 0 {
			t.Fatalf("create %d under the limit ended %d sessions", i, len(ended))
		}
		ids = append(ids, s.ID)
	}
	fourth := newSession("alice", "acme", "sensitive", t0.Add(10*time.Second))
	ended := mustCreate(t, st, fourth, 3)
	if len(ended) != 1 || ended[0].ID != ids[0] {
		t.Fatalf("create past the limit ended %v, want the oldest %s", sessionIDs(ended), ids[0])
	}
	got, _ := st.Session(ctx, ids[0])
	if got.Status != lapse.StatusRevoked || got.EndReason != lapse.ReasonLimit || !got.EndedAt.Equal(fourth.CreatedAt) {
		t.Errorf("oldest session: status %s reason %s ended %v, want revoked limit at %v", got.Status, got.EndReason, got.EndedAt, fourth.CreatedAt)
	}
	// A lower limit ends as many as needed.
	fifth := newSession("alice", "acme", "sensitive", t0.Add(20*time.Second))
	if ended := mustCreate(t, st, fifth, 1); len(ended) != 3 {
		t.Errorf("create with limit 1 over 3 active ended %d, want 3", len(ended))
	}
}

func testLimitScope(t *testing.T, st lapse.Store) {
	lapsed := newSession("alice", "acme", "sensitive", t0) // idles out at t0+10m
	mustCreate(t, st, lapsed, 2)
	mustCreate(t, st, newSession("alice", "acme", "standard", t0.Add(time.Minute)), 2)
	mustCreate(t, st, newSession("alice", "other", "sensitive", t0.Add(time.Minute)), 2)
	mustCreate(t, st, newSession("bob", "acme", "sensitive", t0.Add(time.Minute)), 2)
	later := t0.Add(11 * time.Minute)
	mustCreate(t, st, newSession("alice", "acme", "sensitive", later), 2)
	if ended := mustCreate(t, st, newSession("alice", "acme", "sensitive", later.Add(time.Second)), 2); len(ended) != 0 {
		t.Errorf("limit 2 with one lapsed and one active session ended %v, want none", sessionIDs(ended))
	}
}

func testLimitConcurrent(t *testing.T, st lapse.Store) {
	const n, limit = 12, 3
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.Create(ctx, newSession("carol", "", "sensitive", t0.Add(time.Duration(i)*time.Millisecond)), limit)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Create: %v", err)
		}
	}
	active, err := st.Sessions(ctx, lapse.Filter{Subject: "carol", Now: t0.Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != limit {
		t.Errorf("after %d concurrent creates with limit %d, %d sessions are active", n, limit, len(active))
	}
}

func testTouchForward(t *testing.T, st lapse.Store) {
	s := newSession("alice", "", "standard", t0)
	mustCreate(t, st, s, 0)
	at := t0.Add(4 * time.Minute)
	got, err := st.Touch(ctx, s, at, at.Add(10*time.Minute), at.Add(9*time.Minute), false)
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastActiveAt.Equal(at) || !got.IdleExpiresAt.Equal(at.Add(10*time.Minute)) || !got.WarnAt.Equal(at.Add(9*time.Minute)) {
		t.Fatalf("after touch at %v: last active %v, idle deadline %v, warn %v", at, got.LastActiveAt, got.IdleExpiresAt, got.WarnAt)
	}
	older := t0.Add(2 * time.Minute)
	got, err = st.Touch(ctx, s, older, older.Add(10*time.Minute), older.Add(9*time.Minute), false)
	if err != nil {
		t.Fatal(err)
	}
	if !got.IdleExpiresAt.Equal(at.Add(10 * time.Minute)) {
		t.Errorf("an older touch moved the idle deadline back to %v, want it kept at %v", got.IdleExpiresAt, at.Add(10*time.Minute))
	}
	_, err = st.Touch(ctx, &lapse.Session{ID: "ses_unknown"}, at, at, at, false)
	wantCode(t, "Touch(unknown)", err, lapse.CodeSessionNotFound)
}

// testTouchStaleSeen touches with a seen session that the store's has
// moved past (another writer's touch, a step-up's rotation): a store that
// answers from seen must see that it is stale.
func testTouchStaleSeen(t *testing.T, st lapse.Store) {
	s := newSession("alice", "", "standard", t0)
	mustCreate(t, st, s, 0)
	seen := *s
	first := t0.Add(time.Minute)
	if _, err := st.Touch(ctx, s, first, first.Add(10*time.Minute), first.Add(9*time.Minute), false); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(2 * time.Minute)
	got, err := st.Touch(ctx, &seen, at, at.Add(10*time.Minute), at.Add(9*time.Minute), false)
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastActiveAt.Equal(at) || !got.IdleExpiresAt.Equal(at.Add(10*time.Minute)) {
		t.Errorf("touch after another's: last active %v, idle deadline %v; want %v, %v", got.LastActiveAt, got.IdleExpiresAt, at, at.Add(10*time.Minute))
	}
	seen = *got
	newHash := lapse.NewToken().Hash()
	stepped := t0.Add(3 * time.Minute)
	if _, err := st.Rotate(ctx, s.ID, lapse.Rotation{OldHash: s.TokenHash, NewHash: newHash, AAL: 2, AMR: []string{"pwd", "otp"},
		Actor: lapse.ActorAPI, Now: stepped, Grace: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	at = t0.Add(4 * time.Minute)
	got, err = st.Touch(ctx, &seen, at, at.Add(10*time.Minute), at.Add(9*time.Minute), false)
	if err != nil {
		t.Fatal(err)
	}
	if got.TokenHash != newHash || got.AAL != 2 || !got.AuthenticatedAt.Equal(stepped) {
		t.Errorf("touch with the session as seen before a step-up returned aal %d, authenticated %v, the new token: %v; want the stepped-up session",
			got.AAL, got.AuthenticatedAt, got.TokenHash == newHash)
	}
	if !got.LastActiveAt.Equal(at) {
		t.Errorf("touch after a step-up: last active %v, want %v", got.LastActiveAt, at)
	}

	// A step-up at the instant of the last activity leaves the activity
	// as seen: only the token tells that the session moved on.
	r := newSession("bob", "", "standard", t0)
	mustCreate(t, st, r, 0)
	seen = *r
	newHash = lapse.NewToken().Hash()
	if _, err := st.Rotate(ctx, r.ID, lapse.Rotation{OldHash: r.TokenHash, NewHash: newHash, AAL: 2, AMR: []string{"pwd", "otp"},
		Actor: lapse.ActorAPI, Now: t0, Grace: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	at = t0.Add(time.Minute)
	if got, err = st.Touch(ctx, &seen, at, at.Add(10*time.Minute), at.Add(9*time.Minute), false); err != nil {
		t.Fatal(err)
	}
	if got.TokenHash != newHash || got.AAL != 2 {
		t.Errorf("touch with the session as seen before a step-up at its last activity returned aal %d, the new token: %v; want the stepped-up session",
			got.AAL, got.TokenHash == newHash)
	}
}

func testTouchNoRevive(t *testing.T, st lapse.Store) {
	s := newSession("alice", "", "standard", t0)
	mustCreate(t, st, s, 0)
	at := s.IdleExpiresAt // exactly at the deadline: already lapsed
	got, err := st.Touch(ctx, s, at, at.Add(10*time.Minute), at.Add(9*time.Minute), false)
	if err != nil {
		t.Fatal(err)
	}
	if !got.IdleExpiresAt.Equal(s.IdleExpiresAt) {
		t.Errorf("touch at the idle deadline moved it to %v: a lapsed session was revived", got.IdleExpiresAt)
	}
	r := newSession("bob", "", "standard", t0)
	mustCreate(t, st, r, 0)
	if _, _, err := st.End(ctx, r.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogout, Now: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	at = t0.Add(2 * time.Minute)
	got, err = st.Touch(ctx, r, at, at.Add(10*time.Minute), at, false)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != lapse.StatusRevoked || !got.IdleExpiresAt.Equal(r.IdleExpiresAt) {
		t.Errorf("touch of a revoked session changed it: status %s, idle deadline %v", got.Status, got.IdleExpiresAt)
	}
}

func testEndOnce(t *testing.T, st lapse.Store) {
	s := newSession("alice", "", "standard", t0)
	mustCreate(t, st, s, 0)
	now := t0.Add(time.Minute)
	got, changed, err := st.End(ctx, s.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonAdmin, Actor: lapse.ActorAPI, Now: now})
	if err != nil || !changed {
		t.Fatalf("End: changed %v, err %v; want a change", changed, err)
	}
	if got.Status != lapse.StatusRevoked || got.EndReason != lapse.ReasonAdmin || !got.EndedAt.Equal(now) {
		t.Errorf("End returned status %s reason %s at %v", got.Status, got.EndReason, got.EndedAt)
	}
	again, changed, err := st.End(ctx, s.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogout, Now: now.Add(time.Minute)})
	if err != nil || changed {
		t.Fatalf("second End: changed %v, err %v; want no change", changed, err)
	}
	if again.EndReason != lapse.ReasonAdmin || !again.EndedAt.Equal(now) {
		t.Errorf("second End rewrote the ending: reason %s at %v", again.EndReason, again.EndedAt)
	}
	stored, _ := st.Session(ctx, s.ID)
	if stored.Status != lapse.StatusRevoked {
		t.Errorf("stored status %s after End, want revoked", stored.Status)
	}
}

func testEndLapsed(t *testing.T, st lapse.Store) {
	s := newSession("alice", "", "standard", t0)
	mustCreate(t, st, s, 0)
	got, changed, err := st.End(ctx, s.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogout, Now: t0.Add(30 * time.Minute)})
	if err != nil || !changed {
		t.Fatalf("End: changed %v, err %v", changed, err)
	}
	if got.Status != lapse.StatusExpired || got.EndReason != lapse.ReasonIdleTimeout || !got.EndedAt.Equal(s.IdleExpiresAt) {
		t.Errorf("revoke after the idle deadline recorded %s/%s at %v, want expired/idle_timeout at %v",
			got.Status, got.EndReason, got.EndedAt, s.IdleExpiresAt)
	}
}

func testEndUnknown(t *testing.T, st lapse.Store) {
	_, _, err := st.End(ctx, "ses_unknown", lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonAdmin, Now: t0})
	wantCode(t, "End(unknown)", err, lapse.CodeSessionNotFound)
}

func testEndMatching(t *testing.T, st lapse.Store) {
	keep := newSession("alice", "acme", "standard", t0)
	a2 := newSession("alice", "acme", "sensitive", t0)
	a3 := newSession("alice", "globex", "standard", t0)
	bob := newSession("bob", "acme", "standard", t0)
	for _, s := range []*lapse.Session{keep, a2, a3, bob} {
		mustCreate(t, st, s, 0)
	}
	e := lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonPasswordChange, Actor: lapse.ActorAPI, Now: t0.Add(time.Minute)}
	ended, err := st.EndMatching(ctx, lapse.Filter{Subject: "alice", Tenant: "acme", Except: keep.ID}, e)
	if err != nil {
		t.Fatal(err)
	}
	if ids := sessionIDs(ended); !slices.Equal(ids, []string{a2.ID}) {
		t.Fatalf("EndMatching(alice@acme except one) ended %v, want [%s]", ids, a2.ID)
	}
	ended, err = st.EndMatching(ctx, lapse.Filter{Subject: "alice", AnyTenant: true}, e)
	if err != nil {
		t.Fatal(err)
	}
	if ids := sortedIDs(ended); !slices.Equal(ids, sortedIDs([]*lapse.Session{keep, a3})) {
		t.Errorf("EndMatching(alice, any tenant) ended %v, want the two still active", ids)
	}
	if got, _ := st.Session(ctx, bob.ID); got.Status != lapse.StatusActive {
		t.Errorf("bob's session was ended by a match on alice")
	}
}

func testSessions(t *testing.T, st lapse.Store) {
	old := newSession("alice", "acme", "standard", t0)
	mid := newSession("alice", "acme", "standard", t0.Add(time.Minute))
	lapsing := newSession("alice", "acme", "standard", t0.Add(2*time.Minute))
	lapsing.IdleExpiresAt = t0.Add(3 * time.Minute)
	other := newSession("alice", "globex", "standard", t0.Add(4*time.Minute))
	for _, s := range []*lapse.Session{old, mid, lapsing, other} {
		mustCreate(t, st, s, 0)
	}
	st.End(ctx, old.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogout, Now: t0.Add(5 * time.Minute)})
	now := t0.Add(5 * time.Minute)
	for _, c := range []struct {
		f    lapse.Filter
		want []*lapse.Session
	}{
		{lapse.Filter{Subject: "alice", Tenant: "acme", Now: now}, []*lapse.Session{mid}},
		{lapse.Filter{Subject: "alice", AnyTenant: true, Now: now}, []*lapse.Session{other, mid}},
		{lapse.Filter{Subject: "alice", Tenant: "acme", IncludeEnded: true, Now: now}, []*lapse.Session{lapsing, mid, old}},
		{lapse.Filter{Subject: "alice", Tenant: "acme", IncludeEnded: true, Except: mid.ID, Now: now}, []*lapse.Session{lapsing, old}},
		{lapse.Filter{Subject: "nobody", AnyTenant: true, Now: now}, nil},
	} {
		got, err := st.Sessions(ctx, c.f)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(sessionIDs(got), sessionIDs(c.want)) {
			t.Errorf("Sessions(%+v) = %v, want %v", c.f, sessionIDs(got), sessionIDs(c.want))
		}
	}
}

func testEvents(t *testing.T, st lapse.Store) {
	log := st.(lapse.EventLog)
	a := newSession("alice", "", "sensitive", t0)
	b := newSession("alice", "", "sensitive", t0.Add(time.Second))
	mustCreate(t, st, a, 0)
	mustCreate(t, st, b, 1) // ends a: limit
	st.End(ctx, b.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogout, Actor: lapse.ActorSubject, Now: t0.Add(time.Minute)})
	st.End(ctx, b.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogout, Now: t0.Add(2 * time.Minute)}) // no change, no event
	evs, err := log.Events(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		typ    lapse.EventType
		id     string
		reason lapse.Reason
	}
	var got []rec
	for i, e := range evs {
		got = append(got, rec{e.Type, e.SessionID, e.Reason})
		if i > 0 && e.Seq <= evs[i-1].Seq {
			t.Errorf("event seq %d follows %d: not ascending", e.Seq, evs[i-1].Seq)
		}
		if e.ID == "" || e.Time.IsZero() || e.Subject != "alice" {
			t.Errorf("event %d lacks id, time or subject: %+v", i, e)
		}
	}
	want := []rec{
		{lapse.EventCreated, a.ID, ""},
		{lapse.EventRevoked, a.ID, lapse.ReasonLimit},
		{lapse.EventCreated, b.ID, ""},
		{lapse.EventRevoked, b.ID, lapse.ReasonLogout},
	}
	if !slices.Equal(got, want) {
		t.Errorf("events = %+v\nwant %+v", got, want)
	}
	if len(evs) > 1 {
		rest, err := log.Events(ctx, evs[1].Seq, 100)
		if err != nil || len(rest) != len(evs)-2 {
			t.Errorf("Events(after %d) returned %d events (err %v), want %d", evs[1].Seq, len(rest), err, len(evs)-2)
		}
	}
}

func testCountActive(t *testing.T, st lapse.Store) {
	c := st.(lapse.ActiveCounter)
	mustCreate(t, st, newSession("a", "", "standard", t0), 0)
	mustCreate(t, st, newSession("b", "", "standard", t0), 0)
	mustCreate(t, st, newSession("c", "", "sensitive", t0), 0)
	lapsed := newSession("d", "", "sensitive", t0)
	lapsed.IdleExpiresAt = t0.Add(time.Second)
	mustCreate(t, st, lapsed, 0)
	got, err := c.CountActive(ctx, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got["standard"] != 2 || got["sensitive"] != 1 {
		t.Errorf("CountActive = %v, want standard:2 sensitive:1", got)
	}
}

func sessionIDs(ss []*lapse.Session) []string {
	var ids []string
	for _, s := range ss {
		ids = append(ids, s.ID)
	}
	return ids
}

func sortedIDs(ss []*lapse.Session) []string {
	ids := sessionIDs(ss)
	slices.Sort(ids)
	return ids
}

func eventTypes(t *testing.T, st lapse.Store, sessionID string) []lapse.EventType {
	t.Helper()
	evs, err := st.(lapse.EventLog).Events(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var types []lapse.EventType
	for _, e := range evs {
		if e.SessionID == sessionID {
			types = append(types, e.Type)
		}
	}
	return types
}

func testTouchExtended(t *testing.T, st lapse.Store) {
	s := newSession("alice", "", "standard", t0) // warn at +9m
	mustCreate(t, st, s, 0)
	at := t0.Add(5 * time.Minute) // before warn_at: routine
	st.Touch(ctx, s, at, at.Add(10*time.Minute), at.Add(9*time.Minute), false)
	at = t0.Add(5*time.Minute + 9*time.Minute) // at the new warn_at: the user came back in the warning
	st.Touch(ctx, s, at, at.Add(10*time.Minute), at.Add(9*time.Minute), false)
	at = at.Add(time.Second) // forced: stay signed in
	st.Touch(ctx, s, at, at.Add(10*time.Minute), at.Add(9*time.Minute), true)
	want := []lapse.EventType{lapse.EventCreated, lapse.EventExtended, lapse.EventExtended}
	if got := eventTypes(t, st, s.ID); !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v (routine activity records none)", got, want)
	}
}

func testRotate(t *testing.T, st lapse.Store) {
	s := newSession("alice", "", "sensitive", t0)
	mustCreate(t, st, s, 0)
	now := t0.Add(20 * time.Minute)
	st.Touch(ctx, s, t0.Add(5*time.Minute), t0.Add(15*time.Minute), t0.Add(14*time.Minute), false)
	st.Touch(ctx, s, t0.Add(15*time.Minute-time.Second), t0.Add(25*time.Minute), t0.Add(24*time.Minute), false)
	newHash := lapse.NewToken().Hash()
	got, err := st.Rotate(ctx, s.ID, lapse.Rotation{OldHash: s.TokenHash, NewHash: newHash, AAL: 2, AMR: []string{"pwd", "otp"},
		Actor: lapse.ActorAPI, Now: now, Grace: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got.TokenHash != newHash || got.AAL != 2 || !slices.Equal(got.AMR, []string{"pwd", "otp"}) {
		t.Errorf("rotated session: aal %d amr %v, new hash %v", got.AAL, got.AMR, got.TokenHash == newHash)
	}
	if !got.AuthenticatedAt.Equal(now) || !got.ExpiresAt.Equal(now.Add(time.Hour)) || !got.IdleExpiresAt.Equal(now.Add(10*time.Minute)) {
		t.Errorf("after rotation at %v: authenticated %v, absolute %v, idle %v; want both timers reset", now, got.AuthenticatedAt, got.ExpiresAt, got.IdleExpiresAt)
	}
	byNew, err := st.SessionByToken(ctx, newHash)
	if err != nil || byNew.ID != s.ID {
		t.Fatalf("SessionByToken(new) = %v, %v", byNew, err)
	}
	byOld, err := st.SessionByToken(ctx, s.TokenHash)
	if err != nil || byOld.ID != s.ID || byOld.PrevTokenHash != s.TokenHash || !byOld.PrevValidUntil.Equal(now.Add(5*time.Second)) {
		t.Fatalf("SessionByToken(old) within the grace = %+v, %v; want the session with the old hash valid until +5s", byOld, err)
	}
	// the second touch came during the warning: extended
	want := []lapse.EventType{lapse.EventCreated, lapse.EventExtended, lapse.EventSteppedUp, lapse.EventRotated}
	if got := eventTypes(t, st, s.ID); !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

func testRotateRefuses(t *testing.T, st lapse.Store) {
	s := newSession("alice", "", "standard", t0)
	mustCreate(t, st, s, 0)
	first := lapse.Rotation{OldHash: s.TokenHash, NewHash: lapse.NewToken().Hash(), AAL: 2, Now: t0.Add(time.Minute)}
	if _, err := st.Rotate(ctx, s.ID, first); err != nil {
		t.Fatal(err)
	}
	second := lapse.Rotation{OldHash: s.TokenHash, NewHash: lapse.NewToken().Hash(), AAL: 2, Now: t0.Add(time.Minute)}
	_, err := st.Rotate(ctx, s.ID, second)
	wantCode(t, "Rotate with a replaced token", err, lapse.CodeConflict)
	r := newSession("bob", "", "standard", t0)
	mustCreate(t, st, r, 0)
	st.End(ctx, r.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonAdmin, Now: t0.Add(time.Minute)})
	_, err = st.Rotate(ctx, r.ID, lapse.Rotation{OldHash: r.TokenHash, NewHash: lapse.NewToken().Hash(), AAL: 2, Now: t0.Add(2 * time.Minute)})
	wantCode(t, "Rotate of a revoked session", err, lapse.CodeSessionRevoked)
	l := newSession("carol", "", "standard", t0)
	mustCreate(t, st, l, 0)
	_, err = st.Rotate(ctx, l.ID, lapse.Rotation{OldHash: l.TokenHash, NewHash: lapse.NewToken().Hash(), AAL: 2, Now: l.IdleExpiresAt})
	wantCode(t, "Rotate at the idle deadline", err, lapse.CodeSessionExpiredIdle)
}

func expiryIndex(t *testing.T, st lapse.Store) lapse.ExpiryIndex { return st.(lapse.ExpiryIndex) }

func testExpireDue(t *testing.T, st lapse.Store) {
	x := expiryIndex(t, st)
	idle := newSession("a", "", "standard", t0) // idle deadline t0+10m
	abs := newSession("b", "", "standard", t0.Add(-55*time.Minute))
	abs.IdleExpiresAt, abs.ExpiresAt = t0.Add(20*time.Minute), t0.Add(5*time.Minute) // absolute first
	later := newSession("c", "", "standard", t0.Add(5*time.Minute))                  // idle deadline t0+15m
	for _, s := range []*lapse.Session{idle, abs, later} {
		mustCreate(t, st, s, 0)
	}
	due, err := x.ExpireDue(ctx, t0.Add(10*time.Minute), 100)
	if err != nil {
		t.Fatal(err)
	}
	if ids := sessionIDs(due); !slices.Equal(ids, []string{abs.ID, idle.ID}) {
		t.Fatalf("ExpireDue at +10m = %v, want [absolute-first %s, idle %s] in deadline order", ids, abs.ID, idle.ID)
	}
	if due[0].EndReason != lapse.ReasonAbsoluteTimeout || !due[0].EndedAt.Equal(abs.ExpiresAt) ||
		due[1].EndReason != lapse.ReasonIdleTimeout || !due[1].EndedAt.Equal(idle.IdleExpiresAt) {
		t.Errorf("reasons/ends: %s at %v, %s at %v", due[0].EndReason, due[0].EndedAt, due[1].EndReason, due[1].EndedAt)
	}
	again, _ := x.ExpireDue(ctx, t0.Add(10*time.Minute), 100)
	if len(again) != 0 {
		t.Errorf("a second ExpireDue expired %v again", sessionIDs(again))
	}
	if got := eventTypes(t, st, idle.ID); !slices.Equal(got, []lapse.EventType{lapse.EventCreated, lapse.EventExpired}) {
		t.Errorf("events of the idle session = %v", got)
	}
	if stored, _ := st.Session(ctx, later.ID); stored.Status != lapse.StatusActive {
		t.Errorf("a session not yet due was ended")
	}
}

func testExpireDueConcurrent(t *testing.T, st lapse.Store) {
	x := expiryIndex(t, st)
	const n = 200
	for i := range n {
		mustCreate(t, st, newSession(fmt.Sprintf("u%d", i), "", "standard", t0), 0)
	}
	var (
		mu    sync.Mutex
		seen  = map[string]int{}
		wg    sync.WaitGroup
		fails []error
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				due, err := x.ExpireDue(ctx, t0.Add(time.Hour), 17)
				mu.Lock()
				if err != nil {
					fails = append(fails, err)
				}
				for _, s := range due {
					seen[s.ID]++
				}
				mu.Unlock()
				if err != nil || len(due) == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("concurrent ExpireDue: %v", fails[0])
	}
	if len(seen) != n {
		t.Errorf("%d of %d sessions expired", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("session %s expired %d times", id, c)
		}
	}
}

func testExpireDueTies(t *testing.T, st lapse.Store) {
	x := expiryIndex(t, st)
	var tied []*lapse.Session
	for i := range 5 {
		s := newSession(fmt.Sprintf("tied%d", i), "", "standard", t0) // all idle at t0+10m
		mustCreate(t, st, s, 0)
		tied = append(tied, s)
	}
	later := newSession("later", "", "standard", t0.Add(time.Minute))
	mustCreate(t, st, later, 0)
	seen := map[string]int{}
	for range 10 {
		due, err := x.ExpireDue(ctx, t0.Add(10*time.Minute), 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) == 0 {
			break
		}
		for _, s := range due {
			seen[s.ID]++
		}
	}
	for _, s := range tied {
		if seen[s.ID] != 1 {
			t.Errorf("session %s of the shared deadline expired %d times, want once", s.ID, seen[s.ID])
		}
	}
	if seen[later.ID] != 0 {
		t.Fatalf("a session due a minute later was expired")
	}
	if due, _ := x.ExpireDue(ctx, t0.Add(11*time.Minute), 2); len(due) != 1 || due[0].ID != later.ID {
		t.Errorf("ExpireDue at the later deadline = %v, want [%s]", sessionIDs(due), later.ID)
	}
}

// testExpiredIsFinal holds that once ExpireDue recorded a session expired,
// the store shows it expired everywhere and no later call, whatever time
// it says it is, changes it or records another event for it.
func testExpiredIsFinal(t *testing.T, st lapse.Store) {
	x := expiryIndex(t, st)
	s := newSession("alice", "acme", "standard", t0) // idle at t0+10m
	other := newSession("alice", "acme", "standard", t0.Add(5*time.Minute))
	mustCreate(t, st, s, 0)
	mustCreate(t, st, other, 0)
	due, err := x.ExpireDue(ctx, t0.Add(10*time.Minute), 10)
	if err != nil || len(due) != 1 || due[0].ID != s.ID {
		t.Fatalf("ExpireDue = %v, %v; want [%s]", sessionIDs(due), err, s.ID)
	}
	if d := due[0]; d.Status != lapse.StatusExpired || d.EndReason != lapse.ReasonIdleTimeout || !d.EndedAt.Equal(s.IdleExpiresAt) ||
		d.TokenHash != s.TokenHash || d.Subject != s.Subject || d.Tenant != s.Tenant || d.Tier != s.Tier {
		t.Errorf("ExpireDue returned %+v, want the session expired idle at its deadline", d)
	}
	check := func(when string) {
		t.Helper()
		for name, read := range map[string]func() (*lapse.Session, error){
			"Session":        func() (*lapse.Session, error) { return st.Session(ctx, s.ID) },
			"SessionByToken": func() (*lapse.Session, error) { return st.SessionByToken(ctx, s.TokenHash) },
		} {
			got, err := read()
			if err != nil || got.Status != lapse.StatusExpired || got.EndReason != lapse.ReasonIdleTimeout || !got.EndedAt.Equal(s.IdleExpiresAt) {
				t.Errorf("%s: %s = %+v, %v; want expired idle at %v", when, name, got, err, s.IdleExpiresAt)
			}
		}
	}
	check("after the sweep")
	// A caller whose clock is a minute behind the sweep's tries to
	// revive, rotate and revoke the session, and to list and count it.
	behind := t0.Add(9 * time.Minute)
	st.Touch(ctx, s, behind, behind.Add(10*time.Minute), behind.Add(9*time.Minute), true)
	check("after a touch with a clock behind the sweep")
	_, err = st.Rotate(ctx, s.ID, lapse.Rotation{OldHash: s.TokenHash, NewHash: lapse.NewToken().Hash(), AAL: 2, AMR: []string{"pwd", "otp"}, Now: behind, Grace: time.Second})
	if code := lapse.ErrorCode(err); code != lapse.CodeSessionExpiredIdle {
		t.Errorf("Rotate of the expired session: %v, want %s", err, lapse.CodeSessionExpiredIdle)
	}
	check("after a rotate")
	if _, changed, err := st.End(ctx, s.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogout, Now: behind}); err != nil || changed {
		t.Errorf("End of the expired session: changed %v, %v; want nothing changed", changed, err)
	}
	ended, err := st.EndMatching(ctx, lapse.Filter{Subject: "alice", Tenant: "acme"}, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogoutAll, Now: behind})
	if err != nil || !slices.Equal(sessionIDs(ended), []string{other.ID}) {
		t.Errorf("EndMatching = %v, %v; want only the session still active, %s", sessionIDs(ended), err, other.ID)
	}
	check("after a revoke")
	if again, _ := x.ExpireDue(ctx, t0.Add(time.Hour), 10); len(again) != 0 {
		t.Errorf("a later sweep expired %v again", sessionIDs(again))
	}
	want := []lapse.EventType{lapse.EventCreated, lapse.EventExpired}
	if got := eventTypes(t, st, s.ID); !slices.Equal(got, want) {
		t.Errorf("events of the expired session = %v, want %v", got, want)
	}
	if c, ok := st.(lapse.ActiveCounter); ok {
		if n, err := c.CountActive(ctx, behind); err != nil || n["standard"] != 0 {
			t.Errorf("CountActive with a clock behind the sweep = %v, %v; want no active session", n, err)
		}
	}
	if ss, err := st.Sessions(ctx, lapse.Filter{Subject: "alice", Tenant: "acme", Now: behind}); err != nil || len(ss) != 0 {
		t.Errorf("Sessions with a clock behind the sweep = %v, %v; want none active", sessionIDs(ss), err)
	}
	checkListedExpired(t, st, s.ID, behind)
}

// checkListedExpired holds that a session of alice at acme whose expiry
// was recorded lists as expired, by a caller whose clock is behind the
// sweep: in Sessions with the ended ones, and in ListSessions.
func checkListedExpired(t *testing.T, st lapse.Store, id string, now time.Time) {
	t.Helper()
	all, err := st.Sessions(ctx, lapse.Filter{Subject: "alice", Tenant: "acme", IncludeEnded: true, Now: now})
	if i := slices.IndexFunc(all, func(x *lapse.Session) bool { return x.ID == id }); err != nil || i < 0 || all[i].Status != lapse.StatusExpired {
		t.Errorf("Sessions including ended ones = %v, %v; want the swept session in it, expired", sessionIDs(all), err)
	}
	l, ok := st.(lapse.SessionLister)
	if !ok {
		return
	}
	for _, c := range []struct {
		status lapse.Status
		listed bool
	}{{"", true}, {lapse.StatusExpired, true}, {lapse.StatusActive, false}} {
		got, err := l.ListSessions(ctx, lapse.SessionQuery{Subject: "alice", Status: c.status, Now: now})
		if err != nil {
			t.Fatalf("ListSessions: %v", err)
		}
		i := slices.IndexFunc(got, func(x *lapse.Session) bool { return x.ID == id })
		switch {
		case (i >= 0) != c.listed:
			t.Errorf("ListSessions(status %q) listed the swept session: %v, want %v", c.status, i >= 0, c.listed)
		case i >= 0 && got[i].Status != lapse.StatusExpired:
			t.Errorf("ListSessions(status %q) shows the swept session %s, want expired", c.status, got[i].Status)
		}
	}
}

// testTidy holds that a Tidier's deferred work changes no answer: every
// session and every event query reads the same before and after it.
func testTidy(t *testing.T, st lapse.Store) {
	tidier := st.(lapse.Tidier)
	x := expiryIndex(t, st)
	a := st.(lapse.AuditLog)
	var all []*lapse.Session
	for i := range 30 {
		s := newSession(fmt.Sprintf("u%d", i%4), "acme", "standard", t0.Add(time.Duration(i)*time.Second))
		mustCreate(t, st, s, 0)
		all = append(all, s)
	}
	if _, err := x.WarnDue(ctx, t0.Add(9*time.Minute+10*time.Second), 100); err != nil {
		t.Fatal(err)
	}
	if due, err := x.ExpireDue(ctx, t0.Add(10*time.Minute+20*time.Second), 100); err != nil || len(due) != 21 {
		t.Fatalf("ExpireDue = %d sessions, %v; want 21", len(due), err)
	}
	// Events recorded after the sweep, while its own are not yet tidied.
	st.End(ctx, all[29].ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogout, Now: t0.Add(11 * time.Minute)})
	queries := []lapse.EventQuery{
		{Subject: "u1"}, {Subject: "u2", Types: []lapse.EventType{lapse.EventExpired}},
		{SessionID: all[5].ID}, {SessionID: all[29].ID}, {Subject: "u3", After: 5, Limit: 4},
		{Subject: "u0", Since: t0.Add(5 * time.Second), Until: t0.Add(10*time.Minute + 20*time.Second)},
		{Since: t0.Add(10 * time.Minute)}, {},
	}
	snapshot := func() []string {
		var out []string
		for _, s := range all {
			got, err := st.Session(ctx, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(got)
			out = append(out, string(b))
		}
		for _, q := range queries {
			evs, err := a.QueryEvents(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(evs)
			out = append(out, fmt.Sprintf("%+v: %d events %s", q, len(evs), b))
		}
		return out
	}
	before := snapshot()
	for i := 0; ; i++ {
		n, err := tidier.Tidy(ctx, 7)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if i > 100 {
			t.Fatal("Tidy never reports that it is done")
		}
	}
	after := snapshot()
	for i := range before {
		if before[i] != after[i] {
			t.Errorf("Tidy changed a read:\nbefore %s\n after %s", before[i], after[i])
		}
	}
	if evs, _ := a.QueryEvents(ctx, queries[1]); len(evs) != 5 {
		t.Errorf("expired events of u2 = %d, want 5 (sessions 2, 6, ..., 18 of the first 21)", len(evs))
	}
}

func testWarnDue(t *testing.T, st lapse.Store) {
	x := expiryIndex(t, st)
	s := newSession("alice", "", "standard", t0) // warn at +9m, idle at +10m
	mustCreate(t, st, s, 0)
	if due, _ := x.WarnDue(ctx, t0.Add(9*time.Minute-time.Nanosecond), 10); len(due) != 0 {
		t.Fatalf("warned before warn_at")
	}
	due, err := x.WarnDue(ctx, t0.Add(9*time.Minute), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("WarnDue at warn_at = %d sessions, %v; want 1", len(due), err)
	}
	if due, _ := x.WarnDue(ctx, t0.Add(9*time.Minute+time.Second), 10); len(due) != 0 {
		t.Errorf("warned twice for one warn_at")
	}
	at := t0.Add(9*time.Minute + 30*time.Second)
	st.Touch(ctx, s, at, at.Add(10*time.Minute), at.Add(9*time.Minute), false)
	if due, _ := x.WarnDue(ctx, at.Add(9*time.Minute), 10); len(due) != 1 {
		t.Errorf("no new warning at the warn_at that activity set")
	}
	want := []lapse.EventType{lapse.EventCreated, lapse.EventExpiringSoon, lapse.EventExtended, lapse.EventExpiringSoon}
	if got := eventTypes(t, st, s.ID); !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

func testPurge(t *testing.T, st lapse.Store) {
	p := st.(lapse.Purger)
	old := newSession("a", "", "standard", t0)
	recent := newSession("b", "", "standard", t0)
	active := newSession("c", "", "standard", t0)
	for _, s := range []*lapse.Session{old, recent, active} {
		mustCreate(t, st, s, 0)
	}
	st.End(ctx, old.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogout, Now: t0.Add(time.Minute)})
	st.End(ctx, recent.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogout, Now: t0.Add(3 * time.Minute)})
	n, err := p.Purge(ctx, t0.Add(2*time.Minute), 100)
	if err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v; want 1", n, err)
	}
	_, err = st.Session(ctx, old.ID)
	wantCode(t, "purged session", err, lapse.CodeSessionNotFound)
	for _, s := range []*lapse.Session{recent, active} {
		if _, err := st.Session(ctx, s.ID); err != nil {
			t.Errorf("session %s was purged too early: %v", s.ID, err)
		}
	}
	if got := eventTypes(t, st, old.ID); len(got) != 2 {
		t.Errorf("the purged session's events = %v, want them kept", got)
	}
}

func testQueryEvents(t *testing.T, st lapse.Store) {
	a := st.(lapse.AuditLog)
	s1 := newSession("alice", "acme", "standard", t0)
	s2 := newSession("bob", "globex", "standard", t0.Add(time.Minute))
	mustCreate(t, st, s1, 0)
	mustCreate(t, st, s2, 0)
	st.End(ctx, s1.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogout, Now: t0.Add(2 * time.Minute)})
	for _, c := range []struct {
		q    lapse.EventQuery
		want int
	}{
		{lapse.EventQuery{}, 3},
		{lapse.EventQuery{Subject: "alice"}, 2},
		{lapse.EventQuery{Tenant: "globex"}, 1},
		{lapse.EventQuery{SessionID: s1.ID, Types: []lapse.EventType{lapse.EventRevoked}}, 1},
		{lapse.EventQuery{Since: t0.Add(time.Minute), Until: t0.Add(2 * time.Minute)}, 1},
		{lapse.EventQuery{Limit: 2}, 2},
	} {
		got, err := a.QueryEvents(ctx, c.q)
		if err != nil || len(got) != c.want {
			t.Errorf("QueryEvents(%+v) = %d events, %v; want %d", c.q, len(got), err, c.want)
		}
	}
}

func testChain(t *testing.T, st lapse.Store) {
	a := st.(lapse.AuditLog)
	for i := range 5 {
		mustCreate(t, st, newSession(fmt.Sprintf("u%d", i), "", "standard", t0), 0)
	}
	rep, err := lapse.VerifyChain(ctx, a, 0, nil)
	if err != nil || !rep.OK() || rep.Records != 5 || rep.HeadSeq == 0 {
		t.Fatalf("VerifyChain on an untouched log = %+v, %v", rep, err)
	}
	recs, _ := a.ChainRecords(ctx, 0, 10)
	if len(recs) != 5 || len(recs[0].PrevHash) != 0 || string(recs[1].PrevHash) != string(recs[0].Hash) {
		t.Errorf("chain records are not linked: %d records", len(recs))
	}
}

func testListSessions(t *testing.T, st lapse.Store) {
	l := st.(lapse.SessionLister)
	now := t0.Add(30 * time.Minute)
	lapsed := newSession("dave", "acme", "standard", t0) // idle deadline t0+10m: lapsed, still recorded active
	alice := newSession("alice", "acme", "standard", t0.Add(25*time.Minute))
	bob := newSession("bob", "globex", "sensitive", t0.Add(26*time.Minute))
	carol := newSession("carol", "acme", "standard", t0.Add(27*time.Minute))
	twin := newSession("erin", "", "standard", t0.Add(27*time.Minute)) // same CreatedAt as carol
	expired := newSession("frank", "", "standard", t0.Add(-time.Hour))
	// An operator's session, in lapse's own namespace: listed only when
	// the query asks for that namespace.
	operator := newSession(lapse.ReservedPrefix+"console-admin", "", "lapse-console", t0.Add(28*time.Minute))
	for _, s := range []*lapse.Session{lapsed, alice, bob, carol, twin, expired, operator} {
		mustCreate(t, st, s, 0)
	}
	st.End(ctx, carol.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonAdmin, Now: now})
	st.End(ctx, expired.ID, lapse.Ending{Status: lapse.StatusExpired, Now: now})
	// Newest first; carol and erin share a CreatedAt, so the larger id comes first.
	newest := []*lapse.Session{carol, twin, bob, alice, lapsed, expired}
	if carol.ID < twin.ID {
		newest[0], newest[1] = twin, carol
	}
	keep := func(pick func(*lapse.Session) bool) []*lapse.Session {
		var out []*lapse.Session
		for _, s := range newest {
			if pick(s) {
				out = append(out, s)
			}
		}
		return out
	}
	is := func(ss ...*lapse.Session) func(*lapse.Session) bool {
		return func(s *lapse.Session) bool { return slices.Contains(ss, s) }
	}
	for _, c := range []struct {
		name string
		q    lapse.SessionQuery
		want []*lapse.Session
	}{
		{"all", lapse.SessionQuery{Now: now}, newest},
		{"active", lapse.SessionQuery{Status: lapse.StatusActive, Now: now}, keep(is(twin, bob, alice))},
		{"expired_includes_lapsed_unswept", lapse.SessionQuery{Status: lapse.StatusExpired, Now: now}, keep(is(lapsed, expired))},
		{"revoked", lapse.SessionQuery{Status: lapse.StatusRevoked, Now: now}, []*lapse.Session{carol}},
		{"subject", lapse.SessionQuery{Subject: "alice", Now: now}, []*lapse.Session{alice}},
		{"tenant", lapse.SessionQuery{Tenant: "acme", Now: now}, keep(is(carol, alice, lapsed))},
		{"tier", lapse.SessionQuery{Tier: "sensitive", Now: now}, []*lapse.Session{bob}},
		{"tenant_and_status", lapse.SessionQuery{Tenant: "acme", Status: lapse.StatusActive, Now: now}, []*lapse.Session{alice}},
		{"limit", lapse.SessionQuery{Limit: 2, Now: now}, newest[:2]},
		{"after_cursor", lapse.SessionQuery{After: newest[0].Cursor(), Limit: 2, Now: now}, newest[1:3]},
		{"reserved_namespace", lapse.SessionQuery{Reserved: true, Now: now}, []*lapse.Session{operator}},
		{"reserved_subject_outside_its_namespace", lapse.SessionQuery{Subject: operator.Subject, Now: now}, nil},
		{"platform_subject_inside_the_reserved_namespace", lapse.SessionQuery{Subject: "alice", Reserved: true, Now: now}, nil},
	} {
		got, err := l.ListSessions(ctx, c.q)
		if err != nil {
			t.Fatalf("%s: ListSessions: %v", c.name, err)
		}
		if !slices.Equal(sessionIDs(got), sessionIDs(c.want)) {
			t.Errorf("%s: ListSessions(%+v) = %v, want %v", c.name, c.q, sessionIDs(got), sessionIDs(c.want))
		}
	}
	// Paging one at a time visits every session once, in order.
	var paged []*lapse.Session
	q := lapse.SessionQuery{Limit: 1, Now: now}
	for range len(newest) + 1 {
		page, err := l.ListSessions(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		q.After = page[len(page)-1].Cursor()
	}
	if !slices.Equal(sessionIDs(paged), sessionIDs(newest)) {
		t.Errorf("paging one by one = %v, want %v", sessionIDs(paged), sessionIDs(newest))
	}
	if got, _ := l.ListSessions(ctx, lapse.SessionQuery{Subject: "alice", Now: now}); len(got) == 1 && got[0].Status != lapse.StatusActive {
		t.Errorf("alice's session status = %q, want it returned as stored (active)", got[0].Status)
	}
	_, err := l.ListSessions(ctx, lapse.SessionQuery{Status: "sleeping", Now: now})
	wantCode(t, "ListSessions with an unknown status", err, lapse.CodeInvalid)
}

// testChainConcurrent holds that writers racing each other still append
// to one linear chain: every event once, no gap, every link intact.
func testChainConcurrent(t *testing.T, st lapse.Store) {
	a := st.(lapse.AuditLog)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				s := newSession(fmt.Sprintf("w%d", w), "", "standard", t0.Add(time.Duration(i)*time.Second))
				if _, err := st.Create(ctx, s, 0); err != nil {
					errs <- err
					return
				}
				if _, _, err := st.End(ctx, s.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogout, Now: s.CreatedAt.Add(time.Second)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent writes: %v", err)
	}
	rep, err := lapse.VerifyChain(ctx, a, 0, nil)
	if err != nil || !rep.OK() || rep.Records != 2*writers*each {
		t.Fatalf("VerifyChain after %d concurrent writes = %+v, %v; want %d intact records", 2*writers*each, rep, err, 2*writers*each)
	}
	if last, err := a.LastSeq(ctx); err != nil || last != rep.HeadSeq {
		t.Errorf("LastSeq = %d, %v; want the chain's head %d", last, err, rep.HeadSeq)
	}
}

func testPing(t *testing.T, st lapse.Store) {
	if err := st.(lapse.Pinger).Ping(ctx); err != nil {
		t.Errorf("Ping of a working store: %v", err)
	}
}

// testRecordEvent: an event of no session (a rejected API key) is
// recorded between the sessions' events, read back whole, found by the
// audit queries, chained, and queued for webhooks like any other.
func testRecordEvent(t *testing.T, st lapse.Store) {
	r := st.(lapse.EventRecorder)
	alice := newSession("alice", "acme", "standard", t0)
	mustCreate(t, st, alice, 0)
	rejected := lapse.Event{ID: lapse.NewEventID(t0.Add(time.Second)), Type: lapse.EventKeyRejected,
		Time: t0.Add(time.Second), Reason: lapse.ReasonInvalidKey, Actor: lapse.ActorAPI, IP: "2001:db8::7"}
	if err := r.RecordEvent(ctx, rejected); err != nil {
		t.Fatalf("RecordEvent: %v", err)
	}
	st.End(ctx, alice.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogout, Now: t0.Add(2 * time.Second)})
	evs, err := st.(lapse.EventLog).Events(ctx, 0, 10)
	if err != nil || len(evs) != 3 {
		t.Fatalf("Events = %d events, %v; want created, key_rejected, revoked", len(evs), err)
	}
	got := evs[1]
	rejected.Seq = got.Seq
	if !got.Time.Equal(rejected.Time) || got.Seq <= evs[0].Seq || got.Seq >= evs[2].Seq {
		t.Errorf("recorded event at %v seq %d, want %v between seqs %d and %d", got.Time, got.Seq, rejected.Time, evs[0].Seq, evs[2].Seq)
	}
	got.Time = rejected.Time
	if got != rejected {
		t.Errorf("read back %+v, want %+v", got, rejected)
	}
	if evs[0].IP != "" || evs[2].IP != "" {
		t.Errorf("a session's events got an address: %q, %q", evs[0].IP, evs[2].IP)
	}
	if a, ok := st.(lapse.AuditLog); ok {
		checkRecordedInAudit(t, a, alice.ID, rejected.IP)
	}
	if q, ok := st.(lapse.DeliveryQueue); ok {
		checkRecordedDelivered(t, q, evs[1].Seq, evs[2].Seq, rejected.IP)
	}
}

// checkRecordedInAudit checks that the audit queries find the recorded
// event of no session, and alice's two apart from it, and that the
// chain, address included, verifies.
func checkRecordedInAudit(t *testing.T, a lapse.AuditLog, aliceID, ip string) {
	t.Helper()
	for _, c := range []struct {
		q    lapse.EventQuery
		want int
	}{
		{lapse.EventQuery{Types: []lapse.EventType{lapse.EventKeyRejected}}, 1},
		{lapse.EventQuery{Subject: "alice"}, 2},
		{lapse.EventQuery{SessionID: aliceID}, 2},
		{lapse.EventQuery{Tenant: "acme"}, 2},
	} {
		if got, err := a.QueryEvents(ctx, c.q); err != nil || len(got) != c.want {
			t.Errorf("QueryEvents(%+v) = %d events, %v; want %d", c.q, len(got), err, c.want)
		}
	}
	rep, err := lapse.VerifyChain(ctx, a, 0, nil)
	if err != nil || !rep.OK() || rep.Records != 3 {
		t.Errorf("VerifyChain = %+v, %v; want 3 records intact", rep, err)
	}
	if recs, _ := a.ChainRecords(ctx, 0, 10); len(recs) != 3 || recs[1].IP != ip {
		t.Errorf("the chain records lost the address: %+v", recs)
	}
}

// checkRecordedDelivered queues the recorded event (seq) for a webhook
// and checks it comes out due, whole.
func checkRecordedDelivered(t *testing.T, q lapse.DeliveryQueue, seq, cursor int64, ip string) {
	t.Helper()
	if err := q.Enqueue(ctx, "ops", []int64{seq}, cursor, t0); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	due, err := q.Due(ctx, t0, 10)
	if err != nil || len(due) != 1 || due[0].Event.Type != lapse.EventKeyRejected || due[0].Event.IP != ip {
		t.Errorf("Due = %+v, %v; want the key_rejected event with its address", due, err)
	}
}
