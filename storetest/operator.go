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

	// An update changes role, tenant, password and disabled time; never
	// the name or the creation time.
	upd := *bob
	upd.Name, upd.CreatedAt = "mallory", t0.Add(time.Hour)
	upd.Role, upd.Tenant, upd.PasswordHash, upd.DisabledAt = "admin", "", "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3", t0.Add(2*time.Hour)
	if err := ops.UpdateOperator(ctx, &upd); err != nil {
		t.Fatalf("UpdateOperator: %v", err)
	}
	want := *bob
	want.Role, want.Tenant, want.PasswordHash, want.DisabledAt = upd.Role, upd.Tenant, upd.PasswordHash, upd.DisabledAt
	if got, err := ops.OperatorByName(ctx, "bob"); err != nil || !sameOperator(got, &want) || !got.Disabled() {
		t.Errorf("after UpdateOperator: %+v, %v; want %+v", got, err, want)
	}
	if _, err := ops.OperatorByName(ctx, "mallory"); lapse.ErrorCode(err) != lapse.CodeOperatorNotFound {
		t.Errorf("OperatorByName of the name an update tried to set: %v; want %s", err, lapse.CodeOperatorNotFound)
	}
	if err := ops.UpdateOperator(ctx, testOperator("op_unknown", "x", "")); lapse.ErrorCode(err) != lapse.CodeOperatorNotFound {
		t.Errorf("UpdateOperator of an unknown id: %v; want %s", err, lapse.CodeOperatorNotFound)
	}
}
