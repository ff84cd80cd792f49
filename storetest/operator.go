package storetest

import (
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

func testOperator(id, name, tenant string) *lapse.Operator {
	return &lapse.Operator{ID: id, Name: name, Role: "viewer", Tenant: tenant,
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", CreatedAt: t0}
}

// sameOperator compares operators with times by Equal.
func sameOperator(a, b *lapse.Operator) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Role == b.Role && a.Tenant == b.Tenant &&
		a.PasswordHash == b.PasswordHash && a.CreatedAt.Equal(b.CreatedAt) && a.DisabledAt.Equal(b.DisabledAt)
}

func testOperatorLifecycle(t *testing.T, st lapse.Store) {
	ops := st.(lapse.OperatorStore)
	bob := testOperator("op_bbbbbbbbbbbbbbbbbbbbbb", "bob", "acme")
	alice := testOperator("op_zzzzzzzzzzzzzzzzzzzzzz", "alice", "")
	for _, o := range []*lapse.Operator{bob, alice} {
		if err := ops.CreateOperator(ctx, o); err != nil {
			t.Fatalf("CreateOperator(%s): %v", o.Name, err)
		}
	}
	for name, o := range map[string]*lapse.Operator{
		"a used id":   testOperator(bob.ID, "carol", ""),
		"a used name": testOperator("op_cccccccccccccccccccccc", "alice", ""),
	} {
		if err := ops.CreateOperator(ctx, o); lapse.ErrorCode(err) != lapse.CodeConflict {
			t.Errorf("CreateOperator of %s: %v; want %s", name, err, lapse.CodeConflict)
		}
	}
	for _, want := range []*lapse.Operator{alice, bob} {
		if got, err := ops.Operator(ctx, want.ID); err != nil || !sameOperator(got, want) {
			t.Errorf("Operator(%s) = %+v, %v; want %+v", want.ID, got, err, want)
		}
		if got, err := ops.OperatorByName(ctx, want.Name); err != nil || !sameOperator(got, want) {
			t.Errorf("OperatorByName(%s) = %+v, %v; want %+v", want.Name, got, err, want)
		}
	}
	if _, err := ops.Operator(ctx, "op_unknown"); lapse.ErrorCode(err) != lapse.CodeOperatorNotFound {
		t.Errorf("Operator of an unknown id: %v; want %s", err, lapse.CodeOperatorNotFound)
	}
	if _, err := ops.OperatorByName(ctx, "nobody"); lapse.ErrorCode(err) != lapse.CodeOperatorNotFound {
		t.Errorf("OperatorByName of an unknown name: %v; want %s", err, lapse.CodeOperatorNotFound)
	}
	all, err := ops.Operators(ctx)
	if err != nil || len(all) != 2 || all[0].Name != "alice" || all[1].Name != "bob" {
		t.Fatalf("Operators() = %v, %v; want alice then bob", all, err)
	}

	// An empty change changes nothing and returns the operator.
	if got, err := ops.UpdateOperator(ctx, bob.ID, lapse.OperatorChange{}); err != nil || !sameOperator(got, bob) {
		t.Errorf("UpdateOperator with no change = %+v, %v; want %+v", got, err, bob)
	}
	// An update changes role, tenant, password and disabled time, and
	// returns the operator as it then is.
	want := *bob
	want.Role, want.Tenant, want.PasswordHash, want.DisabledAt = "admin", "", "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3", t0.Add(2*time.Hour)
	got, err := ops.UpdateOperator(ctx, bob.ID, lapse.OperatorChange{Role: &want.Role, Tenant: &want.Tenant,
		PasswordHash: &want.PasswordHash, DisabledAt: &want.DisabledAt})
	if err != nil || !sameOperator(got, &want) {
		t.Fatalf("UpdateOperator = %+v, %v; want %+v", got, err, want)
	}
	if got, err := ops.OperatorByName(ctx, "bob"); err != nil || !sameOperator(got, &want) || !got.Disabled() {
		t.Errorf("after UpdateOperator: %+v, %v; want %+v", got, err, want)
	}
	// The zero time enables.
	want.DisabledAt = time.Time{}
	if got, err := ops.UpdateOperator(ctx, bob.ID, lapse.OperatorChange{DisabledAt: &time.Time{}}); err != nil || !sameOperator(got, &want) || got.Disabled() {
		t.Errorf("UpdateOperator enabling = %+v, %v; want %+v", got, err, want)
	}
	if _, err := ops.UpdateOperator(ctx, "op_unknown", lapse.OperatorChange{Role: new("admin")}); lapse.ErrorCode(err) != lapse.CodeOperatorNotFound {
		t.Errorf("UpdateOperator of an unknown id: %v; want %s", err, lapse.CodeOperatorNotFound)
	}
}

// testOperatorStaleUpdate: a change made from an operator read before
// they were disabled (lapse operators passwd racing disable) writes only
// what it changes, so the newer disable holds; and changes of different
// fields made at once all hold.
func testOperatorStaleUpdate(t *testing.T, st lapse.Store) {
	ops := st.(lapse.OperatorStore)
	bob := testOperator("op_bbbbbbbbbbbbbbbbbbbbbb", "bob", "acme")
	if err := ops.CreateOperator(ctx, bob); err != nil {
		t.Fatalf("CreateOperator: %v", err)
	}
	stale, err := ops.Operator(ctx, bob.ID)
	if err != nil || stale.Disabled() {
		t.Fatalf("Operator = %+v, %v; want bob, enabled", stale, err)
	}
	disabledAt := t0.Add(time.Hour)
	if _, err := ops.UpdateOperator(ctx, bob.ID, lapse.OperatorChange{DisabledAt: &disabledAt}); err != nil {
		t.Fatalf("UpdateOperator disabling: %v", err)
	}
	// The passwd that read bob before the disable writes its change now.
	hash := "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3"
	got, err := ops.UpdateOperator(ctx, stale.ID, lapse.OperatorChange{PasswordHash: &hash})
	if err != nil || !got.Disabled() || !got.DisabledAt.Equal(disabledAt) || got.PasswordHash != hash {
		t.Fatalf("stale password change = %+v, %v; want bob still disabled at %v, with the new password", got, err, disabledAt)
	}
	if got, err := ops.Operator(ctx, bob.ID); err != nil || !got.DisabledAt.Equal(disabledAt) || got.PasswordHash != hash {
		t.Errorf("after the stale change, Operator = %+v, %v; want disabled at %v, with the new password", got, err, disabledAt)
	}

	// Changes of different fields at once: each holds.
	carol := testOperator("op_cccccccccccccccccccccc", "carol", "")
	if err := ops.CreateOperator(ctx, carol); err != nil {
		t.Fatalf("CreateOperator: %v", err)
	}
	want := *carol
	want.Role, want.Tenant, want.PasswordHash, want.DisabledAt = "admin", "acme", hash, disabledAt
	changes := []lapse.OperatorChange{{Role: &want.Role}, {Tenant: &want.Tenant}, {PasswordHash: &want.PasswordHash}, {DisabledAt: &want.DisabledAt}}
	errs := make(chan error, len(changes))
	for _, ch := range changes {
		go func() {
			_, err := ops.UpdateOperator(ctx, carol.ID, ch)
			errs <- err
		}()
	}
	for range changes {
		if err := <-errs; err != nil {
			t.Errorf("concurrent UpdateOperator: %v", err)
		}
	}
	if got, err := ops.Operator(ctx, carol.ID); err != nil || !sameOperator(got, &want) {
		t.Errorf("after concurrent changes, Operator = %+v, %v; want %+v", got, err, want)
	}
}
